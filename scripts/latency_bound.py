"""Latency with an inference stage slower than the camera (issue 2's scenario), printed.

    python scripts/latency_bound.py [--fps 30] [--slowdown 2] [--frames 300]

A paced synthetic camera feeds the real pipeline; the inference stage takes `slowdown` frame
intervals per frame. Printed for the pipeline as shipped (start inference in step with
capture) and without that alignment: frames out, drops, end-to-end p50/p95, p95 over the
first and last third (does it grow?), and whether frames left in capture order.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from livefusion.pipeline import Pipeline, PipelineOptions  # noqa: E402
from livefusion.measure.pipeline_standins import PacedSyntheticSource, RecordingSink, SlowInference  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--slowdown", type=float, default=2.0)
    p.add_argument("--frames", type=int, default=300)
    args = p.parse_args()
    interval = 1000.0 / args.fps
    print(f"camera {args.fps:g} fps (interval {interval:.1f} ms), inference "
          f"{args.slowdown:g} intervals = {args.slowdown * interval:.1f} ms, {args.frames} frames")
    for align in (True, False):
        source = PacedSyntheticSource(fps=args.fps, count=args.frames)
        sink = RecordingSink()
        pipe = Pipeline(source, SlowInference(delay_s=args.slowdown * interval / 1000.0),
                        sinks=[sink], options=PipelineOptions(
                            fps=args.fps, meter_window=args.frames, align_to_capture=align))
        with pipe:
            pipe.wait(args.frames / args.fps * 3 + 10)
        e2e = np.array(sink.e2e_ms)
        third = max(len(e2e) // 3, 1)
        print(f"align_to_capture={align!s:5}: out {len(e2e)}/{args.frames}, dropped "
              f"{pipe.meters.snapshot().dropped_total}, e2e p50 {np.percentile(e2e, 50):.1f} "
              f"p95 {np.percentile(e2e, 95):.1f} ms (bound {3 * interval:.1f}); p95 first third "
              f"{np.percentile(e2e[:third], 95):.1f}, last third {np.percentile(e2e[-third:], 95):.1f}"
              f"; capture order kept: {sink.seqs == sorted(sink.seqs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
