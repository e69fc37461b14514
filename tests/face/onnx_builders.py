"""Tiny ONNX models with the exact upstream contracts, built with onnx.helper.

They exercise the real loading and running code (onnxruntime sessions, input names and
types, the emap initializer) without the large weights, which cannot be downloaded here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def identity_inswapper(path: Path, *, fp16: bool = False, emap: np.ndarray | None = None,
                       seed: int = 0, target: tuple[int, ...] = (1, 3, 128, 128),
                       source: tuple[int, ...] = (1, 512), with_emap: bool = True) -> Path:
    """inswapper_128 contract: `target` [1,3,128,128], `source` [1,512] -> `output` = target.

    Returns `target` unchanged (plus 0 * sum(source), so the source input is really consumed).
    A 512x512 `emap` is the LAST initializer, unused by the graph as in the real file; an
    earlier initializer is added so that "last" is actually tested. `target`, `source` and
    `with_emap=False` make deliberately wrong contracts for the contract checks.
    """
    elem = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    dtype = np.float16 if fp16 else np.float32
    if emap is None:
        emap = np.random.default_rng(seed).standard_normal((512, 512)).astype(np.float32)
    inits = [numpy_helper.from_array(np.zeros((1,), dtype), "zero"),
             numpy_helper.from_array(np.ones((4, 4), np.float32), "decoy_not_emap")]
    if with_emap:
        inits.append(numpy_helper.from_array(emap.astype(dtype), "emap"))
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


def arcface_standin(path: Path, *, dim: int = 512, size: int = 112, seed: int = 1) -> Path:
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


def identity_enhancer(path: Path, *, size: int = 512, shift: float = 0.0,
                      out_size: int | None = None) -> Path:
    """GFPGAN/GPEN contract: `input` [1,3,S,S] in [-1,1] -> `output` same shape (input + shift).
    `out_size` different from `size` resizes, making a wrong contract."""
    out = out_size or size
    inits = [numpy_helper.from_array(np.full((1,), shift, np.float32), "shift")]
    nodes = [helper.make_node("Add", ["input", "shift"], ["shifted"])]
    if out != size:
        inits.append(numpy_helper.from_array(np.array([1, 1, out / size, out / size], np.float32),
                                             "scales"))
        nodes.append(helper.make_node("Resize", ["shifted", "", "scales"], ["output"],
                                      mode="nearest"))
    else:
        nodes.append(helper.make_node("Identity", ["shifted"], ["output"]))
    graph = helper.make_graph(
        nodes, "identity_enhancer",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, out, out])],
        initializer=inits,
    )
    return _save(graph, path)


def cpu_session(path: Path):
    """A real onnxruntime CPU session, quiet about the stand-ins' unused initializers."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def shared_path(folder: Path, name: str) -> Path:
    """A file from ../shared for module-scoped fixtures; skips the module when it is absent."""
    import pytest

    path = folder / name
    if not path.exists():
        pytest.skip(f"{path} is missing: the real models and pictures come from ../shared")
    return path
