"""The wiring: LiveApp's run-time controls on a real pipeline."""

from __future__ import annotations

import cv2
import pytest

from livefusion.app import VCAM_SINK, build_app, settings_from_config
from livefusion.config import load_config
from tests.conftest import RECORDER_BACKEND
from tests.media_helpers import make_video


@pytest.fixture
def config(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", 20, size=(96, 72), fps=30.0)
    return load_config([], [("input.file", str(clip)), ("input.loop", True),
                            ("input.resolution", "96x72"), ("output.virtual_cam", False)])


def wait_frames(app, n: int) -> None:
    target = app.pipeline.frames_out + n
    while app.pipeline.frames_out < target:
        app.pipeline.wait(0.01)


def test_virtual_camera_can_be_switched_on_and_off_while_running(config, recording_backend,
                                                                 no_thread_leak):
    config.output.virtual_cam_backend = RECORDER_BACKEND
    with build_app(config) as app:
        assert app.set_virtual_cam(True).result(5) is True
        assert VCAM_SINK in app.pipeline.sink_names and app.outputs.virtual_cam == "on"
        wait_frames(app, 5)
        assert app.set_virtual_cam(False).result(5) is False  # the future says: now off
        assert VCAM_SINK not in app.pipeline.sink_names
        (cam,) = recording_backend
        sent = len(cam.frames)
        wait_frames(app, 3)
        assert len(cam.frames) == sent >= 5 and cam.closed == 1


def test_virtual_camera_unavailable_keeps_running_with_the_fix(config, no_thread_leak):
    config.output.virtual_cam_backend = "v4l2loopback"
    config.output.virtual_cam_device = "/dev/video99"
    with build_app(config) as app:
        assert app.set_virtual_cam(True).result(5) is False
        assert app.outputs.virtual_cam == "unavailable"
        assert "modprobe v4l2loopback" in app.outputs.virtual_cam_message
        wait_frames(app, 3)


def test_recording_starts_and_stops_into_a_playable_file(config, tmp_path, no_thread_leak):
    out = tmp_path / "rec.avi"
    config.output.record_codec = "MJPG"
    with build_app(config) as app:
        app.start_recording(out).result(5)
        wait_frames(app, 12)
        assert app.stop_recording().result(5) is True
    cap = cv2.VideoCapture(str(out))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames >= 10


def test_settings_come_from_the_config(config):
    config.face.detect_every = 9
    config.face.enhancer = "gpen_bfr_256"
    config.face.opacity = 0.5
    s = settings_from_config(config)
    assert (s.detect_every, s.enhancer_enabled, s.opacity) == (9, True, 0.5)


@pytest.fixture
def slow_backend(monkeypatch):
    """A pyvirtualcam backend that takes 0.2 s to open (as OBS can) and counts opens/closes."""
    import threading
    import time

    import pyvirtualcam

    stats = {"opened": 0, "closed": 0}
    lock = threading.Lock()

    class SlowBackend:
        def __init__(self, *, width, height, fps, fourcc, device, **kw):
            time.sleep(0.2)
            self.fourcc = fourcc
            with lock:
                stats["opened"] += 1

        def send(self, frame):
            pass

        def close(self):
            with lock:
                stats["closed"] += 1

        def device(self):
            return "slow"

        def native_fourcc(self):
            return self.fourcc

    monkeypatch.setitem(pyvirtualcam.camera.BACKENDS, "slow-test", SlowBackend)
    return stats


@pytest.mark.parametrize(
    "presses, on_at_end",
    [((True, False), False), ((True, True), True), ((True, True, False), False),
     ((True, False, True), True)],
)
def test_quick_virtual_camera_toggles_end_in_the_last_state(presses, on_at_end, config,
                                                           slow_backend, no_thread_leak):
    config.output.virtual_cam_backend = "slow-test"
    with build_app(config) as app:
        futures = [app.set_virtual_cam(p) for p in presses]
        for f in futures:
            f.result(5)
        wait_frames(app, 2)
        assert app.pipeline.sink_names.count(VCAM_SINK) == (1 if on_at_end else 0)
        assert (app.outputs.virtual_cam == "on") == on_at_end
    assert slow_backend["opened"] == slow_backend["closed"]


def test_an_unexpected_driver_error_is_reported_not_lost(config, monkeypatch, no_thread_leak):
    from livefusion.media.sinks import VirtualCameraSink

    def broken_open(self, *a, **k):
        raise ValueError("driver exploded")

    monkeypatch.setattr(VirtualCameraSink, "open", broken_open)
    with build_app(config) as app:
        assert app.set_virtual_cam(True).result(2) is False
        assert "driver exploded" in app.outputs.virtual_cam_message
        assert app.outputs.virtual_cam == "unavailable"


def test_adding_the_first_source_loads_models_off_the_pipeline_threads(config, shared_model,
                                                                      shared_image, tmp_path,
                                                                      monkeypatch, no_thread_leak):
    import threading

    import livefusion.app as app_module
    from tests.face.onnx_builders import arcface_standin, identity_inswapper

    config.models.overrides = {"detector": str(shared_model("det_500m.onnx")),
                               "embedder": str(arcface_standin(tmp_path / "e.onnx")),
                               "swapper": str(identity_inswapper(tmp_path / "s.onnx"))}
    loaded_on = []
    real_build = app_module.build_face_engine

    def recording_build(cfg, **kw):
        loaded_on.append(threading.current_thread().name)
        return real_build(cfg, **kw)

    monkeypatch.setattr(app_module, "build_face_engine", recording_build)
    with build_app(config) as app:
        assert app.engine is None
        first = app.add_source([shared_image("fr_obama.jpg")])
        second = app.add_source([shared_image("fr_obama2.jpg")])  # while the first loads
        assert sorted([first.result(30), second.result(30)]) == [0, 1]
        assert loaded_on == ["lf-engine-load"]  # one load, on its own thread
        assert len(app.engine.sources) == 2
        wait_frames(app, 3)


@pytest.mark.parametrize("policy, det_score, swap_score, min_face, edge", [
    ("hide", 0.25, 0.5, 8, 12.0),
    ("hold", 0.25, 0.5, 8, 12.0),
    ("off", 0.5, None, 32, 12.0),
])
def test_the_guard_gets_its_own_detection_limits_from_one_detector_run(
        policy, det_score, swap_score, min_face, edge, config, shared_model, tmp_path):
    from livefusion.app import build_face_engine
    from tests.face.onnx_builders import arcface_standin, identity_inswapper

    config.privacy.policy = policy
    config.models.overrides = {"detector": str(shared_model("det_500m.onnx")),
                               "embedder": str(arcface_standin(tmp_path / "e.onnx")),
                               "swapper": str(identity_inswapper(tmp_path / "s.onnx"))}
    engine = build_face_engine(config)
    locator = engine.locator
    assert engine.detector.score == pytest.approx(det_score)
    assert engine.detector.min_face == min_face
    assert locator.swap_score == swap_score
    assert locator.swap_min_face == (32 if swap_score else 0)
    assert locator.cut_detector is not None and locator.cut_detector.edge_threshold == edge


def test_every_app_has_the_privacy_guard_before_its_outputs(config):
    from livefusion.privacy import PrivacyGuard

    config.privacy.policy = "hold"
    with build_app(config) as app:
        wait_frames(app, 3)
    assert isinstance(app.pipeline.guard, PrivacyGuard)
    assert app.pipeline.guard.config.policy == "hold"
    snap = app.meters.snapshot()
    assert snap.privacy_frames["frames"] >= 3 and snap.privacy["hidden"] == {
        "startup": snap.privacy_frames["hidden"]}  # no source face: neutral frames only


def test_a_config_cannot_start_the_app_with_the_swap_off(config, caplog):
    config.face.swap_enabled = False
    assert settings_from_config(config).swap_enabled is True
    with caplog.at_level("WARNING", logger="livefusion.app"):
        app = build_app(config)
        app.stop()
    assert app.settings.snapshot().swap_enabled is True
    assert "face.swap_enabled = false is ignored" in caplog.text


def test_auto_mask_is_face_with_a_landmarker_on_disk_and_box_without(config, shared_model, tmp_path,
                                                                     caplog):
    """face.mask = auto: the face mask when a landmarker is there (here a --model file in the
    2d106det contract), the box otherwise, said in the log; never a download for it."""
    from livefusion.app import build_face_engine
    from livefusion.measure.standins import pfld106_as_2d106det
    from tests.face.onnx_builders import arcface_standin, identity_inswapper

    config.models.dir = str(tmp_path / "store")  # an empty store: no 2d106det on disk
    config.models.overrides = {"detector": str(shared_model("det_500m.onnx")),
                               "embedder": str(arcface_standin(tmp_path / "e.onnx")),
                               "swapper": str(identity_inswapper(tmp_path / "s.onnx"))}
    assert settings_from_config(config).mask_mode == "face"
    with caplog.at_level("INFO", logger="livefusion.app"):
        assert build_face_engine(config).landmarks is None
    assert "box mask" in caplog.text
    config.models.overrides["landmarker"] = str(pfld106_as_2d106det(
        shared_model("pfld106_lite.onnx"), tmp_path / "lm.onnx"))
    assert build_face_engine(config).landmarks is not None
    config.face.mask = "box"
    assert build_face_engine(config).landmarks is None
