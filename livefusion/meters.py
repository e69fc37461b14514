"""Latency and throughput meters: per stage, end to end, FPS in and out, drops.

Each stage's milliseconds go into a rolling window; `snapshot()` returns an immutable
`MetersSnapshot` with p50/p95/p99/mean per stage that the UI, the headless status line and
the benchmark read. Everything is guarded by one lock; recording is O(1).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from livefusion.packet import GuardAction, PrivacyVerdict

# Guard actions counted per reason: what viewers got instead of the engine's picture.
_COUNTED_ACTIONS = {GuardAction.HIDE: "hidden", GuardAction.START: "hidden",
                    GuardAction.HOLD: "held", GuardAction.REVEAL: "revealed"}


@dataclass(frozen=True)
class StageStats:
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, float]:
        return {
            "p50_ms": round(self.p50_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "mean_ms": round(self.mean_ms, 3),
        }


def summarize(values: Iterable[float]) -> StageStats:
    arr = np.fromiter(values, dtype=np.float64)
    if arr.size == 0:
        return StageStats(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return StageStats(int(arr.size), float(p50), float(p95), float(p99), float(arr.mean()),
                      float(arr.max()))


@dataclass(frozen=True)
class MetersSnapshot:
    stages: dict[str, StageStats]
    e2e: StageStats
    fps_in: float
    fps_out: float
    frames_in: int
    frames_out: int
    dropped: dict[str, int]
    errors: dict[str, int]
    elapsed_s: float
    extra: dict[str, str] = field(default_factory=dict)
    # "hidden" / "held" / "revealed" -> reason -> frames (a frame counts once per reason)
    privacy: dict[str, dict[str, int]] = field(default_factory=dict)
    privacy_frames: dict[str, int] = field(default_factory=dict)  # same keys -> frames
    privacy_last: str = ""  # the latest frame's guard action ("reveal" while swap is off)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def privacy_line(self) -> str:
        """e.g. 'hidden 12 (startup 10, error 2) held 0 revealed 0'; empty with no guard."""
        if not self.privacy_frames:
            return ""
        parts = []
        for key in ("hidden", "held", "revealed"):
            n = self.privacy_frames.get(key, 0)
            reasons = self.privacy.get(key, {})
            detail = ", ".join(f"{r} {c}" for r, c in sorted(reasons.items()))
            parts.append(f"{key} {n}" + (f" ({detail})" if detail else ""))
        return " ".join(parts)

    def status_line(self) -> str:
        """One line for headless runs: fps, latency, the three costliest stages, drops."""
        # "read" is mostly waiting for the camera's next frame, not work: leave it out
        work = [(n, s) for n, s in self.stages.items() if n != "read"]
        top = sorted(work, key=lambda kv: kv[1].p50_ms, reverse=True)[:4]
        stages = " ".join(f"{name}={s.p50_ms:.1f}" for name, s in top)
        errs = sum(self.errors.values())
        line = (
            ("SWAP OFF: viewers see your real face | " if self.privacy_last == "reveal" else "")
            + f"in {self.fps_in:5.1f} fps | out {self.fps_out:5.1f} fps | e2e p50 {self.e2e.p50_ms:6.1f}"
            f" p95 {self.e2e.p95_ms:6.1f} ms | {stages} | dropped {self.dropped_total}"
        )
        if errs:
            line += f" | errors {errs}"
        privacy = self.privacy_line()
        if privacy:
            line += f" | {privacy}"
        for key, value in self.extra.items():
            line += f" | {key} {value}"
        return line


class _RateCounter:
    """Frames per second over the last `window_s` seconds; a slower stream (under one frame
    per window) is measured over its last two frames, until it has been silent for `stale_s`
    (a 0.3 fps stream reads 0.3, not 0.0; a stopped one reads 0.0)."""

    def __init__(self, window_s: float = 2.0, stale_s: float = 10.0) -> None:
        self._times: deque[float] = deque()
        self._window = window_s
        self._stale = stale_s

    def _prune(self, now: float) -> None:
        while len(self._times) > 2 and now - self._times[0] > self._window:
            self._times.popleft()

    def tick(self, now: float) -> None:
        self._times.append(now)
        self._prune(now)

    def rate(self, now: float) -> float:
        self._prune(now)
        if len(self._times) < 2 or now - self._times[-1] > self._stale:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


class Meters:
    """Thread-safe collector; one per pipeline run."""

    def __init__(self, window: int = 300, clock=time.perf_counter) -> None:
        self._lock = threading.Lock()
        self._window = window
        self._clock = clock
        self._start = clock()
        self._stages: dict[str, deque[float]] = {}
        self._stage_seen: dict[str, int] = {}  # frames_out when the stage last reported
        self._e2e: deque[float] = deque(maxlen=window)
        self._in = _RateCounter()
        self._out = _RateCounter()
        self._frames_in = 0
        self._frames_out = 0
        self._dropped: dict[str, int] = {}
        self._dropped_base: dict[str, int] = {}  # hand-off counts at the last reset()
        self._errors: dict[str, int] = {}
        self._extra: dict[str, str] = {}
        self._privacy: dict[str, dict[str, int]] = {}
        self._privacy_frames: dict[str, int] = {}
        self._privacy_last = ""

    def reset(self) -> None:
        """Forget everything recorded so far (e.g. after a benchmark's warm-up frames)."""
        with self._lock:
            self._start = self._clock()
            self._stages.clear()
            self._stage_seen.clear()
            self._e2e.clear()
            self._in = _RateCounter()
            self._out = _RateCounter()
            self._frames_in = self._frames_out = 0
            self._errors.clear()
            self._privacy.clear()
            self._privacy_frames.clear()
            self._dropped_base = dict(self._dropped)

    def record_stage(self, stage: str, ms: float) -> None:
        with self._lock:
            bucket = self._stages.get(stage)
            if bucket is None:
                bucket = self._stages[stage] = deque(maxlen=self._window)
            bucket.append(ms)
            self._stage_seen[stage] = self._frames_out

    def record_stages(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            self.record_stage(stage, ms)

    def frame_in(self) -> None:
        with self._lock:
            self._frames_in += 1
            self._in.tick(self._clock())

    def frame_out(self, e2e_ms: float) -> None:
        with self._lock:
            self._frames_out += 1
            self._e2e.append(e2e_ms)
            self._out.tick(self._clock())

    def set_dropped(self, handoff: str, count: int) -> None:
        with self._lock:
            self._dropped[handoff] = count

    def count_error(self, stage: str) -> int:
        with self._lock:
            self._errors[stage] = self._errors.get(stage, 0) + 1
            return self._errors[stage]

    def count_privacy(self, verdict: PrivacyVerdict) -> None:
        """Count one frame's guard decision (frames passed as made are counted as 'frames'
        only, so the share hidden or held can be read off)."""
        with self._lock:
            self._privacy_last = verdict.action.value
            self._privacy_frames["frames"] = self._privacy_frames.get("frames", 0) + 1
            key = _COUNTED_ACTIONS.get(verdict.action)
            if key is None:
                return
            self._privacy_frames[key] = self._privacy_frames.get(key, 0) + 1
            bucket = self._privacy.setdefault(key, {})
            for reason in dict.fromkeys(verdict.reasons):
                bucket[reason.value] = bucket.get(reason.value, 0) + 1

    def set_extra(self, key: str, value: str) -> None:
        """Free-form status (e.g. 'source': 'lost', 'vcam': 'off') shown by UIs."""
        with self._lock:
            self._extra[key] = value

    def snapshot(self) -> MetersSnapshot:
        """A consistent copy of every meter. Only the raw values are copied under the lock; the
        percentiles are computed after it is released, so the pipeline threads recording
        timings are never held up by a reader (the window reads 4 times a second)."""
        with self._lock:
            now = self._clock()
            # a stage that has not reported for a whole window (e.g. "passthrough" after the
            # face engine loaded) is no longer part of the pipeline: leave it out
            stage_values = {name: np.array(values, np.float64) for name, values in self._stages.items()
                            if self._frames_out - self._stage_seen[name] <= self._window}
            e2e_values = np.array(self._e2e, np.float64)
            counters = dict(
                fps_in=self._in.rate(now),
                fps_out=self._out.rate(now),
                frames_in=self._frames_in,
                frames_out=self._frames_out,
                dropped={k: v - self._dropped_base.get(k, 0) for k, v in self._dropped.items()},
                errors=dict(self._errors),
                elapsed_s=now - self._start,
                extra=dict(self._extra),
                privacy={k: dict(v) for k, v in self._privacy.items()},
                privacy_frames=dict(self._privacy_frames),
                privacy_last=self._privacy_last,
            )
        return MetersSnapshot(stages={name: summarize(values) for name, values in stage_values.items()},
                              e2e=summarize(e2e_values), **counters)
