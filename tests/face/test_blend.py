"""Paste-back: only the face's region changes, the mask feathers to zero, colour transfer
matches statistics under the mask, and nothing breaks for crops partly or wholly off-frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livefusion.face.blend import BlendOptions, FaceBlender, Roi, feather_mask, paste_roi, reinhard_transfer
from livefusion.face.align import warp_crop

RAW = BlendOptions(color_transfer=False)


def _frame(h=240, w=320, seed=0):
    """A smooth picture (so interpolation round trips are close) with some texture."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _matrix(angle_deg, scale, cx, cy, size=128):
    """frame -> crop: the crop centre sits at frame point (cx, cy)."""
    m = cv2.getRotationMatrix2D((cx, cy), angle_deg, scale)
    m[:, 2] += np.array([size / 2 - cx, size / 2 - cy])
    return m


def _outside(shape, roi: Roi):
    keep = np.ones(shape[:2], bool)
    keep[roi.y0:roi.y1, roi.x0:roi.x1] = False
    return keep


@pytest.mark.parametrize("erode, blur", [(0.0, 0.0), (0.05, 0.15), (0.2, 0.3), (0.4, 0.5)])
def test_feather_mask_is_zero_at_the_border_and_one_inside(erode, blur):
    mask = feather_mask(128, erode, blur)
    assert mask.dtype == np.float32 and mask.shape == (128, 128)
    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    assert border.max() < 0.01
    assert mask[64, 64] > 0.99
    assert (np.diff(mask[64, :64]) >= -1e-6).all(), "rises monotonically towards the centre"


def test_blur_and_erode_change_the_mask():
    soft, hard = feather_mask(128, 0.05, 0.15), feather_mask(128, 0.05, 0.0)
    assert set(np.unique(hard)) == {0.0, 1.0}
    assert 0.2 < soft[64, 25] < 0.8
    assert feather_mask(128, 0.3, 0.15).sum() < soft.sum()


def test_roi_is_the_crop_footprint_clipped_to_the_frame():
    m = _matrix(0, 1.0, 100, 100)  # crop covers frame [36, 164)
    assert paste_roi((240, 320, 3), m, 128) == Roi(35, 35, 165, 165)
    edge = _matrix(0, 1.0, 10, 230)
    assert paste_roi((240, 320, 3), edge, 128) == Roi(0, 165, 75, 240)
    assert paste_roi((240, 320, 3), _matrix(0, 1.0, 1000, 1000), 128).empty
    assert paste_roi((240, 320, 3), np.zeros((2, 3)), 128).empty
    assert paste_roi((240, 320, 3), np.full((2, 3), np.nan), 128).empty


@pytest.mark.parametrize("cx, cy, angle, scale", [(160, 120, 0, 1.0), (160, 120, 25, 0.8), (5, 230, -40, 1.3),
                                                  (318, 2, 90, 0.6)])
def test_round_trip_reproduces_the_face_region_and_nothing_else_changes(cx, cy, angle, scale):
    frame = _frame()
    m = _matrix(angle, scale, cx, cy)
    crop = warp_crop(frame, m, 128, border=cv2.BORDER_REPLICATE)
    out = frame.copy()
    roi = FaceBlender().paste(out, crop, m, BlendOptions(color_transfer=True))
    assert not roi.empty
    np.testing.assert_array_equal(out[_outside(out.shape, roi)], frame[_outside(frame.shape, roi)])
    diff = np.abs(out.astype(int) - frame.astype(int))
    assert diff.max() <= 6, "identity crop pasted back equals the frame up to interpolation"


def test_opacity_and_swapped_content():
    frame = _frame()
    m = _matrix(0, 1.0, 160, 120)
    white = np.full((128, 128, 3), 255, np.uint8)
    full, half, none = frame.copy(), frame.copy(), frame.copy()
    blender = FaceBlender()
    blender.paste(full, white, m, RAW)
    blender.paste(half, white, m, BlendOptions(color_transfer=False, opacity=0.5))
    blender.paste(none, white, m, BlendOptions(color_transfer=False, opacity=0.0))
    assert (full[120, 160] == 255).all()
    expected = (frame[120, 160].astype(int) + 255) / 2
    assert np.abs(half[120, 160] - expected).max() <= 1
    np.testing.assert_array_equal(none, frame)


