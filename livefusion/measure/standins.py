"""Stand-in ONNX models with the exact upstream contracts, built with `onnx.helper`.

These are stand-ins for tests, evaluations and benchmarks: they have the input and output
names, shapes and types of the real models (and the swapper's `emap` initializer), so the
app's real loading and running code is exercised without the large weights. They are never
used by the app for users; users get the real models through the model store.

- `identity_inswapper`: inswapper_128 contract, returns its target crop (a swap must then
  reproduce the original frame).
- `paint_inswapper`: inswapper_128 contract, returns one flat colour (magenta by default), so
  every pixel a swap really replaced is plain to see and carries no identity.
- `arcface_standin`: w600k_r50 contract (512-d embedding of a 112x112 crop).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
SWAP_TARGET_SHAPE = (1, 3, 128, 128)
SWAP_SOURCE_SHAPE = (1, 512)


def _save(graph: onnx.GraphProto, path: Path | str) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def _emap(emap: np.ndarray | None, seed: int) -> np.ndarray:
    if emap is None:
        return np.random.default_rng(seed).standard_normal((512, 512)).astype(np.float32)
    return np.asarray(emap, np.float32)


def identity_inswapper(path: Path | str, *, fp16: bool = False, emap: np.ndarray | None = None,
                       seed: int = 0, target: tuple[int, ...] = SWAP_TARGET_SHAPE,
                       source: tuple[int, ...] = SWAP_SOURCE_SHAPE,
                       with_emap: bool = True) -> Path:
    """inswapper_128 contract: `target` [1,3,128,128], `source` [1,512] -> `output` = target.

    Returns `target` unchanged (plus 0 * sum(source), so the source input is really consumed).
    A 512x512 `emap` is the LAST initializer, unused by the graph as in the real file; an
    earlier initializer is added so that "last" is actually tested. `target`, `source` and
    `with_emap=False` make deliberately wrong contracts for the contract checks.
    """
    elem = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    dtype = np.float16 if fp16 else np.float32
    inits = [numpy_helper.from_array(np.zeros((1,), dtype), "zero"),
             numpy_helper.from_array(np.ones((4, 4), np.float32), "decoy_not_emap")]
    if with_emap:
        inits.append(numpy_helper.from_array(_emap(emap, seed).astype(dtype), "emap"))
    nodes = [
        helper.make_node("ReduceSum", ["source"], ["source_sum"], keepdims=0),
        helper.make_node("Mul", ["source_sum", "zero"], ["nothing"]),
        helper.make_node("Add", ["target", "nothing"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "identity_inswapper",
        [helper.make_tensor_value_info("target", elem, list(target)),
         helper.make_tensor_value_info("source", elem, list(source))],
        [helper.make_tensor_value_info("output", elem, list(target))],
        initializer=inits,
    )
    return _save(graph, path)


def paint_inswapper(path: Path | str, rgb: Sequence[float] = (1.0, 0.0, 1.0), *,
                    emap: np.ndarray | None = None, seed: int = 0) -> Path:
    """inswapper_128 contract: `target` [1,3,128,128], `source` [1,512] float32 -> `output`
    [1,3,128,128], RGB in [0,1], every pixel the colour `rgb` (magenta by default).

    Both inputs are consumed (output = colour + 0 * target + 0 * sum(source)), so a session
    must be fed both. A 512x512 `emap` is the LAST initializer, as in the real file.
    """
    colour = np.asarray(rgb, np.float32).reshape(-1)
    if colour.shape != (3,) or not np.isfinite(colour).all() or colour.min() < 0 or colour.max() > 1:
        raise ValueError(f"rgb must be three values in [0, 1], got {rgb!r}")
    inits = [numpy_helper.from_array(np.zeros((1,), np.float32), "zero"),
             numpy_helper.from_array(colour.reshape(1, 3, 1, 1), "colour"),
             numpy_helper.from_array(_emap(emap, seed), "emap")]
    nodes = [
        helper.make_node("ReduceSum", ["source"], ["source_sum"], keepdims=0),
        helper.make_node("Mul", ["source_sum", "zero"], ["source_nothing"]),
        helper.make_node("Mul", ["target", "zero"], ["target_nothing"]),
        helper.make_node("Add", ["target_nothing", "source_nothing"], ["nothing"]),
        helper.make_node("Add", ["nothing", "colour"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "paint_inswapper",
        [helper.make_tensor_value_info("target", TensorProto.FLOAT, list(SWAP_TARGET_SHAPE)),
         helper.make_tensor_value_info("source", TensorProto.FLOAT, list(SWAP_SOURCE_SHAPE))],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, list(SWAP_TARGET_SHAPE))],
        initializer=inits,
    )
    return _save(graph, path)


def arcface_standin(path: Path | str, *, dim: int = 512, size: int = 112, seed: int = 1) -> Path:
    """w600k_r50 contract: `input.1` [1,3,size,size] -> [1,dim]: spatial means times a fixed
    matrix. Different crops give different (not unit) vectors, so averaging and normalising
    are real; `size` other than 112 makes a wrong contract.
    """
    weight = np.random.default_rng(seed).standard_normal((3, dim)).astype(np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["input.1"], ["pooled"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["pooled", "weight"], ["683"]),
    ]
    graph = helper.make_graph(
        nodes, "arcface_standin",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, [1, dim])],
        initializer=[numpy_helper.from_array(weight, "weight")],
    )
    return _save(graph, path)


# --- a 106-point landmarker in the 2d106det contract ------------------------------------------

LANDMARK_INPUT = 192  # 2d106det: a square crop of 1.5 x max(box w, h), centred on the box
PFLD_INPUT = 112


def _resize_matrix(out_size: int, in_size: int, start: float, length: float) -> np.ndarray:
    """(out_size, in_size) bilinear weights resampling the window [start, start + length) of an
    axis of `in_size` pixels to `out_size` pixels (pixel centres as OpenCV's INTER_LINEAR)."""
    weights = np.zeros((out_size, in_size), np.float64)
    step = length / out_size
    for i in range(out_size):
        x = start + (i + 0.5) * step - 0.5
        lo = int(np.floor(x))
        frac = x - lo
        for index, weight in ((lo, 1.0 - frac), (lo + 1, frac)):
            weights[i, min(max(index, 0), in_size - 1)] += weight
    return weights


def pfld106_as_2d106det(pfld_path: Path | str, path: Path | str, *, face_scale: float = 1.0) -> Path:
    """Wrap PFLD-106-lite (input `input` [1,3,112,112] RGB / 255 of a square crop of
    `face_scale` x the face box; output `output` [1,212] in [0,1] of that crop; InsightFace's
    106-point order) into InsightFace 2d106det's contract: input `data` [1,3,192,192] RGB 0-255
    of a 1.5 x max(w, h) crop centred on the face box, output `fc1` [1,212] in [-1,1] with
    (v + 1) * 96 = crop pixels.

    The graph cuts the centre `face_scale / 1.5` of the 192 crop and resamples it to 112 with
    two MatMuls (bilinear weights, the / 255 folded in; PFLD's opset 9 has no Resize), runs the
    PFLD graph unchanged, then maps its [0,1] window coordinates to 2d106det's [-1,1]. The
    batch stays 1 (PFLD's graph reshapes to batch 1); the real file takes N.
    """
    model = onnx.load(str(pfld_path))
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in inits]
    if len(real_inputs) != 1 or real_inputs[0].name != "input":
        raise ValueError(f"{pfld_path} is not PFLD-106-lite: expected one input named 'input'")
    window = LANDMARK_INPUT * face_scale / 1.5
    start = (LANDMARK_INPUT - window) / 2.0
    rows = _resize_matrix(PFLD_INPUT, LANDMARK_INPUT, start, window)
    prefix = "lf2d106_"
    graph.initializer.extend([
        numpy_helper.from_array((rows / 255.0).astype(np.float32), prefix + "rows"),
        numpy_helper.from_array(rows.T.astype(np.float32), prefix + "cols_t"),
        numpy_helper.from_array(np.array([window / 96.0], np.float32), prefix + "gain"),
        numpy_helper.from_array(np.array([start / 96.0 - 1.0], np.float32), prefix + "offset"),
    ])
    for node in graph.node:
        node.input[:] = [prefix + "scaled" if name == "input" else name for name in node.input]
        node.output[:] = [prefix + "window" if name == "output" else name for name in node.output]
    head = [
        helper.make_node("MatMul", ["data", prefix + "cols_t"], [prefix + "narrow"]),
        helper.make_node("MatMul", [prefix + "rows", prefix + "narrow"], [prefix + "scaled"]),
    ]
    tail = [
        helper.make_node("Mul", [prefix + "window", prefix + "gain"], [prefix + "spread"]),
        helper.make_node("Add", [prefix + "spread", prefix + "offset"], ["fc1"]),
    ]
    nodes = head + list(graph.node) + tail
    del graph.node[:]
    graph.node.extend(nodes)
    kept_inputs = [i for i in graph.input if i.name in inits]
    del graph.input[:]
    graph.input.extend([helper.make_tensor_value_info("data", TensorProto.FLOAT,
                                                      [1, 3, LANDMARK_INPUT, LANDMARK_INPUT])]
                       + kept_inputs)
    del graph.output[:]
    graph.output.extend([helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 212])])
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path
