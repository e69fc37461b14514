"""Measure face tracking: accuracy, jitter, lag and cost of detect-every-N + flow + filter.

    python -m livefusion.measure.tracking_eval [--clip PATH ...] [--resolution 1280x720,1920x1080]
                                       [--n 1..10] [--frames K]

On the ground-truth clip (`livefusion.measure.synthclip`, built here at each resolution) it prints,
per method:
  a    detection on every frame, raw
  b    detection on every frame + Kalman filter
  c N  detection every N frames + optical flow + Kalman filter
  d N  detection every N frames + optical flow, no filter (for N = --d-n)
with
  err     mean 5-point distance to the truth / true inter-ocular distance (frames with a face)
  err_mv  the same on moving frames only
  miss    frames without a face (%)
  jit_px  jitter on still segments: RMS of the second difference of the keypoints (px)
  lag_fr  mean error along the motion direction on moving frames (negative = trailing), in
          units of that frame's motion; raw detection is lag-free by construction, so its
          value is the detector's own bias; `lag-a` is a method's lag minus that of a
  det/fr  detector calls per frame
  trk_ms  tracking cost per face per frame (flow + filter + matching), median and p95
Real clips (`--clip`) have no truth: jitter over all frames and over the still frames (where
the raw detector's box centre, median-smoothed over 15 frames, moves under 0.2 % of the box
width per frame; on talking heads these frames still hold small real motion), the
mean distance to the raw detection (/ inter-ocular distance), detector calls and cost.
Above the table, `motion floor`: the jitter the face's own image motion has on those still
frames, i.e. what a tracker that follows the face exactly would show. It is measured by the
evaluation's own reference flow (full resolution, 200 corners, independent of the tracker's
`FaceFlow`) from the raw detection's keypoints; its sensor noise part is printed beside it
(from two disjoint halves of the corners). Jitter below the floor means smoothing away real
motion, so (c) / (a) cannot honestly go below floor / (a).

Detections are computed once per frame and reused by every method (a detector is a pure
function of the frame), so the table compares trackers on identical detector output.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence, TextIO

import cv2
import numpy as np

from livefusion.config import TrackingConfig, parse_resolution, set_value, AppConfig, ConfigError
from livefusion.face.track import TrackingLocator
from livefusion.face.types import Detector
from livefusion.packet import Face, FramePacket
from livefusion.settings import LiveSettings
from livefusion.measure.detectors import make_detector_factory
from livefusion.measure.synthclip import (DEFAULT_MODEL, DEFAULT_PHOTO, PATHS, SynthClip, load_photo,
                                  prepare_face)

log = logging.getLogger(__name__)

DEFAULT_N = tuple(range(1, 11))
DEFAULT_RESOLUTIONS = ("1280x720", "1920x1080")
MOVING_PX = 0.5  # a keypoint moving less than this per frame does not count as moving
FAST_FRACTION = 0.5  # "fast" frames: true speed at least this fraction of the clip's top speed
SETTLE_FRAMES = 3  # still frames right after motion left out of the step check (settling)
STILL_REAL = 0.002  # real clips: smoothed box-centre speed under this x box width = still


# -- detectors -----------------------------------------------------------------------------


class FrameCachedDetector:
    """Runs the real detector once per frame index and replays its answer afterwards.

    The caller sets `index` before each frame. `detect_ms` holds the real detector times.
    """

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.index = -1
        self.detect_ms: list[float] = []
        self._cache: dict[int, list[Face]] = {}

    def detect(self, frame: np.ndarray) -> list[Face]:
        if self.index not in self._cache:
            start = time.perf_counter()
            self._cache[self.index] = self.detector.detect(frame)
            self.detect_ms.append((time.perf_counter() - start) * 1e3)
        return [replace(f, bbox=f.bbox.copy(), kps=f.kps.copy()) for f in self._cache[self.index]]


# -- running a method ------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    label: str
    n: int
    filter: str  # "kalman" | "none"
    use_flow: bool


@dataclass
class Run:
    """One method over one clip: the chosen face's keypoints per frame (NaN when none)."""

    method: Method
    kps: np.ndarray  # (T, 5, 2)
    boxes: np.ndarray  # (T, 4)
    detector_calls: int
    track_ms_per_face: list[float] = field(default_factory=list)


