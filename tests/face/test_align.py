"""Alignment: the similarity fit, the templates, and crops warped from the face only."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livefusion.face.align import (
    TEMPLATES,
    AlignmentError,
    align_face,
    compose,
    estimate_matrix,
    invert,
    similarity_fit,
    template_points,
    warp_crop,
)
from livefusion.face.detect import ScrfdDetector
from tests.conftest import SHARED_IMAGES, SHARED_MODELS
from tests.face.onnx_builders import cpu_session, shared_path


def _similarity(angle_deg, scale, tx, ty):
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


@pytest.mark.parametrize("angle, scale, tx, ty", [(0, 1, 0, 0), (30, 0.5, 10, -4), (-170, 3.2, -200, 900)])
def test_fit_recovers_a_known_similarity(angle, scale, tx, ty):
    truth = _similarity(angle, scale, tx, ty)
    src = TEMPLATES["arcface_112_v2"] * 300 + 40
    dst = src @ truth[:, :2].T + truth[:, 2]
    np.testing.assert_allclose(similarity_fit(src, dst), truth, atol=1e-9)


def test_fit_is_least_squares_not_exact_on_noisy_points():
    src = TEMPLATES["arcface_128"] * 200
    noise = np.random.default_rng(0).normal(0, 2.0, (5, 2))
    m = similarity_fit(src + noise, src)
    residual = np.abs((src + noise) @ m[:, :2].T + m[:, 2] - src)
    assert residual.max() < 8 and residual.max() > 0.01
    assert abs(np.linalg.det(m[:, :2]) - 1.0) < 0.1  # no reflection, about unit scale


@pytest.mark.parametrize(
    "points",
    [np.full((5, 2), 7.0), np.array([[0, 0], [1, 1], [np.nan, 2], [3, 3], [4, 4]], float)],
    ids=["all-at-one-place", "nan"],
)
def test_degenerate_points_raise(points):
    with pytest.raises(AlignmentError):
        similarity_fit(points, TEMPLATES["arcface_128"] * 128)


def test_templates_are_the_documented_ones():
    np.testing.assert_allclose(template_points("arcface_112_v2", 112)[0], [38.2946, 51.6963], atol=1e-3)
    np.testing.assert_allclose(template_points("arcface_128", 128) - template_points("arcface_112_v2", 112),
                               np.tile([[8.0, 0.0]], (5, 1)), atol=1e-3)
    assert set(TEMPLATES) == {"arcface_112_v2", "arcface_128", "ffhq_512"}
    with pytest.raises(ValueError, match="known: arcface_112_v2"):
        template_points("nope", 112)


def test_warp_crop_computes_only_the_crop():
    frame = np.random.default_rng(1).integers(0, 255, (1080, 1920, 3), np.uint8)
    m = np.array([[1.0, 0.0, -500.0], [0.0, 1.0, -300.0]])  # crop starts at (500, 300)
    crop = warp_crop(frame, m, 64)
    assert crop.shape == (64, 64, 3)
    np.testing.assert_array_equal(crop, frame[300:364, 500:564])


def test_invert_and_compose_round_trip():
    m = _similarity(12, 0.7, 30, -20)
    np.testing.assert_allclose(compose(m, invert(m)), [[1, 0, 0], [0, 1, 0]], atol=1e-12)


@pytest.mark.shared
@pytest.mark.parametrize("template, size", [("arcface_112_v2", 112), ("arcface_128", 128), ("ffhq_512", 512)])
def test_real_face_lands_on_the_template(template, size):
    frame = cv2.imread(str(shared_path(SHARED_IMAGES, "fr_obama.jpg")))
    face = ScrfdDetector(cpu_session(shared_path(SHARED_MODELS, "det_500m.onnx"))).detect(frame)[0]
    crop = align_face(frame, face.kps, template, size)
    assert crop.image.shape == (size, size, 3)
    mapped = face.kps @ crop.matrix[:, :2].T + crop.matrix[:, 2]
    assert np.abs(mapped - template_points(template, size)).max() < 0.06 * size
    assert np.allclose(crop.matrix, estimate_matrix(face.kps, template, size))
