"""CameraSource through OpenCV's real capture path: no webcam exists here, so a video file path
is the "device" (VideoCapture opens it with the same calls), and absent indexes/paths give the
errors a user without a camera sees."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from livefusion.media.camera import (
    CameraInfo,
    CameraSource,
    backend_order,
    list_cameras,
    parse_device,
    probe_camera,
)
from livefusion.media.sources import SourceError
from tests.media_helpers import frame_index, make_video


@pytest.mark.parametrize("system, device, expected", [
    ("Windows", 0, ["dshow", "msmf"]),
    ("Linux", 0, ["v4l2", "any"]),
    ("Darwin", 0, ["avfoundation", "any"]),
    ("Windows", "rtsp://cam.local/stream", ["dshow", "msmf", "any"]),
    ("FreeBSD", 0, ["any"]),
])
def test_auto_backend_order_per_os(system, device, expected):
    assert backend_order("auto", device, system) == expected


def test_an_explicit_backend_is_the_only_one_tried():
    assert backend_order("msmf", 0, "Linux") == ["msmf"]
    with pytest.raises(SourceError, match="auto, dshow"):
        backend_order("webcam9000")


@pytest.mark.parametrize("text, expected", [
    ("0", 0), (" 3 ", 3), (2, 2), ("/dev/video2", "/dev/video2"), ("video=Cam", "video=Cam"),
])
def test_parse_device(text, expected):
    assert parse_device(text) == expected


def test_camera_path_delivers_frames_reports_size_and_measures_fps(tmp_path: Path,
                                                                    no_thread_leak):
    path = make_video(tmp_path / "device.mp4", frames=12, size=(80, 60))
    camera = CameraSource(str(path), 1920, 1080, 30.0, fail_after=3, measure_frames=5)
    camera.open()
    try:
        assert camera.size == (80, 60)     # what it delivers, not the 1920x1080 asked for
        assert camera.is_live and camera.backend_name
        indexes = []
        with pytest.raises(SourceError, match="stopped delivering frames"):
            for _ in range(100):               # EOF is this "camera" being unplugged
                frame = camera.read()
                if frame is not None:
                    assert frame.shape == (60, 80, 3)
                    indexes.append(frame_index(frame))
        assert indexes[0] == 0                 # the frame read while opening comes first
        assert indexes == sorted(indexes)      # latest-wins may skip, never reorders
        assert camera.measured_fps is not None and camera.measured_fps > 0
        assert camera.fps == camera.measured_fps
        assert "80x60" in camera.description
    finally:
        camera.close()


def test_read_before_open_says_so():
    with pytest.raises(SourceError, match="open"):
        CameraSource(0).read()


def test_no_camera_at_an_index_names_it_and_the_fix(no_thread_leak):
    camera = CameraSource(63, 640, 480, 30.0)
    with pytest.raises(SourceError) as err:
        camera.open()
    message = str(err.value)
    assert "index 63" in message and "--list-cameras" in message and "--camera" in message
    for name in backend_order("auto", 63):
        assert name.upper() in message
    camera.close()


@pytest.mark.parametrize("system, must_say", [
    ("Darwin", "Privacy & Security > Camera"),
    ("Windows", "Let desktop apps access your camera"),
])
def test_the_message_names_the_camera_permission_where_the_os_has_one(monkeypatch, system,
                                                                     must_say):
    monkeypatch.setattr(platform, "system", lambda: system)
    with pytest.raises(SourceError, match="tried backends") as err:
        CameraSource(63).open()
    assert must_say in str(err.value) and str(err.value).endswith("(see --list-cameras).")


def test_missing_device_path_is_named(tmp_path: Path):
    device = tmp_path / "video42"
    with pytest.raises(SourceError, match=str(device)):
        CameraSource(str(device)).open()


def test_probe_reports_a_device_and_list_cameras_only_lists_working_ones(tmp_path: Path):
    path = make_video(tmp_path / "probe.mp4", frames=3, size=(96, 64))
    info = probe_camera(str(path))
    assert info == CameraInfo(str(path), info.backend, 96, 64)
    assert info.backend and "96x64" in str(info)
    assert probe_camera(str(tmp_path / "absent")) is None
    for found in list_cameras(max_index=2):    # a real machine may have cameras; none here
        assert isinstance(found.index, int) and found.width > 0 and found.height > 0


def test_shared_clip_as_a_camera(shared_video, no_thread_leak):
    camera = CameraSource(str(shared_video("dfl_Twitch1.mp4")), 1280, 720, 30.0)
    camera.open()
    try:
        frame = camera.read()
        assert frame is not None and frame.shape == (camera.size[1], camera.size[0], 3)
        assert camera.size[0] >= 320
    finally:
        camera.close()
