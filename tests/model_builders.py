"""Tiny ONNX models with the upstream tensor contracts, built with the onnx package.

The big models (inswapper, ArcFace r50, GFPGAN) cannot be downloaded here; these have the same
input/output names and shapes (and inswapper's trailing 512x512 `emap` initializer), so the
real loading, checking and running code is exercised.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 9


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def identity_swapper(path: Path, *, target=(1, 3, 128, 128), source=(1, 512),
                     emap: bool = True, dtype=TensorProto.FLOAT) -> Path:
    """inswapper contract: `target` [1,3,128,128] + `source` [1,512] -> `output` = target.

    The source goes through emap and is multiplied by 0 before being added, so both inputs are
    used and the output is exactly the target (an "identity" swapper)."""
    rng = np.random.default_rng(0)
    np_type = helper.tensor_dtype_to_np_dtype(dtype)
    inits = [numpy_helper.from_array(np.zeros((1,), np_type), "zero")]
    nodes = []
    latent = "source"
    if emap:
        inits.append(numpy_helper.from_array(rng.standard_normal((512, 512)).astype(np_type), "emap"))
        nodes.append(helper.make_node("MatMul", ["source", "emap"], ["latent"]))
        latent = "latent"
    nodes += [
        helper.make_node("ReduceMean", [latent], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["target", "nothing"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "identity_swapper",
        [helper.make_tensor_value_info("target", dtype, list(target)),
         helper.make_tensor_value_info("source", dtype, list(source))],
        [helper.make_tensor_value_info("output", dtype, list(target))],
        initializer=inits,
    )
    return _save(graph, path)


def tiny_embedder(path: Path, *, size: int = 112, dim: int = 512) -> Path:
    """ArcFace contract: [1,3,size,size] -> [1,dim] (mean colour times a fixed matrix)."""
    weights = np.random.default_rng(1).standard_normal((3, dim)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["input.1"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["flat"]),
         helper.make_node("MatMul", ["flat", "w"], ["embedding"])],
        "tiny_embedder",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, dim])],
        initializer=[numpy_helper.from_array(weights, "w")],
    )
    return _save(graph, path)


def identity_enhancer(path: Path, *, size: int = 64, out_size: int | None = None) -> Path:
    """Enhancer contract [1,3,S,S] -> same; `out_size` different from `size` makes it wrong."""
    out = out_size or size
    nodes = [helper.make_node("Identity", ["input"], ["output"])]
    if out != size:
        nodes = [helper.make_node("Resize", ["input", "", "scales"], ["output"], mode="nearest")]
    inits = [] if out == size else [
        numpy_helper.from_array(np.array([1, 1, out / size, out / size], np.float32), "scales")]
    graph = helper.make_graph(
        nodes, "identity_enhancer",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, out, out])],
        initializer=inits,
    )
    return _save(graph, path)
