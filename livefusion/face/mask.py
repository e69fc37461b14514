"""Blend masks in crop space: the feathered box, and face-shaped masks from 106 landmarks.

A mask is a float32 (S, S) weight in [0, 1] over the swapped crop: 1 where the swapped face
replaces the frame, 0 where the frame stays. Three modes (`MaskMode`):

- `box`: the crop square, `erode` of its side left out at the edge, a Gaussian ramp of
  `blur` of its side (InsightFace's paste-back: ~5 % margin, ~2 % blur sigma).
- `face`: the face outline from InsightFace 106-point landmarks (jaw line 0-32 and brows
  43-51, 97-105), with a forehead above the brows (`FOREHEAD` of the chin-to-brow height),
  grown by `padding` of the face width and feathered over a band of `feather` of the face
  width centred on the grown outline. Weight at the outline itself is 0.5 + padding/feather.
- `face+mouth`: `face` with the mouth (the lips, points 52-71, grown by `mouth_padding`) left
  out: the user's own mouth shows, so speech looks natural. A deliberate choice, so the
  privacy guard does not count the mouth corners for that mode (livefusion/privacy.py).

Point groups follow InsightFace's 2d106det order; the test stand-in (PFLD-106-lite wrapped by
`livefusion.measure.standins.pfld106_as_2d106det`) uses the same order. Every face mask is also faded
to 0 over a few pixels at the crop's own edge (nothing beyond the crop can be pasted).

`frame_support` gives the crop pixels that sample real frame pixels; masks are multiplied by it
when the crop runs past the frame edge, so the border rows keep their own pixels instead of
the swap of the black padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import cv2
import numpy as np

from livefusion.settings import LiveSettings

CONTOUR = np.arange(0, 33)
BROWS = np.r_[43:52, 97:106]
MOUTH = np.arange(52, 72)
EYES = np.r_[33:43, 87:97]
NOSE = np.arange(72, 87)
CHIN = 0  # the contour point at the bottom of the chin
LANDMARK_COUNT = 106
FOREHEAD = 0.3  # forehead height above the brows, fraction of the chin-to-brow height
_EDGE_FADE = 0.03  # fade at the crop's own edge, fraction of the crop side
_FRAME_EDGE_MARGIN = 1.5  # crop pixels next to the frame edge given no weight


class MaskMode(str, Enum):
    BOX = "box"
    FACE = "face"
    FACE_MOUTH = "face+mouth"


MASK_MODES = tuple(mode.value for mode in MaskMode)


@dataclass(frozen=True)
class MaskOptions:
    mode: MaskMode = MaskMode.FACE
    box_erode: float = 0.03  # box: margin left out, fraction of the crop side
    box_blur: float = 0.05  # box: feather, fraction of the crop side
    padding: float = 0.04  # face: outline grown by this fraction of the face width
    feather: float = 0.08  # face: ramp width, fraction of the face width
    mouth_padding: float = 0.02  # face+mouth: lips grown by this fraction of the face width
    mouth_feather: float = 0.06  # face+mouth: ramp width at the lips, fraction of the face width

    @classmethod
    def from_settings(cls, settings: LiveSettings) -> "MaskOptions":
        return cls(MaskMode(settings.mask_mode), settings.mask_erode, settings.mask_blur,
                   settings.face_padding, settings.face_feather, settings.mouth_padding,
                   settings.mouth_feather)

    @property
    def uses_landmarks(self) -> bool:
        return self.mode is not MaskMode.BOX

    @property
    def keeps_mouth(self) -> bool:
        return self.mode is MaskMode.FACE_MOUTH


def feather_mask(size: int, erode: float, blur: float) -> np.ndarray:
    """float32 (size, size) box mask: 0 within `erode*size` of the edge (at least 1 px), then a
    Gaussian ramp to 1 over `2*blur*size`. The ramp is shortened when erode and blur together
    would leave no room, so the centre is always ~1 and the border always ~0."""
    margin = max(1.0, erode * size)
    room = max(size / 2.0 - margin - 1.0, 0.5)
    feather = min(blur * size, room / 2.0)
    inner = margin + feather
    mask = np.zeros((size, size), np.float32)
    lo, hi = int(round(inner)), size - int(round(inner))
    mask[lo:hi, lo:hi] = 1.0
    if feather >= 0.5:
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=feather / 3.0, borderType=cv2.BORDER_CONSTANT)
    return mask


def edge_fade(size: int, fade: float = _EDGE_FADE) -> np.ndarray:
    """float32 (size, size): 0 on the crop's outermost pixels, rising linearly to 1 over `fade`
    of its side (a separable product of two 1-D ramps)."""
    ramp = np.clip((np.minimum(np.arange(size), size - 1 - np.arange(size)) + 0.0)
                   / max(fade * size, 1.0), 0.0, 1.0).astype(np.float32)
    return np.outer(ramp, ramp)


def check_landmarks(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float64).reshape(-1, 2)
    if points.shape != (LANDMARK_COUNT, 2) or not np.isfinite(points).all():
        raise ValueError(f"a face mask needs {LANDMARK_COUNT} finite (x, y) landmarks, got {points.shape}")
    return points


def face_width(points: np.ndarray) -> float:
    """The jaw line's widest extent across the face (perpendicular to the chin-brow axis)."""
    points = check_landmarks(points)
    up = _up(points)
    across = np.array([-up[1], up[0]])
    spread = points[CONTOUR] @ across
    return float(max(spread.max() - spread.min(), 1.0))


