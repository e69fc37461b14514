"""The hotkey table: the keys the product promises, no key bound twice, every action known to
the window, and the same rows in the help overlay and the README table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import cv2
import pytest

from tests.ui.helpers import wait_for, wait_frames
from livefusion_ui.hotkeys import HOTKEYS, Binding, Hotkey, bindings, help_lines, markdown_table

PROMISED = {
    "Space": "swap", "E": "enhancer", "V": "virtual_cam", "R": "record", "D": "debug",
    "M": "mask", "B": "before_after", "+": "interval_up", "-": "interval_down",
    **{str(n): "source" for n in range(1, 10)}, "O": "open_source", "F": "fullscreen",
    "F1": "help", "H": "help", "Q": "quit", "Esc": "quit", "Ctrl+Q": "quit_now",
}


def test_every_promised_key_is_bound_to_its_action():
    bound = {b.key: b.action for b in bindings()}
    for key, action in PROMISED.items():
        assert bound.get(key) == action, f"{key} should run {action}"


def test_digits_pass_the_source_index():
    digits = [b for b in bindings() if b.action == "source"]
    assert [(b.key, b.arg) for b in digits] == [(str(n), n - 1) for n in range(1, 10)]


def test_a_key_bound_twice_is_refused():
    table = (Hotkey(("X",), "a", "", "X"), Hotkey(("X",), "b", "", "X"))
    with pytest.raises(ValueError, match="'X' is bound to both a and b"):
        bindings(table)


@dataclass
class Before:
    """What an action may change, read just before it runs."""

    settings: Any
    fullscreen: bool
    help: bool


def _changed(before: Any, after: Any) -> set[str]:
    return {k for k in vars(after) if getattr(after, k) != getattr(before, k)}


def _setting(field: str, expected: Callable[[Any], Any]) -> Callable[[Any, Before], None]:
    def check(window: Any, before: Before) -> None:
        after = window.app.settings.snapshot()
        assert getattr(after, field) == expected(before.settings)
        assert _changed(before.settings, after) == {field}
    return check


def _flip(field: str) -> Callable[[Any, Before], None]:
    return _setting(field, lambda b: not getattr(b, field))


def _virtual_cam_on(window: Any, before: Before) -> None:
    from livefusion.app import VCAM_SINK

    wait_for(lambda: VCAM_SINK in window.app.pipeline.sink_names, "the virtual camera sink")
    wait_for(lambda: window.app.outputs.virtual_cam == "on", "the virtual camera reported on")


def _recording(window: Any, before: Before) -> None:
    from livefusion.app import RECORD_SINK

    assert window.app.outputs.recording.startswith(str(window.recordings_dir))
    wait_for(lambda: RECORD_SINK in window.app.pipeline.sink_names, "the recorder sink")


def _no_enhancer_model(window: Any, before: Before) -> None:
    assert window.app.settings.snapshot() == before.settings  # nothing ticked...
    assert "No enhancer model is loaded" in window.statusBar().currentMessage()  # ...and why


def _no_such_source(window: Any, before: Before) -> None:
    assert window.app.settings.snapshot() == before.settings
    assert "no source face 1" in window.statusBar().currentMessage()


def _file_dialog_open(window: Any, before: Before) -> None:
    assert window.file_dialog is not None and window.file_dialog.isVisible()
    window.file_dialog.reject()


def _fullscreen_flipped(window: Any, before: Before) -> None:
    assert window.isFullScreen() is not before.fullscreen


def _help_flipped(window: Any, before: Before) -> None:
    assert window.preview.help_visible is not before.help


def _asks_while_live(window: Any, before: Before) -> None:
    if before.help:  # Q / Esc over the help overlay closes the overlay, not the app
        assert not window.preview.help_visible
        assert window.isVisible() and window.app.pipeline.running
        window.run_action("quit")
    # the virtual camera is live (V above): quitting asks first; "Keep streaming" keeps it
    box = window.last_dialog
    assert box is not None and box.isVisible() and box.property("quit") is False
    assert "virtual camera is live" in box.text()
    assert window.isVisible() and window.app.pipeline.running
    box.escapeButton().click()
    wait_for(lambda: window.last_dialog is None, "the question closed")
    assert window.isVisible() and window.app.pipeline.running


def _closed(window: Any, before: Before) -> None:
    assert not window.isVisible() and not window.app.pipeline.running


ACTION_CHECKS: dict[str, Callable[[Any, Before], None]] = {
    "swap": _flip("swap_enabled"),
    "enhancer": _no_enhancer_model,  # this window has no enhancer model
    "virtual_cam": _virtual_cam_on,
    "record": _recording,
    "debug": _flip("show_debug"),
    "mask": _flip("show_mask"),
    "before_after": _flip("before_after"),
    "interval_up": _setting("detect_every", lambda b: b.detect_every + 1),
    "interval_down": _setting("detect_every", lambda b: b.detect_every - 1),
    "source": _no_such_source,  # no source face yet: the key explains, nothing changes
    "open_source": _file_dialog_open,
    "fullscreen": _fullscreen_flipped,
    "help": _help_flipped,
    "quit": _asks_while_live,
    "quit_now": _closed,  # Ctrl+Q: at once, camera live or not
}


def test_the_window_handles_every_action(no_thread_leak, make_window, small_video, monkeypatch,
                                         recording_backend):
    import livefusion.app
    from tests.conftest import RECORDER_BACKEND
    from tests.ui.conftest import video_config

    recorders: list[Any] = []
    make_recorder = livefusion.app.make_recorder

    def kept_recorder(*args: Any, **kwargs: Any) -> Any:
        recorders.append(make_recorder(*args, **kwargs))
        return recorders[-1]

    monkeypatch.setattr(livefusion.app, "make_recorder", kept_recorder)
    window = make_window(video_config(small_video, (160, 120), **{
        "output.virtual_cam_backend": RECORDER_BACKEND})).window
    wait_frames(window, 2)
    actions = [row.action for row in HOTKEYS]
    assert set(ACTION_CHECKS) == set(actions), "every action in the table has a check here"
    assert actions[-2:] == ["quit", "quit_now"]
    for row in HOTKEYS:
        if row.action == "quit_now":
            wait_for(lambda: recorders and recorders[0].inner.frames >= 5, "5 frames recorded")
        before = Before(window.app.settings.snapshot(), window.isFullScreen(),
                        window.preview.help_visible)
        window.run_action(row.action, 0 if row.indexed else None)
        ACTION_CHECKS[row.action](window, before)
    assert window.join(10)
    recorder = recorders[0].inner
    assert recorder.closed and recording_backend[0].closed
    capture = cv2.VideoCapture(str(recorder.path))
    try:
        frames = 0
        while capture.read()[0]:
            frames += 1
    finally:
        capture.release()
    assert frames >= 5, "the recording was finalised when the window closed"
    with pytest.raises(ValueError, match="unknown window action"):
        window.run_action("launch_rockets")


def test_help_and_readme_show_every_row():
    table = markdown_table()
    assert len(help_lines()) == len(HOTKEYS)
    for row in HOTKEYS:
        assert f"| `{row.shown}` | {row.description} |" in table
    assert isinstance(bindings()[0], Binding)


def test_readme_lists_the_same_hotkeys_as_the_window():
    from pathlib import Path

    from livefusion_ui.hotkeys import markdown_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert markdown_table() in readme


def test_esc_over_the_help_overlay_closes_the_overlay_not_the_app(make_window, small_video):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from tests.ui.conftest import video_config

    window = make_window(video_config(small_video, (160, 120))).window
    QTest.keyClick(window, Qt.Key.Key_F1)
    assert window.preview.help_visible
    QTest.keyClick(window, Qt.Key.Key_Escape)
    assert not window.preview.help_visible and window.isVisible()
    QTest.keyClick(window, Qt.Key.Key_Escape)
    assert not window.isVisible()


def test_q_without_a_live_camera_quits_and_asking_then_quit_closes(make_window, small_video,
                                                                   recording_backend):
    from livefusion.app import VCAM_SINK
    from tests.conftest import RECORDER_BACKEND
    from tests.ui.conftest import video_config

    plain = make_window(video_config(small_video, (160, 120))).window
    plain.run_action("quit")  # no virtual camera: Q quits as it always did
    assert not plain.isVisible()
    live = make_window(video_config(small_video, (160, 120), **{
        "output.virtual_cam": True, "output.virtual_cam_backend": RECORDER_BACKEND})).window
    wait_for(lambda: VCAM_SINK in live.app.pipeline.sink_names, "the virtual camera")
    live.run_action("quit")
    live.run_action("quit")  # pressed twice: still one question
    box = live.last_dialog
    assert box is not None and box.isVisible()
    [quit_button] = [b for b in box.buttons() if b.text() == "Quit"]
    quit_button.click()
    wait_for(lambda: not live.isVisible(), "the window closed after Quit")
    assert not live.app.pipeline.running


def test_closing_the_window_while_live_asks_too(make_window, small_video, recording_backend):
    """The title bar's X (any close request) while the virtual camera is live asks like Q;
    Keep streaming leaves the stream running, Ctrl+Q then quits without asking."""
    from livefusion.app import VCAM_SINK
    from tests.conftest import RECORDER_BACKEND
    from tests.ui.conftest import video_config

    live = make_window(video_config(small_video, (160, 120), **{
        "output.virtual_cam": True, "output.virtual_cam_backend": RECORDER_BACKEND})).window
    wait_for(lambda: VCAM_SINK in live.app.pipeline.sink_names, "the virtual camera")
    assert not live.close()  # the close request was refused: a question instead
    box = live.last_dialog
    assert box is not None and box.isVisible() and live.isVisible()
    [keep] = [b for b in box.buttons() if b.text() != "Quit"]
    keep.click()
    assert live.isVisible() and live.app.pipeline.running
    live.run_action("quit_now")
    wait_for(lambda: not live.isVisible(), "Ctrl+Q closed the window")
    assert not live.app.pipeline.running


def test_first_v_starts_a_virtual_camera_that_was_missing_at_start(make_window, small_video,
                                                                   monkeypatch,
                                                                   recording_backend):
    """No driver when the app started (unavailable): once one exists, the first V turns the
    camera on, not 'off' (the start-up wish) as it used to."""
    import pyvirtualcam

    from livefusion.app import VCAM_SINK
    from tests.conftest import RECORDER_BACKEND
    from tests.ui.conftest import video_config

    backends = dict(pyvirtualcam.camera.BACKENDS)
    monkeypatch.setattr(pyvirtualcam.camera, "BACKENDS", {})
    window = make_window(video_config(small_video, (160, 120), **{
        "output.virtual_cam": True, "output.virtual_cam_backend": ""})).window
    assert window.app.outputs.virtual_cam == "unavailable"
    monkeypatch.setattr(pyvirtualcam.camera, "BACKENDS", backends)  # the driver is installed
    window.app.config.output.virtual_cam_backend = RECORDER_BACKEND
    window.run_action("virtual_cam")
    wait_for(lambda: VCAM_SINK in window.app.pipeline.sink_names, "the virtual camera on")
    assert window.app.outputs.virtual_cam == "on"


def test_a_remembered_enhancer_without_a_model_is_not_shown_ticked(make_window, small_video):
    """Last run had the enhancer on; this one has no enhancer model: the box stays clear (a
    ticked box that enhances nothing misleads)."""
    from livefusion_ui.settings_store import StoredState
    from tests.ui.conftest import video_config

    window = make_window(video_config(small_video, (160, 120)),
                         state=StoredState(toggles={"enhancer_enabled": True})).window
    wait_for(lambda: window.app.meters.snapshot().frames_out > 0, "frames shown")
    window.refresh_status()
    assert window.app.engine is None or window.app.engine.enhancer is None
    assert not window.controls.checks["enhancer_enabled"].isChecked()
