"""Tensor contracts: does a user's own ONNX file fit the role it is given?

`--model ROLE=PATH` files skip the catalog hash, so before they are used their graph inputs and
outputs are checked against what the LiveFusion code for that role feeds and reads. Checks match
by rank, shape and order, not by tensor name (public re-exports rename freely). A dynamic
dimension in the file is accepted where a fixed one is expected (it cannot be known without
running); a fixed one must be the right value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import onnx

FLOAT_TYPES = ("float32", "float16")
SCRFD_LAST_DIMS = (1, 1, 1, 4, 4, 4, 10, 10, 10)
YUNET_LAST_DIMS = (1, 1, 1, 1, 1, 1, 4, 4, 4, 10, 10, 10)


class ContractError(ValueError):
    """A model file does not fit its role; the message says what was expected and found."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple  # ints for fixed dims, strings for dynamic ones
    dtype: str  # numpy dtype name, e.g. "float32"

    def describe(self) -> str:
        dims = ",".join(str(d) for d in self.shape)
        return f"{self.name or '?'} [{dims}] {self.dtype}"


@dataclass(frozen=True)
class ModelSignature:
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    last_initializer_shape: tuple[int, ...] | None = None

    def describe(self) -> str:
        ins = "; ".join(t.describe() for t in self.inputs) or "none"
        outs = "; ".join(t.describe() for t in self.outputs) or "none"
        return f"inputs: {ins}. outputs: {outs}"


def _dims(value_info: onnx.ValueInfoProto) -> tuple:
    dims = []
    for d in value_info.type.tensor_type.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?"))
    return tuple(dims)


def _dtype(value_info: onnx.ValueInfoProto) -> str:
    from onnx import helper

    elem = value_info.type.tensor_type.elem_type
    try:
        return helper.tensor_dtype_to_np_dtype(elem).name
    except (KeyError, ValueError, TypeError):
        return f"onnx-type-{elem}"


def read_signature(path: Path) -> ModelSignature:
    """Graph inputs (initializers excluded), outputs and the last initializer's shape."""
    import onnx  # 3 s to import on a slow machine: only when a user's own file is checked

    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises its own DecodeError; say what to do instead
        raise ContractError(f"{path} is not a readable ONNX file ({exc}); export it again") from exc
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    inputs = tuple(TensorInfo(v.name, _dims(v), _dtype(v)) for v in graph.input
                   if v.name not in weights)
    outputs = tuple(TensorInfo(v.name, _dims(v), _dtype(v)) for v in graph.output)
    last = tuple(graph.initializer[-1].dims) if graph.initializer else None
    return ModelSignature(inputs, outputs, last)


def _dim_ok(actual, expected) -> bool:
    return not isinstance(actual, int) or actual == expected


def _shape_ok(actual: tuple, expected: tuple) -> bool:
    return len(actual) == len(expected) and all(
        e is None or _dim_ok(a, e) for a, e in zip(actual, expected)
    )


def _problems_float(tensors: tuple[TensorInfo, ...]) -> list[str]:
    return [f"{t.name} is {t.dtype}, expected float32 or float16"
            for t in tensors if t.dtype not in FLOAT_TYPES]


def _check_scrfd(sig: ModelSignature) -> list[str]:
    problems: list[str] = []
    if len(sig.inputs) != 1 or not _shape_ok(sig.inputs[0].shape, (1, 3, None, None)):
        return ["one input [1,3,H,W]"]
    for side in sig.inputs[0].shape[2:]:
        if isinstance(side, int) and side % 32:
            problems.append(f"input side {side} is not a multiple of 32")
    if len(sig.outputs) != 9:
        return problems + [f"9 outputs (scores, boxes, keypoints for strides 8/16/32), found {len(sig.outputs)}"]
    counts: list = []
    for out, last in zip(sig.outputs, SCRFD_LAST_DIMS):
        shape = out.shape[1:] if len(out.shape) == 3 and _dim_ok(out.shape[0], 1) else out.shape
        if len(shape) != 2 or not _dim_ok(shape[1], last):
            problems.append(f"output {out.name} should be [N,{last}] or [1,N,{last}]")
        counts.append(shape[0] if len(shape) == 2 else None)
    for group in (counts[0:3], counts[3:6], counts[6:9]):
        n8, n16, n32 = group
        if all(isinstance(n, int) for n in group) and not (n8 == 4 * n16 == 16 * n32):
            problems.append(f"anchor counts {n8}/{n16}/{n32} do not follow strides 8/16/32")
    return problems + _problems_float(sig.inputs)


