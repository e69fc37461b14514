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


def test_premultiplied_carries_weighted_colour_and_the_frame_weight():
    from livefusion.face.blend import premultiplied

    crop = np.full((4, 4, 3), (200, 100, 0), np.uint8)
    alpha = np.array([[0, 51, 255, 255]] * 4, np.uint8)
    out = premultiplied(crop, alpha)
    assert out.shape == (4, 4, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, :, 3], [255, 204, 0, 0])
    np.testing.assert_array_equal(out[0, 0, :3], [0, 0, 0])
    np.testing.assert_array_equal(out[0, 1, :3], [40, 20, 0])
    np.testing.assert_array_equal(out[0, 2, :3], [200, 100, 0])


def test_colour_target_from_the_swapper_input_gives_the_same_picture():
    frame = _frame()
    m = _matrix(15, 0.9, 150, 110)
    swapped = np.clip(warp_crop(frame, m, 128).astype(int) + (40, -30, 10), 0, 255).astype(np.uint8)
    colour = BlendOptions(color_transfer=True)
    warped_here, given = frame.copy(), frame.copy()
    FaceBlender().paste(warped_here, swapped, m, colour)
    FaceBlender().paste(given, swapped, m, colour, target=warp_crop(frame, m, 128))
    np.testing.assert_array_equal(given, warped_here)
    wrong_shape = frame.copy()
    FaceBlender().paste(wrong_shape, swapped, m, colour, target=np.zeros((64, 64, 3), np.uint8))
    np.testing.assert_array_equal(wrong_shape, warped_here)


def test_colour_transfer_follows_the_given_target():
    frame = _frame()
    m = _matrix(0, 1.0, 160, 120)
    crop = warp_crop(frame, m, 128)
    dark = (crop // 3).astype(np.uint8)
    out = frame.copy()
    FaceBlender().paste(out, crop, m, BlendOptions(color_transfer=True), target=dark)
    centre = (slice(100, 140), slice(140, 180))
    assert out[centre].mean() < frame[centre].mean() * 0.5


def test_reused_buffers_never_leak_an_earlier_face():
    """Scratch buffers grow and are reused: a small paste after a large one must equal a fresh one."""
    frame = _frame(480, 640)
    big, small = _matrix(10, 0.4, 320, 240), _matrix(-20, 1.5, 200, 150)
    crop_a = np.random.default_rng(5).integers(0, 256, (128, 128, 3), np.uint8)
    crop_b = np.random.default_rng(6).integers(0, 256, (128, 128, 3), np.uint8)
    reused = FaceBlender()
    reused.paste(frame.copy(), crop_a, big, RAW)
    for m, crop in ((small, crop_b), (big, crop_b), (small, crop_a)):
        again, fresh = frame.copy(), frame.copy()
        reused.paste(again, crop, m, RAW)
        FaceBlender().paste(fresh, crop, m, RAW)
        np.testing.assert_array_equal(again, fresh)


def test_one_blender_pastes_from_several_threads():
    from concurrent.futures import ThreadPoolExecutor

    frame = _frame(480, 640)
    jobs = [(_matrix(a, s, 320, 240), np.random.default_rng(abs(a)).integers(0, 256, (128, 128, 3), np.uint8))
            for a, s in ((0, 0.4), (30, 1.0), (-50, 0.6), (90, 2.0))]
    expected = []
    for m, crop in jobs:
        out = frame.copy()
        FaceBlender().paste(out, crop, m, RAW)
        expected.append(out)
    shared = FaceBlender()

    def run(index):
        m, crop = jobs[index % len(jobs)]
        out = frame.copy()
        shared.paste(out, crop, m, RAW)
        return index % len(jobs), out

    with ThreadPoolExecutor(4) as pool:
        for index, out in pool.map(run, range(32)):
            np.testing.assert_array_equal(out, expected[index])
