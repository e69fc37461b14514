"""Detect every N frames, follow faces with optical flow in between, smooth with a filter.

`TrackingLocator` is the `FaceLocator` the inference stage uses:

- Full detection runs on a frame when N camera frames (`packet.settings.detect_every`, counted
  in capture sequence numbers, so frames dropped under load count too) have passed since the
  last one, and at once on the same frame when any track's flow fails
  (forward-backward error, too few inliers, implausible motion, leaving the frame, NaN).
  Without tracks it still detects every N frames, so a new face appears within N frames.
- On every frame each track is moved by optical flow (`livefusion.face.flow`), which gives its
  filter the measured motion; on detection frames the matched detection is fused on top (each
  with its own noise, see `livefusion.face.filters`).
- Detections are matched to tracks by keypoint distance relative to the face size (Hungarian
  assignment); matched tracks keep their id, unmatched detections start new tracks, a track no
  detection confirms is dropped after `max_missed` detection frames.
- Fail-closed cadence (the privacy guard relies on it): while no face is tracked it detects
  every `idle_detect_every` frames (default every frame: a face entering is found at once, and
  with no face to swap the detector has the GPU to itself); after a detection left a track
  unconfirmed it detects again on the next frame (a ghost track on a face that has gone, or
  is covered by a hand, lasts a frame or two, not N); on a scene cut (`livefusion.face.scene`) it drops every
  track and detects on that very frame, and it detects at once when the picture changes in
  the frame's outer band away from the tracked faces (something is coming in).
- Faces the detector stops confirming: a track a detection did not confirm is not shown on
  that frame (no ghost over a hand; it waits unseen for the recheck on the next frame). Flow
  that keeps under DOUBT_INLIER_FRACTION of its points detects at once. A dropped track is
  remembered REMEMBER_FRAMES camera frames: meanwhile every frame is detected (a face back
  from behind a hand is picked up at once) and a detection where it was gets its id back.
- Fast motion: while a face moves more than FAST_MOTION_IOD of its eye distance per frame it
  is detected on every frame (flow and the filter trail a fast head), then the cadence
  returns.
- Corrections: a detection that disagrees with the shown position by under
  MAX_EASED_CORRECTION is eased in over the frames to the next detection, but a still face
  moves at most STILL_EASE_PX per frame (the detector's pose-dependent bias right after a
  stop is blended in over several frames instead of snapping).
- With `swap_score` / `swap_min_face` / `swap_max_faces` set, the detector runs with looser
  limits: detections scoring below `swap_score`, smaller than `swap_min_face` or past the best
  `swap_max_faces` are never tracked or swapped; they go to `packet.unswappable`, for the
  guard to hide.

Work is recorded with `packet.timed("detect")` (the detector) and `packet.timed("track")`
(flow, filtering, matching), so the per-stage tables show both.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.optimize import linear_sum_assignment

from livefusion.config import TrackingConfig
from livefusion.face.filters import KeypointFilter, make_filter
from livefusion.face.flow import FaceFlow, apply_to_box, apply_to_points
from livefusion.face.scene import CutDetector
from livefusion.face.types import Detector
from livefusion.packet import Face, FramePacket

log = logging.getLogger(__name__)

# A detection matches a track when their keypoints lie this close, on average, relative to
# the track's face size (longer box side). Neighbouring faces are a face width or more apart.
DEFAULT_MATCH_DISTANCE = 0.5
# A moved face whose box keeps less than this fraction of its area inside the frame is lost.
MIN_VISIBLE_FRACTION = 0.6
# A detector correction larger than this (mean point shift / inter-ocular distance) is shown
# at once instead of eased in: it is a real jump (re-acquired face), not noise.
MAX_EASED_CORRECTION = 0.1
# How fast an eased correction may move a face per frame (px, largest point): this much on a
# still face, plus EASE_MOTION_SHARE of the face's own motion on this frame (a correction
# riding on motion is not seen). A keyframe detection that disagrees with flow by 5 px right
# after a stop (a detector's pose-dependent bias) is then blended in over 10 frames at
# 0.5 px each, instead of 1.3 px steps over the N frames to the next detection.
STILL_EASE_PX = 0.5
EASE_MOTION_SHARE = 0.5
# Flow that keeps less than this fraction of the points it followed as inliers is in doubt
# (a hand sliding over the face, the face turning away): detect at once instead of carrying
# a possible ghost to the next keyframe. Followed faces keep 0.8-1.0 of their points.
DOUBT_INLIER_FRACTION = 0.5
# A face moving faster than this (largest point motion per frame / inter-ocular distance) is
# detected on every frame while it does: flow and the filter trail a fast head by a few
# hundredths of its eye distance (30 % more error than the detector at 1080p), and a
# correction applied while the head moves is not seen. Slow motion keeps the cadence.
FAST_MOTION_IOD = 0.08
# A dropped track is remembered this many camera frames: while any is, every frame is
# detected (the face coming back from behind a hand is picked up at once), and a detection
# where it was takes its id again (ids kept across short occlusions).
REMEMBER_FRAMES = 15
# A detection takes a remembered id when its box overlaps the remembered box this much.
REMEMBER_IOU = 0.3

FilterFactory = Callable[[np.ndarray], KeypointFilter]


@dataclass
class _Track:
    track_id: int
    filter: KeypointFilter
    flow: FaceFlow
    raw_box: np.ndarray  # latest measured box (detector, then moved by flow)
    raw_kps: np.ndarray  # the keypoints raw_box belongs to
    score: float
    origin: str = "detect"
    missed: int = 0
    lost: str = ""  # why flow failed on this frame, empty while fine
    age: int = 0
    speed: float = 0.0  # largest point motion on the latest frame / inter-ocular distance
    # What is shown = filter estimate + offset; a detector correction is eased in over the
    # frames up to the next detection, slower where the face is still (see `ease`).
    offset: np.ndarray = field(default_factory=lambda: np.zeros((5, 2)))
    offset_left: int = 0

    def shown(self) -> np.ndarray:
        return self.filter.kps + self.offset

    def ease(self, motion_px: float = 0.0) -> None:
        """One frame of easing in the last detector correction: the remaining offset spread
        over the frames left, each point moved at most STILL_EASE_PX + EASE_MOTION_SHARE x
        `motion_px` (the face's motion on this frame); what the limit holds back is eased on
        the next frames."""
        if self.offset_left <= 0:
            return
        step = self.offset / self.offset_left
        largest = float(np.linalg.norm(step, axis=1).max())
        limit = STILL_EASE_PX + EASE_MOTION_SHARE * max(float(motion_px), 0.0)
        if largest > limit:
            step = step * (limit / largest)
        self.offset = self.offset - step
        if float(np.linalg.norm(self.offset, axis=1).max()) < 1e-3:
            self.offset, self.offset_left = np.zeros((5, 2)), 0
        else:
            self.offset_left = max(self.offset_left - 1, 1)

    def face(self) -> Face:
        kps = self.shown()
        return Face(bbox=_box_following(self.raw_box, self.raw_kps, kps),
                    kps=kps.astype(np.float32), score=self.score, track_id=self.track_id,
                    origin=self.origin)


@dataclass
class TrackingStats:
    """Counters for benchmarks and logs (they survive `reset()`)."""

    frames: int = 0
    detector_calls: int = 0
    forced_detections: int = 0  # detections run early because a track was lost
    rechecks: int = 0  # detections run early because the last one dropped a track
    cuts: int = 0  # scene cuts seen (tracks dropped, detection at once)
    edge_detections: int = 0  # detections run early for motion at the frame's edge
    doubt_detections: int = 0  # detections run early because flow kept few of its points
    fast_detections: int = 0  # detections run early because a face moves fast
    ids_restored: int = 0  # faces that came back within REMEMBER_FRAMES and kept their id
    tracks_started: int = 0
    lost: Counter = field(default_factory=Counter)  # reason -> count


class TrackingLocator:
    """FaceLocator that detects every N frames and tracks with flow + a filter in between.

    use_flow=False detects on every frame and only filters (the "detect every frame + filter"
    baseline of the evaluation); with filter "none" as well it returns raw detections.
    """

    def __init__(self, detector: Detector, config: TrackingConfig | None = None, *,
                 max_missed: int = 1, match_distance: float = DEFAULT_MATCH_DISTANCE,
                 use_flow: bool = True, ease_corrections: bool = True,
                 filter_factory: FilterFactory | None = None,
                 flow_factory: Callable[[], FaceFlow] | None = None,
                 cut_detector: CutDetector | None = None,
                 swap_score: float | None = None,
                 swap_min_face: float = 0.0,
                 swap_max_faces: int | None = None,
                 idle_detect_every: int = 1) -> None:
        self.detector = detector
        self.config = config or TrackingConfig()
        self.max_missed = int(max_missed)
        self.match_distance = float(match_distance)
        self.use_flow = bool(use_flow)
        self.ease_corrections = bool(ease_corrections)
        self._make_filter: FilterFactory = filter_factory or (
            lambda kps: make_filter(self.config, kps))
        self._make_flow = flow_factory or (lambda: FaceFlow(
            max_fb_error=self.config.max_fb_error, min_inliers=self.config.min_inliers))
        self.cut_detector = cut_detector
        self.swap_score = swap_score
        self.swap_min_face = float(swap_min_face)
        self.swap_max_faces = swap_max_faces
        self.idle_detect_every = max(1, int(idle_detect_every))
        self.stats = TrackingStats()
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._since_detect: int | None = None  # None: detect on the next frame
        self._detect_seq = 0  # capture seq of the last detection (camera frames, not processed)
        self._frame_shape: tuple[int, ...] | None = None
        self._seq = 0  # capture seq of the frame being located
        self._gone: list[tuple[int, np.ndarray, int]] = []  # (id, last box, seq dropped)
        self._doubt = False  # flow on this frame kept few of its points

    @property
    def detector_calls(self) -> int:
        return self.stats.detector_calls

    def reset(self) -> None:
        """Forget all tracks; the next frame is detected. Ids keep counting up."""
        self._tracks = []
        self._gone = []
        self._since_detect = None
        self._frame_shape = None
        if self.cut_detector is not None:
            self.cut_detector.reset()

    def locate(self, packet: FramePacket) -> list[Face]:
        frame = packet.frame
        every = max(1, int(packet.settings.detect_every))
        if frame.shape != self._frame_shape:
            self.reset()
            self._frame_shape = frame.shape
        self.stats.frames += 1
        gap = max(1, packet.seq - self._seq)  # camera frames since the last located one
        self._seq = packet.seq
        self._gone = [g for g in self._gone if packet.seq - g[2] <= REMEMBER_FRAMES]
        with packet.timed("track"):
            cut = self.cut_detector is not None and self.cut_detector.is_cut(frame)
            if cut:
                self.stats.cuts += 1
                self._tracks = []
                self._gone = []  # a new scene: nobody there is coming back
                self._since_detect = None
                packet.scene_cut = True
            lost = self._follow(frame, gap)
            arriving = (self.cut_detector is not None and bool(self._tracks)
                        and self.cut_detector.edge_motion([t.raw_box for t in self._tracks]))
        if arriving:
            self._since_detect = None
            self.stats.edge_detections += 1
        elif self._doubt and not lost:
            self._since_detect = None
            self.stats.doubt_detections += 1
        if not self._tracks:
            every = min(every, self.idle_detect_every)
        if self._gone:  # a face dropped lately may come back any frame: look on every one
            every = 1
        if every > 1 and any(t.speed > FAST_MOTION_IOD for t in self._tracks):
            every = 1
            self.stats.fast_detections += 1
        # Due after N camera frames (capture seq), however many were processed: when
        # inference is slower than the camera, flow never bridges more than N frames' time.
        due = (not self.use_flow or self._since_detect is None
               or self._since_detect + 1 >= every or packet.seq - self._detect_seq >= every)
        if due or lost:
            if lost and not due:
                self.stats.forced_detections += 1
            with packet.timed("detect"):
                detections = self.detector.detect(frame)
            self.stats.detector_calls += 1
            swappable, packet.unswappable = self._split(_usable(detections, frame.shape))
            with packet.timed("track"):
                unconfirmed = self._absorb(frame, swappable, every)
            packet.detected = True
            self._detect_seq = packet.seq
            # a track the detector did not confirm: look again on the next frame, so a ghost
            # (a hand now covering the face) goes within a frame or two, not N, and a face
            # missed once is picked up again before the guard forgets where it was
            self._since_detect = None if unconfirmed else 0
            if unconfirmed:
                self.stats.rechecks += 1
        else:
            self._since_detect = (self._since_detect or 0) + 1
        # A track the last detection did not confirm is kept for the recheck on the next
        # frame, but not shown: no ghost on a face the detector no longer sees (the guard
        # covers the place it was).
        return [t.face() for t in self._tracks if t.missed == 0]

    def _split(self, detections: list[Face]) -> tuple[list[Face], list[Face]]:
        """(detections that may be swapped, those only the guard's looser limits let in: a
        score under `swap_score`, a face side under `swap_min_face`, or past the best
        `swap_max_faces`)."""
        keep, low = [], []
        for det in sorted(detections, key=lambda d: -d.score):
            small = min(det.width, det.height) < self.swap_min_face
            weak = self.swap_score is not None and det.score < self.swap_score
            full = self.swap_max_faces is not None and len(keep) >= self.swap_max_faces
            (low if small or weak or full else keep).append(det)
        return keep, low

    # -- flow between detections -------------------------------------------------------------

    def _follow(self, frame: np.ndarray, gap: int = 1) -> bool:
        """Move every track by flow (`gap` camera frames since the last frame); returns True
        when any track was lost."""
        any_lost = False
        self._doubt = False
        for track in self._tracks:
            track.age += 1
            if not self.use_flow:
                track.filter.predict()
                track.ease()
                continue
            before = track.filter.kps
            track.lost = self._flow_step(track, frame)
            if track.lost:
                track.filter.predict()  # the motion model carries it until the detector
            motion = float(np.linalg.norm(track.filter.kps - before, axis=1).max())
            track.speed = 0.0 if track.lost else motion / gap / max(
                float(np.hypot(*(before[1] - before[0]))), 1.0)
            track.ease(motion)
            if track.lost:
                self.stats.lost[track.lost] += 1
                log.debug("track %d lost: %s", track.track_id, track.lost)
                any_lost = True
        return any_lost

    def _flow_step(self, track: _Track, frame: np.ndarray) -> str:
        """Move a track by flow and advance its filter; returns why flow failed, or ''."""
        result = track.flow.step(frame)
        if not result.ok or result.matrix is None:
            return result.reason or "flow failed"
        if result.tried and result.inliers < DOUBT_INLIER_FRACTION * result.tried:
            self._doubt = True
        previous = track.filter.kps
        kps = apply_to_points(result.matrix, previous)
        raw_kps = apply_to_points(result.matrix, track.raw_kps)
        box = apply_to_box(result.matrix, track.raw_box)
        if not (np.all(np.isfinite(kps)) and np.all(np.isfinite(box))):
            return "flow gave non-finite keypoints"
        if _visible_fraction(box, frame.shape) < MIN_VISIBLE_FRACTION:
            return "face left the frame"
        track.filter.predict(kps - previous)
        track.raw_box, track.raw_kps = box, raw_kps
        track.origin = "track"
        return ""

    # -- detection ---------------------------------------------------------------------------

    def _absorb(self, frame: np.ndarray, detections: list[Face], every: int) -> bool:
        """Match detections to tracks, update or start tracks, drop the unconfirmed; returns
        True when a track went unconfirmed (kept for one more look, or dropped)."""
        pairs = self._match(detections)
        matched_tracks = {ti for ti, _ in pairs}
        matched_dets = {di for _, di in pairs}
        kept: list[_Track] = []
        for ti, di in pairs:
            track, det = self._tracks[ti], detections[di]
            shown = track.shown()
            track.filter.update(det.kps)
            self._ease_in(track, shown, every)
            track.lost = ""
            track.raw_box = np.asarray(det.bbox, np.float32).copy()
            track.raw_kps = np.asarray(det.kps, np.float64).copy()
            track.score = float(det.score)
            track.origin = "detect"
            track.missed = 0
            if self.use_flow:  # keeps the points flow followed into this frame
                track.flow.rebox(frame, track.raw_box)
            kept.append(track)
        unconfirmed = False
        for ti, track in enumerate(self._tracks):
            if ti in matched_tracks:
                continue
            track.missed += 1
            unconfirmed = True
            if track.lost or track.missed > self.max_missed or not self.use_flow:
                # dropped (without flow nothing would carry it to the next frame); remembered
                self._gone.append((track.track_id, track.raw_box.copy(), self._seq))
                continue
            kept.append(track)  # flow already moved its reference to this frame
        for di, det in enumerate(detections):
            if di not in matched_dets:
                kept.append(self._new_track(frame, det, {t.track_id for t in kept}))
        kept.sort(key=lambda t: t.track_id)
        self._tracks = kept
        return unconfirmed

    def _ease_in(self, track: _Track, shown: np.ndarray, every: int) -> None:
        """Spread the detector's correction over the frames until the next detection, so a
        still face does not jump every N frames (flow carries the motion meanwhile)."""
        track.offset_left = 0
        track.offset = np.zeros((5, 2))
        if not (self.use_flow and self.ease_corrections) or track.lost or every < 2:
            return
        correction = shown - track.filter.kps
        iod = max(float(np.hypot(*(shown[1] - shown[0]))), 1.0)
        if np.linalg.norm(correction, axis=1).mean() > MAX_EASED_CORRECTION * iod:
            return
        track.offset = correction
        track.offset_left = every

    def _match(self, detections: list[Face]) -> list[tuple[int, int]]:
        """(track index, detection index) pairs, Hungarian on relative keypoint distance."""
        if not self._tracks or not detections:
            return []
        cost = np.empty((len(self._tracks), len(detections)))
        for ti, track in enumerate(self._tracks):
            kps = track.filter.kps
            size = max(float(track.raw_box[2] - track.raw_box[0]),
                       float(track.raw_box[3] - track.raw_box[1]), 1.0)
            for di, det in enumerate(detections):
                dist = np.linalg.norm(np.asarray(det.kps, np.float64) - kps, axis=1).mean()
                cost[ti, di] = dist / size
        rows, cols = linear_sum_assignment(cost)
        return [(int(r), int(c)) for r, c in zip(rows, cols)
                if cost[r, c] <= self.match_distance]

    def _new_track(self, frame: np.ndarray, det: Face, live: set[int] | None = None) -> _Track:
        flow = self._make_flow()
        box = np.asarray(det.bbox, np.float32).copy()
        if self.use_flow:
            flow.start(frame, box)
        track_id = self._remembered_id(box, live or set())
        if track_id is None:
            track_id = self._next_id
            self._next_id += 1
        else:
            self.stats.ids_restored += 1
        track = _Track(track_id=track_id, filter=self._make_filter(det.kps), flow=flow,
                       raw_box=box, raw_kps=np.asarray(det.kps, np.float64).copy(),
                       score=float(det.score))
        self.stats.tracks_started += 1
        return track

    def _remembered_id(self, box: np.ndarray, live: set[int]) -> int | None:
        """The id of the remembered (recently dropped) track whose box overlaps `box` most,
        at least REMEMBER_IOU and not in `live`, taken out of the memory; None when none."""
        best, best_iou = None, REMEMBER_IOU
        for i, (track_id, old, _) in enumerate(self._gone):
            overlap = _iou(old, box)
            if overlap >= best_iou and track_id not in live:
                best, best_iou = i, overlap
        if best is None:
            return None
        return self._gone.pop(best)[0]


def _usable(detections: list[Face], shape: tuple[int, ...]) -> list[Face]:
    """Detections with finite, well-formed boxes and keypoints that touch the frame."""
    out = []
    for det in detections:
        kps = np.asarray(det.kps, np.float64)
        box = np.asarray(det.bbox, np.float64)
        if kps.shape != (5, 2) or box.shape != (4,):
            log.warning("detector returned a face with kps %s / bbox %s; ignored",
                        kps.shape, box.shape)
            continue
        if not (np.all(np.isfinite(kps)) and np.all(np.isfinite(box))):
            continue
        if box[2] - box[0] < 2 or box[3] - box[1] < 2 or _visible_fraction(box, shape) <= 0:
            continue
        side = max(box[2] - box[0], box[3] - box[1])
        if np.any(kps < box[:2] - side) or np.any(kps > box[2:] + side):
            log.warning("detector returned keypoints far outside their box; face ignored")
            continue
        out.append(det)
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = min(float(a[2]), float(b[2])) - max(float(a[0]), float(b[0]))
    ih = min(float(a[3]), float(b[3])) - max(float(a[1]), float(b[1]))
    inter = max(iw, 0.0) * max(ih, 0.0)
    union = (float(a[2] - a[0]) * float(a[3] - a[1]) + float(b[2] - b[0]) * float(b[3] - b[1])
             - inter)
    return inter / union if union > 0 else 0.0


def _visible_fraction(box: np.ndarray, shape: tuple[int, ...]) -> float:
    h, w = shape[:2]
    area = float(box[2] - box[0]) * float(box[3] - box[1])
    if not area > 0:
        return 0.0
    iw = min(float(box[2]), w) - max(float(box[0]), 0.0)
    ih = min(float(box[3]), h) - max(float(box[1]), 0.0)
    return max(iw, 0.0) * max(ih, 0.0) / area


def _box_following(box: np.ndarray, raw_kps: np.ndarray, kps: np.ndarray) -> np.ndarray:
    """The measured box moved by the shift and scale that take raw_kps to the filtered kps,
    so the box is as steady as the keypoints."""
    raw_c, kps_c = raw_kps.mean(axis=0), kps.mean(axis=0)
    raw_spread = np.sqrt(((raw_kps - raw_c) ** 2).sum(axis=1).mean())
    spread = np.sqrt(((kps - kps_c) ** 2).sum(axis=1).mean())
    scale = spread / raw_spread if raw_spread > 1e-6 else 1.0
    centre = (np.asarray(box[:2], np.float64) + box[2:]) / 2.0
    half = (np.asarray(box[2:], np.float64) - box[:2]) * scale / 2.0
    new_centre = kps_c + (centre - raw_c) * scale
    return np.concatenate([new_centre - half, new_centre + half]).astype(np.float32)
