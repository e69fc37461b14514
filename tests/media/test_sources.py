"""Frame sources on real files: pacing, looping, errors, scaling, reconnecting after faults."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from livefusion.media.camera import CameraSource
from livefusion.config import AppConfig, InputConfig, load_config
from livefusion.media.sources import (
    ImageSource,
    Pacer,
    Rescaler,
    Source,
    SourceEnded,
    SourceError,
    VideoFileSource,
    fit_frame,
)
from livefusion.media.input import open_source
from livefusion.media.reconnect import ReconnectingSource
from tests.media_helpers import FakeClock, frame_index, level_frame, make_video


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_video(tmp_path / "clip.mp4", frames=10, fps=25.0)


def read_all(source: Source, limit: int = 1000) -> list[np.ndarray]:
    frames = []
    for _ in range(limit):
        try:
            frame = source.read()
        except SourceEnded:
            return frames
        if frame is not None:
            frames.append(frame)
    raise AssertionError(f"source did not end within {limit} reads")


# ----- pacing --------------------------------------------------------------------------------


def test_pacer_keeps_a_drift_free_grid_when_each_frame_costs_time():
    clock = FakeClock()
    pacer = Pacer(25.0, clock=clock, sleep=clock.sleep)
    t0 = clock.now
    times = []
    for _ in range(50):
        assert pacer.wait()
        times.append(clock.now - t0)
        clock.advance(0.013)  # work done between frames must not push the schedule back
    assert times == pytest.approx([k / 25.0 for k in range(50)])


def test_pacer_does_not_sleep_when_late_and_never_bursts_to_catch_up():
    clock = FakeClock()
    pacer = Pacer(10.0, clock=clock, sleep=clock.sleep)
    assert pacer.wait()                      # frame 0 at t0
    t0 = clock.now
    clock.advance(0.35)                      # frames 1..3 were due; we are 0.25 s late
    sleeps_before = len(clock.sleeps)
    assert pacer.wait()
    assert len(clock.sleeps) == sleeps_before  # late: no sleep
    late_at = clock.now
    assert pacer.wait()                      # next one a full interval later, not at once
    assert clock.now - late_at == pytest.approx(0.1)
    assert pacer.late == 1
    clock.advance(0.12)                      # slightly late (< 1 interval): stays on the grid
    assert pacer.wait()
    assert pacer.wait()
    assert clock.now - t0 == pytest.approx(0.35 + 0.3)


def test_pacer_returns_within_max_wait_at_low_fps():
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock, sleep=clock.sleep, max_wait_s=0.25)
    assert pacer.wait()
    results = [pacer.wait() for _ in range(4)]
    assert results == [False, False, False, True]
    assert max(clock.sleeps) <= 0.25
    assert clock.now == pytest.approx(101.0)


# ----- video files ---------------------------------------------------------------------------


def test_video_file_realtime_delivers_every_frame_in_order_at_its_fps(clip: Path):
    clock = FakeClock()
    source = VideoFileSource(clip, realtime=True, clock=clock, sleep=clock.sleep)
    source.open()
    t0 = clock.now
    times, frames = [], []
    try:
        while True:
            try:
                frame = source.read()
            except SourceEnded as end:
                assert "10 frames" in str(end)
                break
            assert frame is not None
            times.append(clock.now - t0)
            frames.append(frame)
    finally:
        source.close()
    assert [frame_index(f) for f in frames] == list(range(10))
    assert times == pytest.approx([k / 25.0 for k in range(10)])
    assert source.size == (64, 48) and source.fps == 25.0 and not source.is_live
    assert frames[0].dtype == np.uint8 and frames[0].shape == (48, 64, 3)


def test_video_file_as_fast_as_possible_never_sleeps(clip: Path):
    def no_sleep(seconds: float) -> None:
        raise AssertionError("a non-realtime source must not sleep")

    source = VideoFileSource(clip, realtime=False, sleep=no_sleep)
    source.open()
    frames = read_all(source)
    source.close()
    assert [frame_index(f) for f in frames] == list(range(10))


def test_video_file_loops_back_to_the_first_frame(clip: Path):
    source = VideoFileSource(clip, realtime=False, loop=True)
    source.open()
    frames = [source.read() for _ in range(25)]
    source.close()
    assert [frame_index(f) for f in frames] == [k % 10 for k in range(25)]
    assert source.loops == 2


def test_fps_override_sets_the_pace(clip: Path):
    clock = FakeClock()
    source = VideoFileSource(clip, fps_override=5.0, clock=clock, sleep=clock.sleep)
    source.open()
    t0 = clock.now
    for _ in range(3):
        assert source.read() is not None
    source.close()
    assert source.fps == 5.0
    assert clock.now - t0 == pytest.approx(0.4)


def _missing(tmp: Path) -> Path:
    return tmp / "nothing-here.mp4"


def _garbage(tmp: Path) -> Path:
    path = tmp / "garbage.mp4"
    path.write_bytes(b"not a video at all" * 200)
    return path


def _empty_mp4(tmp: Path) -> Path:
    return make_video(tmp / "zero.mp4", frames=0)


def _empty_avi(tmp: Path) -> Path:
    return make_video(tmp / "zero.avi", frames=0, codec="MJPG")


def _truncated(tmp: Path) -> Path:
    good = make_video(tmp / "good.mp4", frames=10)
    path = tmp / "truncated.mp4"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    return path


def _a_folder(tmp: Path) -> Path:
    path = tmp / "folder.mp4"
    path.mkdir()
    return path


@pytest.mark.parametrize("make_bad", [_missing, _garbage, _empty_mp4, _empty_avi, _truncated,
                                      _a_folder])
def test_bad_video_files_raise_source_error_naming_the_file(tmp_path: Path, make_bad):
    path = make_bad(tmp_path)
    source = VideoFileSource(path)
    with pytest.raises(SourceError) as err:
        source.open()
    assert str(path) in str(err.value)
    source.close()


def test_read_before_open_says_so(clip: Path):
    with pytest.raises(SourceError, match="open"):
        VideoFileSource(clip).read()


def test_shared_clip_decodes_at_its_native_size(shared_video):
    source = VideoFileSource(shared_video("dfl_Twitch1.mp4"), realtime=False)
    source.open()
    frames = [source.read() for _ in range(5)]
    source.close()
    w, h = source.size
    assert w >= 320 and h >= 240
    assert all(f.shape == (h, w, 3) and f.dtype == np.uint8 for f in frames)
    assert 1.0 <= source.fps <= 240.0
    assert not np.array_equal(frames[0], frames[4])  # it is a moving clip, not one frame


# ----- still images --------------------------------------------------------------------------


def _write(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image)
    return path


def test_image_repeats_fresh_copies_at_the_set_fps(tmp_path: Path):
    path = _write(tmp_path / "face.png", level_frame(3, (40, 30)))
    clock = FakeClock()
    source = ImageSource(path, fps=10.0, clock=clock, sleep=clock.sleep)
    source.open()
    t0 = clock.now
    first = source.read()
    first[:] = 0  # a stage scribbling on its frame must not change the next one
    second, third = source.read(), source.read()
    source.close()
    assert frame_index(second) == 3 and np.array_equal(second, third)
    assert second is not third
    assert clock.now - t0 == pytest.approx(0.2)
    assert source.size == (0, 0)  # closed


@pytest.mark.parametrize("image", [
    np.full((30, 40), 90, np.uint8),                 # grayscale
    np.dstack([np.full((30, 40, 3), 90, np.uint8), np.full((30, 40), 255, np.uint8)]),  # BGRA
    np.full((30, 40, 3), 90 * 257, np.uint16),       # 16-bit colour
])
def test_image_of_any_depth_or_channels_becomes_bgr_uint8(tmp_path: Path, image: np.ndarray):
    source = ImageSource(_write(tmp_path / "odd.png", image), fps=30.0, realtime=False)
    source.open()
    frame = source.read()
    source.close()
    assert frame.shape == (30, 40, 3) and frame.dtype == np.uint8
    assert abs(int(frame[5, 5, 0]) - 90) <= 1


@pytest.mark.parametrize("content", [None, b"", b"\x89PNG\r\n\x1a\n broken"])
def test_bad_images_raise_source_error_naming_the_file(tmp_path: Path, content):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError) as err:
        ImageSource(path, fps=30.0).open()
    assert str(path) in str(err.value)


# ----- scaling and choosing ------------------------------------------------------------------


def test_fit_frame_keeps_same_size_frames_untouched():
    frame = level_frame(2, (64, 48))
    assert fit_frame(frame, (64, 48)) is frame


def test_fit_frame_letterboxes_instead_of_cropping_or_stretching():
    frame = np.zeros((400, 100, 3), np.uint8)   # portrait 1:4, red top and bottom quarters
    frame[:100] = (0, 0, 255)
    frame[300:] = (0, 0, 255)
    frame[100:300] = (0, 255, 0)
    out = fit_frame(frame, (200, 100))          # landscape target: the whole picture, smaller
    assert out.shape == (100, 200, 3)
    picture = out[:, 88:112]                    # 25 px wide, centred
    assert (out[:, :87] == 0).all() and (out[:, 113:] == 0).all()   # black side bands
    assert (picture[2:23, :, 2] > 200).all()    # red top kept (not cropped)
    assert (picture[77:98, :, 2] > 200).all()   # red bottom kept
    assert (picture[30:70, :, 1] > 200).all()   # green middle, not stretched sideways
    wide = fit_frame(np.full((100, 400, 3), 255, np.uint8), (200, 100))
    assert (wide[:25] == 0).all() and (wide[75:] == 0).all() and (wide[26:74] == 255).all()


def test_a_file_keeps_its_own_size_unless_a_resolution_is_set(tmp_path: Path):
    portrait = _write(tmp_path / "tall.png", np.full((120, 60, 3), 90, np.uint8))
    own = open_source(InputConfig(file=str(portrait)))
    own.open()
    assert own.size == (60, 120) and own.read().shape == (120, 60, 3)
    own.close()
    fitted = open_source(InputConfig(file=str(portrait), resolution="160x90"))
    fitted.open()
    frame = fitted.read()
    fitted.close()
    assert fitted.size == (160, 90) and frame.shape == (90, 160, 3)
    assert (frame[:, 57:102] == 90).all() and (frame[:, :56] == 0).all()  # all of it, centred
    camera = open_source(InputConfig(camera="2"))
    assert camera.requested[:2] == (1280, 720)  # no resolution: the camera is asked for 720p


def test_rescaler_delivers_the_requested_size(clip: Path):
    source = Rescaler(VideoFileSource(clip, realtime=False), (128, 96))
    source.open()
    frame = source.read()
    source.close()
    assert frame.shape == (96, 128, 3) and source.size == (128, 96)
    assert frame_index(frame) == 0
    assert "128x96" in source.description


def test_open_source_picks_image_video_or_camera(tmp_path: Path, clip: Path):
    image = _write(tmp_path / "still.jpg", level_frame(1))
    picked = open_source(InputConfig(file=str(image), resolution="64x48"), scale_files=False)
    assert isinstance(picked, ImageSource)
    picked = open_source(InputConfig(file=str(clip), resolution="32x24", realtime=False))
    assert isinstance(picked, Rescaler) and isinstance(picked.source, VideoFileSource)
    picked.open()
    assert picked.read().shape == (24, 32, 3)
    picked.close()
    assert isinstance(open_source(InputConfig(camera="2")), CameraSource)
    wrapped = open_source(load_config(overrides=[("input.camera", "3")]))
    assert isinstance(wrapped, ReconnectingSource)
    assert wrapped.max_backoff_s == AppConfig().pipeline.reconnect_max_s
    # while the camera is lost, read() returns within one frame interval (no-signal frames at
    # the stream's rate, not 2 fps)
    assert wrapped.read_timeout_s == pytest.approx(1 / 30)
