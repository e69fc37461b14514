"""Blend masks: the face outline from 106 landmarks, the kept mouth, the box, the frame edge.

The shape tests use landmarks of a real face (the PFLD-106-lite stand-in in 2d106det's
contract on a shared portrait); the coverage is judged by a different landmarker
(PFLD-GhostOne 98, through livefusion.measure.mask_eval) on the app's real engine path.
"""

from __future__ import annotations

import statistics

import cv2
import numpy as np
import pytest

from livefusion.face.align import estimate_matrix, warp_crop
from livefusion.face.blend import BlendOptions, FaceBlender
from livefusion.face.detect import ScrfdDetector
from livefusion.face.landmarks import Landmarker106
from livefusion.face.mask import (
    BROWS,
    CONTOUR,
    EYES,
    MOUTH,
    MaskMode,
    MaskOptions,
    crop_mask,
    face_mask,
    face_outline,
    face_width,
    feather_mask,
    frame_support,
    to_crop,
)
from livefusion.models.contract import check_file
from livefusion.measure.standins import pfld106_as_2d106det
from tests.conftest import SHARED_IMAGES, SHARED_MODELS
from tests.face.onnx_builders import cpu_session, shared_path

FACE = MaskOptions(mode=MaskMode.FACE)
MOUTH_KEPT = MaskOptions(mode=MaskMode.FACE_MOUTH)
BOX = MaskOptions(mode=MaskMode.BOX)
MAGENTA = np.array([255, 0, 255], np.uint8)


@pytest.fixture(scope="module")
def wrapped(tmp_path_factory):
    return pfld106_as_2d106det(shared_path(SHARED_MODELS, "pfld106_lite.onnx"),
                               tmp_path_factory.mktemp("lm") / "2d106det.onnx")


@pytest.fixture(scope="module")
def portrait(wrapped):
    """fr_obama.jpg scaled to a face of about crop size: frame, face, landmarks, crop matrix."""
    frame = cv2.imread(str(shared_path(SHARED_IMAGES, "fr_obama.jpg")))
    frame = cv2.resize(frame, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    face = ScrfdDetector(cpu_session(shared_path(SHARED_MODELS, "det_500m.onnx"))).detect(frame)[0]
    points = Landmarker106(cpu_session(wrapped)).detect(frame, face.bbox)
    return frame, face, points, estimate_matrix(face.kps, "arcface_128", 128)


pytestmark = pytest.mark.shared


def test_the_wrapped_landmarker_has_2d106dets_contract(wrapped):
    sig = check_file("landmark_2d106", wrapped)
    assert [t.name for t in sig.inputs] == ["data"] and sig.outputs[0].name == "fc1"
    assert tuple(sig.inputs[0].shape[1:]) == (3, 192, 192) and sig.outputs[0].shape[-1] == 212


def test_landmarks_land_on_the_face(portrait):
    frame, face, points, _ = portrait
    assert points.shape == (106, 2)
    x1, y1, x2, y2 = face.bbox
    # InsightFace order: the chin is below the mouth, the mouth below the eyes, brows above them
    assert points[0, 1] > points[MOUTH, 1].mean() > points[EYES, 1].mean() > points[BROWS, 1].mean()
    eyes = np.r_[points[33:43].mean(axis=0)[None], points[87:97].mean(axis=0)[None]]
    eyes = eyes[np.argsort(eyes[:, 0])]
    detector_eyes = face.kps[:2]
    assert np.abs(eyes - detector_eyes).max() < 0.08 * (x2 - x1)
    assert (points[CONTOUR, 0].min() < face.kps[0, 0]) and (points[CONTOUR, 0].max() > face.kps[1, 0])


def test_the_face_mask_covers_the_features_and_fades_out_at_the_outline(portrait):
    _, face, points, matrix = portrait
    crop_points = to_crop(points, matrix)
    mask = face_mask(crop_points, 128, FACE)
    kps = np.round(to_crop(face.kps, matrix)).astype(int)
    assert mask[kps[:, 1], kps[:, 0]].min() > 0.99  # eyes, nose and mouth fully swapped
    assert mask[0, :].max() == 0 and mask[:, 0].max() == 0  # nothing at the crop's edge
    # outside the outline grown by padding + half the feather, nothing is pasted
    width = face_width(crop_points)
    grown = np.zeros((128, 128), np.uint8)
    reach = int(np.ceil((FACE.padding + FACE.feather / 2) * width)) + 1
    cv2.fillConvexPoly(grown, np.round(face_outline(crop_points)).astype(np.int32), 1)
    grown = cv2.dilate(grown, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2))
    assert mask[grown == 0].max() == 0
    # a wider feather makes a softer edge, more padding a larger mask
    assert (face_mask(crop_points, 128, MaskOptions(padding=0.1)) > 0.5).sum() > (mask > 0.5).sum()


