"""Pasting swapped crops back into the frame: only inside each face's region.

For each face the crop's footprint in the frame (the inverse-warped crop square, clipped to
the frame) is the region of interest (ROI). The crop and its mask (livefusion/face/mask.py:
the feathered box, or the face's own outline from 106 landmarks) are warped into that ROI
alone and blended there; every pixel outside the ROI is left bit-for-bit as it was. Where the
crop runs past the frame's edge, the mask is cut to the crop pixels that sample real frame
pixels (`frame_support`), so the border keeps its own pixels instead of a swap of padding.

The optional Reinhard colour transfer (LAB statistics under the mask) runs in crop space
(e.g. 128x128): the target statistics come from the original frame under the same crop
matrix, which is the swapper's input crop (`Face.target_crop`) when the engine kept it, so
its cost does not grow with the frame or the face size. Only the warp and the blend scale
with the face; they run on uint8 in buffers kept between frames (a fresh multi-megabyte
array per frame costs thousands of page faults, more than the blend itself).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterable

import cv2
import numpy as np

from livefusion.face.align import warp_crop
from livefusion.face.mask import FaceMaskCache, MaskOptions, feather_mask, frame_support, to_crop
from livefusion.packet import Face
from livefusion.settings import LiveSettings

_MASK_CACHE_LIMIT = 16
_MIN_STD = 1e-3
# OpenCV's 8-bit LAB -> float LAB units: L * 100/255, a - 128, b - 128
_LAB8_SCALE = np.array([100.0 / 255.0, 1.0, 1.0])
_LAB8_OFFSET = np.array([0.0, 128.0, 128.0])


@dataclass(frozen=True)
class BlendOptions:
    color_transfer: bool = True
    opacity: float = 1.0
    mask: MaskOptions = MaskOptions()

    @classmethod
    def from_settings(cls, settings: LiveSettings) -> "BlendOptions":
        return cls(settings.color_transfer, settings.opacity, MaskOptions.from_settings(settings))

    @property
    def mask_blur(self) -> float:
        return self.mask.box_blur

    @property
    def mask_erode(self) -> float:
        return self.mask.box_erode


@dataclass(frozen=True)
class Roi:
    """Frame region x0 <= x < x1, y0 <= y < y1."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0


def paste_roi(
    frame_shape: tuple[int, ...], matrix: np.ndarray, size: int,
    support: tuple[float, float, float, float] | None = None,
) -> Roi:
    """The clipped frame rectangle covered by a (size x size) crop under frame->crop `matrix`.

    `support` (x0, y0, x1, y1 in crop pixels) narrows it to the part of the crop that can
    change the frame (where the mask is not zero)."""
    height, width = frame_shape[:2]
    m = np.asarray(matrix, np.float64)
    if m.shape != (2, 3) or not np.isfinite(m).all() or abs(np.linalg.det(m[:, :2])) < 1e-12:
        return Roi(0, 0, 0, 0)
    inverse = cv2.invertAffineTransform(m)
    x0, y0, x1, y1 = support if support is not None else (0.0, 0.0, float(size), float(size))
    corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], np.float64)
    points = corners @ inverse.T
    if not np.isfinite(points).all():
        return Roi(0, 0, 0, 0)
    lo = np.floor(points.min(axis=0)) - 1
    hi = np.ceil(points.max(axis=0)) + 1
    x0, x1 = (int(np.clip(v, 0, width)) for v in (lo[0], hi[0]))
    y0, y1 = (int(np.clip(v, 0, height)) for v in (lo[1], hi[1]))
    return Roi(x0, y0, x1, y1)


def inside_frame(frame_shape: tuple[int, ...], matrix: np.ndarray, size: int) -> np.ndarray | None:
    """float32 (size, size): 1 where a crop pixel comes from inside the frame, else 0.

    None when the whole crop lies inside the frame (the common case, nothing to compute).
    """
    height, width = frame_shape[:2]
    inverse = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    corners = np.array([[0, 0, 1], [size - 1, 0, 1], [0, size - 1, 1], [size - 1, size - 1, 1]], np.float64)
    points = corners @ inverse.T
    if (points >= 0).all() and (points[:, 0] <= width - 1).all() and (points[:, 1] <= height - 1).all():
        return None
    grid = np.mgrid[0:size, 0:size].astype(np.float32)  # (2, size, size): rows, cols
    xs = inverse[0, 0] * grid[1] + inverse[0, 1] * grid[0] + inverse[0, 2]
    ys = inverse[1, 0] * grid[1] + inverse[1, 1] * grid[0] + inverse[1, 2]
    return ((xs >= 0) & (xs <= width - 1) & (ys >= 0) & (ys <= height - 1)).astype(np.float32)


