"""The interfaces the pipeline's worker threads call, and the passthrough defaults.

The inference thread calls `InferenceStage.process` (detect/track, align, swap, enhance);
the output thread calls `BlendStage.blend` (paste back, colour) before the sinks. A stage
records its sub-stage timings with `packet.timed("name")`. A stage that raises for one
frame gets that frame passed through unmodified by the pipeline, which counts the error.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from livefusion.packet import FramePacket


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