def test_face_plus_mouth_keeps_the_users_mouth_and_nothing_else(portrait):
    _, face, points, matrix = portrait
    crop_points = to_crop(points, matrix)
    full, kept = face_mask(crop_points, 128, FACE), face_mask(crop_points, 128, MOUTH_KEPT)
    lips = cv2.convexHull(crop_points[MOUTH].astype(np.float32)).reshape(-1, 2)
    inside = np.zeros((128, 128), np.uint8)
    cv2.fillConvexPoly(inside, np.round(lips).astype(np.int32), 1)
    assert kept[inside == 1].mean() < 0.05  # the mouth is the user's own
    eyes_nose = np.round(to_crop(face.kps[:3], matrix)).astype(int)
    assert kept[eyes_nose[:, 1], eyes_nose[:, 0]].min() > 0.99
    far = cv2.dilate(inside, np.ones((25, 25), np.uint8)) == 0
    np.testing.assert_allclose(kept[far], full[far], atol=1e-6)


def test_box_mode_and_missing_landmarks_give_the_box(portrait):
    _, _, points, matrix = portrait
    box = feather_mask(128, BOX.box_erode, BOX.box_blur)
    np.testing.assert_array_equal(crop_mask(128, BOX, to_crop(points, matrix)), box)
    np.testing.assert_array_equal(crop_mask(128, FACE, None), box)


def test_bad_landmarks_are_a_clear_error():
    with pytest.raises(ValueError, match="106 finite"):
        face_mask(np.zeros((68, 2)), 128, FACE)


def test_frame_support_marks_only_crop_pixels_that_see_the_frame():
    matrix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 30.0]])  # crop row r = frame row r - 30
    support = frame_support((100, 200, 3), matrix, 128)
    assert support is not None
    assert support[:31, :].max() == 0  # above the frame and its first row
    assert support[40:120, 10:120].min() == 1
    assert frame_support((400, 400, 3), np.array([[1.0, 0, -100], [0, 1.0, -100]]), 128) is None


def _edge_frames(frame, face):
    """The portrait cut so that the face box runs past each frame edge by a fifth of its size."""
    x1, y1, x2, y2 = face.bbox.astype(int)
    dx, dy = (x2 - x1) // 5, (y2 - y1) // 5
    return {"top": frame[y1 + dy:], "bottom": frame[:y2 - dy], "left": frame[:, x1 + dx:],
            "right": frame[:, :x2 - dx]}


