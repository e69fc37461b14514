"""The privacy guard's decisions, one frame at a time, on made-up faces.

What viewers really get (judged by an independent detector and a recogniser on real faces)
is tested end to end in tests/test_privacy_e2e.py; here each rule is pinned on its own.
"""

from __future__ import annotations

import numpy as np
import pytest

from livefusion.config import PrivacyConfig
from livefusion.face.align import AlignmentError, estimate_matrix, template_points
from livefusion.face.swap import SWAP_TEMPLATE
from livefusion.packet import Face, FramePacket, GuardAction, HideReason
from livefusion.privacy import (
    FaceMemory,
    PrivacyGuard,
    clip_box,
    cover,
    face_pose,
    face_region,
    gate_reason,
)
from livefusion.settings import LiveSettings

H, W = 360, 640


def frontal_kps(x: float = 200.0, y: float = 80.0, size: float = 160.0) -> np.ndarray:
    return (template_points("arcface_112_v2", 1) * size + [x, y]).astype(np.float32)


def make_face(kps: np.ndarray | None = None, *, score: float = 0.9, swapped: bool = True,
              track_id: int = 0) -> Face:
    kps = frontal_kps() if kps is None else kps
    lo, hi = kps.min(axis=0), kps.max(axis=0)
    side = float((hi - lo).max())
    box = np.array([lo[0] - side * 0.3, lo[1] - side * 0.5, hi[0] + side * 0.3,
                    hi[1] + side * 0.3], np.float32)
    face = Face(bbox=box, kps=kps, score=score, track_id=track_id)
    if swapped:
        face.swapped_crop = np.zeros((128, 128, 3), np.uint8)
        # the guard reads the blend mask at the face's own keypoints through this matrix
        face.crop_matrix = estimate_matrix(kps, SWAP_TEMPLATE, 128)
    return face