def run_method(method: Method, frames: Callable[[int], np.ndarray], n_frames: int,
               detector: FrameCachedDetector, config: TrackingConfig, phase: int = 0) -> Run:
    """Run one method over the clip. `phase` frames of frame 0 go first (not measured), which
    shifts where the detect-every-N keyframes fall relative to the clip's motion."""
    from livefusion.config import PrivacyConfig
    from livefusion.face.scene import CutDetector

    cfg = replace(config, filter=method.filter)
    privacy = PrivacyConfig()  # the cut and edge watch the app builds (see app.build_engine)
    locator = TrackingLocator(detector, cfg, use_flow=method.use_flow,
                              cut_detector=CutDetector(privacy.cut_threshold,
                                                       edge_threshold=privacy.edge_threshold
                                                       or None),
                              idle_detect_every=cfg.idle_detect_every)
    settings = LiveSettings(detect_every=method.n)
    kps = np.full((n_frames, 5, 2), np.nan)
    boxes = np.full((n_frames, 4), np.nan)
    cost: list[float] = []
    for t in range(-phase, n_frames):
        detector.index = max(t, 0)
        packet = FramePacket(seq=t + phase, t_capture_ns=time.perf_counter_ns(),
                             frame=frames(max(t, 0)), settings=settings)
        faces = locator.locate(packet)
        if faces and t >= 0:
            face = max(faces, key=lambda f: f.area)
            kps[t], boxes[t] = face.kps, face.bbox
            cost.append(packet.timings_ms.get("track", 0.0) / len(faces))
    return Run(method, kps, boxes, locator.detector_calls, cost)


# -- metrics ---------------------------------------------------------------------------------


def second_difference_rms(kps: np.ndarray, frames: np.ndarray) -> float:
    """RMS length (px) of k[t+1] - 2 k[t] + k[t-1] over the given frames t (NaN-free only)."""
    frames = frames[(frames >= 1) & (frames < len(kps) - 1)]
    if frames.size == 0:
        return math.nan
    acc = kps[frames + 1] - 2 * kps[frames] + kps[frames - 1]
    sq = (acc ** 2).sum(axis=2)  # (F, 5)
    sq = sq[np.isfinite(sq).all(axis=1)]
    return float(np.sqrt(sq.mean())) if sq.size else math.nan


def normalised_error(kps: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(T,) mean 5-point distance / true inter-ocular distance (NaN where no face)."""
    iod = np.linalg.norm(truth[:, 1] - truth[:, 0], axis=1)
    return np.linalg.norm(kps - truth, axis=2).mean(axis=1) / iod


def lag_in_frames(kps: np.ndarray, truth: np.ndarray) -> float:
    """Mean signed error along each point's true motion, in units of its motion (moving
    points only); negative means the estimate trails the truth."""
    motion = truth[1:] - truth[:-1]  # motion into frame t = 1..T-1
    speed = np.linalg.norm(motion, axis=2)
    err = kps[1:] - truth[1:]
    ok = (speed > MOVING_PX) & np.isfinite(err).all(axis=2)
    if not ok.any():
        return math.nan
    along = (err * motion).sum(axis=2)[ok] / speed[ok]
    return float(along.sum() / speed[ok].sum())


def still_steps(kps: np.ndarray, still: np.ndarray, settle: int = SETTLE_FRAMES) -> np.ndarray:
    """Largest single-point move (px) from frame t-1 to t, for still frames t whose previous
    frame is still too, leaving out the first `settle` such frames after motion (settling
    after a stop is allowed); NaN-free only."""
    frames = []
    run = 0
    for t in range(1, len(kps)):
        run = run + 1 if (still[t] and still[t - 1]) else 0
        if run > settle:
            frames.append(t)
    idx = np.asarray(frames, np.int64)
    if idx.size == 0:
        return np.zeros(0)
    step = np.linalg.norm(kps[idx] - kps[idx - 1], axis=2).max(axis=1)
    return step[np.isfinite(step)]


def fast_frames(truth: np.ndarray) -> np.ndarray:
    """Frames whose true keypoint speed is at least FAST_FRACTION of the clip's top speed."""
    speed = np.zeros(len(truth))
    speed[1:] = np.linalg.norm(truth[1:] - truth[:-1], axis=2).mean(axis=1)
    return speed >= FAST_FRACTION * speed.max() if speed.max() > MOVING_PX else speed > np.inf


