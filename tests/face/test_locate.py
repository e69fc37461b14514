"""EveryFrameLocator: detection on every frame, timed, through the FaceLocator protocol."""

from __future__ import annotations

import cv2
import pytest

from livefusion.face.detect import ScrfdDetector
from livefusion.face.locate import EveryFrameLocator
from livefusion.face.types import FaceLocator
from livefusion.packet import FramePacket
from tests.conftest import SHARED_IMAGES, SHARED_MODELS
from tests.face.onnx_builders import cpu_session, shared_path


@pytest.mark.shared
def test_detects_every_frame_and_times_it():
    detector = ScrfdDetector(cpu_session(shared_path(SHARED_MODELS, "det_500m.onnx")))
    locator = EveryFrameLocator(detector)
    assert isinstance(locator, FaceLocator)
    frame = cv2.imread(str(shared_path(SHARED_IMAGES, "fr_two_people.jpg")))
    for seq in range(3):
        packet = FramePacket(seq=seq, t_capture_ns=0, frame=frame)
        faces = locator.locate(packet)
        assert len(faces) == 2
        assert all(f.origin == "detect" and f.track_id == -1 for f in faces)
        assert packet.timings_ms["detect"] > 0
    locator.reset()
    assert len(locator.locate(FramePacket(seq=9, t_capture_ns=0, frame=frame))) == 2
