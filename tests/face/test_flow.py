"""Optical flow on the face region: a known similarity of a textured picture is recovered
within a pixel; failures say why."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from livefusion.face.flow import (FaceFlow, apply_to_box, apply_to_points, grab_region,
                                  region_around, shrink_factor)


def textured(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A BGR picture with texture at several scales (corners everywhere)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    fine = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 1.2)
    coarse = cv2.resize(rng.uniform(0, 255, (h // 16 + 1, w // 16 + 1)).astype(np.float32),
                        (w, h), interpolation=cv2.INTER_CUBIC)
    gray = np.clip(0.6 * fine + 0.4 * coarse, 0, 255).astype(np.uint8)
    return cv2.merge([gray, np.roll(gray, 3, axis=1), np.roll(gray, 5, axis=0)])


def similarity(centre, angle_deg, scale, shift) -> np.ndarray:
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle_deg, scale)
    m[:, 2] += shift
    return m


CASES = [
    # frame (h, w), face box, angle, scale, shift
    ((240, 320), (110, 70, 210, 190), 0.0, 1.0, (3.5, -2.25)),
    ((240, 320), (110, 70, 210, 190), 6.0, 1.0, (0.0, 0.0)),
    ((240, 320), (110, 70, 210, 190), 0.0, 1.06, (0.0, 0.0)),
    ((240, 320), (110, 70, 210, 190), -4.0, 0.96, (-5.0, 4.0)),
    # a large face: tracked on a 4x shrunk copy of its region
    ((480, 640), (200, 90, 480, 420), 3.0, 1.02, (7.0, 5.5)),
]


@pytest.mark.parametrize("shape, box, angle, scale, shift", CASES)
def test_known_similarity_is_recovered_within_a_pixel(shape, box, angle, scale, shift):
    box = np.array(box, np.float32)
    first = textured(shape)
    centre = (box[:2] + box[2:]) / 2
    m = similarity(centre, angle, scale, shift)
    second = cv2.warpAffine(first, m, (shape[1], shape[0]), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT)
    flow = FaceFlow()
    flow.start(first, box)
    result = flow.step(second)
    assert result.ok, result.reason
    # Points spread over the face (like the five keypoints) land where the truth puts them.
    pts = np.array([[box[0] + 0.3 * (box[2] - box[0]), box[1] + 0.4 * (box[3] - box[1])],
                    [box[0] + 0.7 * (box[2] - box[0]), box[1] + 0.4 * (box[3] - box[1])],
                    [centre[0], centre[1]],
                    [box[0] + 0.35 * (box[2] - box[0]), box[1] + 0.75 * (box[3] - box[1])],
                    [box[0] + 0.65 * (box[2] - box[0]), box[1] + 0.75 * (box[3] - box[1])]])
    err = np.linalg.norm(apply_to_points(result.matrix, pts) - apply_to_points(m, pts), axis=1)
    assert err.max() < 1.0, err
    assert result.inliers >= 8
    # The remembered box moved with the face, ready for the next frame.
    np.testing.assert_allclose(flow.box, apply_to_box(m, box), atol=1.5)


def test_a_sequence_of_steps_accumulates_little_drift():
    shape, box = (240, 320), np.array([110, 70, 210, 190], np.float32)
    base = textured(shape, seed=4)
    flow = FaceFlow()
    flow.start(base, box)
    total = np.eye(3)
    centre = (box[:2] + box[2:]) / 2
    for k in range(1, 11):
        m = similarity(centre, 0.5 * k, 1.0, (1.3 * k, -0.7 * k))
        frame = cv2.warpAffine(base, m, (shape[1], shape[0]), borderMode=cv2.BORDER_REFLECT)
        result = flow.step(frame)
        assert result.ok, result.reason
        total = np.vstack([result.matrix, [0, 0, 1]]) @ total
        truth = m
    pts = np.array([centre, box[:2] + 20, box[2:] - 20])
    err = np.linalg.norm(apply_to_points(total[:2], pts) - apply_to_points(truth, pts), axis=1)
    assert err.max() < 1.0, err


@pytest.mark.parametrize("second, reason", [
    (lambda first: textured(first.shape[:2], seed=99), "forward-backward|inliers|implausible"),
    (lambda first: np.full_like(first, 128), "forward-backward|inliers|corners"),
])
def test_flow_failure_is_reported_with_a_reason(second, reason):
    first = textured((240, 320))
    box = np.array([110, 70, 210, 190], np.float32)
    flow = FaceFlow()
    flow.start(first, box)
    result = flow.step(second(first))
    assert not result.ok
    assert result.matrix is None
    assert re.search(reason, result.reason), result.reason


def test_flat_face_has_no_corners_to_follow():
    flat = np.full((240, 320, 3), 90, np.uint8)
    flow = FaceFlow()
    flow.start(flat, np.array([110, 70, 210, 190], np.float32))
    result = flow.step(flat)
    assert not result.ok and "corners" in result.reason


def test_step_before_start_is_an_error():
    with pytest.raises(RuntimeError, match="start"):
        FaceFlow().step(np.zeros((10, 10, 3), np.uint8))


@pytest.mark.parametrize("box", [(-50, -40, 100, 120), (300, 200, 700, 600), (0, 0, 640, 480),
                                 (10, 10, 12, 12)])
def test_region_stays_in_the_frame_and_divides_by_its_shrink_factor(box):
    x0, y0, x1, y1, k = region_around((480, 640), np.array(box, np.float32), 0.3, 100)
    assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480
    assert k >= 1 and (x1 - x0) % k == 0 and (y1 - y0) % k == 0


@pytest.mark.parametrize("side, work_size, k", [(50, 100, 1), (100, 100, 1), (140, 100, 1),
                                                (150, 100, 2), (280, 100, 2), (300, 100, 4), (420, 100, 4),
                                                (600, 100, 8), (1000, 100, 8)])
def test_shrink_factor_is_the_nearest_power_of_two(side, work_size, k):
    assert shrink_factor(side, work_size) == k


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_shrunk_region_is_the_exact_box_average_of_the_gray_frame(k):
    frame = textured((96, 128), seed=2)
    region = grab_region(frame, 8, 16, 8 + 64, 16 + 48, k)
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)[16:64, 8:72].astype(np.float64)
    expected = gray.reshape(48 // k, k, 64 // k, k).mean(axis=(1, 3))
    assert region.gray.shape == expected.shape and region.k == k
    # One uint8 rounding per halving.
    assert np.abs(region.gray - expected).max() <= k.bit_length() - 1 + 0.5


def test_shrink_factor_other_than_a_power_of_two_is_refused():
    with pytest.raises(ValueError, match="power of two"):
        grab_region(textured((60, 60)), 0, 0, 60, 60, 3)


def flow_counting_corner_picks(monkeypatch) -> tuple[FaceFlow, list[int]]:
    flow, picks = FaceFlow(), []
    original = flow._corners

    def counted(region, box):
        picks.append(1)
        return original(region, box)

    monkeypatch.setattr(flow, "_corners", counted)
    return flow, picks


def test_rebox_keeps_the_followed_points_and_tracks_on(monkeypatch):
    shape, box = (240, 320), np.array([110, 70, 210, 190], np.float32)
    first = textured(shape, seed=5)
    m = similarity((160, 130), 0.0, 1.0, (2.0, 1.0))
    second = cv2.warpAffine(first, m, (320, 240), borderMode=cv2.BORDER_REFLECT)
    third = cv2.warpAffine(second, m, (320, 240), borderMode=cv2.BORDER_REFLECT)
    flow, picks = flow_counting_corner_picks(monkeypatch)
    flow.start(first, box)
    assert flow.step(second).ok
    detected = apply_to_box(m, box) + np.float32([0.6, -0.4, 0.6, -0.4])  # a noisy detection
    flow.rebox(second, detected)
    np.testing.assert_allclose(flow.box, detected)
    assert len(picks) == 1  # no new corners: the followed ones still cover the face
    result = flow.step(third)
    assert result.ok, result.reason
    np.testing.assert_allclose(result.matrix[:, 2], m[:, 2], atol=0.3)


def test_rebox_after_a_failed_step_starts_afresh(monkeypatch):
    shape, box = (240, 320), np.array([110, 70, 210, 190], np.float32)
    first = textured(shape, seed=6)
    flow, picks = flow_counting_corner_picks(monkeypatch)
    flow.start(first, box)
    assert not flow.step(textured(shape, seed=7)).ok  # unrelated picture: flow fails
    flow.rebox(first, box)
    assert len(picks) == 2
    assert flow.step(first).ok


@pytest.mark.parametrize("side, current, k", [(560, 4, 4), (580, 8, 8), (650, 4, 4),
                                              (760, 4, 8), (330, 4, 4), (230, 4, 2),
                                              (90, 2, 1)])
def test_shrink_factor_keeps_the_current_one_near_a_boundary(side, current, k):
    assert shrink_factor(side, 100, current=current) == k


def test_a_face_hovering_at_a_shrink_boundary_keeps_its_region(monkeypatch):
    # Side 566 px lies where k=4 and k=8 are equally good; a detector's size noise must not
    # make every frame grab its region afresh.
    shape, box = (720, 1280), np.array([400, 100, 966, 666], np.float32)
    frame = textured(shape, seed=8)
    flow = FaceFlow()
    flow.start(frame, box)
    grabs = []
    import livefusion.face.flow as flow_module
    original = flow_module.grab_region

    def counted(*args):
        grabs.append(args[-1])
        return original(*args)

    monkeypatch.setattr(flow_module, "grab_region", counted)
    for i in range(6):
        assert flow.step(frame).ok
        wobble = np.float32([-3, -3, 3, 3]) * (1 if i % 2 else -1)
        flow.rebox(frame, box + wobble)
    assert len(grabs) == 6  # one per step (the frame's region), none from re-boxing


def test_points_that_do_not_track_back_are_left_out():
    """Half the face covered by new texture (a hand): points there land somewhere but do not
    come back (forward-backward error); they are dropped, so fewer points count than when the
    check is off, and the motion is still found from the uncovered half."""
    first = textured((240, 320))
    second = first.copy()
    second[70:190, 160:210] = textured((120, 50), seed=7)  # the right half of the face box
    box = np.array([110, 70, 210, 190], np.float32)
    counted = {}
    for name, limit in (("checked", 1.5), ("unchecked", 1e9)):
        flow = FaceFlow(max_fb_error=limit)
        flow.start(first, box)
        result = flow.step(second)
        counted[name] = result.points
        if name == "checked":
            assert result.ok, result.reason
            assert np.allclose(result.matrix, [[1, 0, 0], [0, 1, 0]], atol=0.05)
    assert counted["checked"] < counted["unchecked"], counted