@pytest.mark.parametrize("options", [FACE, MOUTH_KEPT, BOX], ids=["face", "face+mouth", "box"])
def test_a_face_past_each_frame_edge_leaves_the_border_unchanged(portrait, options):
    frame, face, points, _ = portrait
    blender = FaceBlender()
    for edge, cut in _edge_frames(frame, face).items():
        cut = np.ascontiguousarray(cut)
        offset = np.array([0.0 if edge != "left" else frame.shape[1] - cut.shape[1],
                           0.0 if edge != "top" else frame.shape[0] - cut.shape[0]])
        matrix = estimate_matrix(face.kps - offset, "arcface_128", 128)
        out = cut.copy()
        paint = np.broadcast_to(MAGENTA, (128, 128, 3)).copy()
        roi = blender.paste(out, paint, matrix, BlendOptions(color_transfer=False, mask=options),
                            landmarks=points - offset)
        assert not roi.empty
        border = {"top": (0, slice(None)), "bottom": (-1, slice(None)),
                  "left": (slice(None), 0), "right": (slice(None), -1)}[edge]
        np.testing.assert_array_equal(out[border], cut[border], err_msg=edge)
        # identity round trip: the rows along the edge are not darker (no swapped padding)
        same = cut.copy()
        blender.paste(same, warp_crop(cut, matrix, 128), matrix,
                      BlendOptions(color_transfer=False, mask=options), landmarks=points - offset)
        band = {"top": same[:6], "bottom": same[-6:], "left": same[:, :6], "right": same[:, -6:]}[edge]
        truth = {"top": cut[:6], "bottom": cut[-6:], "left": cut[:, :6], "right": cut[:, -6:]}[edge]
        darker = truth.astype(np.int16) - band.astype(np.int16)
        assert np.median(darker) <= 2 and np.percentile(darker, 99) < 40, edge


def test_judged_coverage_and_paint_on_shared_portraits(tmp_path):
    """The mask_eval table, short: four portraits, the app's engine, the independent judge."""
    from livefusion.measure.mask_eval import AppUnderTest, Judge, evaluate_portrait
    from tests.conftest import SHARED_IMAGES as images

    shared = images.parent.parent
    judge = Judge(shared)
    app = AppUnderTest(shared, tmp_path)
    names = ("fr_alex-lacamoire.png", "dfl_celeba_000013.jpg", "insightface_Rob_Lowe_0001.jpg",
             "fr_obama_small.jpg")
    results = [evaluate_portrait(app, judge, images / name, modes=("box", "face"))[0] for name in names]
    cover = [r.modes["face"].cover for r in results]
    assert min(cover) >= 0.85 and statistics.median(cover) >= 0.90, cover
    assert max(r.modes["face"].paint for r in results) <= 0.05
    assert min(r.modes["box"].cover for r in results) >= 0.90  # the retuned box
    assert all(r.exact_outside for r in results)
    # the identity round trip loses nothing to the mask: it is the 128 crop's own fidelity
    # (the floor), and at least 35 dB wherever the crop allows it
    assert all(r.psnr >= r.floor - 0.3 for r in results)
    assert all(r.psnr >= 35.0 for r in results if r.floor >= 35.5)


def _guarded(frame, face, points, matrix, mode, landmarks=None):
    from livefusion.packet import Face, FramePacket
    from livefusion.privacy import PrivacyGuard
    from livefusion.settings import LiveSettings

    swapped = Face(bbox=face.bbox, kps=face.kps, score=0.9, track_id=0)
    swapped.swapped_crop = np.zeros((128, 128, 3), np.uint8)
    swapped.crop_matrix = matrix
    swapped.landmarks = points if landmarks is None else landmarks
    packet = FramePacket(seq=0, t_capture_ns=0, frame=frame, settings=LiveSettings(mask_mode=mode))
    packet.faces, packet.located, packet.detected = [swapped], True, True
    guard = PrivacyGuard()
    guard.guard(packet)
    return packet.privacy.action, guard, swapped, packet


@pytest.mark.parametrize("mode", ["face", "face+mouth", "box"])
def test_the_guard_passes_a_well_masked_face_in_every_mode(portrait, mode):
    from livefusion.packet import GuardAction

    action, *_ = _guarded(*portrait, mode)
    assert action is GuardAction.PASS