def _up(points: np.ndarray) -> np.ndarray:
    axis = points[BROWS].mean(axis=0) - points[CHIN]
    length = float(np.hypot(*axis))
    return axis / length if length > 1e-6 else np.array([0.0, -1.0])


def face_outline(points: np.ndarray, forehead: float = FOREHEAD) -> np.ndarray:
    """(K, 2) convex polygon: jaw line and brows, plus the brows lifted by `forehead` of the
    chin-to-brow height (the forehead up to about the hairline)."""
    points = check_landmarks(points)
    brows = points[BROWS]
    height = float(np.hypot(*(brows.mean(axis=0) - points[CHIN])))
    lifted = brows + _up(points) * (forehead * height)
    hull = cv2.convexHull(np.vstack([points[CONTOUR], brows, lifted]).astype(np.float32))
    return hull.reshape(-1, 2).astype(np.float64)


def _signed_distance(polygon: np.ndarray, size: int) -> np.ndarray:
    """float32 (size, size): distance in pixels to the polygon's edge, > 0 inside, < 0 outside
    (sub-pixel vertices through 4 bits of fixed point)."""
    inside = np.zeros((size, size), np.uint8)
    cv2.fillPoly(inside, [np.round(polygon * 16).astype(np.int32)], 255, cv2.LINE_8, shift=4)
    d_in = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    d_out = cv2.distanceTransform(cv2.bitwise_not(inside), cv2.DIST_L2, 3)
    return d_in - d_out


def _ramp(distance: np.ndarray, grow: float, width: float) -> np.ndarray:
    """Smoothstep from 0 at `grow + width/2` outside the edge to 1 at `width/2 - grow` inside."""
    width = max(width, 1.0)
    t = cv2.min(cv2.max(distance * np.float32(1.0 / width) + np.float32(grow / width + 0.5), 0.0), 1.0)
    return t * t * (np.float32(3.0) - np.float32(2.0) * t)


def face_mask(points: np.ndarray, size: int, options: MaskOptions) -> np.ndarray:
    """float32 (size, size) face-shaped mask for 106 landmarks in crop pixels."""
    points = check_landmarks(points)
    width = face_width(points)
    mask = _ramp(_signed_distance(face_outline(points), size),
                 options.padding * width, options.feather * width)
    if options.keeps_mouth:
        lips = cv2.convexHull(points[MOUTH].astype(np.float32)).reshape(-1, 2).astype(np.float64)
        hole = _ramp(_signed_distance(lips, size), options.mouth_padding * width,
                     options.mouth_feather * width)
        mask *= 1.0 - hole
    mask *= edge_fade(size)
    return mask


