"""Interfaces between the face-engine parts (detector, locator) so they can be built apart."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from livefusion.packet import Face, FramePacket


@runtime_checkable
class Detector(Protocol):
    """Finds faces in a whole BGR uint8 frame; returns them sorted by score, best first."""

    def detect(self, frame: np.ndarray) -> list[Face]: ...


@runtime_checkable
class FaceLocator(Protocol):
    """Gives the faces of each frame: by detecting every frame, or by detecting every N
    frames and tracking in between. Reads `packet.frame`, `packet.seq` and
    `packet.settings.detect_every`; records its work with `packet.timed("detect")` /
    `packet.timed("track")`; returns faces with stable `track_id`s where it tracks."""

    def locate(self, packet: FramePacket) -> list[Face]: ...

    def reset(self) -> None: ...