def moving_frames(truth: np.ndarray) -> np.ndarray:
    speed = np.zeros(len(truth))
    speed[1:] = np.linalg.norm(truth[1:] - truth[:-1], axis=2).mean(axis=1)
    return speed > MOVING_PX


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else math.nan


def still_frames_real(boxes: np.ndarray, window: int = 15) -> np.ndarray:
    """Real clips: frames where the raw detector's box centre, median-smoothed over `window`
    frames, moves under STILL_REAL x box width per frame."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    width = boxes[:, 2] - boxes[:, 0]
    half = window // 2
    smooth = np.full_like(centre, np.nan)
    for t in range(len(centre)):
        chunk = centre[max(0, t - half): t + half + 1]
        chunk = chunk[np.isfinite(chunk).all(axis=1)]
        if len(chunk):
            smooth[t] = np.median(chunk, axis=0)
    speed = np.full(len(centre), np.inf)
    speed[1:-1] = np.linalg.norm(smooth[2:] - smooth[:-2], axis=1) / 2.0
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(speed / width, nan=np.inf) < STILL_REAL


def reference_motion(frames: list[np.ndarray], boxes: np.ndarray,
                     kps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 5, 2) image motion of the keypoints from frame t-1 to t (row 0 and failures NaN),
    measured by full-resolution LK flow on up to 200 corners inside the box and a similarity
    fit; and the same from two disjoint halves of the corners, (T, 2, 5, 2), whose difference
    shows the measurement's own noise."""
    from livefusion.face.flow import apply_to_points

    motion = np.full((len(frames), 5, 2), np.nan)
    halves = np.full((len(frames), 2, 5, 2), np.nan)
    for t in range(1, len(frames)):
        box, pts = boxes[t - 1], kps[t - 1]
        if not (np.all(np.isfinite(box)) and np.all(np.isfinite(pts))):
            continue
        g0 = cv2.cvtColor(frames[t - 1], cv2.COLOR_BGR2GRAY)
        g1 = cv2.cvtColor(frames[t], cv2.COLOR_BGR2GRAY)
        w, h = box[2] - box[0], box[3] - box[1]
        mask = np.zeros_like(g0)
        mask[max(0, int(box[1] + 0.1 * h)):max(0, int(box[3] - 0.1 * h)),
             max(0, int(box[0] + 0.1 * w)):max(0, int(box[2] - 0.1 * w))] = 255
        p0 = cv2.goodFeaturesToTrack(g0, 200, 0.01, 4, mask=mask, blockSize=5)
        if p0 is None or len(p0) < 16:
            continue
        p1, st, _ = cv2.calcOpticalFlowPyrLK(g0, g1, p0, None, winSize=(15, 15), maxLevel=3)
        ok = st.ravel() == 1
        src, dst = p0[ok].reshape(-1, 2), p1[ok].reshape(-1, 2)
        for i, part in enumerate((slice(0, None, 2), slice(1, None, 2), slice(None))):
            if len(src[part]) < 8:
                continue
            m, _ = cv2.estimateAffinePartial2D(np.ascontiguousarray(src[part]),
                                               np.ascontiguousarray(dst[part]), method=cv2.RANSAC,
                                               ransacReprojThreshold=1.0)
            if m is None:
                continue
            moved = apply_to_points(m, pts) - pts
            if i < 2:
                halves[t, i] = moved
            else:
                motion[t] = moved
    return motion, halves


