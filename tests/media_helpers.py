"""Small real media files for source and sink tests, written with OpenCV into tmp_path."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

LEVEL_STEP = 20  # frame k is a flat picture of grey level k * LEVEL_STEP (mod 240)


def level_frame(k: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    w, h = size
    return np.full((h, w, 3), (k * LEVEL_STEP) % 240, np.uint8)


def frame_index(frame: np.ndarray) -> int:
    """Which `level_frame` this decoded frame was (codecs move flat levels by a few units)."""
    return int(round(float(frame.mean()) / LEVEL_STEP))


def read_frames(path: Path) -> list[np.ndarray]:
    """Every frame OpenCV decodes from the video at `path` (none when it does not open)."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return frames
            frames.append(frame)
    finally:
        cap.release()


def make_video(path: Path, frames: int, size: tuple[int, int] = (64, 48), fps: float = 25.0,
               codec: str = "mp4v") -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size)
    assert writer.isOpened(), f"test setup: cannot write {path}"
    for k in range(frames):
        writer.write(level_frame(k, size))
    writer.release()
    return path


class FakeClock:
    """A clock that only moves when the code under test sleeps (or the test advances it)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds
