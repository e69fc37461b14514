"""Tiny ONNX models with the exact upstream contracts, built with onnx.helper.

They exercise the real loading and running code (onnxruntime sessions, input names and
types, the emap initializer) without the large weights, which cannot be downloaded here.
The swapper and recogniser stand-ins live in `livefusion.measure.standins` (the evaluation scripts
use them too) and are re-exported here for the tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from livefusion.measure.standins import arcface_standin, identity_inswapper, paint_inswapper

__all__ = ["arcface_standin", "cpu_session", "identity_enhancer", "identity_inswapper",
           "paint_inswapper", "shared_path"]

OPSET = 17


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


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