@dataclass
class _CachedMask:
    size: int
    options: MaskOptions
    points: np.ndarray
    mask: np.ndarray


class FaceMaskCache:
    """Face masks reused while a face's outline holds still in its crop.

    Between detections a track carries its landmarks with the same 5-point motion that moves
    its crop, so in crop space the outline barely moves (measured on two shared clips: median
    0.005, at most 0.18 crop pixels from one tracked frame to the next) and the mask built on
    the detection frame is still the right one. A mask is reused when every point is within
    `tolerance` crop pixels of the points it was built from (the feather is several pixels
    wide, so a quarter pixel is invisible); a fresh detection moves them more and rebuilds it.
    Not thread-safe: one per thread that blends or checks masks."""

    def __init__(self, tolerance: float = 0.25, limit: int = 8) -> None:
        self.tolerance = float(tolerance)
        self.limit = int(limit)
        self._entries: list[_CachedMask] = []
        self.built = 0  # masks built so far (the rest were reused)

    def get(self, size: int, options: MaskOptions, points: np.ndarray) -> np.ndarray:
        """The float32 face mask for 106 crop-space `points` (read-only: do not modify)."""
        points = check_landmarks(points)
        for index, entry in enumerate(self._entries):
            if (entry.size == size and entry.options == options
                    and float(np.abs(entry.points - points).max()) <= self.tolerance):
                self._entries.insert(0, self._entries.pop(index))
                return entry.mask
        mask = face_mask(points, size, options)
        mask.setflags(write=False)
        self.built += 1
        self._entries.insert(0, _CachedMask(size, options, points.copy(), mask))
        del self._entries[self.limit:]
        return mask


def crop_mask(size: int, options: MaskOptions, landmarks: np.ndarray | None) -> np.ndarray:
    """The mask for a crop: face-shaped when the mode wants landmarks and they are given, else
    the box."""
    if options.uses_landmarks and landmarks is not None:
        return face_mask(landmarks, size, options)
    return feather_mask(size, options.box_erode, options.box_blur)


def mode_in_use(options: MaskOptions, landmarks: np.ndarray | None) -> MaskMode:
    return options.mode if options.uses_landmarks and landmarks is not None else MaskMode.BOX


def to_crop(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Frame points (N, 2) through a frame->crop (2, 3) affine."""
    m = np.asarray(matrix, np.float64)
    return np.asarray(points, np.float64).reshape(-1, 2) @ m[:, :2].T + m[:, 2]


def frame_support(frame_shape: tuple[int, ...], matrix: np.ndarray, size: int) -> np.ndarray | None:
    """float32 (size, size): 1 where a crop pixel and its neighbours sample real frame pixels,
    0 within `_FRAME_EDGE_MARGIN` crop pixels of the frame's edge or beyond it; None when the
    whole crop lies well inside the frame."""
    height, width = frame_shape[:2]
    inverse = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    # frame distance of one crop pixel: the margin in frame pixels
    pixel = float(np.sqrt(abs(np.linalg.det(inverse[:, :2]))))
    margin = _FRAME_EDGE_MARGIN * pixel
    corners = np.array([[0, 0, 1], [size - 1, 0, 1], [0, size - 1, 1], [size - 1, size - 1, 1]],
                       np.float64) @ inverse.T
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    if lo[0] >= margin and lo[1] >= margin and hi[0] <= width - 1 - margin and hi[1] <= height - 1 - margin:
        return None
    grid = np.mgrid[0:size, 0:size].astype(np.float32)  # rows, cols
    xs = inverse[0, 0] * grid[1] + inverse[0, 1] * grid[0] + inverse[0, 2]
    ys = inverse[1, 0] * grid[1] + inverse[1, 1] * grid[0] + inverse[1, 2]
    inside = ((xs >= margin) & (xs <= width - 1 - margin)
              & (ys >= margin) & (ys <= height - 1 - margin))
    return inside.astype(np.float32)
