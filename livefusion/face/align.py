"""Five-point face alignment: similarity fit to a template, and crops warped from the face.

Templates are normalised to a unit square (multiply by the crop size); points are left eye,
right eye, nose tip, left mouth corner, right mouth corner, image-left first (MODELS.md).
The fit is a least-squares similarity (Umeyama): deterministic, so a still face gives the
same matrix every frame (a RANSAC/LMEDS fit samples randomly and would add jitter).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

TEMPLATES: dict[str, np.ndarray] = {
    "arcface_112_v2": np.array(
        [[0.34191607, 0.46157411], [0.65653393, 0.45983393], [0.50022500, 0.64050536],
         [0.37097589, 0.82469196], [0.63151696, 0.82325089]], np.float64),
    "arcface_128": np.array(
        [[0.36167656, 0.40387734], [0.63696719, 0.40235469], [0.50019687, 0.56044219],
         [0.38710391, 0.72160547], [0.61507734, 0.72034453]], np.float64),
    "ffhq_512": np.array(
        [[0.37691676, 0.46864664], [0.62285697, 0.46912813], [0.50123859, 0.61331904],
         [0.39308822, 0.72541100], [0.61150205, 0.72490465]], np.float64),
}


class AlignmentError(ValueError):
    """The keypoints cannot define a face pose (degenerate or not finite)."""


@dataclass
class AlignedCrop:
    image: np.ndarray  # (size, size, 3) uint8 BGR
    matrix: np.ndarray  # float64 (2, 3): frame pixel -> crop pixel
    size: int


def template_points(name: str, size: int) -> np.ndarray:
    """The template's 5 points in crop pixels for a square crop of side `size`."""
    try:
        return TEMPLATES[name] * float(size)
    except KeyError:
        raise ValueError(f"unknown alignment template {name!r}; known: {', '.join(TEMPLATES)}") from None


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation mapping src points onto dst.

    Returns a float64 (2, 3) matrix; raises AlignmentError when the points are degenerate.
    """
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise AlignmentError(f"need matching point sets of at least 2 points, got {src.shape} and {dst.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise AlignmentError("keypoints are not finite")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c ** 2).sum() / len(src)
    if src_var < 1e-6:
        raise AlignmentError("keypoints are all at one place; the face pose is undefined")
    cov = dst_c.T @ src_c / len(src)
    u, sing, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = (sing * d).sum() / src_var
    matrix = np.empty((2, 3), np.float64)
    matrix[:, :2] = scale * rot
    matrix[:, 2] = dst_mean - scale * rot @ src_mean
    return matrix


def estimate_matrix(kps: np.ndarray, template: str, size: int) -> np.ndarray:
    """Frame -> crop similarity for a face's 5 keypoints and a template at `size`."""
    return similarity_fit(kps, template_points(template, size))


def warp_crop(
    frame: np.ndarray,
    matrix: np.ndarray,
    size: int,
    *,
    border: int = cv2.BORDER_CONSTANT,
    interpolation: int = cv2.INTER_LINEAR,
) -> np.ndarray:
    """The (size, size) crop of `frame` under `matrix`; only the crop's pixels are computed."""
    return cv2.warpAffine(frame, np.asarray(matrix, np.float64), (int(size), int(size)),
                         flags=interpolation, borderMode=border, borderValue=0)


def align_face(frame: np.ndarray, kps: np.ndarray, template: str, size: int) -> AlignedCrop:
    matrix = estimate_matrix(kps, template, size)
    return AlignedCrop(warp_crop(frame, matrix, size), matrix, int(size))


def invert(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine matrix (crop -> frame)."""
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The (2, 3) affine doing `inner` first, then `outer`."""
    a = np.vstack([np.asarray(outer, np.float64), [0.0, 0.0, 1.0]])
    b = np.vstack([np.asarray(inner, np.float64), [0.0, 0.0, 1.0]])
    return (a @ b)[:2]