def textured_frame(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def make_packet(faces: list[Face] | None = None, *, seq: int = 0, located: bool = True,
                detected: bool = False, errors: dict[str, str] | None = None,
                swap: bool = True, frame: np.ndarray | None = None,
                unswappable: list[Face] | None = None, cut: bool = False) -> FramePacket:
    frame = textured_frame(seq) if frame is None else frame
    packet = FramePacket(seq=seq, t_capture_ns=0, frame=frame,
                         settings=LiveSettings(swap_enabled=swap))
    packet.faces = list(faces or [])
    packet.located, packet.detected, packet.scene_cut = located, detected, cut
    packet.errors = dict(errors or {})
    packet.unswappable = list(unswappable or [])
    return packet


def changed_pixels(packet: FramePacket) -> np.ndarray:
    return np.any(packet.frame != packet.original, axis=2)


def covered(packet: FramePacket, face: Face, pad: float = 0.3) -> bool:
    """Every pixel of the face's own box was replaced."""
    x0, y0, x1, y1 = clip_box(np.asarray(face.bbox, np.float64), packet.frame.shape)
    region = changed_pixels(packet)[y0:y1, x0:x1]
    return region.mean() > 0.95  # a pixelation cell can equal a pixel of the original by chance


# --- the pose figures and the gate -----------------------------------------------------------


def test_a_frontal_face_has_no_yaw_no_pitch_and_fits_the_template():
    pose = face_pose(frontal_kps())
    assert abs(pose.yaw) < 0.01 and abs(pose.pitch) < 0.01 and pose.fit_error < 1e-6


def test_pose_ignores_roll_and_scale():
    kps = frontal_kps().astype(np.float64)
    centre = kps.mean(axis=0)
    angle = np.deg2rad(35)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rolled = (kps - centre) @ rot.T * 0.5 + centre
    pose = face_pose(rolled)
    assert abs(pose.yaw) < 0.01 and abs(pose.pitch) < 0.01 and pose.fit_error < 1e-6


def test_pose_of_collapsed_eyes_is_an_alignment_error():
    kps = frontal_kps()
    kps[1] = kps[0]
    with pytest.raises(AlignmentError):
        face_pose(kps)


def _turned(amount: float) -> np.ndarray:
    kps = frontal_kps()
    iod = kps[1, 0] - kps[0, 0]
    kps[2, 0] += amount * iod / 2  # the nose moves towards one eye as the head turns
    return kps


def _tilted(amount: float) -> np.ndarray:
    kps = frontal_kps()
    kps[2, 1] += amount * (kps[3, 1] - kps[0, 1])
    return kps


@pytest.mark.parametrize("kps, score, expected", [
    (frontal_kps(), 0.9, ""),
    (_turned(0.3), 0.9, ""),
    (_turned(1.0), 0.9, "turned face"),
    (_turned(-1.0), 0.9, "turned face"),
    (_tilted(0.6), 0.9, "tilted face"),
    (frontal_kps(size=20), 0.9, "too small"),
    (frontal_kps(), 0.35, "low detection score"),
])
def test_gate_hides_faces_a_swap_cannot_follow(kps, score, expected):
    reason = gate_reason(make_face(kps, score=score), PrivacyConfig())
    assert (reason == "") if expected == "" else (expected in reason)


def test_gate_refuses_points_that_are_no_face_shape():
    kps = frontal_kps()
    kps[3, 0] -= 60  # a mouth three times as wide as the eyes are apart
    kps[4, 0] += 60
    pose = face_pose(kps)
    assert abs(pose.yaw) < 0.01 and abs(pose.pitch) < 0.01  # only the shape is wrong
    assert "fit" in gate_reason(make_face(kps), PrivacyConfig())


# --- memory ----------------------------------------------------------------------------------


def test_memory_keeps_a_region_until_enough_detections_miss_it():
    memory = FaceMemory(forget_after=2)
    region = np.array([100.0, 100.0, 200.0, 200.0])
    memory.update([region], detected=True, now_ms=0.0)
    for t, (detected, still_there) in enumerate(
            [(False, True), (False, True), (True, True), (True, False)], start=1):
        assert memory.unconfirmed([])  # hidden on this frame in every case...
        memory.update([], detected=detected, now_ms=33.0 * t)
        assert (len(memory) == 1) is still_there  # ...and forgotten after the 2nd missing detection


def test_memory_keeps_a_region_for_a_while_however_many_detections_miss_it():
    """A hand over the mouth makes the detector miss on every frame for a moment."""
    memory = FaceMemory(forget_after=2, forget_ms=500.0)
    memory.update([np.array([100.0, 100.0, 200.0, 200.0])], detected=True, now_ms=0.0)
    kept = []
    for t in range(1, 21):
        memory.update([], detected=True, now_ms=33.3 * t)
        kept.append(len(memory) == 1)
    assert all(kept[:14]) and not any(kept[15:])  # 14 x 33 ms < 500 ms <= 15 x 33 ms


def test_memory_regions_grow_while_unseen():
    memory = FaceMemory(forget_after=5)
    memory.update([np.array([100.0, 100.0, 200.0, 200.0])], detected=True, now_ms=0.0)
    widths = []
    for t in range(3):
        (r,) = memory.unconfirmed([])
        widths.append(r[2] - r[0])
        memory.update([], detected=False, now_ms=33.0 * (t + 1))
    assert widths[0] > 100 and widths[0] < widths[1] < widths[2]


def test_a_face_seen_again_replaces_its_memory():
    memory = FaceMemory(forget_after=2)
    memory.update([np.array([100.0, 100.0, 200.0, 200.0])], detected=True, now_ms=0.0)
    moved = np.array([110.0, 105.0, 210.0, 205.0])
    assert memory.unconfirmed([moved]) == []
    memory.update([moved], detected=True, now_ms=33.0)
    assert len(memory) == 1


def test_one_face_seen_now_accounts_for_one_remembered_face_not_its_neighbour_too():
    """Two faces side by side, padded regions overlapping: only the user's is tracked between
    detections; the neighbour's place must stay covered."""
    memory = FaceMemory(forget_after=2, forget_ms=500.0)
    user = np.array([100.0, 60.0, 300.0, 320.0])
    neighbour = np.array([250.0, 70.0, 450.0, 330.0])  # IoU with the user's region > 0.2
    memory.update([user, neighbour], detected=True, now_ms=0.0)
    (left,) = memory.unconfirmed([user + 3.0])
    assert left[0] > 200 and left[2] > 440  # the neighbour's place
    memory.update([user + 3.0], detected=False, now_ms=33.0)
    assert len(memory) == 2


# --- covering --------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["pixelate", "fill"])
def test_cover_changes_the_region_and_nothing_else(style):
    frame = textured_frame()
    before = frame.copy()
    cover(frame, (100, 50, 300, 250), style, blocks=6)
    inside = frame[50:250, 100:300]
    assert np.any(inside != before[50:250, 100:300], axis=2).mean() > 0.95
    outside = np.ones((H, W), bool)
    outside[50:250, 100:300] = False
    assert np.array_equal(frame[outside], before[outside])
    colours = np.unique(inside.reshape(-1, 3), axis=0)
    assert len(colours) <= (1 if style == "fill" else 36)  # no detail left to recognise


def test_face_region_reaches_above_the_box_for_the_forehead():
    face = make_face()
    region = face_region(face, 0.3)
    side = max(face.width, face.height)
    assert region[1] < face.bbox[1] - 0.5 * side and region[3] > face.bbox[3]


def test_clip_box_keeps_what_lies_in_the_frame():
    assert clip_box(np.array([-50.0, -20.0, 100.4, 90.2]), (H, W, 3)) == (0, 0, 101, 91)
    assert clip_box(np.array([W + 5.0, 0.0, W + 50.0, 40.0]), (H, W, 3)) is None


# --- the guard, frame by frame ---------------------------------------------------------------


def test_before_the_engine_is_ready_viewers_get_a_neutral_frame():
    packet = make_packet(located=False)
    PrivacyGuard().guard(packet)
    assert packet.privacy.action is GuardAction.START
    assert packet.privacy.reasons == (HideReason.STARTUP,)
    assert changed_pixels(packet).mean() > 0.95
    assert packet.frame.std() < 30  # flat grey with a caption, none of the camera picture


def test_a_well_swapped_face_goes_out_as_made():
    packet = make_packet([make_face()], detected=True)
    PrivacyGuard().guard(packet)
    assert packet.privacy.action is GuardAction.PASS
    assert packet.frame is packet.original


@pytest.mark.parametrize("face, reason", [
    (make_face(swapped=False), HideReason.NO_SWAP),
    (make_face(_turned(1.5)), HideReason.NO_SWAP),
    (make_face(score=0.3), HideReason.NO_SWAP),
])
def test_a_face_not_swapped_well_is_covered(face, reason):
    packet = make_packet([face], detected=True)
    PrivacyGuard().guard(packet)
    assert packet.privacy.action is GuardAction.HIDE and packet.privacy.reasons == (reason,)
    assert covered(packet, face) and face.hidden
    assert not changed_pixels(packet)[:, 500:].any()  # far from the face: untouched


def test_faces_only_the_guard_threshold_saw_are_covered():
    low = make_face(frontal_kps(x=420, y=120, size=100), score=0.35, swapped=False)
    packet = make_packet([make_face()], detected=True, unswappable=[low])
    PrivacyGuard().guard(packet)
    assert packet.privacy.action is GuardAction.HIDE and covered(packet, low)
    assert not covered(packet, packet.faces[0])
    assert low.hidden and not packet.faces[0].hidden


def test_a_failed_frame_hides_every_face_it_located():
    face = make_face()
    packet = make_packet([face], errors={"swap": "RuntimeError: boom"})
    PrivacyGuard().guard(packet)
    assert packet.privacy.reasons == (HideReason.ERROR,) and covered(packet, face)


@pytest.mark.parametrize("seen_before", [False, True])
def test_a_frame_that_failed_before_locating_sends_a_neutral_frame(seen_before):
    """Where faces are is unknown: a remembered place would miss a face that moved or came in."""
    guard = PrivacyGuard()
    if seen_before:
        guard.guard(make_packet([make_face()], seq=0, detected=True))
    packet = make_packet(seq=1, located=False, errors={"locate": "ValueError: bad"})
    guard.guard(packet)
    assert packet.privacy.action is GuardAction.START
    assert packet.privacy.reasons == (HideReason.ERROR,)
    assert changed_pixels(packet).mean() > 0.95


def test_a_lost_face_stays_hidden_until_detections_and_time_find_the_place_empty():
    guard = PrivacyGuard()  # forget_after 2 detections, forget_ms 500
    face = make_face()
    guard.guard(make_packet([face], seq=0, detected=True))
    actions = []
    for seq in range(1, 20):
        packet = make_packet([], seq=seq, detected=True)
        packet.t_capture_ns = int(seq * 33.3e6)
        guard.guard(packet)
        actions.append(packet.privacy.action)
        if packet.privacy.action is GuardAction.HIDE:
            assert packet.privacy.reasons == (HideReason.TRACK_LOST,) and covered(packet, face)
    assert actions[:15] == [GuardAction.HIDE] * 15  # 15 x 33 ms: still within 500 ms
    assert actions[-1] is GuardAction.PASS


def test_a_scene_cut_keeps_the_old_places_covered_for_a_while():
    """A 'cut' may be the lights going on, with the face still there and missed once."""
    guard = PrivacyGuard()
    face = make_face()
    guard.guard(make_packet([face], seq=0, detected=True))
    cut = make_packet([], seq=1, detected=True, cut=True)
    cut.t_capture_ns = int(33e6)
    guard.guard(cut)
    after = make_packet([], seq=2, detected=True)
    after.t_capture_ns = int(66e6)
    guard.guard(after)
    assert after.privacy.action is GuardAction.HIDE and covered(after, face)


def test_a_new_frame_size_forgets_the_old_places():
    guard = PrivacyGuard()
    guard.guard(make_packet([make_face()], seq=0, detected=True))
    bigger = make_packet([], seq=1, frame=np.zeros((480, 854, 3), np.uint8))
    guard.guard(bigger)
    assert bigger.privacy.action is GuardAction.PASS


def test_swap_off_is_a_counted_reveal():
    packet = make_packet([make_face(swapped=False)], swap=False, detected=True)
    PrivacyGuard().guard(packet)
    assert packet.privacy.action is GuardAction.REVEAL
    assert packet.privacy.reasons == (HideReason.SWAP_OFF,)
    assert packet.frame is packet.original


def test_policy_off_passes_what_the_engine_made():
    for packet in (make_packet([make_face(swapped=False)]), make_packet(located=False)):
        PrivacyGuard(PrivacyConfig(policy="off")).guard(packet)
        assert packet.privacy.action is GuardAction.PASS and packet.frame is packet.original


def test_policy_off_warns_at_start(caplog):
    with caplog.at_level("WARNING", logger="livefusion.privacy"):
        PrivacyGuard(PrivacyConfig(policy="off"))
    assert "viewers see your real face" in caplog.text


@pytest.mark.parametrize("hide_unselected, action", [(True, GuardAction.HIDE),
                                                     (False, GuardAction.PASS)])
def test_faces_left_out_by_swap_faces_follow_hide_unselected(hide_unselected, action):
    bystander = make_face(frontal_kps(x=420, y=150, size=90), swapped=False)
    bystander.unselected = True
    packet = make_packet([make_face(), bystander], detected=True)
    PrivacyGuard(PrivacyConfig(hide_unselected=hide_unselected)).guard(packet)
    assert packet.privacy.action is action


def test_hold_repeats_the_last_good_frame_then_hides():
    now = [0.0]
    guard = PrivacyGuard(PrivacyConfig(policy="hold", hold_ms=300.0), clock=lambda: now[0])
    good = make_packet([make_face()], seq=0, detected=True)
    guard.guard(good)
    shown = good.frame.copy()
    now[0] = 0.2
    bad = make_packet([make_face(swapped=False)], seq=1, detected=True)
    guard.guard(bad)
    assert bad.privacy.action is GuardAction.HOLD and np.array_equal(bad.frame, shown)
    now[0] = 0.5
    later = make_packet([make_face(swapped=False)], seq=2, detected=True)
    guard.guard(later)
    assert later.privacy.action is GuardAction.HIDE and covered(later, later.faces[0])


def test_hold_never_holds_before_a_first_good_frame():
    guard = PrivacyGuard(PrivacyConfig(policy="hold"))
    packet = make_packet(located=False)
    guard.guard(packet)
    assert packet.privacy.action is GuardAction.START


def test_no_signal_frames_pass():
    packet = make_packet(located=False)
    packet.source_ok = False
    PrivacyGuard().guard(packet)
    assert packet.privacy.action is GuardAction.PASS


@pytest.mark.parametrize("shape", [(120, 160, 3), (1080, 1920, 3)])
def test_the_neutral_caption_fits_small_and_large_frames(shape):
    from livefusion.privacy import neutral_frame

    frame = neutral_frame(shape, "LiveFusion: waiting for the face swap (add a source face)")
    text_columns = np.flatnonzero((frame != 48).any(axis=(0, 2)))
    assert frame.shape == shape and text_columns.size
    assert text_columns[0] > 0 and text_columns[-1] < shape[1] - 1  # not cut at either edge


def test_a_small_face_beside_a_big_one_is_remembered_on_its_own():
    memory = FaceMemory(forget_after=2)
    big = np.array([100.0, 100.0, 400.0, 450.0])
    small = np.array([380.0, 150.0, 420.0, 200.0])  # its centre lies in the big region
    memory.update([big, small], detected=True, now_ms=0.0)
    assert len(memory) == 2
    (left,) = memory.unconfirmed([big])  # only the big face seen on this frame
    assert left[0] > 300 and left[2] < 450


def test_a_low_swap_opacity_is_a_counted_reveal_and_unswapped_faces_stay_hidden():
    low = LiveSettings(opacity=0.5)
    packet = make_packet([make_face()], detected=True)
    packet.settings = low
    PrivacyGuard().guard(packet)
    assert packet.privacy.action is GuardAction.REVEAL
    assert packet.privacy.reasons == (HideReason.LOW_OPACITY,)
    turned = make_face(_turned(1.5))
    mixed = make_packet([make_face(frontal_kps(x=420, y=150, size=90)), turned], detected=True)
    mixed.settings = low
    PrivacyGuard().guard(mixed)
    assert mixed.privacy.action is GuardAction.HIDE and covered(mixed, turned)


@pytest.mark.parametrize("erode, blur, action", [
    (0.03, 0.05, GuardAction.PASS),  # the box defaults: the features are fully swapped
    (0.05, 0.15, GuardAction.PASS),  # the box defaults before the face masks
    (0.05, 0.2, GuardAction.PASS),  # configs/quality.toml's softer mask
    (0.2, 0.15, GuardAction.HIDE),  # an eroded mask leaves the eyes and mouth real
    (0.3, 0.3, GuardAction.HIDE),
    (0.4, 0.5, GuardAction.HIDE),
])
def test_a_blend_mask_that_leaves_the_features_real_hides_the_face(erode, blur, action):
    packet = make_packet([make_face()], detected=True)
    packet.settings = LiveSettings(mask_erode=erode, mask_blur=blur)
    PrivacyGuard().guard(packet)
    assert packet.privacy.action is action