def test_face_plus_mouth_leaves_only_the_mouth_corners_out_of_the_guards_check(portrait):
    """The kept mouth is the user's choice: its corners are real (low weight), so counting
    them would hide every face in that mode; the eyes and nose are still checked."""
    from livefusion.settings import LiveSettings

    frame, face, points, matrix = portrait
    _, guard, swapped, packet = _guarded(frame, face, points, matrix, "face+mouth")
    mask = crop_mask(128, MaskOptions.from_settings(packet.settings), to_crop(points, matrix))
    corners = np.round(to_crop(face.kps[3:], matrix)).astype(int)
    assert mask[corners[:, 1], corners[:, 0]].min() < guard.config.min_mask_weight
    assert guard.mask_weight(swapped, frame.shape, packet.settings) > 0.99
    assert guard.mask_weight(swapped, frame.shape, LiveSettings(mask_mode="face")) > 0.99


def test_landmarks_off_the_face_make_the_guard_hide_it(portrait):
    from livefusion.packet import GuardAction

    frame, face, points, matrix = portrait
    shifted = points + np.array([face.width * 0.8, 0.0], np.float32)
    for mode in ("face", "face+mouth"):
        action, *_ = _guarded(frame, face, points, matrix, mode, landmarks=shifted)
        assert action is GuardAction.HIDE, mode


def test_between_detections_landmarks_follow_the_track(portrait, wrapped):
    from livefusion.face.landmarks import LandmarkTracker
    from livefusion.packet import Face

    frame, face, points, _ = portrait
    tracker = LandmarkTracker(Landmarker106(cpu_session(wrapped)))
    detected = Face(bbox=face.bbox, kps=face.kps, score=0.9, track_id=3, origin="detect")
    first = tracker.landmarks(frame, detected)
    np.testing.assert_allclose(first, points, atol=1e-3)
    shift = np.array([7.0, -4.0], np.float32)
    tracked = Face(bbox=face.bbox + np.tile(shift, 2), kps=face.kps + shift, score=0.9, track_id=3,
                   origin="track")
    np.testing.assert_allclose(tracker.landmarks(frame, tracked), points + shift, atol=1e-3)
    assert tracker.runs == 1  # carried, not run again
    tracker.landmarks(frame, Face(bbox=face.bbox, kps=face.kps, score=0.9, track_id=3))
    assert tracker.runs == 2  # a fresh detection runs the model
    tracker.forget_except([])
    tracker.landmarks(frame, tracked)
    assert tracker.runs == 3  # a forgotten track has no points to carry


def test_landmarks_carried_by_the_track_stay_on_the_face():
    """Between detections the outline follows the track: against a fresh landmark run on the
    same frames of a talking head, it drifts far less than the mask's padding."""
    from livefusion.measure.mask_eval import carried_drift
    from tests.conftest import SHARED_IMAGES as images

    drift = carried_drift(images.parent.parent, "dfl_Obama_speaking.mp4", frames=16)
    assert len(drift) >= 10
    assert np.mean(drift) < 0.03 and max(drift) < MaskOptions().padding * 2


def test_the_mask_cache_reuses_a_mask_while_the_outline_holds_still(portrait):
    """Within a quarter crop pixel the mask built first is handed out again; a detection that
    moves the outline further, or other options, build a new one."""
    from livefusion.face.mask import FaceMaskCache, MaskMode, MaskOptions, face_mask

    _, _, points, matrix = portrait
    portrait_points = to_crop(points, matrix)
    cache, options = FaceMaskCache(tolerance=0.25), MaskOptions(mode=MaskMode.FACE)
    first = cache.get(128, options, portrait_points)
    assert np.array_equal(first, face_mask(portrait_points, 128, options))
    assert cache.get(128, options, portrait_points + 0.2) is first and cache.built == 1
    moved = cache.get(128, options, portrait_points + 1.0)
    assert cache.built == 2 and not np.array_equal(moved, first)
    assert np.array_equal(moved, face_mask(portrait_points + 1.0, 128, options))
    mouth = cache.get(128, MaskOptions(mode=MaskMode.FACE_MOUTH), portrait_points)
    assert cache.built == 3 and mouth.sum() < first.sum()
    assert not first.flags.writeable
