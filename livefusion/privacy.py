"""The privacy guard: the last stage before every output viewers see. It fails closed.

A face swap tool's worst failure is one frame of the user's real face on stream. The engine
can miss that in many ways (a turned face the swap cannot follow, a face that entered
between two detections, a scene cut, a model error, models still loading), so the guard
does not trust the engine's picture. On every frame it knows:

- the faces the engine located, and which of them it swapped (`Face.swapped_crop`);
- faces the detector saw only at the guard's lower threshold (`packet.unswappable`);
- a memory of where faces were, kept until fresh detections show the place is empty;
- whether the frame failed somewhere (`packet.errors`) or the engine never saw it.

and with policy `hide` it covers (coarse pixelation, or a flat fill) every face region that
is not swapped well; with `hold` it repeats the last frame that needed no cover for up to
`hold_ms`, then hides; before the engine is ready it sends a neutral "starting" frame.
`off` passes the engine's picture as it is (the field's usual behaviour), and says so.
Swap off and a swap opacity under `min_opacity` (the user's deliberate reveals) pass the real
face and are counted as revealed; a blend mask so eroded that the eyes, nose or mouth stay
real hides the face. The check reads the mask the blender uses for that very face (the box,
or the face outline from its landmarks, cut at the frame's edge) at the face's own keypoints
mapped into the crop. With mask mode `face+mouth` the user keeps their own mouth on purpose,
so the mouth corners are left out of that check (like a low opacity, a deliberate partial
reveal; the eyes and the nose, which carry the identity, must still be covered).

A swap-quality gate hides faces whose pose (yaw or pitch from the 5 points), alignment fit,
detection score or size make a good swap unlikely: hidden, never half-swapped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable

import cv2
import numpy as np

from livefusion.config import PrivacyConfig
from livefusion.face.align import AlignmentError, similarity_fit, template_points
from livefusion.face.mask import (FaceMaskCache, MaskMode, MaskOptions, crop_mask, frame_support,
                                  to_crop)
from livefusion.face.swap import SWAP_TEMPLATE
from livefusion.packet import Face, FramePacket, GuardAction, HideReason, PrivacyVerdict
from livefusion.settings import LiveSettings

log = logging.getLogger(__name__)

STAGE = "privacy"  # the guard's row in the per-stage meters
# Nose height between the eye line and the mouth line on a frontal face (ArcFace template).
_FRONTAL_NOSE_HEIGHT = 0.495
_TEMPLATE = template_points("arcface_112_v2", 1)
_TEMPLATE_EYE_DISTANCE = float(np.hypot(*(_TEMPLATE[1] - _TEMPLATE[0])))
# A remembered region is compared with the faces of a frame by overlap (IoU), or by a centre
# lying inside a region of about the same size.
_MATCH_IOU = 0.2
_MAX_SIZE_RATIO = 4.0  # area ratio beyond which two regions are never one face's
# A region no face confirms grows by this fraction of its size per frame (the face may be
# moving), up to _MAX_GROWTH.
_GROWTH_PER_FRAME = 0.1
_MAX_GROWTH = 1.0
_NEUTRAL_GREY = 48
_SAMPLES_PER_CELL = 16  # sampled pixels along each side of a pixelation cell

Box = tuple[int, int, int, int]


# --- the swap-quality gate -------------------------------------------------------------------


@dataclass(frozen=True)
class FacePose:
    """What the 5 keypoints say about how swappable a face is.

    yaw: the nose's sideways offset from the eyes' centre over half the eye distance, after
         undoing the roll (0 frontal, about 1 when the nose passes an eye: a profile).
    pitch: the nose's height between the eye and mouth lines off its frontal place, as a
           fraction of the eye-to-mouth distance (0 frontal).
    fit_error: RMS residual of the similarity fit onto the swapper's template, over the
               template's eye distance (0 = the points form a frontal face's shape).
    eye_distance: pixels between the eyes.
    """

    yaw: float
    pitch: float
    fit_error: float
    eye_distance: float


def face_pose(kps: np.ndarray) -> FacePose:
    """Pose figures for one face's (5, 2) keypoints; raises AlignmentError if degenerate."""
    pts = np.asarray(kps, np.float64).reshape(5, 2)
    if not np.isfinite(pts).all():
        raise AlignmentError("keypoints are not finite")
    left, right, nose = pts[0], pts[1], pts[2]
    eye_vec = right - left
    eye_distance = float(np.hypot(*eye_vec))
    if eye_distance < 1e-6:
        raise AlignmentError("the eyes are at one place; the face pose is undefined")
    cos, sin = eye_vec / eye_distance
    unroll = np.array([[cos, sin], [-sin, cos]])
    eye_mid = (left + right) / 2.0
    nose_x, nose_y = unroll @ (nose - eye_mid)
    _, mouth_y = unroll @ ((pts[3] + pts[4]) / 2.0 - eye_mid)
    yaw = float(nose_x / (eye_distance / 2.0))
    pitch = float(nose_y / mouth_y - _FRONTAL_NOSE_HEIGHT) if mouth_y > 1e-6 else float("inf")
    matrix = similarity_fit(pts, _TEMPLATE)
    mapped = pts @ matrix[:, :2].T + matrix[:, 2]
    residual = float(np.sqrt(((mapped - _TEMPLATE) ** 2).sum(axis=1).mean()))
    return FacePose(yaw, pitch, residual / _TEMPLATE_EYE_DISTANCE, eye_distance)