def _check_yunet(sig: ModelSignature) -> list[str]:
    if len(sig.inputs) != 1 or not _shape_ok(sig.inputs[0].shape, (1, 3, None, None)):
        return ["one input [1,3,H,W]"]
    if len(sig.outputs) != 12:
        return [f"12 outputs (cls, obj, bbox, kps for strides 8/16/32), found {len(sig.outputs)}"]
    return [f"output {o.name} should end in {last}" for o, last in zip(sig.outputs, YUNET_LAST_DIMS)
            if not o.shape or not _dim_ok(o.shape[-1], last)]


def _check_arcface(sig: ModelSignature) -> list[str]:
    problems = []
    if len(sig.inputs) != 1 or not _shape_ok(sig.inputs[0].shape, (1, 3, 112, 112)):
        problems.append("one input [1,3,112,112]")
    if len(sig.outputs) != 1 or len(sig.outputs[0].shape) != 2 or not _dim_ok(sig.outputs[0].shape[0], 1):
        problems.append("one output [1,D] (the embedding)")
    return problems + _problems_float(sig.inputs)


def _check_inswapper(sig: ModelSignature) -> list[str]:
    problems = []
    images = [t for t in sig.inputs if _shape_ok(t.shape, (1, 3, 128, 128))]
    latents = [t for t in sig.inputs if _shape_ok(t.shape, (1, 512))]
    if len(sig.inputs) != 2 or len(images) != 1 or len(latents) != 1:
        problems.append("two inputs: target [1,3,128,128] and source [1,512]")
    if len(sig.outputs) != 1 or not _shape_ok(sig.outputs[0].shape, (1, 3, 128, 128)):
        problems.append("one output [1,3,128,128]")
    if sig.last_initializer_shape != (512, 512):
        problems.append("a 512x512 `emap` matrix as the last initializer (maps ArcFace embeddings "
                        f"to the swapper's latent), found {sig.last_initializer_shape}")
    return problems + _problems_float(sig.inputs)


def _check_landmark_2d106(sig: ModelSignature) -> list[str]:
    problems = []
    if len(sig.inputs) != 1 or not _shape_ok(sig.inputs[0].shape, (None, 3, 192, 192)):
        problems.append("one input [N,3,192,192]")
    if not sig.outputs or not _shape_ok(sig.outputs[0].shape, (None, 212)):
        problems.append("first output [N,212] (106 x,y pairs)")
    return problems + _problems_float(sig.inputs)


def _check_enhancer(sig: ModelSignature) -> list[str]:
    if len(sig.inputs) != 1 or len(sig.outputs) != 1:
        return ["one input [1,3,S,S] and one output of the same shape"]
    shape_in, shape_out = sig.inputs[0].shape, sig.outputs[0].shape
    problems = []
    if not _shape_ok(shape_in, (1, 3, None, None)) or (
            all(isinstance(d, int) for d in shape_in[2:]) and shape_in[2] != shape_in[3]):
        problems.append("a square input [1,3,S,S]")
    if len(shape_out) != len(shape_in) or not all(
            not isinstance(a, int) or not isinstance(b, int) or a == b
            for a, b in zip(shape_in, shape_out)):
        problems.append(f"an output of the input's shape [{','.join(map(str, shape_in))}]")
    return problems + _problems_float(sig.inputs)


CHECKS: dict[str, Callable[[ModelSignature], list[str]]] = {
    "scrfd": _check_scrfd,
    "yunet": _check_yunet,
    "arcface": _check_arcface,
    "inswapper": _check_inswapper,
    "landmark_2d106": _check_landmark_2d106,
    "enhancer": _check_enhancer,
}


def check_signature(kind: str, sig: ModelSignature, *, label: str = "model") -> None:
    """Raise ContractError naming what `kind` expects and what `sig` has, if it does not fit."""
    if kind not in CHECKS:
        raise ContractError(f"unknown contract kind {kind!r}; known: {', '.join(CHECKS)}")
    problems = CHECKS[kind](sig)
    if problems:
        raise ContractError(
            f"{label} does not fit the {kind} contract. Expected: " + "; ".join(problems)
            + f". Found {sig.describe()}"
        )


def check_file(kind: str, path: Path, *, label: str = "") -> ModelSignature:
    """Read `path` and check it against `kind`; returns the signature when it fits."""
    sig = read_signature(path)
    check_signature(kind, sig, label=label or str(path))
    return sig