def motion_floor(motion: np.ndarray, halves: np.ndarray,
                 frames: np.ndarray) -> tuple[float, float]:
    """(jitter of the reference motion on `frames`, the part of it that is measurement noise):
    RMS of m[t+1] - m[t] (= the second difference of the followed keypoints), and sqrt(2) x
    the full set's motion noise estimated from the halves (noise of one half / sqrt(2))."""
    frames = frames[(frames >= 1) & (frames < len(motion) - 1)]
    acc = motion[frames + 1] - motion[frames]
    sq = (acc ** 2).sum(axis=2)
    sq = sq[np.isfinite(sq).all(axis=1)]
    floor = float(np.sqrt(sq.mean())) if sq.size else math.nan
    diff = ((halves[:, 0] - halves[:, 1]) ** 2).sum(axis=2)
    diff = diff[np.isfinite(diff).all(axis=1)]
    # var(half a - half b) = 2 var(half) = 4 var(full); m[t+1] - m[t] doubles it again.
    noise = float(np.sqrt(diff.mean() / 4.0 * 2.0)) if diff.size else math.nan
    return floor, noise


# -- tables ----------------------------------------------------------------------------------


def _fmt(value: float, digits: int) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.rjust(w) if i else cell.ljust(w)
                            for i, (cell, w) in enumerate(zip(row, widths))).rstrip() + "\n")


GT_HEADER = ["method", "N", "err", "/a", "err_mv", "err_fast", "/a", "miss%", "jit_px",
             "step_max", "lag_fr", "lag-a", "det/fr", "trk_ms_med", "trk_ms_p95"]
REAL_HEADER = ["method", "N", "jit_all_px", "jit_still_px", "/a", "dev_raw", "miss%", "det/fr",
               "trk_ms_med", "trk_ms_p95"]


def methods_for(ns: Iterable[int], d_n: int | None) -> list[Method]:
    out = [Method("a", 1, "none", False), Method("b", 1, "kalman", False)]
    out += [Method("c", n, "kalman", True) for n in ns]
    if d_n:
        out.append(Method("d", d_n, "none", True))
    return out


def evaluate_gt(clip: SynthClip, detector: FrameCachedDetector, methods: list[Method],
                config: TrackingConfig, out: TextIO,
                all_phases: bool = True) -> dict[str, dict[str, float]]:
    """Run every method on the ground-truth clip, print the table, return the figures. With
    `all_phases`, a detect-every-N method runs once per keyframe phase (0..N-1) and its row
    holds the worst phase's figures (a snap at a stop may happen in some phases only)."""
    truth = np.stack([clip.keypoints(t) for t in range(len(clip))])
    still_mask = clip.still()
    moving = moving_frames(truth)
    fast = fast_frames(truth)
    results: dict[str, dict[str, float]] = {}
    rows = [GT_HEADER]
    base: dict[str, float] = {}
    for method in methods:
        phases = range(method.n) if all_phases and method.use_flow else range(1)
        per_phase = [_gt_figures(run_method(method, clip.frame, len(clip), detector, config, p),
                                 truth, still_mask, moving, fast, base) for p in phases]
        figures = _worst(per_phase)
        if method.label == "a":
            base.update(err=figures["err"], err_fast=figures["err_fast"],
                        lag=figures["lag_frames"])
        results[f"{method.label}{method.n}"] = figures
        rows.append([method.label, str(method.n), _fmt(figures["err"], 4),
                     _fmt(figures["err_vs_a"], 3), _fmt(figures["err_moving"], 4),
                     _fmt(figures["err_fast"], 4), _fmt(figures["err_fast_vs_a"], 3),
                     _fmt(figures["miss_pct"], 1), _fmt(figures["jitter_px"], 3),
                     _fmt(figures["step_max_px"], 2), _fmt(figures["lag_frames"], 3),
                     _fmt(figures["lag_minus_a"], 3), _fmt(figures["det_per_frame"], 3),
                     _fmt(figures["track_ms_median"], 2), _fmt(figures["track_ms_p95"], 2)])
    _table(rows, out)
    return results


WORST_IS_LOWEST = ("lag_frames", "lag_minus_a")


def _worst(per_phase: list[dict[str, float]]) -> dict[str, float]:
    """Figures over all keyframe phases: the worst phase's for error, jitter and steps (the
    largest), the most negative lag, the mean detector rate and the pooled cost."""
    if len(per_phase) == 1:
        return per_phase[0]
    out: dict[str, float] = {}
    for key in per_phase[0]:
        values = [f[key] for f in per_phase]
        if key in WORST_IS_LOWEST:
            out[key] = float(np.nanmin(values))
        elif key == "det_per_frame":
            out[key] = float(np.mean(values))
        else:
            out[key] = float(np.nanmax(values))
    return out


