"""The mask view (M) names the mask the blender really used on the frame shown."""

from __future__ import annotations

import numpy as np

from livefusion.packet import FramePacket
from livefusion.settings import LiveSettings
from livefusion_ui.preview import mask_caption


def _packet(wanted: str, used: str | None) -> FramePacket:
    packet = FramePacket(seq=0, t_capture_ns=0, frame=np.zeros((8, 8, 3), np.uint8),
                         settings=LiveSettings(mask_mode=wanted, show_mask=True))
    if used is not None:
        packet.debug["mask_mode"] = used
    return packet


def test_the_caption_names_the_mask_in_use():
    assert mask_caption(_packet("face+mouth", "face+mouth")) == "mask: face+mouth"
    assert mask_caption(_packet("face", "box")) == "mask: box (face needs the landmarker)"
    assert mask_caption(_packet("face", None)).startswith("mask: none")
