"""Pipeline stand-ins for tests and measurements: a paced synthetic camera, a slow or failing
inference stage and a recording sink (scripts/latency_bound.py and the pipeline tests use them).

The synthetic source stands in for a webcam (none exists on CI); it paces itself on a
drift-free schedule like a camera and writes its sequence number into the pixels so tests can
check order and pass-through exactly.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from livefusion.packet import FramePacket


def stamp(seq: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    w, h = size
    frame = np.zeros((h, w, 3), np.uint8)
    frame[:, :, 0] = seq % 256
    frame[:, :, 1] = (seq // 256) % 256
    frame[:, :, 2] = 7
    return frame


def read_stamp(frame: np.ndarray) -> int:
    return int(frame[0, 0, 0]) + 256 * int(frame[0, 0, 1])


class PacedSyntheticSource:
    def __init__(self, fps: float = 30.0, count: int | None = None,
                 size: tuple[int, int] = (64, 48)) -> None:
        self.fps = fps
        self.count = count
        self.size = size
        self.is_live = True
        self.description = "synthetic"
        self._n = 0
        self._t0 = 0.0
        self.closed = False

    def open(self) -> None:
        self._t0 = time.perf_counter()

    def read(self) -> np.ndarray | None:
        if self.count is not None and self._n >= self.count:
            raise EOFError("synthetic source exhausted")
        due = self._t0 + self._n / self.fps
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        frame = stamp(self._n, self.size)
        self._n += 1
        return frame

    def close(self) -> None:
        self.closed = True


class SlowInference:
    """Takes `delay_s` per frame (like a model slower than the camera) and marks the frame."""

    def __init__(self, delay_s: float = 0.0, fail_every: int = 0) -> None:
        self.delay_s = delay_s
        self.fail_every = fail_every
        self.seen: list[int] = []

    def process(self, packet: FramePacket) -> None:
        self.seen.append(packet.seq)
        with packet.timed("swap"):
            if self.delay_s:
                time.sleep(self.delay_s)
            if self.fail_every and packet.seq % self.fail_every == 0:
                packet.frame = np.full_like(packet.frame, 255)  # half-done work
                raise RuntimeError(f"model failed on {packet.seq}")
            packet.frame = packet.frame.copy()
            packet.frame[:, :, 2] = 200


class RecordingSink:
    def __init__(self, name: str = "rec", fail_after: int | None = None) -> None:
        self.name = name
        self.fail_after = fail_after
        self.frames: list[np.ndarray] = []
        self.seqs: list[int] = []
        self.e2e_ms: list[float] = []
        self.source_ok: list[bool] = []
        self.closed = threading.Event()

    def send(self, frame: np.ndarray, packet: FramePacket) -> None:
        if self.fail_after is not None and len(self.seqs) >= self.fail_after:
            raise OSError("device went away")
        self.frames.append(frame)
        self.seqs.append(packet.seq)
        self.e2e_ms.append(packet.age_ms())
        self.source_ok.append(packet.source_ok)

    def close(self) -> None:
        self.closed.set()