def gate_reason(face: Face, config: PrivacyConfig) -> str:
    """Why a good swap of this face is unlikely, in words; '' when it may be shown swapped."""
    try:
        pose = face_pose(face.kps)
    except AlignmentError as exc:
        return f"no pose ({exc})"
    if pose.eye_distance < config.min_eye_distance:
        return f"too small ({pose.eye_distance:.0f} px between the eyes)"
    if face.score < config.min_score:
        return f"low detection score {face.score:.2f}"
    if abs(pose.yaw) > config.max_yaw:
        return f"turned face (yaw {pose.yaw:+.2f})"
    if abs(pose.pitch) > config.max_pitch:
        return f"tilted face (pitch {pose.pitch:+.2f})"
    if pose.fit_error > config.max_fit_error:
        return f"landmarks do not fit a face (fit error {pose.fit_error:.2f})"
    return ""


# --- where faces are, or were ----------------------------------------------------------------


def face_region(face: Face, pad: float) -> np.ndarray:
    """The box that covers a face: its box and keypoints, grown by `pad` of its size each side
    (twice that above, for the forehead and hairline)."""
    box = np.asarray(face.bbox, np.float64)
    kps = np.asarray(face.kps, np.float64).reshape(-1, 2)
    finite = kps[np.isfinite(kps).all(axis=1)]
    lo = np.minimum(box[:2], finite.min(axis=0)) if len(finite) else box[:2]
    hi = np.maximum(box[2:], finite.max(axis=0)) if len(finite) else box[2:]
    side = float(max(hi[0] - lo[0], hi[1] - lo[1], 1.0))
    return np.array([lo[0] - pad * side, lo[1] - 2.0 * pad * side,
                     hi[0] + pad * side, hi[1] + pad * side])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _area(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0))


