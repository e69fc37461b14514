"""Detector cost at the input sizes the app can use: SCRFD (det_2.5g) and YuNet, at a fixed
640 input (the old default) and at the frame's own size (the default since issue 13), on
1280x720 and 1920x1080 frames holding a face. Prints median and p95 ms per call.

    taskset -c 0 python scripts/bench_detector.py [--repeats 30] [--models DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livefusion.config import RuntimeConfig  # noqa: E402
from livefusion.face.detect import ScrfdDetector, YunetDetector  # noqa: E402
from livefusion.models.runtime import create_session  # noqa: E402


def frame_with_face(size: tuple[int, int], photo: np.ndarray) -> np.ndarray:
    w, h = size
    frame = np.full((h, w, 3), 110, np.uint8)
    k = 0.35 * h / photo.shape[0]
    face = cv2.resize(photo, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    y, x = (h - face.shape[0]) // 2, (w - face.shape[1]) // 2
    frame[y:y + face.shape[0], x:x + face.shape[1]] = face
    return frame


def bench(detector, frame: np.ndarray, repeats: int) -> tuple[float, float, int]:
    detector.detect(frame)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        faces = detector.detect(frame)
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], len(faces)


def time_it(fn, repeats: int) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--models", type=Path, default=ROOT.parent / "shared" / "models")
    parser.add_argument("--photo", type=Path,
                        default=ROOT.parent / "shared" / "assets" / "images" / "fr_obama.jpg")
    args = parser.parse_args()
    photo = cv2.imread(str(args.photo))
    if photo is None:
        raise SystemExit(f"cannot read {args.photo}; pass --photo")
    session = create_session(args.models / "det_2.5g.onnx",
                             RuntimeConfig(providers=["cpu"], intra_threads=1, warmup=False),
                             label="detector")
    yunet = args.models / "face_detection_yunet_2023mar.onnx"
    makers = {
        "scrfd det_2.5g 640": lambda: ScrfdDetector(session, input_size=640),
        "scrfd det_2.5g auto": lambda: ScrfdDetector(session, input_size=0),
        "yunet 640": lambda: YunetDetector(yunet, input_size=640),
        "yunet auto": lambda: YunetDetector(yunet, input_size=0),
    }
    print(f"{'detector':22} {'frame':>10} {'input':>10} {'median_ms':>10} {'p95_ms':>8} faces")
    for size in ((1280, 720), (1920, 1080)):
        frame = frame_with_face(size, photo)
        for name, make in makers.items():
            detector = make()
            if isinstance(detector, ScrfdDetector):
                ih, iw = detector.input_hw_for(frame.shape[:2])
            else:
                s = min(1.0, detector.input_size / max(size))
                iw, ih = round(size[0] * s), round(size[1] * s)
            med, p95, n = bench(detector, frame, args.repeats)
            print(f"{name:22} {size[0]:>5}x{size[1]:<4} {iw:>5}x{ih:<4} {med:>10.1f} {p95:>8.1f} {n}")
            if isinstance(detector, ScrfdDetector):  # the input preparation alone, no model
                med, p95 = time_it(lambda: detector.letterbox(frame), args.repeats)
                print(f"{'  of which letterbox':22} {size[0]:>5}x{size[1]:<4} {iw:>5}x{ih:<4} "
                      f"{med:>10.1f} {p95:>8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
