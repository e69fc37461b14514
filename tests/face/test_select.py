"""Which faces get swapped: all, the largest, or those matching a reference identity."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livefusion.face.detect import ScrfdDetector
from livefusion.face.embed import Recognizer, build_identity, cosine
from livefusion.face.select import FaceSelector
from livefusion.packet import Face
from tests.conftest import SHARED_IMAGES, SHARED_MODELS
from tests.face.onnx_builders import cpu_session, shared_path


def _face(x, y, side, track_id=-1):
    return Face(bbox=np.array([x, y, x + side, y + side], np.float32), kps=np.zeros((5, 2), np.float32),
                score=0.9, track_id=track_id)


FRAME = np.zeros((10, 10, 3), np.uint8)


def test_all_and_largest():
    faces = [_face(0, 0, 10), _face(50, 50, 40), _face(100, 0, 20)]
    selector = FaceSelector()
    assert selector.select(FRAME, faces, "all") == faces
    assert selector.select(FRAME, faces, "largest") == [faces[1]]
    assert selector.select(FRAME, [], "largest") == []
    with pytest.raises(ValueError, match="all, largest, reference"):
        selector.select(FRAME, faces, "biggest")


def test_reference_without_a_reference_swaps_nobody():
    assert FaceSelector().select(FRAME, [_face(0, 0, 10)], "reference") == []


def test_reference_decisions_are_remembered_per_track():
    calls = []

    def embed(frame, face):
        calls.append(face.track_id)
        return np.array([1.0, 0.0]) if face.bbox[0] < 50 else np.array([0.0, 1.0])

    selector = FaceSelector(embed=embed, reference=np.array([1.0, 0.0]), threshold=0.5)
    tracked = [_face(0, 0, 10, track_id=1), _face(60, 0, 10, track_id=2)]
    for _ in range(3):
        assert selector.select(FRAME, tracked, "reference") == [tracked[0]]
    assert calls == [1, 2], "each track is embedded once"
    untracked = [_face(0, 0, 10), _face(60, 0, 10)]
    for _ in range(2):
        assert selector.select(FRAME, untracked, "reference") == [untracked[0]]
    assert calls == [1, 2, -1, -1, -1, -1]
    selector.set_reference(np.array([0.0, 1.0]))
    assert selector.select(FRAME, tracked, "reference") == [tracked[1]]


@pytest.mark.shared
def test_reference_picks_the_right_person_in_a_real_photo():
    detector = ScrfdDetector(cpu_session(shared_path(SHARED_MODELS, "det_500m.onnx")))
    recognizer = Recognizer(cpu_session(shared_path(SHARED_MODELS, "pixamatch_mobilefacenet.onnx")))
    reference = build_identity(shared_path(SHARED_IMAGES, "fr_obama2.jpg"), detector, recognizer).embedding
    frame = cv2.imread(str(shared_path(SHARED_IMAGES, "fr_obama_and_biden.jpg")))
    faces = detector.detect(frame)
    assert len(faces) == 3
    chosen = FaceSelector(embed=recognizer.embed, reference=reference, threshold=0.35).select(
        frame, faces, "reference")
    assert len(chosen) == 1
    similarities = [cosine(recognizer.embed(frame, f), reference) for f in faces]
    assert chosen[0] is faces[int(np.argmax(similarities))]
    assert max(similarities) > 0.5
