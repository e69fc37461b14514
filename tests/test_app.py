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
        assert app.set_virtual_cam(False).result(5) is True
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