def test_colour_transfer_moves_the_statistics_under_the_mask():
    rng = np.random.default_rng(1)
    target = np.clip(rng.normal((40, 90, 160), 12, (128, 128, 3)), 0, 255).astype(np.uint8)
    source = np.clip(rng.normal((150, 140, 90), 30, (128, 128, 3)), 0, 255).astype(np.uint8)
    weights = feather_mask(128, 0.05, 0.15)

    def stats(image):
        lab = cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_BGR2LAB)
        w = weights[:, :, None] / weights.sum()
        mean = (lab * w).sum(axis=(0, 1))
        return mean, np.sqrt((((lab - mean) ** 2) * w).sum(axis=(0, 1)))

    moved = reinhard_transfer(source, target, weights)
    got_mean, got_std = stats(moved)
    want_mean, want_std = stats(target)
    np.testing.assert_allclose(got_mean, want_mean, atol=1.5)
    np.testing.assert_allclose(got_std, want_std, rtol=0.2, atol=1.0)
    before_mean, _ = stats(source)
    assert np.abs(before_mean - want_mean).max() > 20
    same = reinhard_transfer(target, target, weights)
    assert np.abs(same.astype(int) - target.astype(int)).max() <= 1
    np.testing.assert_array_equal(reinhard_transfer(source, target, np.zeros_like(weights)), source)


def test_debug_mask_covers_the_roi_only():
    frame = _frame()
    debug = np.zeros(frame.shape[:2], np.float32)
    roi = FaceBlender().paste(frame, np.zeros((128, 128, 3), np.uint8), _matrix(0, 1, 100, 100), RAW,
                              debug_mask=debug)
    assert debug.max() > 0.99
    assert debug[_outside(frame.shape, roi)].max() == 0.0


def test_bad_crop_shape_is_refused():
    with pytest.raises(ValueError, match="square BGR"):
        FaceBlender().paste(_frame(), np.zeros((128, 64, 3), np.uint8), _matrix(0, 1, 100, 100), RAW)


@settings(max_examples=80, deadline=None)
@given(
    cx=st.floats(-400, 700), cy=st.floats(-400, 600), angle=st.floats(-180, 180),
    scale=st.floats(0.02, 20.0), opacity=st.floats(0.0, 1.0), colour=st.booleans(),
    size=st.sampled_from([16, 128, 256]), seed=st.integers(0, 2**16),
)
def test_paste_never_crashes_and_never_touches_pixels_outside_the_roi(
        cx, cy, angle, scale, opacity, colour, size, seed):
    frame = _frame(seed=seed % 7)
    crop = np.random.default_rng(seed).integers(0, 256, (size, size, 3), np.uint8)
    m = _matrix(angle, scale, cx, cy, size)
    out = frame.copy()
    roi = FaceBlender().paste(out, crop, m, BlendOptions(color_transfer=colour, opacity=opacity))
    assert 0 <= roi.x0 <= roi.x1 <= frame.shape[1] and 0 <= roi.y0 <= roi.y1 <= frame.shape[0]
    np.testing.assert_array_equal(out[_outside(out.shape, roi)], frame[_outside(frame.shape, roi)])


def test_inside_frame_marks_crop_pixels_that_come_from_the_frame():
    from livefusion.face.blend import inside_frame

    assert inside_frame((240, 320, 3), _matrix(0, 1.0, 160, 120), 128) is None
    valid = inside_frame((240, 320, 3), _matrix(0, 1.0, 0, 120), 128)  # crop centred on the left edge
    assert valid.shape == (128, 128)
    assert valid[:, :64].max() == 0.0 and valid[:, 64:].min() == 1.0


def test_colour_transfer_ignores_padding_outside_the_frame():
    frame = _frame()
    m = _matrix(0, 1.0, 10, 120)
    crop = warp_crop(frame, m, 128)  # black where the crop leaves the frame
    out = frame.copy()
    FaceBlender().paste(out, crop, m, BlendOptions(color_transfer=True))
    assert np.abs(out.astype(int) - frame.astype(int)).max() <= 6
