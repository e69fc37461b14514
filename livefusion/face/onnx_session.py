"""One calling convention for ONNX sessions inside the face engine.

The face classes take a session object, never a path, so the wiring decides providers and
options (livefusion/models/runtime.py's `ModelSession`) and tests can hand in a plain
`onnxruntime.InferenceSession`. `as_model_session` accepts either and returns something with
the `ModelSession` surface the face code uses: `run(feeds) -> list[np.ndarray]`,
`input_names`, `input_shapes`, `input_types`, `output_names`, `output_shapes`.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}


@runtime_checkable
class SessionLike(Protocol):
    input_names: Sequence[str]
    input_shapes: Sequence[Sequence[Any]]
    input_types: Sequence[str]
    output_names: Sequence[str]
    output_shapes: Sequence[Sequence[Any]]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]: ...


class OrtSessionAdapter:
    """Gives a raw `onnxruntime.InferenceSession` the `ModelSession` surface."""

    def __init__(self, session: Any) -> None:
        self.session = session
        inputs = session.get_inputs()
        outputs = session.get_outputs()
        self.input_names = [i.name for i in inputs]
        self.input_shapes = [list(i.shape) for i in inputs]
        self.input_types = [i.type for i in inputs]
        self.output_names = [o.name for o in outputs]
        self.output_shapes = [list(o.shape) for o in outputs]
        providers = session.get_providers()
        self.provider = providers[0] if providers else ""

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, feeds)


def as_model_session(session: Any) -> SessionLike:
    """Return `session` if it already has the ModelSession surface, else wrap an ORT session."""
    if hasattr(session, "input_names") and hasattr(session, "output_shapes"):
        return session
    if hasattr(session, "get_inputs") and hasattr(session, "get_outputs"):
        return OrtSessionAdapter(session)
    raise TypeError(
        f"expected an onnxruntime.InferenceSession or a livefusion.models.runtime.ModelSession, "
        f"got {type(session).__name__}"
    )


def numpy_type(ort_type: str) -> type:
    """'tensor(float16)' -> np.float16; raises ValueError for types the face models never use."""
    try:
        return _ORT_TYPES[ort_type]
    except KeyError:
        raise ValueError(
            f"model input type {ort_type} is not supported; the face models take float32 or float16"
        ) from None


def fixed_dim(value: Any) -> int | None:
    """A static dimension as int, or None when the model leaves it dynamic."""
    return int(value) if isinstance(value, (int, np.integer)) and int(value) > 0 else None
