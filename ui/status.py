"""What the status area and the meters overlay say, built from a `MetersSnapshot` (no Qt).

Stage times are p50 ms in pipeline order. The source's "read" time is left out: for a paced
file or a camera it is time spent waiting for the next frame, not work. The privacy texts are
here too: the swap-off warning, the guard's counts, and the preview's guard marker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from livefusion.meters import MetersSnapshot, StageStats
from livefusion.packet import GuardAction, HideReason, PrivacyVerdict

HIDDEN_STAGES = ("read",)
PASSTHROUGH = "—"
SWAP_OFF_WARNING = "SWAP OFF — viewers see your real face"
LOW_OPACITY_WARNING = "OPACITY {percent}% — viewers see part of your real face"
# What the guard did instead of passing the engine's picture, and why, in words.
GUARD_ACTIONS = {
    GuardAction.HIDE: "face hidden",
    GuardAction.HOLD: "holding last frame",
    GuardAction.START: "starting",
}
GUARD_REASONS = {
    HideReason.STARTUP: "starting",
    HideReason.NO_SWAP: "face not swappable",
    HideReason.TRACK_LOST: "face lost",
    HideReason.ERROR: "error",
    HideReason.SWAP_OFF: "swap off",
    HideReason.LOW_OPACITY: "low opacity",
}


def reveal_warning(swap_enabled: bool, opacity: float, min_opacity: float) -> str:
    """What the banner says while the user's own settings show their real face: the swap is
    off, or its opacity is below the guard's `privacy.min_opacity`; "" otherwise."""
    if not swap_enabled:
        return SWAP_OFF_WARNING
    if opacity < min_opacity:
        return LOW_OPACITY_WARNING.format(percent=round(opacity * 100))
    return ""


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
    swap: str = ""  # reveal_warning(): while the swap is off or faint, else ""
    privacy: str = ""  # the guard's counts, "guard hidden 12 (...) held 0 revealed 0"; "" without

    def line(self) -> str:
        # The warning first: the label is cut at the right when the window is narrow.
        parts = [self.swap, self.stages, self.fps, self.e2e, self.drops, self.privacy,
                 f"EP {self.provider}", f"vcam {self.vcam}", f"rec {self.recording}", self.ui]
        return "  |  ".join(p for p in parts if p)

    def overlay_lines(self) -> list[str]:
        lines = [f"{self.fps}   {self.e2e}", self.stages or "stages: waiting for frames",
                 f"{self.drops}   EP {self.provider}",
                 f"vcam {self.vcam}   rec {self.recording}", self.ui]
        return lines + ([self.privacy] if self.privacy else [])


def stage_text(stages: dict[str, StageStats]) -> str:
    shown = [f"{name} {s.p50_ms:.1f}" for name, s in stages.items()
             if name not in HIDDEN_STAGES and s.count]
    return ("p50 ms: " + "  ".join(shown)) if shown else ""


def privacy_text(snapshot: MetersSnapshot) -> str:
    """The guard's counts for the status area; "" when no guard ran."""
    line = snapshot.privacy_line()
    return f"guard {line}" if line else ""


def guard_marker_text(verdict: PrivacyVerdict | None) -> str:
    """The preview's marker for a frame the guard changed, e.g. 'GUARD: face hidden (face
    lost)'; "" when the frame went out as the engine made it (or no guard ran)."""
    if verdict is None or not verdict.acted:
        return ""
    action = GUARD_ACTIONS.get(verdict.action, verdict.action.value)
    reasons = [GUARD_REASONS.get(r, r.value.replace("_", " ")) for r in verdict.reasons]
    shown = [r for r in dict.fromkeys(reasons) if r != action]
    return f"GUARD: {action}" + (f" ({', '.join(shown)})" if shown else "")


def status_view(snapshot: MetersSnapshot, *, provider: str, vcam: str, recording: str,
                ui: StageStats | None = None, swap_enabled: bool = True,
                reveal: str | None = None) -> StatusView:
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
        swap=reveal if reveal is not None else ("" if swap_enabled else SWAP_OFF_WARNING),
        privacy=privacy_text(snapshot),
    )
