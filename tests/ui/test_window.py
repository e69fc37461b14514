"""The window over a real video file (no models: the picture passes through): frames reach the
preview, every hotkey changes the engine's state, outputs start and stop, closing stops the
pipeline and leaves no thread behind."""

from __future__ import annotations

import threading
import time

import cv2
import pytest
from PySide6.QtCore import QRectF, Qt
from PySide6.QtTest import QTest

from livefusion.app import RECORD_SINK, VCAM_SINK
from tests.media_helpers import make_video
from tests.ui.conftest import moving_video, video_config
from tests.ui.helpers import wait_for, wait_frames

SIZE = (160, 120)


@pytest.fixture
def running(make_window, small_video):
    return make_window(video_config(small_video, SIZE))


def press(window, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    QTest.keyClick(window, key, modifier)


@pytest.mark.parametrize("size", [SIZE, (1280, 720)], ids=["160x120", "1280x720"])
def test_window_shows_frames_from_the_video_aspect_kept(make_window, tmp_path, size):
    video = moving_video(tmp_path / f"clip{size[0]}.avi", frames=30, size=size)
    window = make_window(video_config(video, size)).window
    wait_frames(window, 30)
    packet = window.preview.packet
    assert packet.frame.shape[:2] == (size[1], size[0])
    stats = window.ui_stats()
    print(f"\nUI thread per {size[0]}x{size[1]} frame (wrap + paint into "
          f"{window.preview.width()}x{window.preview.height()}) over {stats.count} frames: "
          f"p50 {stats.p50_ms:.2f} ms, p95 {stats.p95_ms:.2f} ms")
    assert stats.count >= 30
    for area in ((900, 500), (500, 700)):  # wide and tall windows: letterbox, never stretch
        window.preview.resize(*area)
        rect: QRectF = window.preview.image_rect()
        assert rect.width() / rect.height() == pytest.approx(size[0] / size[1], rel=1e-3)
        assert rect.width() == pytest.approx(area[0]) or rect.height() == pytest.approx(area[1])


def _flip(field):
    return field, lambda before: not getattr(before, field)


def _interval(step):
    return "detect_every", lambda before: before.detect_every + step


HOTKEY_CASES = [
    ("Space", Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier, *_flip("swap_enabled")),
    ("D", Qt.Key.Key_D, Qt.KeyboardModifier.NoModifier, *_flip("show_debug")),
    ("M", Qt.Key.Key_M, Qt.KeyboardModifier.NoModifier, *_flip("show_mask")),
    ("B", Qt.Key.Key_B, Qt.KeyboardModifier.NoModifier, *_flip("before_after")),
    ("+", Qt.Key.Key_Plus, Qt.KeyboardModifier.ShiftModifier, *_interval(+1)),
    ("=", Qt.Key.Key_Equal, Qt.KeyboardModifier.NoModifier, *_interval(+1)),
    ("keypad +", Qt.Key.Key_Plus, Qt.KeyboardModifier.KeypadModifier, *_interval(+1)),
    ("-", Qt.Key.Key_Minus, Qt.KeyboardModifier.NoModifier, *_interval(-1)),
]


@pytest.mark.parametrize("name,key,modifier,field,expected", HOTKEY_CASES,
                         ids=[c[0] for c in HOTKEY_CASES])
def test_hotkey_changes_the_engine_settings_between_frames(running, name, key, modifier, field,
                                                           expected):
    window, app = running.window, running.app
    wait_frames(window, 2)
    before = app.settings.snapshot()
    press(window, key, modifier)
    after = app.settings.snapshot()
    assert getattr(after, field) == expected(before)
    # Only that field moved, and the pipeline's next frames are processed with it.
    assert {k for k in vars(after) if getattr(after, k) != getattr(before, k)} == {field}
    wait_for(lambda: getattr(window.preview.packet.settings, field) == getattr(after, field),
             f"a frame processed with {field}={getattr(after, field)}")


def test_detection_interval_stays_in_range(running):
    window, app = running.window, running.app
    app.settings.update(detect_every=1)
    press(window, Qt.Key.Key_Minus)
    assert app.settings.snapshot().detect_every == 1
    app.settings.update(detect_every=120)
    press(window, Qt.Key.Key_Plus, Qt.KeyboardModifier.ShiftModifier)
    assert app.settings.snapshot().detect_every == 120


def test_digit_without_that_source_face_changes_nothing(running):
    window, app = running.window, running.app
    press(window, Qt.Key.Key_3)
    assert app.settings.snapshot().active_source == 0
    assert "no source face 3" in window.statusBar().currentMessage()


def test_space_reaches_the_hotkeys_even_with_a_button_under_the_mouse(running):
    window, app = running.window, running.app
    before = app.settings.snapshot().swap_enabled
    QTest.keyClick(window.controls.record, Qt.Key.Key_Space)  # would click it if it had focus
    assert app.settings.snapshot().swap_enabled is not before
    assert not app.outputs.recording


@pytest.fixture
def recording_backend(monkeypatch):
    """A pyvirtualcam backend registered for the test that keeps the frames it is sent."""
    import numpy as np
    import pyvirtualcam

    created = []

    class KeepFrames:
        def __init__(self, *, width, height, fps, fourcc, device, **kw):
            self.frames: list[np.ndarray] = []
            self.fourcc = fourcc
            self.closed = False
            created.append(self)

        def send(self, frame):
            self.frames.append(frame.copy())

        def close(self):
            self.closed = True

        def device(self):
            return "test-camera"

        def native_fourcc(self):
            return self.fourcc

    monkeypatch.setattr(pyvirtualcam.camera, "BACKENDS", dict(pyvirtualcam.camera.BACKENDS))
    pyvirtualcam.register_backend("livefusion-ui-test", KeepFrames)
    return created


def test_v_turns_the_virtual_camera_on_and_off(make_window, small_video, recording_backend):
    running = make_window(video_config(small_video, SIZE, **{
        "output.virtual_cam_backend": "livefusion-ui-test"}))
    window, app = running.window, running.app
    press(window, Qt.Key.Key_V)
    wait_for(lambda: VCAM_SINK in app.pipeline.sink_names, "the virtual camera sink")
    assert app.outputs.virtual_cam == "on"
    wait_for(lambda: len(recording_backend[0].frames) >= 3, "frames on the virtual camera")
    assert recording_backend[0].frames[0].size == SIZE[0] * SIZE[1] * 3  # BGR, flattened
    wait_for(lambda: window.controls.checks["virtual_cam"].isChecked(), "the checkbox follows")
    press(window, Qt.Key.Key_V)
    wait_for(lambda: VCAM_SINK not in app.pipeline.sink_names, "the sink removed")
    assert app.outputs.virtual_cam == "off" and recording_backend[0].closed


def test_v_without_a_driver_shows_the_fix_and_keeps_running(running, monkeypatch):
    import pyvirtualcam

    from livefusion.media.sinks import virtual_camera_fix

    monkeypatch.setattr(pyvirtualcam.camera, "BACKENDS", {})
    window, app = running.window, running.app
    press(window, Qt.Key.Key_V)
    wait_for(lambda: window.last_dialog is not None, "the no-driver dialog")
    assert app.outputs.virtual_cam == "unavailable"
    assert VCAM_SINK not in app.pipeline.sink_names
    box = window.last_dialog
    assert box is not None and box.isVisible()
    assert virtual_camera_fix() in box.informativeText()
    assert "vcam unavailable" in window.status_label.text()
    wait_frames(window, 3)  # the preview goes on behind the dialog
    assert app.pipeline.running


def test_r_records_to_a_file_that_plays(running, tmp_path):
    window, app = running.window, running.app
    press(window, Qt.Key.Key_R)
    path = app.outputs.recording
    assert path and path.startswith(str(tmp_path / "recordings"))
    wait_for(lambda: RECORD_SINK in app.pipeline.sink_names, "the recorder sink")
    wait_for(lambda: app.meters.snapshot().stages.get(f"sink:{RECORD_SINK}") is not None
             and app.meters.snapshot().stages[f"sink:{RECORD_SINK}"].count >= 10,
             "10 frames recorded")
    press(window, Qt.Key.Key_R)
    assert app.outputs.recording == ""
    assert window.recording_finalised.result(timeout=10) is True  # closed and finalised
    assert RECORD_SINK not in app.pipeline.sink_names
    capture = cv2.VideoCapture(path)
    frames = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        assert frame.shape == (SIZE[1], SIZE[0], 3)
        frames += 1
    capture.release()
    assert frames >= 10


def test_closing_while_recording_finalises_the_file(running):
    window, app = running.window, running.app
    press(window, Qt.Key.Key_R)
    path = app.outputs.recording
    wait_for(lambda: RECORD_SINK in app.pipeline.sink_names, "the recorder sink")
    wait_frames(window, 5)
    window.close()
    capture = cv2.VideoCapture(path)
    assert capture.isOpened() and capture.read()[0], "the recording plays after closing"
    capture.release()


def test_f_fullscreen_and_h_f1_help(running):
    window = running.window
    press(window, Qt.Key.Key_F)
    assert window.isFullScreen()
    press(window, Qt.Key.Key_F)
    assert not window.isFullScreen()
    for key in (Qt.Key.Key_F1, Qt.Key.Key_H):
        press(window, key)
        assert window.preview.help_visible
        press(window, key)
        assert not window.preview.help_visible


def test_o_opens_the_source_file_dialog(running):
    window = running.window
    press(window, Qt.Key.Key_O)
    assert window.file_dialog is not None and window.file_dialog.isVisible()
    window.file_dialog.reject()


@pytest.mark.parametrize("key", [Qt.Key.Key_Q, Qt.Key.Key_Escape], ids=["Q", "Esc"])
def test_quit_key_stops_everything_within_a_second(make_window, small_video, key, no_thread_leak):
    running = make_window(video_config(small_video, SIZE))
    window, app = running.window, running.app
    wait_frames(window, 3)
    assert {t.name for t in threading.enumerate()} >= {"lf-capture", "lf-inference", "lf-output"}
    started = time.perf_counter()
    press(window, key)
    elapsed = time.perf_counter() - started
    print(f"\nclose -> pipeline stopped in {elapsed * 1000:.0f} ms "
          f"(window measured {window.stop_seconds * 1000:.0f} ms)")
    assert not window.isVisible()
    assert not app.pipeline.running
    assert not [t.name for t in threading.enumerate() if t.name.startswith("lf-")]
    assert elapsed < 1.0


def test_status_area_names_stages_fps_latency_provider_and_outputs(running):
    window = running.window
    wait_frames(window, 10)
    window.refresh_status()
    text = window.status_label.text()
    for part in ("p50 ms:", "capture", "blend", "fps", "e2e", "dropped", "EP —", "vcam off",
                 "rec off", "UI "):
        assert part in text, f"{part!r} missing from status {text!r}"


def test_settings_and_geometry_are_remembered(make_window, small_video):
    first = make_window(video_config(small_video, SIZE))
    first.app.settings.update(detect_every=9, color_transfer=False, opacity=0.4, show_debug=True)
    first.window.resize(700, 500)  # inside the offscreen 800x600 screen
    first.window.close()
    second = make_window(video_config(small_video, SIZE), store=first.store)
    snap = second.app.settings.snapshot()
    # the opacity is not remembered: a faint swap shows the real face (a deliberate reveal)
    assert (snap.detect_every, snap.color_transfer, snap.opacity, snap.show_debug) == (9, False, 1.0, True)
    assert (second.window.width(), second.window.height()) == (700, 500)
    assert second.window.controls.interval.value() == 9


def test_switching_input_keeps_settings_and_outputs(make_window, small_video, tmp_path,
                                                    recording_backend):
    running = make_window(video_config(small_video, SIZE, **{
        "output.virtual_cam_backend": "livefusion-ui-test"}))
    window = running.window
    press(window, Qt.Key.Key_V)
    press(window, Qt.Key.Key_D)
    other = make_video(tmp_path / "other.avi", frames=20, size=(320, 240), codec="MJPG")
    old_pipeline = running.app.pipeline
    window.switch_input(str(other))
    wait_for(lambda: window.app is not running.app, "the new input taken up")
    assert not old_pipeline.running
    app = window.app
    assert app.pipeline.running and not window.switching
    assert app.settings.snapshot().show_debug
    # The new clip is flat grey (the first one a gradient), scaled to the configured size. The
    # captured frame is checked: with no source face the privacy guard sends a neutral frame out.
    wait_for(lambda: window.preview.packet is not None
             and window.preview.packet.original.std() < 8, "frames of the new input")
    wait_for(lambda: VCAM_SINK in app.pipeline.sink_names, "the virtual camera on the new pipeline")
    assert window.controls.camera.currentData() == str(other)


@pytest.fixture
def gated_build(monkeypatch):
    """build_app for the window that waits for `gate`, notes the thread it ran on and the
    apps it built, and counts when each app's input is closed (`app.source_closes`)."""
    import livefusion_ui.input_switch
    from livefusion.app import build_app

    gate = threading.Event()
    calls: list[threading.Thread] = []
    built: list = []

    def build(config):
        calls.append(threading.current_thread())
        assert gate.wait(10), "test gate never opened"
        app = build_app(config)
        source = app.pipeline.source
        close = source.close
        app.source_closes = 0

        def counted_close() -> None:
            app.source_closes += 1
            close()

        source.close = counted_close
        built.append(app)
        return app

    monkeypatch.setattr(livefusion_ui.input_switch, "build_app", build)
    return gate, calls, built


def test_switching_input_opens_it_off_the_qt_thread_and_ignores_a_second_switch(
        running, tmp_path, gated_build):
    gate, calls, built = gated_build
    window, first = running.window, running.app
    other = make_video(tmp_path / "other.avi", frames=20, size=(320, 240), codec="MJPG")
    third = make_video(tmp_path / "third.avi", frames=20, size=(320, 240), codec="MJPG")
    window.switch_input(str(other))  # returns at once: the (slow) open waits on the gate
    assert window.switching
    assert "Switching input" in window.statusBar().currentMessage()
    wait_frames(window, 3)  # the old input keeps playing meanwhile
    window.switch_input(str(third))
    assert window.controls.camera.currentData() == str(first.config.input.file)
    gate.set()
    wait_for(lambda: window.app is not first, "the new input taken up")
    assert len(calls) == 1 and calls[0] is not threading.main_thread()
    assert window.app is built[0] and window.app.config.input.file == str(other)
    assert not first.pipeline.running and not window.switching


def test_an_input_that_will_not_open_shows_the_no_camera_dialog(running):
    window, app = running.window, running.app
    window.switch_input("97")  # no such camera
    wait_for(lambda: window.last_dialog is not None, "the no-camera dialog")
    assert "No camera could be opened" in window.last_dialog.text()
    assert "97" in window.last_dialog.informativeText()
    assert window.app is app and app.pipeline.running and not window.switching
    wait_frames(window, 3)
    window.last_dialog.reject()


def test_closing_during_a_switch_closes_the_input_it_opened(running, tmp_path, gated_build,
                                                            no_thread_leak):
    gate, calls, built = gated_build
    window, first = running.window, running.app
    other = make_video(tmp_path / "other.avi", frames=20, size=(320, 240), codec="MJPG")
    window.switch_input(str(other))
    window.close()
    gate.set()
    assert window.join(10)
    assert window.app is first and not first.pipeline.running
    new = built[0]
    assert not new.pipeline.running
    assert new.source_closes >= 1  # the video file it opened was closed again


def test_a_closed_message_box_is_forgotten_not_left_dangling(running, qapp):
    from livefusion_ui import dialogs

    window = running.window
    window._show_box(dialogs.error_box(window, "something failed", "do this instead"))
    box = window.last_dialog
    assert box is not None and box.isVisible()
    box.accept()  # WA_DeleteOnClose: Qt deletes the box once events run
    wait_for(lambda: window.last_dialog is None, "the closed box forgotten")
    qapp.sendPostedEvents(None, 0)  # DeferredDelete
    qapp.processEvents()
    assert window.last_dialog is None


def test_results_arriving_after_the_window_shut_down_do_nothing(running, qapp):
    from concurrent.futures import Future

    window = running.window
    ran: list[str] = []
    window._relay.send(lambda: ran.append("relayed"))  # queued, not yet run
    pending: Future = Future()
    window._when_done(pending, lambda f: ran.append("future slot"))
    window.close()
    pending.set_result(True)  # a pipeline future finishing after the close
    qapp.processEvents()
    assert ran == []


@pytest.mark.parametrize("problem", ["folder cannot be created", "codec"])
def test_a_recording_that_cannot_start_shows_the_error_and_keeps_running(running, tmp_path,
                                                                         problem):
    window, app = running.window, running.app
    if problem == "codec":
        app.config.output.record_codec = "H264X"  # not a FourCC: RecorderSink refuses it
    else:
        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        window.recordings_dir = blocker / "recordings"
    window.run_action("record")  # must not raise out of the shortcut's slot
    box = window.last_dialog
    assert box is not None and box.isVisible()
    assert "Recording" in box.text() or "recording" in box.text()
    assert app.outputs.recording == ""
    assert RECORD_SINK not in app.pipeline.sink_names
    wait_frames(window, 3)
    box.accept()
