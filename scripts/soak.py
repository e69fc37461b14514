"""Soak test: run the whole pipeline headless for many frames and report what drifts.

    python scripts/soak.py                       # 20,000 frames, ../shared clip and models
    python scripts/soak.py --frames 2000 --realtime

It runs the real face engine with small models: the real SCRFD-500M detector from
../shared/models, and stand-ins with the exact ArcFace and inswapper contracts (built here with
the `onnx` package, because the real 500 MB files cannot be downloaded on CI machines), over a
looping real clip, with the real recorder writing to a temporary file. It prints resident memory
after warm-up and at the end (growth should stay under 5 %), end-to-end latency p95 over the
first and last 1,000 frames (within 20 % of each other) and the threads alive at the end.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livefusion.app import build_app  # noqa: E402
from livefusion.config import load_config  # noqa: E402
from livefusion.measure.standins import arcface_standin, identity_inswapper  # noqa: E402

SHARED = ROOT.parent / "shared"


def rss_mib() -> float:
    """Current resident memory (Linux /proc), else the peak from getrusage."""
    statm = Path("/proc/self/statm")
    if statm.is_file():
        pages = int(statm.read_text().split()[1])
        return pages * resource.getpagesize() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=20_000)
    p.add_argument("--warmup", type=int, default=1_000)
    p.add_argument("--input", default=str(SHARED / "assets/videos/dfl_Twitch1.mp4"))
    p.add_argument("--source", default=str(SHARED / "assets/images/fr_obama.jpg"))
    p.add_argument("--detector", default=str(SHARED / "models/det_500m.onnx"))
    p.add_argument("--resolution", default="1280x720")
    p.add_argument("--realtime", action="store_true", help="pace the clip at 30 fps")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lf-soak-"))
    swapper = identity_inswapper(work / "swapper.onnx")
    embedder = arcface_standin(work / "embedder.onnx")
    config = load_config([], [
        ("input.file", args.input), ("input.loop", True), ("input.realtime", args.realtime),
        ("input.resolution", args.resolution), ("face.sources", [args.source]),
        ("face.det_size", 320), ("models.overrides", {"detector": args.detector,
                                                      "embedder": str(embedder),
                                                      "swapper": str(swapper)}),
        ("output.virtual_cam", False), ("output.record", str(work / "soak.avi")),
        ("output.record_codec", "MJPG"), ("pipeline.frames", args.frames),
        ("runtime.providers", ["cpu"]),
    ])
    e2e = np.zeros(args.frames, np.float64)
    count = [0]
    marks: dict[str, float] = {}

    def on_packet(packet) -> None:
        i = count[0]
        if i < e2e.size:
            e2e[i] = packet.age_ms()
        count[0] = i + 1
        if count[0] == args.warmup:
            marks["rss_warm"] = rss_mib()

    before = set(threading.enumerate())
    app = build_app(config, on_packet=on_packet)
    t0 = time.perf_counter()
    with app:
        while not app.pipeline.wait(timeout=10):
            print(f"{count[0]:>6} frames  rss {rss_mib():7.1f} MiB  "
                  f"{app.meters.snapshot().status_line()}", flush=True)
    elapsed = time.perf_counter() - t0
    gc.collect()
    rss_end = rss_mib()
    n = min(count[0], e2e.size)
    window = min(1000, n // 2)
    first = float(np.percentile(e2e[args.warmup:args.warmup + window] if n > args.warmup + window
                                else e2e[:window], 95))
    last = float(np.percentile(e2e[n - window:n], 95))
    left = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    rss_warm = marks.get("rss_warm", float("nan"))
    snap = app.meters.snapshot()
    print()
    print(f"frames out          {n} in {elapsed:.0f} s ({n / elapsed:.1f} fps), dropped "
          f"{snap.dropped_total}, errors {sum(snap.errors.values())}")
    print(f"rss after warm-up   {rss_warm:.1f} MiB (frame {args.warmup})")
    print(f"rss at the end      {rss_end:.1f} MiB  growth {100 * (rss_end / rss_warm - 1):+.2f} %")
    print(f"e2e p95 first {window} {first:.2f} ms (after warm-up), last {window} {last:.2f} ms"
          f"  change {100 * (last / first - 1):+.1f} %")
    print(f"threads alive at the end (new since start): {left or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
