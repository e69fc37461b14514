"""Per-frame cost of the output-side steps (median and p95, milliseconds):

- fit_frame: a portrait 910x1137 photo letterboxed into 1280x720, and 1920x1080 scaled to 720p
- the disclosure label drawn on a 1280x720 frame
- the recorder writing 1280x720 frames: PyAV H.264 (libx264 veryfast) with timestamps, and the
  OpenCV mp4v fallback (on the recorder's own thread in the app, never the output thread's)

    python scripts/bench_outputs.py [--frames 120] [--clip VIDEO]

Without --clip the frames are a synthetic moving picture with noise (harder to encode than
most webcam pictures).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from livefusion.media.label import DisclosureLabel, LabelStyle  # noqa: E402
from livefusion.packet import FramePacket  # noqa: E402
from livefusion.media.recording import RecordBackend  # noqa: E402
from livefusion.media.sinks import RecorderSink  # noqa: E402
from livefusion.media.sources import fit_frame  # noqa: E402


def frames_720p(count: int, clip: str | None) -> list[np.ndarray]:
    if clip:
        cap = cv2.VideoCapture(clip)
        out = []
        while len(out) < count:
            ok, frame = cap.read()
            if not ok:
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                continue
            out.append(cv2.resize(frame, (1280, 720)))
        return out
    rng = np.random.default_rng(0)
    base = np.tile(np.linspace(20, 220, 1280, dtype=np.float32)[None, :, None], (720, 1, 3))
    out = []
    for k in range(count):
        frame = base + rng.normal(0, 6, base.shape).astype(np.float32)
        x = (k * 9) % 1000
        frame[200:460, x:x + 260] = (60, 180, 230)
        out.append(np.clip(frame, 0, 255).astype(np.uint8))
    return out


def timed(fn: Callable[[int], object], count: int) -> tuple[float, float]:
    times = []
    for k in range(count):
        start = time.perf_counter()
        fn(k)
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times)), float(np.percentile(times, 95))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--clip", help="a video to take the frames from (scaled to 720p)")
    args = parser.parse_args()
    n = args.frames
    frames = frames_720p(n, args.clip)
    portrait = cv2.resize(frames[0], (910, 1137))
    full_hd = cv2.resize(frames[0], (1920, 1080))
    label = DisclosureLabel(LabelStyle("AI face swap"))
    rows = [
        ("fit_frame 910x1137 -> 1280x720 (letterbox)", timed(lambda k: fit_frame(portrait, (1280, 720)), n)),
        ("fit_frame 1920x1080 -> 1280x720", timed(lambda k: fit_frame(full_hd, (1280, 720)), n)),
        ("label on 1280x720", timed(lambda k: label.apply(frames[k]), n)),
    ]
    with tempfile.TemporaryDirectory() as folder:
        for title, name, codec, backend in (
                ("record 1280x720 PyAV h264", "a.mp4", "h264", RecordBackend.PYAV),
                ("record 1280x720 OpenCV mp4v", "b.mp4", "mp4v", RecordBackend.OPENCV)):
            sink = RecorderSink(Path(folder) / name, 30.0, codec=codec, backend=backend)
            t0 = time.perf_counter_ns()

            def send(k: int, sink: RecorderSink = sink) -> None:
                sink.send(frames[k], FramePacket(seq=k, t_capture_ns=t0 + round(k * 1e9 / 30),
                                                 frame=frames[k]))

            rows.append((title, timed(send, n)))
            sink.close()
    print(f"{'step':48} {'median ms':>10} {'p95 ms':>10}   ({n} frames)")
    for title, (median, p95) in rows:
        print(f"{title:48} {median:10.2f} {p95:10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