def _gt_figures(run: Run, truth: np.ndarray, still_mask: np.ndarray, moving: np.ndarray,
                fast: np.ndarray, base: dict[str, float]) -> dict[str, float]:
    """One run's figures against the truth; `base` holds method a's err, err_fast and lag."""
    err = normalised_error(run.kps, truth)
    lag = lag_in_frames(run.kps, truth)
    mean_err = float(np.nanmean(err)) if np.isfinite(err).any() else math.nan
    fast_err = float(np.nanmean(err[fast])) if np.isfinite(err[fast]).any() else math.nan
    steps = still_steps(run.kps, still_mask)
    return {
        "err": mean_err,
        "err_vs_a": mean_err / base.get("err", mean_err),
        "err_moving": float(np.nanmean(err[moving])) if np.isfinite(err[moving]).any()
        else math.nan,
        "err_fast": fast_err,
        "err_fast_vs_a": fast_err / base.get("err_fast", fast_err),
        "miss_pct": 100.0 * float(np.mean(~np.isfinite(err))),
        "jitter_px": second_difference_rms(run.kps, np.flatnonzero(still_mask)),
        "step_max_px": float(steps.max()) if steps.size else math.nan,
        "lag_frames": lag,
        "lag_minus_a": lag - base.get("lag", lag),
        "det_per_frame": run.detector_calls / len(truth),
        "track_ms_median": percentile(run.track_ms_per_face, 50),
        "track_ms_p95": percentile(run.track_ms_per_face, 95),
    }


