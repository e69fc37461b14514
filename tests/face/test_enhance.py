"""The enhancer through the real code path, on stand-ins with the GFPGAN/GPEN contract."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livefusion.face.align import estimate_matrix, template_points, warp_crop
from livefusion.face.enhance import ENHANCERS, FaceEnhancer
from livefusion.face.onnx_session import OrtSessionAdapter
from livefusion.packet import Face
from tests.face.onnx_builders import cpu_session, identity_enhancer


class CountingSession(OrtSessionAdapter):
    """A real session that counts its runs."""

    def __init__(self, session):
        super().__init__(session)
        self.runs = 0

    def run(self, feeds):
        self.runs += 1
        return super().run(feeds)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("enhance")
    return {
        (512, 0.0): identity_enhancer(folder / "id512.onnx", size=512),
        (256, 0.0): identity_enhancer(folder / "id256.onnx", size=256),
        (256, 0.2): identity_enhancer(folder / "bright256.onnx", size=256, shift=0.2),
    }


def _scene(track_id=-1):
    """A smooth frame with a 'face' whose swapped crop is the frame itself (identity swap)."""
    rng = np.random.default_rng(0)
    frame = cv2.resize(rng.integers(0, 256, (20, 25, 3), np.uint8), (400, 320), interpolation=cv2.INTER_CUBIC)
    kps = (template_points("arcface_128", 128) * 1.5 + [100, 60]).astype(np.float32)
    matrix = estimate_matrix(kps, "arcface_128", 128)
    face = Face(bbox=np.array([100, 60, 292, 252], np.float32), kps=kps, score=0.9, track_id=track_id,
                swapped_crop=warp_crop(frame, matrix, 128), crop_matrix=matrix)
    return frame, face


@pytest.mark.parametrize("kind", sorted(ENHANCERS))
def test_identity_enhancer_returns_the_face_at_its_own_size(models, kind):
    spec = ENHANCERS[kind]
    enhancer = FaceEnhancer(cpu_session(models[(spec.size, 0.0)]), kind, blend=1.0)
    frame, face = _scene()
    enhancer.enhance(frame, face)
    assert face.swapped_crop.shape == (spec.size, spec.size, 3)
    expected = warp_crop(frame, estimate_matrix(face.kps, spec.template, spec.size), spec.size,
                         border=cv2.BORDER_REPLICATE)
    np.testing.assert_allclose(face.crop_matrix, estimate_matrix(face.kps, spec.template, spec.size))
    inner = slice(spec.size // 4, 3 * spec.size // 4)
    diff = np.abs(face.swapped_crop[inner, inner].astype(int) - expected[inner, inner].astype(int))
    assert diff.mean() < 2.0, "identity enhancement of an identity swap is the frame again"


@pytest.mark.parametrize("blend, gain", [(1.0, 25.5), (0.5, 12.75), (0.0, 0.0)])
def test_blend_weight_mixes_enhanced_and_input(models, blend, gain):
    plain = FaceEnhancer(cpu_session(models[(256, 0.0)]), "gpen_bfr_256", blend=1.0)
    bright = FaceEnhancer(cpu_session(models[(256, 0.2)]), "gpen_bfr_256", blend=blend)
    frame, a = _scene()
    _, b = _scene()
    plain.enhance(frame, a)
    bright.enhance(frame, b)
    middle = (slice(64, 192), slice(64, 192))
    lift = b.swapped_crop[middle].astype(float) - a.swapped_crop[middle].astype(float)
    unclipped = a.swapped_crop[middle] < 200
    assert abs(lift[unclipped].mean() - gain) < 1.0


def test_every_kth_frame_runs_the_model_per_track(models):
    session = CountingSession(cpu_session(models[(256, 0.2)]))
    enhancer = FaceEnhancer(session, "gpen_bfr_256", blend=1.0, every=3)
    results = []
    for _ in range(7):
        frame, face = _scene(track_id=4)
        enhancer.enhance(frame, face)
        results.append(face.swapped_crop)
    assert session.runs == 3  # frames 0, 3, 6
    for reused in results:
        np.testing.assert_array_equal(reused, results[0])  # still scene: reuse is exact
    frame, untracked = _scene(track_id=-1)
    enhancer.enhance(frame, untracked)
    enhancer.enhance(frame, _scene(track_id=-1)[1])
    assert session.runs == 5, "faces without a track id are enhanced every time"
    enhancer.forget_except(set())
    enhancer.enhance(*_scene(track_id=4))
    assert session.runs == 6, "a forgotten track starts over"


@pytest.mark.parametrize("kwargs, words", [({"kind": "codeformer"}, "unknown enhancer"),
                                           ({"kind": "gfpgan_1.4", "blend": 1.5}, "between 0 and 1"),
                                           ({"kind": "gfpgan_1.4", "every": 0}, "at least 1")])
def test_bad_settings_are_refused(models, kwargs, words):
    with pytest.raises(ValueError, match=words):
        FaceEnhancer(cpu_session(models[(512, 0.0)]), **kwargs)