def _same_place(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two face regions are one face's: they overlap well, or the centre of one lies
    in the other and they are of a size (a small face beside a big one's padded region is
    another face, not the same one seen again)."""
    if _iou(a, b) >= _MATCH_IOU:
        return True
    ratio = _area(a) / max(_area(b), 1e-6)
    if not _MAX_SIZE_RATIO ** -1 <= ratio <= _MAX_SIZE_RATIO:
        return False
    for region, other in ((a, b), (b, a)):
        cx, cy = (other[0] + other[2]) / 2.0, (other[1] + other[3]) / 2.0
        if region[0] <= cx <= region[2] and region[1] <= cy <= region[3]:
            return True
    return False


@dataclass
class _Remembered:
    region: np.ndarray  # float (4,) frame pixels, already padded
    last_seen_ms: float  # capture time of the last frame a face was here
    misses: int = 0  # detections in a row that did not see a face here
    unseen: int = 0  # frames in a row with no face here


def _assign(entries: list[_Remembered], regions: list[np.ndarray]) -> dict[int, int]:
    """Memory entry index -> current region index, one to one, best overlap first: a face seen
    now accounts for one remembered face, never for a neighbour's too."""
    pairs = sorted(((_iou(e.region, r), ei, ri) for ei, e in enumerate(entries)
                    for ri, r in enumerate(regions) if _same_place(e.region, r)), reverse=True)
    matched: dict[int, int] = {}
    taken: set[int] = set()
    for _, ei, ri in pairs:
        if ei not in matched and ri not in taken:
            matched[ei] = ri
            taken.add(ri)
    return matched


class FaceMemory:
    """Where faces were, until `forget_after` fresh detections in a row find nothing there and
    at least `forget_ms` of camera time has passed (a hand over the face or a turn to profile
    makes a detector miss for a moment; a viewer still knows the face)."""

    def __init__(self, forget_after: int, forget_ms: float = 0.0) -> None:
        self.forget_after = int(forget_after)
        self.forget_ms = float(forget_ms)
        self._entries: list[_Remembered] = []

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries = []

    def unconfirmed(self, regions: Iterable[np.ndarray]) -> list[np.ndarray]:
        """Remembered regions that none of this frame's face regions accounts for (one face
        accounts for one region), grown by how long they have gone unseen."""
        current = [np.asarray(r, np.float64) for r in regions]
        return self._unmatched(_assign(self._entries, current))

    def update(self, regions: Iterable[np.ndarray], detected: bool, now_ms: float) -> None:
        """Take this frame's face regions; age the rest (a detection that misses counts)."""
        self.observe(regions, detected, now_ms)

    def observe(self, regions: Iterable[np.ndarray], detected: bool,
                now_ms: float) -> list[np.ndarray]:
        """`unconfirmed` then `update`, matching this frame's faces to the memory once."""
        current = [np.asarray(r, np.float64) for r in regions]
        matched = _assign(self._entries, current)
        left = self._unmatched(matched)
        kept: list[_Remembered] = []
        for i, entry in enumerate(self._entries):
            if i in matched:
                continue  # replaced by the face seen now
            entry.unseen += 1
            if detected:
                entry.misses += 1
            gone = (entry.misses >= self.forget_after
                    and now_ms - entry.last_seen_ms >= self.forget_ms)
            if not gone:
                kept.append(entry)
        kept.extend(_Remembered(r.copy(), now_ms) for r in current)
        self._entries = kept
        return left

    def _unmatched(self, matched: dict[int, int]) -> list[np.ndarray]:
        return [_grown(e.region, min(_GROWTH_PER_FRAME * (e.unseen + 1), _MAX_GROWTH))
                for i, e in enumerate(self._entries) if i not in matched]


def _grown(region: np.ndarray, fraction: float) -> np.ndarray:
    w, h = region[2] - region[0], region[3] - region[1]
    dx, dy = w * fraction / 2.0, h * fraction / 2.0
    return np.array([region[0] - dx, region[1] - dy, region[2] + dx, region[3] + dy])


# --- covering --------------------------------------------------------------------------------


def clip_box(region: np.ndarray, shape: tuple[int, ...]) -> Box | None:
    """The region in whole frame pixels, clipped to the frame; None when nothing is left."""
    h, w = shape[:2]
    x0, y0 = max(int(np.floor(region[0])), 0), max(int(np.floor(region[1])), 0)
    x1, y1 = min(int(np.ceil(region[2])), w), min(int(np.ceil(region[3])), h)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def cover(frame: np.ndarray, box: Box, style: str, blocks: int) -> None:
    """Cover `box` of `frame` in place: a coarse pixelation (about `blocks` cells across its
    longer side) or a flat fill with its mean colour. Either leaves no identity to read.

    The colours come from a strided sample of the region (a cell's mean needs no more than a
    few hundred pixels) and each band of cells is one pixel row repeated down, so the cost is
    about one write of the region, not a resize of it (scripts/bench_privacy.py)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cells = 1 if style == "fill" else max(int(blocks), 1)
    cw = max(1, round(cells * w / max(w, h)))
    ch = max(1, round(cells * h / max(w, h)))
    step = max(1, min(w // (cw * _SAMPLES_PER_CELL), h // (ch * _SAMPLES_PER_CELL)))
    sample = np.ascontiguousarray(frame[y0:y1:step, x0:x1:step])
    colours = cv2.resize(sample, (cw, ch), interpolation=cv2.INTER_AREA).reshape(ch, cw, -1)
    widths = np.diff(np.linspace(x0, x1, cw + 1).round().astype(int))
    ys = np.linspace(y0, y1, ch + 1).round().astype(int)
    for j in range(ch):  # one band of cells at a time: a row of pixels, repeated down
        frame[ys[j]:ys[j + 1], x0:x1] = np.repeat(colours[j], widths, axis=0)


def neutral_frame(shape: tuple[int, ...], text: str) -> np.ndarray:
    """A dark grey frame of `shape` with a caption: sent when nothing about the picture can
    be trusted (models loading, a failure with no idea where the faces are)."""
    frame = np.full(shape, _NEUTRAL_GREY, np.uint8)
    scale = max(frame.shape[1] / 960.0, 0.3)
    thickness = max(int(2 * scale), 1)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    if tw > frame.shape[1] * 0.95:  # a small frame: shrink the caption to fit its width
        scale *= frame.shape[1] * 0.95 / tw
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    org = (max((frame.shape[1] - tw) // 2, 0), (frame.shape[0] + th) // 2)
    cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (220, 220, 220), thickness,
                cv2.LINE_AA)
    return frame


# --- the guard -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Held:
    frame: np.ndarray
    t: float


class PrivacyGuard:
    """The output thread's last stage before the sinks (see the module docstring).

    `guard(packet)` replaces `packet.frame` with what viewers may see and sets
    `packet.privacy`; it keeps state between frames (face memory, the held frame), so one
    guard serves one stream, on one thread.
    """

    def __init__(self, config: PrivacyConfig | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or PrivacyConfig()
        self._clock = clock
        self._memory = FaceMemory(self.config.forget_after, self.config.forget_ms)
        self._shape: tuple[int, ...] | None = None
        self._held: _Held | None = None
        # one neutral frame per (shape, caption), drawn once: sinks only read their frames
        self._neutral: dict[tuple[tuple[int, ...], str], np.ndarray] = {}
        self._box_masks: dict[tuple[int, float, float], np.ndarray] = {}
        self._face_masks = FaceMaskCache()
        if self.config.policy == "off":
            log.warning("privacy guard off: wherever a swap fails (a turned face, a missed "
                        "detection, a model error, start-up) viewers see your real face")

    def reset(self) -> None:
        """Forget remembered faces and the held frame (e.g. when the input changes)."""
        self._memory.clear()
        self._held = None

    def guard(self, packet: FramePacket) -> None:
        packet.privacy = self._decide(packet)

    # -- decisions ------------------------------------------------------------------------------

    def _decide(self, packet: FramePacket) -> PrivacyVerdict:
        if packet.frame.shape != self._shape:  # a new input size: old places mean nothing
            self.reset()
            self._shape = packet.frame.shape
        if not packet.source_ok:  # a "no signal" frame: made by the pipeline, no camera picture
            return PrivacyVerdict(GuardAction.PASS)
        if not packet.settings.swap_enabled:
            self._remember(packet)
            self._held = None
            return PrivacyVerdict(GuardAction.REVEAL, (HideReason.SWAP_OFF,))
        if self.config.policy == "off":
            return PrivacyVerdict(GuardAction.PASS)
        if not packet.located:
            return self._unknown_faces(packet)
        return self._known_faces(packet)

    def _unknown_faces(self, packet: FramePacket) -> PrivacyVerdict:
        """The engine did not locate faces on this frame: start-up, or a failure before or in
        the locator. Where faces are now is unknown (a remembered place misses a face that
        moved or came in meanwhile), so nothing of the picture goes out."""
        if not packet.errors:
            return self._full_cover(packet, HideReason.STARTUP,
                                    "LiveFusion: waiting for the face swap (add a source face)")
        return self._full_cover(packet, HideReason.ERROR, "LiveFusion: face hidden")

    def _known_faces(self, packet: FramePacket) -> PrivacyVerdict:
        pad = self.config.pad
        failed = bool(packet.errors)
        to_hide: list[tuple[np.ndarray, HideReason]] = []
        seen: list[np.ndarray] = []
        for face in packet.faces:
            region = face_region(face, pad)
            seen.append(region)
            reason = self._face_reason(face, failed, packet.settings, packet.frame.shape)
            if reason is not None:
                to_hide.append((region, reason))
                face.hidden = True
        for face in packet.unswappable:
            region = face_region(face, pad)
            seen.append(region)
            to_hide.append((region, HideReason.NO_SWAP))
            face.hidden = True
        # (a scene cut does not clear the memory: a "cut" may be the lights going on, and the
        # detection on that frame may miss the face still there; old places fade by time)
        lost = self._memory.observe(seen, packet.detected, packet.t_capture_ns / 1e6)
        to_hide += [(r, HideReason.TRACK_LOST) for r in lost]
        if to_hide:
            return self._hide(packet, to_hide)
        if packet.faces and packet.settings.opacity < self.config.min_opacity:
            # the user's own choice, like swap off: shown (banner), counted, never remembered
            return PrivacyVerdict(GuardAction.REVEAL, (HideReason.LOW_OPACITY,))
        self._keep_good(packet)
        return PrivacyVerdict(GuardAction.PASS)

    def _face_reason(self, face: Face, failed: bool, settings: LiveSettings,
                     packet_shape: tuple[int, ...] | None = None) -> HideReason | None:
        """Why this located face must be covered, or None when its swap may be shown."""
        if failed:
            return HideReason.ERROR
        if face.unselected and not self.config.hide_unselected:
            return None
        if face.swapped_crop is None:
            return HideReason.NO_SWAP
        if self.mask_weight(face, packet_shape, settings) < self.config.min_mask_weight:
            return HideReason.NO_SWAP  # the blend mask leaves the eyes, nose or mouth real
        detail = gate_reason(face, self.config)
        if detail:
            log.debug("face %d hidden: %s", face.track_id, detail)
            return HideReason.NO_SWAP
        return None

    def mask_weight(self, face: Face, frame_shape: tuple[int, ...] | None,
                    settings: LiveSettings) -> float:
        """The blend mask's least weight at the face's keypoints (eyes, nose, and the mouth
        corners unless the mode keeps the user's mouth), mapped into its crop: the lower, the
        more of the real features shows. Without a crop matrix the swap template's points
        stand in for the keypoints."""
        size = int(face.swapped_crop.shape[0])
        options = MaskOptions.from_settings(settings)
        if options.uses_landmarks and face.landmarks is not None and face.crop_matrix is not None:
            mask = self._face_masks.get(size, options, to_crop(face.landmarks, face.crop_matrix))
        else:
            key = (size, float(options.box_erode), float(options.box_blur))
            if key not in self._box_masks:
                self._box_masks = {key: crop_mask(size, replace(options, mode=MaskMode.BOX), None)}
            mask = self._box_masks[key]
        if face.crop_matrix is not None:
            points = to_crop(face.kps, face.crop_matrix)
            if frame_shape is not None:
                support = frame_support(frame_shape, face.crop_matrix, size)
                mask = mask if support is None else mask * support
        else:
            points = template_points(SWAP_TEMPLATE, size)
        if options.keeps_mouth and face.landmarks is not None:
            points = points[:3]  # eyes and nose: the mouth is the user's own on purpose
        points = np.clip(np.round(points).astype(int), 0, size - 1)
        return float(mask[points[:, 1], points[:, 0]].min())

    def _remember(self, packet: FramePacket) -> None:
        if packet.located:
            pad = self.config.pad
            self._memory.update([face_region(f, pad) for f in packet.faces + packet.unswappable],
                                packet.detected, packet.t_capture_ns / 1e6)

    # -- actions --------------------------------------------------------------------------------

    def _hide(self, packet: FramePacket,
              regions: list[tuple[np.ndarray, HideReason]]) -> PrivacyVerdict:
        reasons = tuple(dict.fromkeys(reason for _, reason in regions))
        held = self._hold(packet)
        if held is not None:
            packet.frame = held
            for face in packet.faces + packet.unswappable:
                face.hidden = True  # none of this frame's faces is shown
            return PrivacyVerdict(GuardAction.HOLD, reasons)
        frame = packet.frame
        if frame is packet.original or not frame.flags.writeable:
            frame = frame.copy()  # the captured picture stays as it was (before/after views)
        boxes = []
        for region, _ in regions:
            box = clip_box(region, frame.shape)
            if box is not None:
                cover(frame, box, self.config.style, self.config.blocks)
                boxes.append(box)
        packet.frame = frame
        return PrivacyVerdict(GuardAction.HIDE, reasons, tuple(boxes))

    def _full_cover(self, packet: FramePacket, reason: HideReason, text: str) -> PrivacyVerdict:
        for face in packet.faces + packet.unswappable:
            face.hidden = True
        held = self._hold(packet)
        if held is not None:
            packet.frame = held
            return PrivacyVerdict(GuardAction.HOLD, (reason,))
        key = (packet.frame.shape, text)
        if key not in self._neutral:
            self._neutral = {key: neutral_frame(packet.frame.shape, text)}
        packet.frame = self._neutral[key]
        h, w = packet.frame.shape[:2]
        return PrivacyVerdict(GuardAction.START, (reason,), ((0, 0, w, h),))

    def _hold(self, packet: FramePacket) -> np.ndarray | None:
        """The last good frame, under policy hold while it is recent enough and fits."""
        held = self._held
        if self.config.policy != "hold" or held is None:
            return None
        if (self._clock() - held.t) * 1000.0 > self.config.hold_ms:
            return None
        if held.frame.shape != packet.frame.shape:
            return None
        return held.frame

    def _keep_good(self, packet: FramePacket) -> None:
        if self.config.policy == "hold":
            self._held = _Held(packet.frame.copy(), self._clock())
