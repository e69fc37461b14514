"""The face swapper: inswapper_128 (fp32 or fp16 export) through an ONNX session.

Contract (MODELS.md): `target` [1,3,128,128] RGB in [0,1], aligned to arcface_128; `source`
[1,512] latent = normalize(normalize(embedding) @ emap); `output` [1,3,128,128] RGB in [0,1].
`emap` is the graph's last initializer, read once with `load_emap`. The swapped crop and its
frame->crop matrix are stored on the Face for the blender in the output thread.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from livefusion.face.align import AlignedCrop, align_face
from livefusion.face.embed import unit
from livefusion.face.onnx_session import as_model_session, fixed_dim, numpy_type
from livefusion.packet import Face

log = logging.getLogger(__name__)

SWAP_TEMPLATE = "arcface_128"


def load_emap(model_path: str | Path) -> np.ndarray:
    """The swapper's `emap` matrix: the LAST initializer of the ONNX graph, as float32.

    The weights stay out of memory where the file keeps them externally
    (load_external_data=False); the parsed graph is released as soon as emap is copied out.
    """
    import onnx  # local: only the wiring that builds a swapper pays for importing onnx
    from onnx import numpy_helper

    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"swapper model {path} does not exist; download it with the model store")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others; say which file and what to do
        raise ValueError(f"cannot read swapper model {path} ({exc}); the file may be truncated: "
                         f"delete it and download it again") from None
    initializers = model.graph.initializer
    if not initializers:
        raise ValueError(f"swapper model {path} has no initializers, so no emap; it is not an inswapper export")
    last = initializers[-1]
    emap = numpy_helper.to_array(last).astype(np.float32, copy=True)
    del model
    if emap.ndim != 2 or emap.shape[0] != emap.shape[1]:
        raise ValueError(
            f"swapper model {path}: its last initializer {last.name!r} has shape {emap.shape}, "
            f"not a square emap matrix; it is not an inswapper export"
        )
    return emap


def latent_from_embedding(embedding: np.ndarray, emap: np.ndarray) -> np.ndarray:
    """normalize(normalize(embedding) @ emap) as float32 (1, D)."""
    vector = unit(embedding)
    if vector.shape[0] != emap.shape[0]:
        raise ValueError(
            f"the source embedding has {vector.shape[0]} values but the swapper's emap expects "
            f"{emap.shape[0]}: use the recogniser the swapper was trained with (w600k_r50, 512-d)"
        )
    return unit(vector @ emap).reshape(1, -1)


class InswapperSwapper:
    """Runs inswapper on aligned crops; input types are read from the session (fp32/fp16)."""

    def __init__(self, session: Any, emap: np.ndarray) -> None:
        self.session = as_model_session(session)
        names = list(self.session.input_names)
        shapes = [list(s) for s in self.session.input_shapes]
        self.target_index = self._find_input(names, shapes, "target", 4)
        self.source_index = self._find_input(names, shapes, "source", 2)
        self.target_name = names[self.target_index]
        self.source_name = names[self.source_index]
        self.target_type = numpy_type(self.session.input_types[self.target_index])
        self.source_type = numpy_type(self.session.input_types[self.source_index])
        target_shape = shapes[self.target_index]
        self.size = fixed_dim(target_shape[2]) or fixed_dim(target_shape[3]) or 128
        self.emap = np.asarray(emap, np.float32)
        latent_dim = fixed_dim(shapes[self.source_index][1])
        if self.emap.ndim != 2 or (latent_dim and self.emap.shape[1] != latent_dim):
            raise ValueError(
                f"emap of shape {self.emap.shape} does not fit the swapper's source input "
                f"{shapes[self.source_index]}; read emap from the same model file with load_emap"
            )

    @staticmethod
    def _find_input(names: list[str], shapes: list[list[Any]], name: str, rank: int) -> int:
        if name in names:
            return names.index(name)
        for i, shape in enumerate(shapes):
            if len(shape) == rank:
                return i
        raise ValueError(f"swapper model has no {name!r} input of rank {rank}: inputs are {names}")

    @property
    def embedding_size(self) -> int:
        return int(self.emap.shape[0])

    def latent(self, embedding: np.ndarray) -> np.ndarray:
        return latent_from_embedding(embedding, self.emap)

    def align(self, frame: np.ndarray, face: Face) -> AlignedCrop:
        return align_face(frame, face.kps, SWAP_TEMPLATE, self.size)

    def swap_crop(self, crop: np.ndarray, latent: np.ndarray) -> np.ndarray:
        """Swap one aligned BGR uint8 crop; returns the BGR uint8 result of the same size."""
        rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
        target = (rgb.transpose(2, 0, 1)[None].astype(np.float32) / 255.0).astype(self.target_type)
        source = np.asarray(latent, np.float32).reshape(1, -1).astype(self.source_type)
        out = self.session.run({self.target_name: target, self.source_name: source})[0]
        image = np.asarray(out, np.float32).reshape(3, self.size, self.size).transpose(1, 2, 0)
        image = np.nan_to_num(image, nan=0.0, posinf=1.0, neginf=0.0)
        result = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return cv2.cvtColor(result, cv2.COLOR_RGB2BGR)

    def swap(self, frame: np.ndarray, face: Face, latent: np.ndarray) -> None:
        """Align, swap, and store the result on `face` (swapped_crop, crop_matrix)."""
        aligned = self.align(frame, face)
        face.swapped_crop = self.swap_crop(aligned.image, latent)
        face.crop_matrix = aligned.matrix