def reinhard_transfer(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Give `source` (BGR uint8) the LAB mean and spread of `target` where `weights` >= 0.5.

    Statistics of both images are taken under the same mask (the inner part of the blend
    mask), so the background around the face does not pull the colours. The source is
    converted in float (its pixels are rebuilt from it); the target only gives six numbers,
    taken from OpenCV's 8-bit LAB (L scaled by 255/100, a and b offset by 128), which is
    2.5x cheaper than the float conversion and differs from it by ~0.1 LAB unit.
    """
    region = (weights >= 0.5).astype(np.uint8)
    if int(cv2.countNonZero(region)) < 16:
        return source
    src_lab = cv2.cvtColor(source.astype(np.float32) * np.float32(1.0 / 255.0), cv2.COLOR_BGR2LAB)
    src_mean, src_std = (v.reshape(3) for v in cv2.meanStdDev(src_lab, mask=region))
    dst_mean, dst_std = (v.reshape(3) for v in cv2.meanStdDev(cv2.cvtColor(target, cv2.COLOR_BGR2LAB),
                                                             mask=region))
    dst_mean = (dst_mean - _LAB8_OFFSET) * _LAB8_SCALE
    dst_std = dst_std * _LAB8_SCALE
    gain = np.where(src_std > _MIN_STD, dst_std / np.maximum(src_std, _MIN_STD), 1.0).astype(np.float32)
    offset = (dst_mean - src_mean * gain).astype(np.float32)
    out_lab = cv2.transform(src_lab, np.hstack([np.diag(gain), offset[:, None]]).astype(np.float32))
    np.clip(out_lab[:, :, 0], 0.0, 100.0, out=out_lab[:, :, 0])
    out = cv2.cvtColor(out_lab, cv2.COLOR_LAB2BGR)
    return cv2.convertScaleAbs(out, alpha=255.0)


@dataclass(frozen=True)
class _Masks:
    mask: np.ndarray  # float32 feather mask
    alpha: np.ndarray  # the same as uint8 0..255
    support: tuple[float, float, float, float]  # crop rectangle where alpha > 0

    @classmethod
    def build(cls, mask: np.ndarray) -> "_Masks":
        alpha = cv2.convertScaleAbs(mask, alpha=255.0)
        x, y, w, h = cv2.boundingRect(alpha)
        if w == 0 or h == 0:
            return cls(mask, alpha, (0.0, 0.0, 0.0, 0.0))
        # one pixel of margin: bilinear sampling reaches one crop pixel beyond the support
        return cls(mask, alpha, (x - 1.0, y - 1.0, x + w + 1.0, y + h + 1.0))


class _Scratch(threading.local):
    """Per-thread uint8 buffers reused from frame to frame; each grows to the largest ROI seen."""

    def __init__(self, mask_tolerance: float) -> None:
        self.buffers: dict[str, np.ndarray] = {}
        self.face_masks = FaceMaskCache(mask_tolerance)  # a tracked face's mask, reused between detections

    def take(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        count = int(np.prod(shape))
        flat = self.buffers.get(name)
        if flat is None or flat.size < count:
            flat = self.buffers[name] = np.empty(count + count // 4, np.uint8)  # headroom for a growing face
        return flat[:count].reshape(shape)


def premultiplied(crop: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """BGRA uint8 at crop size: colour * alpha / 255 in B, G, R and 255 - alpha in A.

    Warping this (instead of colour and alpha apart) leaves one multiply and one add for the
    frame side of the blend; 255 - alpha is what the frame is weighted by."""
    alpha3 = cv2.merge([alpha, alpha, alpha])
    return cv2.merge([cv2.multiply(crop, alpha3, scale=1.0 / 255.0), cv2.bitwise_not(alpha)])


class FaceBlender:
    """Pastes swapped crops into frames; keeps the feather masks it has built and, per thread,
    the buffers the warp and blend write into."""

    def __init__(self, mask_tolerance: float = 0.25) -> None:
        """`mask_tolerance`: crop pixels a face's outline may move before its mask is rebuilt
        (see FaceMaskCache; negative: rebuilt on every paste)."""
        self._masks: dict[tuple[int, float, float], _Masks] = {}
        self._scratch = _Scratch(mask_tolerance)

    def _masks_for(self, size: int, erode: float, blur: float) -> "_Masks":
        key = (int(size), round(float(erode), 4), round(float(blur), 4))
        masks = self._masks.get(key)
        if masks is None:
            if len(self._masks) >= _MASK_CACHE_LIMIT:
                self._masks.clear()
            masks = self._masks[key] = _Masks.build(feather_mask(*key))
        return masks

    def mask(self, size: int, erode: float, blur: float) -> np.ndarray:
        """The float32 box mask for a crop size and settings (cached)."""
        return self._masks_for(size, erode, blur).mask

    def masks_for(
        self, frame_shape: tuple[int, ...], matrix: np.ndarray, size: int, options: MaskOptions,
        landmarks: np.ndarray | None = None,
    ) -> "_Masks":
        """The mask this crop is blended with: the cached box, or the face's own outline from
        its landmarks (frame pixels, mapped into the crop here), cut to real frame pixels
        where the crop runs past the frame's edge."""
        support = frame_support(frame_shape, matrix, size)
        if options.uses_landmarks and landmarks is not None:
            mask = self._scratch.face_masks.get(size, options, to_crop(landmarks, matrix))
        else:
            masks = self._masks_for(size, options.box_erode, options.box_blur)
            if support is None:
                return masks
            mask = masks.mask
        return _Masks.build(mask if support is None else mask * support)

    def color_transfer(
        self, frame: np.ndarray, crop: np.ndarray, matrix: np.ndarray, options: BlendOptions,
        target: np.ndarray | None = None, mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """`crop` with the colours of the frame under it (Reinhard in LAB, in crop space).

        `target` is the frame already warped into the crop under `matrix` (the swapper's
        input crop); it is warped here when not given or not of the crop's shape. Statistics
        come only from crop pixels that lie inside the frame: outside it the swap input was
        padding, not face."""
        size = crop.shape[0]
        if target is None or target.shape != crop.shape or target.dtype != np.uint8:
            target = warp_crop(frame, matrix, size)
        if mask is None:
            mask = self._masks_for(size, options.mask_erode, options.mask_blur).mask
        valid = inside_frame(frame.shape, matrix, size)
        return reinhard_transfer(crop, target, mask if valid is None else mask * valid)

    def paste(
        self,
        frame: np.ndarray,
        crop: np.ndarray,
        matrix: np.ndarray,
        options: BlendOptions,
        *,
        target: np.ndarray | None = None,
        debug_mask: np.ndarray | None = None,
        landmarks: np.ndarray | None = None,
    ) -> Roi:
        """Blend `crop` (BGR uint8, square) into `frame` in place; returns the ROI written.

        `target`: the frame under `matrix` at crop size (the swapper's input crop), used by the
        colour transfer; warped from `frame` when None. `landmarks` (106 frame points) shape
        the mask when `options.mask` follows the face. The crop, premultiplied by the mask,
        travels with the inverse mask as one BGRA image through a single warp into the ROI
        (OpenCV's 4-channel warp is vectorised, 3-channel is not), then the blend is 8-bit:
        out = crop*a/255 + frame*(255 - a)/255, exact where a is 0 or 255.
        """
        size = crop.shape[0]
        if crop.ndim != 3 or crop.shape[1] != size or crop.shape[2] != 3 or crop.dtype != np.uint8:
            raise ValueError(f"swapped crop must be a square BGR uint8 image, got {crop.shape} {crop.dtype}")
        masks = self.masks_for(frame.shape, matrix, size, options.mask, landmarks)
        roi = paste_roi(frame.shape, matrix, size, masks.support)
        if roi.empty or options.opacity <= 0.0:
            return Roi(0, 0, 0, 0)
        if options.color_transfer:
            crop = self.color_transfer(frame, crop, matrix, options, target, masks.mask)
        alpha = masks.alpha
        if options.opacity < 1.0:
            alpha = cv2.convertScaleAbs(alpha, alpha=float(options.opacity))
        m = np.asarray(matrix, np.float64).copy()
        m[:, 2] += m[:, :2] @ np.array([roi.x0, roi.y0], np.float64)  # ROI pixel -> crop pixel
        width, height = roi.x1 - roi.x0, roi.y1 - roi.y0
        scratch = self._scratch
        warped = cv2.warpAffine(premultiplied(crop, alpha), m, (width, height),
                                dst=scratch.take("warped", (height, width, 4)),
                                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 255))
        inverse = cv2.extractChannel(warped, 3, dst=scratch.take("inverse", (height, width)))
        theirs = cv2.cvtColor(inverse, cv2.COLOR_GRAY2BGR, dst=scratch.take("theirs", (height, width, 3)))
        region = frame[roi.y0:roi.y1, roi.x0:roi.x1]
        cv2.multiply(region, theirs, dst=theirs, scale=1.0 / 255.0)
        ours = cv2.cvtColor(warped, cv2.COLOR_BGRA2BGR, dst=scratch.take("ours", (height, width, 3)))
        cv2.add(ours, theirs, dst=region)
        if debug_mask is not None:
            target_mask = debug_mask[roi.y0:roi.y1, roi.x0:roi.x1]
            np.maximum(target_mask, (255.0 - inverse.astype(np.float32)) * np.float32(1.0 / 255.0),
                       out=target_mask)
        return roi

    def paste_faces(
        self, frame: np.ndarray, faces: Iterable[Face], options: BlendOptions,
        *, debug_mask: np.ndarray | None = None,
    ) -> list[Roi]:
        """Paste every face that carries a swapped crop; returns the ROIs written.

        A face's `target_crop` (the swapper's input) spares the colour transfer a warp; it is
        only trusted at the swapped crop's shape (an enhancer changes crop size and matrix)."""
        rois = []
        for face in faces:
            if face.swapped_crop is None or face.crop_matrix is None:
                continue
            roi = self.paste(frame, face.swapped_crop, face.crop_matrix, options,
                             target=face.target_crop, debug_mask=debug_mask,
                             landmarks=face.landmarks)
            if not roi.empty:
                rois.append(roi)
        return rois