def read_clip(path: Path, max_frames: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise FileNotFoundError(f"cannot open clip {path}; pass a readable video file")
    frames: list[np.ndarray] = []
    try:
        while len(frames) < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        capture.release()
    if len(frames) < 3:
        raise ValueError(f"clip {path} has {len(frames)} readable frames; need at least 3")
    return frames


def evaluate_real(frames: list[np.ndarray], detector: FrameCachedDetector,
                  methods: list[Method], config: TrackingConfig,
                  out: TextIO) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    runs = [run_method(m, frames.__getitem__, len(frames), detector, config) for m in methods]
    raw = runs[0]
    still = np.flatnonzero(still_frames_real(raw.boxes))
    every = np.arange(len(frames))
    iod = np.linalg.norm(raw.kps[:, 1] - raw.kps[:, 0], axis=1)
    motion, halves = reference_motion(frames, raw.boxes, raw.kps)
    floor, floor_noise = motion_floor(motion, halves, still)
    raw_still = second_difference_rms(raw.kps, still)
    out.write(f"still frames: {still.size} of {len(frames)}; motion floor on them "
              f"{_fmt(floor, 3)} px (of which reference-flow noise {_fmt(floor_noise, 3)}), "
              f"floor / a = {_fmt(floor / raw_still, 2)}\n")
    results["floor"] = {"jitter_still_px": floor, "noise_px": floor_noise}
    rows = [REAL_HEADER]
    for run in runs:
        m = run.method
        dev = np.linalg.norm(run.kps - raw.kps, axis=2).mean(axis=1) / iod
        found = np.isfinite(run.kps).all(axis=(1, 2))
        figures = {
            "jitter_all_px": second_difference_rms(run.kps, every),
            "jitter_still_px": second_difference_rms(run.kps, still),
            "dev_raw": float(np.nanmean(dev)) if np.isfinite(dev).any() else math.nan,
            "miss_pct": 100.0 * float(np.mean(~found)),
            "det_per_frame": run.detector_calls / len(frames),
            "track_ms_median": percentile(run.track_ms_per_face, 50),
            "track_ms_p95": percentile(run.track_ms_per_face, 95),
        }
        results[f"{m.label}{m.n}"] = figures
        rows.append([m.label, str(m.n), _fmt(figures["jitter_all_px"], 3),
                     _fmt(figures["jitter_still_px"], 3),
                     _fmt(figures["jitter_still_px"] / raw_still, 2), _fmt(figures["dev_raw"], 4),
                     _fmt(figures["miss_pct"], 1), _fmt(figures["det_per_frame"], 3),
                     _fmt(figures["track_ms_median"], 2), _fmt(figures["track_ms_p95"], 2)])
    _table(rows, out)
    return results


# -- command line ----------------------------------------------------------------------------


def parse_n(text: str) -> tuple[int, ...]:
    """'1..10' or '1,2,5' -> N values (1..120)."""
    try:
        if ".." in text:
            lo, hi = (int(v) for v in text.split("..", 1))
            values = tuple(range(lo, hi + 1))
        else:
            values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--n {text!r}: use a range like 1..10 or a list 1,3,5")
    if not values or any(not 1 <= v <= 120 for v in values):
        raise argparse.ArgumentTypeError(f"--n {text!r}: values must lie in 1..120")
    return values


def tracking_config(overrides: Sequence[str]) -> TrackingConfig:
    config = AppConfig()
    for item in overrides:
        key, _, value = item.partition("=")
        key = key.strip()
        if not key.startswith("tracking."):
            key = f"tracking.{key}"
        set_value(config, key, value.strip())
    return config.tracking


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m livefusion.measure.tracking_eval",
        description="Landmark error, jitter, lag and cost of face tracking (see module doc).")
    parser.add_argument("--clip", type=Path, action="append", default=[],
                        help="a real video to measure too (repeatable)")
    parser.add_argument("--resolution", default=",".join(DEFAULT_RESOLUTIONS),
                        help="ground-truth clip sizes, comma separated")
    parser.add_argument("--n", type=parse_n, default=DEFAULT_N, help="detect-every values")
    parser.add_argument("--d-n", type=int, default=5,
                        help="N for the flow-without-filter row d (0 = leave it out)")
    parser.add_argument("--frames", type=int, default=300,
                        help="ground-truth clip length; most frames read from a real clip")
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO, help="face photo")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                        help="detector ONNX model (SCRFD, or YuNet with --detector yunet)")
    parser.add_argument("--detector", choices=("scrfd", "yunet"), default="scrfd")
    parser.add_argument("--det-size", type=int, default=0,
                        help="detector input side (0: the frame's own size, as the app does)")
    parser.add_argument("--path", choices=sorted(PATHS), default="default",
                        help="ground-truth motion: default (pauses, moves, turns, scale) or snap "
                             "(still, slow, fast with abrupt stops)")
    parser.add_argument("--noise", type=float, default=3.0, help="sensor noise (grey levels)")
    parser.add_argument("--no-gt", action="store_true", help="skip the ground-truth clip")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="tracking config override, e.g. --set process_noise=0.5")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        config = tracking_config(args.set)
        sizes = [parse_resolution(r) for r in args.resolution.split(",") if r.strip()]
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}")
    if args.frames < 3:
        raise SystemExit("error: --frames must be at least 3")
    detector_for = make_detector_factory(args.model, kind=args.detector)
    methods = methods_for(args.n, args.d_n or None)
    out.write(f"tracking config: {config}\n")
    if not args.no_gt:
        source = prepare_face(load_photo(args.photo), detector_for)
        for size in sizes:
            clip = SynthClip(source, size, args.frames, noise=args.noise, path=PATHS[args.path])
            detector = FrameCachedDetector(detector_for(args.det_size))
            out.write(f"\n== ground truth {size[0]}x{size[1]}, {len(clip)} frames, "
                      f"photo {args.photo.name}, path {args.path}, {args.model.name} at "
                      f"{args.det_size or 'full resolution'}, "
                      f"still frames {int(clip.still().sum())} ==\n")
            evaluate_gt(clip, detector, methods, config, out)
            out.write(f"detector ms median {percentile(detector.detect_ms, 50):.1f} "
                      f"p95 {percentile(detector.detect_ms, 95):.1f}\n")
    for path in args.clip:
        frames = read_clip(path, args.frames)
        h, w = frames[0].shape[:2]
        detector = FrameCachedDetector(detector_for(args.det_size))
        out.write(f"\n== clip {path.name} {w}x{h}, {len(frames)} frames ==\n")
        evaluate_real(frames, detector, methods, config, out)
    out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
