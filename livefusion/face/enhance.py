"""Optional face enhancer (GFPGAN 1.4, GPEN-BFR-512, GPEN-BFR-256) applied to swapped faces.

The enhancer sees the face in its own template and size: the frame around the face, with the
swapped crop laid over it, warped into that template. Its output (RGB in [-1, 1]) is mixed
with its input by `blend` and replaces the face's swapped crop, at the enhancer's resolution.
With `every=k` the model runs on every k-th frame of a face track; in between, the last
enhancement's detail (enhanced minus input, in aligned face coordinates) is added to the
new swapped crop, so expressions still follow the current frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from livefusion.face.align import compose, estimate_matrix, invert, warp_crop
from livefusion.face.onnx_session import as_model_session, numpy_type
from livefusion.packet import Face


@dataclass(frozen=True)
class EnhancerSpec:
    template: str
    size: int


ENHANCERS: dict[str, EnhancerSpec] = {
    "gfpgan_1.4": EnhancerSpec("ffhq_512", 512),
    "gpen_bfr_512": EnhancerSpec("ffhq_512", 512),
    "gpen_bfr_256": EnhancerSpec("arcface_128", 256),
}


@dataclass
class _TrackMemory:
    frames: int
    detail: np.ndarray  # float32 (S, S, 3): enhanced - input, in the enhancer's crop space


class FaceEnhancer:
    def __init__(self, session: Any, kind: str, *, blend: float = 0.8, every: int = 1) -> None:
        if kind not in ENHANCERS:
            raise ValueError(f"unknown enhancer {kind!r}; choose one of: {', '.join(ENHANCERS)}")
        if not 0.0 <= blend <= 1.0:
            raise ValueError(f"enhancer blend must be between 0 and 1, got {blend}")
        if every < 1:
            raise ValueError(f"enhancer interval must be at least 1 frame, got {every}")
        self.session = as_model_session(session)
        self.kind = kind
        self.spec = ENHANCERS[kind]
        self.blend = float(blend)
        self.every = int(every)
        self.input_name = self.session.input_names[0]
        self.dtype = numpy_type(self.session.input_types[0])
        self._tracks: dict[int, _TrackMemory] = {}

    def reset(self) -> None:
        self._tracks.clear()

    def enhancer_input(self, frame: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """The enhancer-space crop (frame with the swapped face laid over it) and its matrix."""
        size = self.spec.size
        matrix = estimate_matrix(face.kps, self.spec.template, size)
        crop = warp_crop(frame, matrix, size, border=cv2.BORDER_REPLICATE)
        if face.swapped_crop is None or face.crop_matrix is None:
            return crop, matrix
        # swapped crop -> enhancer crop: undo the swap alignment, then apply the enhancer's.
        to_enh = compose(matrix, invert(face.crop_matrix))
        swapped = cv2.warpAffine(face.swapped_crop, to_enh, (size, size), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
        inside = cv2.warpAffine(np.ones(face.swapped_crop.shape[:2], np.uint8), to_enh, (size, size),
                                flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        np.copyto(crop, swapped, where=inside[:, :, None].astype(bool))
        return crop, matrix

    def run_model(self, crop: np.ndarray) -> np.ndarray:
        """Enhance one BGR uint8 crop of the model's size; returns float32 BGR in [0, 255]."""
        size = self.spec.size
        blob = cv2.dnn.blobFromImage(crop, 1.0 / 127.5, (size, size), (127.5, 127.5, 127.5),
                                     swapRB=True).astype(self.dtype)
        out = np.asarray(self.session.run({self.input_name: blob})[0], np.float32)
        rgb = out.reshape(3, size, size).transpose(1, 2, 0)
        rgb = np.clip(np.nan_to_num(rgb, nan=0.0), -1.0, 1.0)
        return cv2.cvtColor((rgb + 1.0) * 127.5, cv2.COLOR_RGB2BGR)

    def enhance(self, frame: np.ndarray, face: Face) -> None:
        """Replace face.swapped_crop/crop_matrix with the enhanced version (enhancer size)."""
        crop, matrix = self.enhancer_input(frame, face)
        base = crop.astype(np.float32)
        memory = self._tracks.get(face.track_id) if face.track_id >= 0 else None
        if memory is None or memory.frames % self.every == 0:
            enhanced = self.run_model(crop)
            detail = (enhanced - base) * np.float32(self.blend)
            memory = _TrackMemory(0, detail)
        memory.frames += 1
        if face.track_id >= 0:
            self._tracks[face.track_id] = memory
        face.swapped_crop = np.clip(base + memory.detail + 0.5, 0, 255).astype(np.uint8)
        face.crop_matrix = matrix

    def forget_except(self, track_ids: set[int]) -> None:
        """Drop the memory of tracks that are gone."""
        for track_id in list(self._tracks):
            if track_id not in track_ids:
                del self._tracks[track_id]
