"""The interfaces the pipeline's worker threads call, and the passthrough defaults.

The inference thread calls `InferenceStage.process` (detect/track, align, swap, enhance);
the output thread calls `BlendStage.blend` (paste back, colour) before the sinks. A stage
records its sub-stage timings with `packet.timed("name")`. A stage that raises for one
frame has the error counted (under `StageFailure.stage` when it names the failing step) and
the frame's swapped crops discarded; the privacy guard then hides that frame's faces.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from livefusion.packet import FramePacket


class StageFailure(RuntimeError):
    """A named step of a stage (detect, swap, enhance, ...) failed on one frame; the pipeline
    counts and logs the failure under that step's name. `cause` is the original exception."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.stage = stage
        self.cause = cause


@runtime_checkable
class OverlayStage(Protocol):
    def apply(self, frame: np.ndarray) -> np.ndarray:
        """A new frame with something drawn on it (the disclosure label); output thread, after
        the guard, before every sink."""


class GuardStage(Protocol):
    def guard(self, packet: FramePacket) -> None:
        """Make `packet.frame` safe for viewers and set `packet.privacy`; output thread,
        after the blend, before every sink."""


@runtime_checkable
class InferenceStage(Protocol):
    def process(self, packet: FramePacket) -> None:
        """Find faces and prepare swapped crops; runs on the inference thread."""


@runtime_checkable
class BlendStage(Protocol):
    def blend(self, packet: FramePacket) -> None:
        """Write the final picture into `packet.frame`; runs on the output thread."""


class PassthroughInference:
    """Leaves the frame untouched; the pipeline's default until an engine is plugged in."""

    def process(self, packet: FramePacket) -> None:
        with packet.timed("passthrough"):
            pass


class PassthroughBlend:
    def blend(self, packet: FramePacket) -> None:
        with packet.timed("blend"):
            pass
