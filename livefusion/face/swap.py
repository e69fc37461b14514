"""The face swapper: inswapper_128 (fp32 or fp16 export) through an ONNX session.

Contract (MODELS.md): `target` [1,3,128,128] RGB in [0,1], aligned to arcface_128; `source`
[1,512] latent = normalize(normalize(embedding) @ emap); `output` [1,3,128,128] RGB in [0,1].
`emap` is the graph's last initializer, read once with `load_emap`. The swapped crop and its
frame->crop matrix are stored on the Face for the blender in the output thread, with the
aligned input crop (`target_crop`), which the colour transfer takes its target colours from.
"""

from __future__ import annotations

import logging
import mmap
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

    The file is memory-mapped and its protobuf fields are walked (ModelProto.graph, then
    GraphProto.initializer) without parsing the weights, so reading emap from a 550 MB model
    costs a few MB, where onnx.load would hold about twice the file size in memory. Only the
    last initializer is parsed, with onnx.TensorProto.
    """
    from onnx import TensorProto, numpy_helper  # local: only the wiring that builds a swapper needs onnx

    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"swapper model {path} does not exist; download it with the model store")
    broken = (f"cannot read swapper model {path}: it is not a complete ONNX file; "
              f"delete it and download it again")
    if path.stat().st_size == 0:
        raise ValueError(broken)
    try:
        with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            graph = _last_field(data, 0, len(data), _MODEL_GRAPH)
            found = None if graph is None else _last_field(data, graph[0], graph[1], _GRAPH_INITIALIZER)
            tensor = None if found is None else TensorProto.FromString(bytes(data[found[0]:found[1]]))
    except Exception as exc:  # _WireError, protobuf's DecodeError: same advice, naming the file
        raise ValueError(f"{broken} ({exc})") from None
    if graph is None:
        raise ValueError(broken)
    if tensor is None:
        raise ValueError(f"swapper model {path} has no initializers, so no emap; it is not an inswapper export")
    if tensor.data_location == TensorProto.EXTERNAL:
        raise ValueError(f"swapper model {path} keeps emap in an external data file; "
                         f"use a single-file inswapper_128 export")
    emap = numpy_helper.to_array(tensor).astype(np.float32, copy=True)
    if emap.ndim != 2 or emap.shape[0] != emap.shape[1]:
        raise ValueError(
            f"swapper model {path}: its last initializer {tensor.name!r} has shape {emap.shape}, "
            f"not a square emap matrix; it is not an inswapper export"
        )
    return emap


_MODEL_GRAPH = 7  # ModelProto.graph
_GRAPH_INITIALIZER = 5  # GraphProto.initializer


class _WireError(ValueError):
    pass


def _varint(data: mmap.mmap, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _WireError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _last_field(data: mmap.mmap, pos: int, end: int, number: int) -> tuple[int, int] | None:
    """(start, end) of the last length-delimited field `number` in the message data[pos:end]."""
    found = None
    while pos < end:
        tag, pos = _varint(data, pos, end)
        wire = tag & 7
        if wire == 0:
            _, pos = _varint(data, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(data, pos, end)
            if tag >> 3 == number:
                found = (pos, pos + length)
            pos += length
        else:
            raise _WireError(f"unsupported protobuf wire type {wire}")
        if pos > end:
            raise _WireError("field runs past the end of the file")
    return found


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
        """Align, swap, and store the result on `face` (swapped_crop, crop_matrix, and the
        aligned input as target_crop for the colour transfer)."""
        aligned = self.align(frame, face)
        face.swapped_crop = self.swap_crop(aligned.image, latent)
        face.crop_matrix = aligned.matrix
        face.target_crop = aligned.image
