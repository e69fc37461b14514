"""What the status area and the meters overlay say, built from a `MetersSnapshot` (no Qt).

Stage times are p50 ms in pipeline order. The source's "read" time is left out: for a paced
file or a camera it is time spent waiting for the next frame, not work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from livefusion.meters import MetersSnapshot, StageStats

HIDDEN_STAGES = ("read",)
PASSTHROUGH = "—"


def short_provider(name: str) -> str:
    """'CUDAExecutionProvider' -> 'CUDA'."""
    return name.removesuffix("ExecutionProvider") or name


def engine_provider(engine: Any | None) -> str:
    """The execution provider(s) the engine's sessions really run on; '—' for passthrough.

    Several providers (e.g. a detector on CPU and the swapper on CUDA) are listed as
    'CUDA (swapper), CPU (detector)', the swapper's first."""
    if engine is None:
        return PASSTHROUGH
    found: dict[str, list[str]] = {}
    for part in ("swapper", "detector", "recognizer", "enhancer"):
        session = getattr(getattr(engine, part, None), "session", None)
        provider = getattr(session, "provider", "")
        if provider:
            found.setdefault(short_provider(provider), []).append(part)
        elif getattr(engine, part, None) is not None and part == "detector":
            found.setdefault("OpenCV", []).append(part)  # YuNet runs inside OpenCV
    if not found:
        return PASSTHROUGH
    if len(found) == 1:
        return next(iter(found))
    return ", ".join(f"{name} ({'/'.join(parts)})" for name, parts in found.items())


@dataclass(frozen=True)
class StatusView:
    """Everything the status area shows, as text."""

    stages: str
    fps: str
    e2e: str
    drops: str
    provider: str
    vcam: str
    recording: str
    ui: str

    def line(self) -> str:
        parts = [self.stages, self.fps, self.e2e, self.drops, f"EP {self.provider}",
                 f"vcam {self.vcam}", f"rec {self.recording}", self.ui]
        return "  |  ".join(p for p in parts if p)

    def overlay_lines(self) -> list[str]:
        return [f"{self.fps}   {self.e2e}", self.stages or "stages: waiting for frames",
                f"{self.drops}   EP {self.provider}",
                f"vcam {self.vcam}   rec {self.recording}", self.ui]


def stage_text(stages: dict[str, StageStats]) -> str:
    shown = [f"{name} {s.p50_ms:.1f}" for name, s in stages.items()
             if name not in HIDDEN_STAGES and s.count]
    return ("p50 ms: " + "  ".join(shown)) if shown else ""


def status_view(snapshot: MetersSnapshot, *, provider: str, vcam: str, recording: str,
                ui: StageStats | None = None) -> StatusView:
    errors = sum(snapshot.errors.values())
    drops = f"dropped {snapshot.dropped_total}" + (f"  errors {errors}" if errors else "")
    source = snapshot.extra.get("source", "")
    fps = f"out {snapshot.fps_out:.1f} fps"
    if source and source != "live":
        fps += f" (source {source})"
    ui_text = ""
    if ui is not None and ui.count:
        ui_text = f"UI {ui.p50_ms:.1f} ms/frame (p95 {ui.p95_ms:.1f})"
    return StatusView(
        stages=stage_text(snapshot.stages),
        fps=fps,
        e2e=f"e2e {snapshot.e2e.p50_ms:.0f} ms (p95 {snapshot.e2e.p95_ms:.0f})",
        drops=drops,
        provider=provider,
        vcam=vcam,
        recording=recording or "off",
        ui=ui_text,
    )
