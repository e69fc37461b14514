"""Time the privacy guard at 1920x1080: what it adds to every frame, per case.

    .venv/bin/python scripts/bench_privacy.py [--repeats N] [--image PATH]

Runs `PrivacyGuard.guard` on a real 1080p frame (a shared photo scaled up, or grey noise when
../shared is absent) for the cases a stream meets: a frame that passes (one face swapped well:
gate, memory, no cover), one face hidden (pixelated, a 600 px face), two faces hidden, one face
filled, a face remembered after its track was lost, the neutral start-up frame, and policy hold
(which copies each good frame). Also times the locator's scene-cut test (`CutDetector.is_cut`),
which runs on the inference thread for every frame. Prints median and p95 in ms. Run it pinned
to one core (`taskset -c 0`) for the per-core figure the budget is written in.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livefusion.config import PrivacyConfig  # noqa: E402
from livefusion.face.align import template_points  # noqa: E402
from livefusion.face.scene import CutDetector  # noqa: E402
from livefusion.packet import Face, FramePacket  # noqa: E402
from livefusion.privacy import PrivacyGuard  # noqa: E402
from livefusion.settings import LiveSettings  # noqa: E402

W, H = 1920, 1080
DEFAULT_IMAGE = ROOT.parent / "shared" / "assets" / "images" / "fr_obama-720p.jpg"


def frame_from(path: Path) -> np.ndarray:
    image = cv2.imread(str(path)) if path.is_file() else None
    if image is None:
        return np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    return cv2.resize(image, (W, H), interpolation=cv2.INTER_LINEAR)


def face_at(x: float, y: float, size: float, swapped: bool) -> Face:
    kps = (template_points("arcface_112_v2", 1) * size + [x, y]).astype(np.float32)
    box = np.array([x, y - 0.1 * size, x + size, y + 1.1 * size], np.float32)
    face = Face(bbox=box, kps=kps, score=0.9, track_id=0)
    if swapped:
        face.swapped_crop = np.zeros((128, 128, 3), np.uint8)
        face.crop_matrix = np.eye(2, 3)
    return face


def packet_with(frame: np.ndarray, faces: list[Face], *, located: bool = True,
                detected: bool = False) -> FramePacket:
    # the blend's output is a fresh frame per packet; the guard covers in place on a copy
    packet = FramePacket(seq=0, t_capture_ns=0, frame=frame, settings=LiveSettings())
    packet.frame = frame.copy()
    packet.faces, packet.located, packet.detected = faces, located, detected
    return packet


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    arr = np.asarray(times[max(1, repeats // 10):])  # the first runs warm caches
    return float(np.median(arr)), float(np.percentile(arr, 95))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    args = parser.parse_args(argv)
    frame = frame_from(args.image)
    big = (700.0, 250.0, 600.0)  # x, y, size: a webcam close-up at 1080p
    cases: list[tuple[str, PrivacyConfig, Callable[[], list[FramePacket]]]] = [
        ("pass: 1 face swapped well", PrivacyConfig(),
         lambda: [packet_with(frame, [face_at(*big, True)], detected=True)]),
        ("hide: 1 face (pixelate)", PrivacyConfig(),
         lambda: [packet_with(frame, [face_at(*big, False)], detected=True)]),
        ("hide: 2 faces (pixelate)", PrivacyConfig(),
         lambda: [packet_with(frame, [face_at(200, 300, 400, False),
                                      face_at(1300, 300, 400, False)], detected=True)]),
        ("hide: 1 face (fill)", PrivacyConfig(style="fill"),
         lambda: [packet_with(frame, [face_at(*big, False)], detected=True)]),
        ("hide: face lost, remembered", PrivacyConfig(forget_after=30),
         lambda: [packet_with(frame, [face_at(*big, True)], detected=True),
                  packet_with(frame, [])]),
        ("start: neutral frame", PrivacyConfig(),
         lambda: [packet_with(frame, [], located=False)]),
        ("pass under policy hold (copy)", PrivacyConfig(policy="hold"),
         lambda: [packet_with(frame, [face_at(*big, True)], detected=True)]),
    ]
    print(f"privacy guard at {W}x{H}, {args.repeats} runs each, pid {os.getpid()} on CPUs "
          f"{sorted(os.sched_getaffinity(0))} of {os.cpu_count()} (no GPU); frame from "
          f"{args.image if args.image.is_file() else 'noise'}")
    print(f"{'case':<34}{'median ms':>10}{'p95 ms':>9}")
    for name, config, make in cases:
        guard = PrivacyGuard(config)
        packets = [make() for _ in range(args.repeats)]
        runs = iter(packets)

        def one() -> None:
            *before, last = next(runs)
            for packet in before:  # e.g. the frame that saw the face, not timed on its own
                guard.guard(packet)
            guard.guard(last)

        if name.startswith("hide: face lost"):
            lost = [p[-1] for p in packets]
            for p in packets:
                guard.guard(p[0])
            it = iter(lost)
            med, p95 = timed(lambda: guard.guard(next(it)), args.repeats)
        else:
            med, p95 = timed(one, args.repeats)
        print(f"{name:<34}{med:>10.3f}{p95:>9.3f}")
    cuts = CutDetector()
    frames = [frame, np.ascontiguousarray(frame[:, ::-1])]
    k = iter(range(10 ** 9))
    med, p95 = timed(lambda: cuts.is_cut(frames[next(k) % 2]), args.repeats)
    print(f"{'scene-cut test (inference thread)':<34}{med:>10.3f}{p95:>9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
