"""How long Meters.snapshot() holds the meters' lock (the pipeline threads wait that long to
record a timing), over 300 snapshots of 10 stages with a full 300-frame window.

    taskset -c 0 .venv/bin/python scripts/bench_meters_lock.py
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from livefusion.meters import Meters  # noqa: E402

STAGES = ("capture", "detect", "track", "align", "swap", "enhance", "blend", "privacy",
          "landmarks", "select")


class TimedLock:
    """A lock that notes how long each holder kept it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since = 0.0
        self.held_ms: list[float] = []

    def __enter__(self) -> None:
        self._lock.acquire()
        self._since = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.held_ms.append((time.perf_counter() - self._since) * 1e3)
        self._lock.release()


def main() -> int:
    meters = Meters(window=300)
    for i in range(300):
        for stage in STAGES:
            meters.record_stage(stage, float(i % 17))
        meters.frame_out(float(i))
    lock = TimedLock()
    meters._lock = lock  # noqa: SLF001 - measuring the lock itself
    for _ in range(300):
        meters.snapshot()
    held = sorted(lock.held_ms)
    print(f"lock held per snapshot: median {statistics.median(held):.3f} ms, "
          f"p95 {held[int(0.95 * len(held))]:.3f} ms ({len(held)} snapshots)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
