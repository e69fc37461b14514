"""The simplest FaceLocator: run the detector on every frame (no tracking, no track ids)."""

from __future__ import annotations

from livefusion.face.types import Detector
from livefusion.packet import Face, FramePacket


class EveryFrameLocator:
    """Detects on every frame; faces keep track_id -1 and origin "detect"."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector

    def locate(self, packet: FramePacket) -> list[Face]:
        with packet.timed("detect"):
            faces = self.detector.detect(packet.frame)
        for face in faces:
            face.origin = "detect"
        packet.detected = True
        return faces

    def reset(self) -> None:
        """Nothing is remembered between frames."""
