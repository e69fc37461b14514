"""Face identity: the recogniser (ArcFace-style ONNX) and the source identity built from photos.

The recogniser's crop size comes from its input shape and its embedding size from its
output, so w600k_r50 (512-d) and smaller recognisers (e.g. MobileFaceNet, 128-d) both work.
Embeddings are unit length; cosine similarity is their dot product.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from livefusion.errors import LiveFusionError
from livefusion.face.align import align_face
from livefusion.face.onnx_session import as_model_session, fixed_dim, numpy_type
from livefusion.face.types import Detector
from livefusion.media.imageio import load_image
from livefusion.packet import Face

log = logging.getLogger(__name__)


class SourceFaceError(LiveFusionError, ValueError):
    """A source or reference image cannot give an identity; the message names the file."""


def unit(vector: np.ndarray) -> np.ndarray:
    """`vector` scaled to unit length (float32); raises ValueError for a zero or non-finite one."""
    v = np.asarray(vector, np.float32).reshape(-1)
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm < 1e-12:
        raise ValueError("cannot normalise an embedding that is zero or not finite")
    return v / norm


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(unit(a), unit(b)))


class Recognizer:
    """Embeds a face: crop aligned to `template`, RGB, (x - 127.5) / 127.5, unit-length output."""

    def __init__(self, session: Any, *, template: str = "arcface_112_v2") -> None:
        self.session = as_model_session(session)
        self.input_name = self.session.input_names[0]
        shape = list(self.session.input_shapes[0])
        if len(shape) != 4:
            raise ValueError(f"a recogniser takes one NCHW image, this model's input is {shape}")
        self.size = fixed_dim(shape[2]) or fixed_dim(shape[3]) or 112
        self.dtype = numpy_type(self.session.input_types[0])
        self.template = template
        out = list(self.session.output_shapes[0])
        declared = fixed_dim(out[-1]) if out else None
        self.dim = declared or int(self._run(np.zeros((self.size, self.size, 3), np.uint8)).shape[-1])

    def embed(self, frame: np.ndarray, face: Face) -> np.ndarray:
        """Unit embedding of `face` in `frame`."""
        crop = align_face(frame, face.kps, self.template, self.size)
        return self.embed_crop(crop.image)

    def embed_crop(self, crop: np.ndarray) -> np.ndarray:
        """Unit embedding of an already aligned BGR uint8 crop of the model's size."""
        return unit(self._run(crop))

    def _run(self, crop: np.ndarray) -> np.ndarray:
        blob = cv2.dnn.blobFromImage(crop, 1.0 / 127.5, (self.size, self.size),
                                     (127.5, 127.5, 127.5), swapRB=True).astype(self.dtype)
        return np.asarray(self.session.run({self.input_name: blob})[0], np.float32).reshape(-1)


@dataclass(frozen=True)
class SourceIdentity:
    """Who to become: the averaged unit embedding of one or more photos of one person."""

    embedding: np.ndarray  # float32 (D,), unit length
    paths: tuple[Path, ...]
    notes: tuple[str, ...] = field(default=())  # things the user should know (several faces, ...)

    @property
    def name(self) -> str:
        return self.paths[0].stem if self.paths else "source"


def identity_from_image(path: str | Path, detector: Detector, recognizer: Recognizer) -> tuple[np.ndarray, str | None]:
    """Unit embedding of the largest face in the image, and a note when it held several."""
    loaded = load_image(path)
    image = loaded.image
    faces = detector.detect(image)
    height, width = image.shape[:2]
    if not faces:
        # A tightly cropped face (e.g. an already aligned 112x112 crop) fills the whole
        # picture, which detectors trained on scenes miss: retry with a margin around it.
        pad_y, pad_x = height // 2, width // 2
        image = cv2.copyMakeBorder(image, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_CONSTANT, value=0)
        faces = detector.detect(image)
    if not faces:
        raise SourceFaceError(
            f"no face found in {path} ({width}x{height} pixels); use a clear, front-facing photo "
            f"where the face is at least about 64 pixels wide"
        )
    largest = max(faces, key=lambda f: f.area)
    note = None
    if len(faces) > 1:
        note = f"{path}: {len(faces)} faces found, using the largest"
        log.warning("%s; crop the photo to the wanted face to choose another", note)
    return recognizer.embed(image, largest), note


def build_identity(
    paths: Iterable[str | Path] | str | Path, detector: Detector, recognizer: Recognizer
) -> SourceIdentity:
    """Average the unit embeddings of the largest face in each photo, renormalised."""
    path_list: Sequence[Path] = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not path_list:
        raise SourceFaceError("no source image given; pass at least one photo of the face to use")
    embeddings, notes = [], []
    for path in path_list:
        embedding, note = identity_from_image(path, detector, recognizer)
        embeddings.append(embedding)
        if note:
            notes.append(note)
    return SourceIdentity(unit(np.mean(embeddings, axis=0)), tuple(path_list), tuple(notes))
