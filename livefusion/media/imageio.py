"""Loading user images (source faces, reference faces, still inputs) safely.

Whatever the file holds (grayscale, RGBA, 16-bit, paletted, float), the caller gets a BGR
uint8 array. A file that is missing, unreadable or corrupt raises `ImageLoadError` with the
path and what to do. Very large pictures are downscaled (area interpolation) so that face
detection and embedding stay fast and memory stays bounded; the scale is reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from livefusion.errors import LiveFusionError

log = logging.getLogger(__name__)

# A photo larger than this on its longest side is downscaled on load: faces in source photos
# are far larger than the detector's 640 input needs, and an 8000x8000 RGBA float image would
# otherwise cost about 1 GB.
DEFAULT_MAX_SIDE = 4096
SUPPORTED = "JPEG, PNG, BMP, WebP or TIFF"


class ImageLoadError(LiveFusionError, ValueError):
    """An image file cannot be used; the message names the file and what to do."""


@dataclass
class LoadedImage:
    image: np.ndarray  # BGR uint8 (H, W, 3), C-contiguous
    path: Path
    original_size: tuple[int, int]  # (width, height) as stored in the file
    scale: float = 1.0  # image = original resized by this factor
    notes: list[str] = field(default_factory=list)  # conversions applied, for the user


def load_image(path: str | Path, *, max_side: int | None = DEFAULT_MAX_SIDE) -> LoadedImage:
    """Read `path` into a BGR uint8 image, downscaled so its longest side <= max_side."""
    path = Path(path)
    data = _read_bytes(path)
    try:
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageLoadError(
            f"cannot decode image {path}: {exc.err.strip() if hasattr(exc, 'err') else exc}; "
            f"the picture may be too large for OpenCV - re-save it smaller as {SUPPORTED}"
        ) from None
    if decoded is None or decoded.size == 0:
        raise ImageLoadError(
            f"cannot read image {path}: the file is corrupt or not a supported format; "
            f"open it in an image viewer and re-save it as {SUPPORTED}"
        )
    notes: list[str] = []
    image = to_bgr_uint8(decoded, notes)
    height, width = image.shape[:2]
    scale = 1.0
    if max_side is not None and max(width, height) > max_side:
        scale = max_side / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        notes.append(f"downscaled from {width}x{height} to {size[0]}x{size[1]}")
    if notes:
        log.info("image %s: %s", path, "; ".join(notes))
    return LoadedImage(np.ascontiguousarray(image), path, (width, height), scale, notes)


def read_bgr(path: str | Path, *, max_side: int | None = DEFAULT_MAX_SIDE) -> np.ndarray:
    """`load_image(...).image`: just the BGR uint8 pixels."""
    return load_image(path, max_side=max_side).image


def to_bgr_uint8(image: np.ndarray, notes: list[str] | None = None) -> np.ndarray:
    """Convert any decoded image (1, 3 or 4 channels; 8/16-bit int or float) to BGR uint8."""
    notes = [] if notes is None else notes
    image = _to_uint8(image, notes)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        notes.append("grayscale converted to colour")
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        notes.append("transparency flattened onto white")
        return _flatten_alpha(image)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ImageLoadError(
        f"unsupported image layout {image.shape}; use an ordinary colour or grayscale picture"
    )


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise ImageLoadError(f"image {path} does not exist; check the path")
    if not path.is_file():
        raise ImageLoadError(f"image {path} is not a file; pass the path of a picture")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageLoadError(f"cannot open image {path}: {exc.strerror}; check its permissions") from None
    if not data:
        raise ImageLoadError(f"image {path} is empty (0 bytes); pick another picture")
    return data


def _to_uint8(image: np.ndarray, notes: list[str]) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        notes.append("16-bit converted to 8-bit")
        return (image >> 8).astype(np.uint8)
    if image.dtype in (np.float32, np.float64, np.float16):
        notes.append("floating-point pixels clipped to [0, 1] and converted to 8-bit")
        clean = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return np.clip(clean * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if image.dtype == np.int8:
        return (image.astype(np.int16) + 128).astype(np.uint8)
    raise ImageLoadError(f"unsupported pixel type {image.dtype}; re-save the picture as 8-bit {SUPPORTED}")


def _flatten_alpha(bgra: np.ndarray) -> np.ndarray:
    alpha = bgra[:, :, 3:4].astype(np.float32) / 255.0
    colour = bgra[:, :, :3].astype(np.float32)
    flat = colour * alpha + 255.0 * (1.0 - alpha)
    return np.clip(flat + 0.5, 0, 255).astype(np.uint8)
