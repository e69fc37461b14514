"""ReconnectingSource: faults injected into real sources; the stream survives and resumes."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from livefusion.media.camera import CameraSource
from livefusion.media.reconnect import ReconnectingSource
from livefusion.media.sources import Source, SourceError, VideoFileSource
from tests.media_helpers import FakeClock, frame_index, make_video
from tests.media.test_sources import read_all


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_video(tmp_path / "clip.mp4", frames=10, fps=25.0)


# ----- reconnecting after faults -------------------------------------------------------------


class FailingAfter:
    """A real VideoFileSource that 'unplugs' after `frames` reads (raises like a dead device)."""

    def __init__(self, path: Path, frames: int, error: type[Exception] = SourceError) -> None:
        self.inner = VideoFileSource(path, realtime=False, loop=True)
        self.frames = frames
        self.error = error
        self.closed = False
        self.size, self.fps, self.description, self.is_live = (0, 0), 25.0, "flaky", True

    def open(self) -> None:
        self.inner.open()

    def read(self) -> np.ndarray | None:
        if self.frames <= 0:
            raise self.error("device unplugged")
        self.frames -= 1
        return self.inner.read()

    def close(self) -> None:
        self.closed = True
        self.inner.close()


class FlakyFactory:
    """Makes FailingAfter sources; opening fails `open_failures` times after the first one."""

    def __init__(self, path: Path, frames: int, open_failures: int) -> None:
        self.path, self.frames, self.open_failures = path, frames, open_failures
        self.made: list[FailingAfter] = []

    def __call__(self) -> FailingAfter:
        if self.made and self.open_failures > 0:
            self.open_failures -= 1
            if self.open_failures % 2:
                raise cv2.error("simulated driver error while opening")
            return FailingAfter(self.path.with_name("gone.mp4"), self.frames)  # open() fails
        source = FailingAfter(self.path, self.frames)
        self.made.append(source)
        return source


def read_until_frame(source: Source, limit: int = 40) -> np.ndarray:
    for _ in range(limit):
        frame = source.read()
        if frame is not None:
            return frame
    raise AssertionError(f"no frame within {limit} reads; state {getattr(source, 'state', '?')}")


@pytest.mark.parametrize("error", [SourceError, cv2.error, OSError])
def test_reconnects_with_capped_exponential_backoff(clip: Path, no_thread_leak, error):
    factory = FlakyFactory(clip, frames=3, open_failures=4)
    delays: list[float] = []
    source = ReconnectingSource(factory, max_backoff_s=2.0, sleep=delays.append)
    source.open()
    factory.made[0].error = error
    try:
        got = [frame_index(read_until_frame(source)) for _ in range(3)]
        assert got == [0, 1, 2]
        assert source.read() is None          # the 4th read hits the unplug
        frame = read_until_frame(source)       # read() keeps returning None until it is back
        assert frame_index(frame) == 0         # a fresh source, from its first frame
        assert source.state == "live"
        assert source.reconnects == 1 and source.attempts == 5
        assert delays == [0.25, 0.5, 1.0, 2.0, 2.0]
        assert factory.made[0].closed          # the dead source was closed
        assert "gone.mp4" in source.last_error  # the last failed open named its file
    finally:
        source.close()


def test_a_flapping_source_keeps_its_backoff_until_it_stays_up(clip: Path, no_thread_leak):
    clock = FakeClock()
    delays: list[float] = []
    source = ReconnectingSource(lambda: FailingAfter(clip, 1), max_backoff_s=1.0,
                                stable_after_s=10.0, sleep=delays.append, clock=clock)
    source.open()
    try:
        for _ in range(4):                  # each source gives one frame, then fails at once
            read_until_frame(source)
        clock.advance(11.0)                  # this time it stayed up long enough
        read_until_frame(source)
        assert source.reconnects == 4
        assert delays == [0.25, 0.5, 1.0, 0.25]
    finally:
        source.close()


def test_a_source_that_goes_silent_is_declared_lost(clip: Path, no_thread_leak):
    clock = FakeClock()

    class Silent(FailingAfter):
        def read(self):
            return None  # no error, just no frames: a frozen camera

    made = []

    def factory():
        made.append(Silent(clip, 0) if not made else FailingAfter(clip, 100))
        return made[-1]

    source = ReconnectingSource(factory, lost_after_s=2.0, sleep=lambda s: None, clock=clock)
    source.open()
    try:
        assert source.read() is None and source.state == "live"
        clock.advance(1.0)
        assert source.read() is None and source.state == "live"
        clock.advance(1.5)
        assert source.read() is None
        assert "no frame for 2.5 s" in source.last_error
        assert frame_index(read_until_frame(source)) == 0
        assert source.reconnects == 1
    finally:
        source.close()


def test_start_up_failure_is_raised_not_retried(tmp_path: Path, no_thread_leak):
    source = ReconnectingSource(lambda: VideoFileSource(tmp_path / "absent.mp4"))
    with pytest.raises(SourceError, match="absent.mp4"):
        source.open()
    source.close()


def test_end_of_a_file_is_not_a_fault(clip: Path, no_thread_leak):
    source = ReconnectingSource(lambda: VideoFileSource(clip, realtime=False))
    source.open()
    assert len(read_all(source)) == 10
    assert source.reconnects == 0 and source.state == "live"
    source.close()


def test_close_while_lost_stops_the_retry_thread(tmp_path: Path, clip: Path, no_thread_leak):
    made = []

    def factory():
        made.append(FailingAfter(clip if not made else tmp_path / "never.mp4", 0))
        return made[-1]

    source = ReconnectingSource(factory, max_backoff_s=0.5)  # real waits, interrupted by close
    source.open()
    assert source.read() is None
    assert source.state in ("lost", "reconnecting")
    source.close()
    assert source.read() is None


def test_camera_file_that_disappears_and_comes_back(tmp_path: Path, no_thread_leak):
    """The real CameraSource capture path on a file: EOF is the unplug, renaming the file away
    makes reopening fail for real, renaming it back lets the next attempt succeed."""
    path = make_video(tmp_path / "cam.mp4", frames=6)
    away = tmp_path / "unplugged.mp4"
    waits: queue.Queue[float] = queue.Queue()
    gate = threading.Semaphore(0)

    def controlled_sleep(seconds: float) -> None:
        waits.put(seconds)
        gate.acquire(timeout=10)

    source = ReconnectingSource(lambda: CameraSource(str(path), 64, 48, 25.0, fail_after=3),
                                max_backoff_s=1.0, sleep=controlled_sleep)
    source.open()
    path.rename(away)                       # the device is gone for any new open
    try:
        frames = 0
        for _ in range(200):
            frames += source.read() is not None
            if source.state != "live":
                break
        assert frames >= 1 and source.state == "lost"
        assert waits.get(timeout=10) == 0.25   # waiting before attempt 1
        gate.release()
        assert waits.get(timeout=10) == 0.5    # attempt 1 failed: the file is away
        assert source.attempts == 1 and source.state == "lost"
        assert str(path) in source.last_error and "--list-cameras" in source.last_error
        assert source.read() is None
        away.rename(path)                      # plugged back in
        gate.release()
        frame = read_until_frame(source)
        assert frame.shape == (48, 64, 3)
        assert source.reconnects == 1 and source.attempts == 2
    finally:
        gate.release()
        source.close()
