"""Moving a face from one frame to the next with sparse optical flow.

Only a small grayscale region around the face is ever converted and looked at, never the
whole frame. Corners are picked inside the face box of the previous frame
(`cv2.goodFeaturesToTrack`), followed into the current frame with pyramidal Lucas-Kanade
(`cv2.calcOpticalFlowPyrLK`), checked by tracking them back (forward-backward error), and a
similarity transform (rotation, uniform scale, translation) is fitted to the survivors with
RANSAC (`cv2.estimateAffinePartial2D`). That transform moves the five keypoints and the box.

Large faces are tracked on a downscaled copy of the region (shrunk by a power of two k, so the
face's longer side is about `work_size` px): the similarity fitted over dozens of corners stays
sub-pixel, and the cost no longer grows with the camera's resolution. Shrinking by two with
bilinear sampling averages exactly 2x2 pixels, so repeated halving is an exact k x k box
average, and costs a quarter of `INTER_AREA`'s general path.

On a detection frame the tracker hands the detector's box to `FaceFlow.rebox`: the points flow
has already followed into this frame are kept (new corners are picked only when too few lie in
the new box), so a detection frame costs no more than a flow frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# Region around the face box searched in the next frame, as a fraction of the box side on each
# side: motion up to about this much per frame can be followed.
DEFAULT_MARGIN = 0.3
# Faces are tracked on the region shrunk by a power-of-two factor k (exact pixel averaging) so
# that the face's longer side is about this many work pixels (between 0.7x and 1.4x of it).
DEFAULT_WORK_SIZE = 100
# A region's shrink factor is kept until the face's size is this many octaves off the ideal
# (0.5 would switch exactly at the midpoint between two powers of two).
SHRINK_HYSTERESIS = 0.75
# Largest plausible change between two frames; beyond it the fit is taken as wrong.
MAX_SCALE_STEP = 1.25
MAX_ROTATION_STEP_DEG = 20.0


@dataclass(frozen=True)
class FlowResult:
    """What one frame-to-frame flow step found.

    matrix: (2, 3) similarity mapping previous-frame pixels to current-frame pixels, or None.
    reason: empty when ok, else why the step failed (for logs and counters).
    """

    ok: bool
    matrix: np.ndarray | None
    points: int
    inliers: int
    fb_error: float
    reason: str = ""
    tried: int = 0  # points followed (inliers / tried falls when something covers the face)


@dataclass(frozen=True)
class _Region:
    """A grayscale copy of the rectangle x0:x1, y0:y1 of a frame, shrunk k times."""

    x0: int
    y0: int
    x1: int
    y1: int
    k: int
    gray: np.ndarray

    def contains(self, box: np.ndarray, margin: float, frame_shape: tuple[int, ...]) -> bool:
        """Whether the box with `margin` (fraction of its sides) around it lies inside the
        region, or reaches past the frame only where the region already meets its edge."""
        fh, fw = frame_shape[:2]
        w, h = box[2] - box[0], box[3] - box[1]
        return bool((box[0] - margin * w >= self.x0 or self.x0 == 0)
                    and (box[1] - margin * h >= self.y0 or self.y0 == 0)
                    and (box[2] + margin * w <= self.x1 or self.x1 >= fw - self.k + 1)
                    and (box[3] + margin * h <= self.y1 or self.y1 >= fh - self.k + 1))

    def to_work(self, pts: np.ndarray) -> np.ndarray:
        """Frame pixels -> work pixels (pixel centres: work pixel i covers k frame pixels)."""
        offset = np.array([self.x0, self.y0], np.float64)
        return ((np.asarray(pts, np.float64) - offset + 0.5) / self.k - 0.5).astype(np.float32)

    def to_frame(self, pts: np.ndarray) -> np.ndarray:
        offset = np.array([self.x0, self.y0], np.float64)
        return (np.asarray(pts, np.float64) + 0.5) * self.k - 0.5 + offset


def grab_region(frame: np.ndarray, x0: int, y0: int, x1: int, y1: int, k: int) -> _Region:
    """Gray copy of frame[y0:y1, x0:x1] shrunk k times (k a power of two, sides multiples
    of k): each work pixel is the mean of k x k frame pixels."""
    if k < 1 or k & (k - 1):
        raise ValueError(f"shrink factor must be a power of two, got {k}")
    roi = frame[y0:y1, x0:x1]
    gray = cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY) if roi.ndim == 3 else roi.copy()
    for _ in range(k.bit_length() - 1):
        # Exactly half each way: bilinear sampling lands midway between two pixels.
        gray = cv2.resize(gray, (gray.shape[1] // 2, gray.shape[0] // 2),
                          interpolation=cv2.INTER_LINEAR)
    return _Region(x0, y0, x1, y1, k, gray)


def region_around(frame_shape: tuple[int, ...], box: np.ndarray, margin: float,
                  work_size: int, current: int | None = None) -> tuple[int, int, int, int, int]:
    """Integer rectangle around `box` (clipped to the frame, sides multiples of k) and k
    (`shrink_factor`, keeping `current` when it still suits)."""
    h, w = frame_shape[:2]
    bw, bh = float(box[2] - box[0]), float(box[3] - box[1])
    k = shrink_factor(max(bw, bh), work_size, current)
    x0 = int(max(0, math.floor(box[0] - margin * bw)))
    y0 = int(max(0, math.floor(box[1] - margin * bh)))
    x1 = int(min(w, math.ceil(box[2] + margin * bw)))
    y1 = int(min(h, math.ceil(box[3] + margin * bh)))
    x1 = x0 + max(k, (x1 - x0) // k * k)
    y1 = y0 + max(k, (y1 - y0) // k * k)
    if x1 > w:
        x0, x1 = max(0, x0 - (x1 - w)), w
    if y1 > h:
        y0, y1 = max(0, y0 - (y1 - h)), h
    if (x1 - x0) % k or (y1 - y0) % k:  # frame smaller than one block: no shrinking
        k = 1
    return x0, y0, x1, y1, k


def shrink_factor(side: float, work_size: int, current: int | None = None) -> int:
    """The power of two k that brings `side` frame pixels nearest to `work_size` work pixels
    (in log scale), at least 1. A `current` k is kept while side / current stays within
    SHRINK_HYSTERESIS octaves of work_size, so a face whose size hovers at a boundary does
    not switch k (and re-grab its region) on every frame."""
    if not side > work_size:
        return 1
    if current is not None and current >= 1 \
            and abs(math.log2(side / (current * work_size))) <= SHRINK_HYSTERESIS:
        return current
        return 1
    return 1 << max(0, int(round(math.log2(side / work_size))))


def similarity_parts(matrix: np.ndarray) -> tuple[float, float]:
    """(scale, rotation in degrees) of a 2x3 similarity matrix."""
    a, b = float(matrix[0, 0]), float(matrix[1, 0])
    return math.hypot(a, b), math.degrees(math.atan2(b, a))


def apply_to_points(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Map (N, 2) points with a 2x3 affine matrix."""
    pts = np.asarray(pts, np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def apply_to_box(matrix: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Move an axis-aligned box with a similarity: its centre is mapped and its sides scaled.

    (Mapping the four corners and taking their hull would inflate the box a little more on
    every rotated frame.)
    """
    scale, _ = similarity_parts(matrix)
    centre = apply_to_points(matrix, ((box[:2] + box[2:]) / 2.0)[None])[0]
    half = (np.asarray(box[2:], np.float64) - box[:2]) * scale / 2.0
    return np.concatenate([centre - half, centre + half]).astype(np.float32)


class FaceFlow:
    """Follows one face from frame to frame; one instance per track.

    `start(frame, box)` remembers the region around the face and picks corners in it;
    `step(frame)` finds the similarity that moved the face into `frame`, then keeps the points
    that fitted it as the next step's points (new corners are picked only when too few are
    left) and remembers the region of `frame` around the moved box.
    """

    def __init__(self, *, max_fb_error: float = 1.5, min_inliers: int = 8,
                 margin: float = DEFAULT_MARGIN, work_size: int = DEFAULT_WORK_SIZE,
                 max_corners: int = 48, win_size: int = 13, max_level: int = 2,
                 ransac_threshold: float = 0.5) -> None:
        if min_inliers < 3:
            raise ValueError(f"min_inliers must be >= 3 for a similarity fit, got {min_inliers}")
        self.max_fb_error = float(max_fb_error)
        self.min_inliers = int(min_inliers)
        self.margin = float(margin)
        self.work_size = int(work_size)
        self.max_corners = int(max_corners)
        self.ransac_threshold = float(ransac_threshold)  # work pixels
        self._lk = dict(winSize=(win_size, win_size), maxLevel=max_level,
                        criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
        self._prev: _Region | None = None
        self._box: np.ndarray | None = None
        self._points: np.ndarray | None = None  # (N, 1, 2) float32 work pixels of _prev
        self._current = False  # _prev is the frame last seen (start or a successful step)

    @property
    def box(self) -> np.ndarray | None:
        """Where the face is in the last frame seen, as flow has moved it."""
        return None if self._box is None else self._box.copy()

    def start(self, frame: np.ndarray, box: np.ndarray) -> None:
        """Remember the face at `box` in `frame` as the reference for the next step."""
        box = np.asarray(box, np.float32)
        self._prev = grab_region(frame, *region_around(frame.shape, box, self.margin,
                                                       self.work_size))
        self._box = box.copy()
        self._points = self._corners(self._prev, box)
        self._current = True

    def rebox(self, frame: np.ndarray, box: np.ndarray) -> None:
        """Replace where the face is in `frame`, the frame the last `start` or successful
        `step` saw, with a better measurement of it (a detection). The points flow already
        followed into this frame are kept where they lie inside the new box; only a region
        that no longer fits the box is grabbed again. Without a current reference (the last
        step failed) this is `start`."""
        if not self._current or self._prev is None or self._points is None:
            self.start(frame, box)
            return
        box = np.asarray(box, np.float32)
        frame_pts = self._prev.to_frame(self._points.reshape(-1, 2))
        self._settle(frame, self._prev, box, frame_pts)

    def step(self, frame: np.ndarray) -> FlowResult:
        """Track the remembered face into `frame`; on success the reference moves to `frame`."""
        if self._prev is None or self._box is None:
            raise RuntimeError("FaceFlow.step called before start(); start it on a detection")
        prev = self._prev
        if self._points is None or len(self._points) < self._enough_points():
            self._points = self._corners(prev, self._box)
        cur = grab_region(frame, prev.x0, prev.y0, prev.x1, prev.y1, prev.k)
        result, kept = self._fit(prev, cur, self._points)
        self._current = result.ok and result.matrix is not None
        if not self._current:
            return result
        moved = apply_to_box(result.matrix, self._box)
        self._settle(frame, cur, moved, cur.to_frame(kept.reshape(-1, 2)))
        return result

    def _enough_points(self) -> int:
        return max(2 * self.min_inliers, self.max_corners // 2)

    def _settle(self, frame: np.ndarray, region: _Region, box: np.ndarray,
                frame_pts: np.ndarray) -> None:
        """Make `box` in `frame` the reference, with the points (frame pixels) inside it; the
        region is reused when it still suits the box, else grabbed around it."""
        frame_pts = frame_pts[_inside(frame_pts, _shrink(box, 0.05).reshape(2, 2))]
        k = shrink_factor(max(float(box[2] - box[0]), float(box[3] - box[1])), self.work_size,
                          current=region.k)
        if not (k == region.k and region.contains(box, 0.5 * self.margin, frame.shape)):
            region = grab_region(frame, *region_around(frame.shape, box, self.margin,
                                                       self.work_size, current=k))
        self._prev, self._box = region, np.asarray(box, np.float32).copy()
        self._points = region.to_work(frame_pts).reshape(-1, 1, 2)

    def _corners(self, region: _Region, box: np.ndarray) -> np.ndarray | None:
        """Corners inside the central part of the face box (less background, less hair)."""
        (ax, ay), (bx, by) = region.to_work(_shrink(box, 0.1).reshape(2, 2))
        h, w = region.gray.shape
        ax, ay = max(0, int(ax)), max(0, int(ay))
        bx, by = min(w, int(math.ceil(bx)) + 1), min(h, int(math.ceil(by)) + 1)
        if bx - ax < 4 or by - ay < 4:
            return None
        mask = np.zeros(region.gray.shape, np.uint8)
        mask[ay:by, ax:bx] = 255
        side = max(bx - ax, by - ay)
        return cv2.goodFeaturesToTrack(region.gray, maxCorners=self.max_corners,
                                       qualityLevel=0.01, minDistance=max(2.0, side / 16.0),
                                       mask=mask, blockSize=5)

    def _fit(self, prev: _Region, cur: _Region,
             p0: np.ndarray | None) -> tuple[FlowResult, np.ndarray]:
        """Flow p0 from prev to cur and fit the similarity; also returns the inlier points
        in cur's work pixels."""
        none = np.zeros((0, 1, 2), np.float32)
        if p0 is None or len(p0) < self.min_inliers:
            return FlowResult(False, None, 0 if p0 is None else len(p0), 0, math.inf,
                              "too few corners in the face"), none
        p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev.gray, cur.gray, p0, None, **self._lk)
        p0r, st2, _ = cv2.calcOpticalFlowPyrLK(cur.gray, prev.gray, p1, None, **self._lk)
        fb = np.linalg.norm((p0 - p0r).reshape(-1, 2), axis=1) * prev.k  # frame px
        finite = np.isfinite(fb) & np.isfinite(p1.reshape(-1, 2)).all(axis=1)
        good = (st1.ravel() == 1) & (st2.ravel() == 1) & finite & (fb < self.max_fb_error)
        fb_median = float(np.median(fb[finite])) if finite.any() else math.inf
        n_good = int(good.sum())
        if n_good < self.min_inliers:
            return FlowResult(False, None, n_good, 0, fb_median,
                              "too few points passed the forward-backward check"), none
        src = prev.to_frame(p0.reshape(-1, 2)[good])
        dst = cur.to_frame(p1.reshape(-1, 2)[good])
        matrix, inlier_mask = cv2.estimateAffinePartial2D(
            src, dst, method=cv2.RANSAC, ransacReprojThreshold=self.ransac_threshold * cur.k,
            maxIters=200, confidence=0.99, refineIters=10)
        inliers = 0 if inlier_mask is None else int(inlier_mask.sum())
        if matrix is None or not np.all(np.isfinite(matrix)):
            return FlowResult(False, None, n_good, inliers, fb_median,
                              "no similarity fitted"), none
        if inliers < self.min_inliers:
            return FlowResult(False, None, n_good, inliers, fb_median,
                              "too few RANSAC inliers"), none
        scale, angle = similarity_parts(matrix)
        if not (1.0 / MAX_SCALE_STEP <= scale <= MAX_SCALE_STEP) \
                or abs(angle) > MAX_ROTATION_STEP_DEG:
            return FlowResult(False, None, n_good, inliers, fb_median,
                              f"implausible motion (scale {scale:.3f}, rotation {angle:.1f} deg)"
                              ), none
        kept = p1[good][inlier_mask.ravel().astype(bool)].reshape(-1, 1, 2)
        return FlowResult(True, matrix, n_good, inliers, fb_median, tried=len(p0)), kept


def _inside(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Which (N, 1, 2) or (N, 2) points lie inside the box with corners [[x0, y0], [x1, y1]]."""
    p = points.reshape(-1, 2)
    return ((p[:, 0] >= corners[0, 0]) & (p[:, 1] >= corners[0, 1])
            & (p[:, 0] <= corners[1, 0]) & (p[:, 1] <= corners[1, 1]))


def _shrink(box: np.ndarray, fraction: float) -> np.ndarray:
    w, h = box[2] - box[0], box[3] - box[1]
    return np.array([box[0] + fraction * w, box[1] + fraction * h,
                     box[2] - fraction * w, box[3] - fraction * h], np.float32)
