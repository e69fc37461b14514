"""The detectors the measuring tools run: SCRFD on a CPU onnxruntime session, or YuNet.

Shared by the ground-truth clip builder (synthclip) and the tracking evaluation, which both
need a detector for a model file without building the whole app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from livefusion.face.types import Detector


def make_detector_factory(model: Path, *, threads: int = 0,
                          kind: str = "scrfd") -> Callable[[int], Detector]:
    """`factory(input_size)` -> an SCRFD detector on one shared CPU onnxruntime session, or
    (kind "yunet") OpenCV's YuNet. Input size 0: the frame's own size (see detect.py)."""
    from livefusion.config import RuntimeConfig
    from livefusion.face.detect import ScrfdDetector, YunetDetector
    from livefusion.models.runtime import create_session  # onnxruntime: only when asked for

    if not Path(model).is_file():
        raise FileNotFoundError(f"detector model {model} does not exist; pass --model PATH.onnx")
    if kind == "yunet":
        return lambda size: YunetDetector(model, input_size=size)
    if kind != "scrfd":
        raise ValueError(f"detector kind must be 'scrfd' or 'yunet', got {kind!r}")
    session = create_session(Path(model), RuntimeConfig(providers=["cpu"], intra_threads=threads,
                                                        warmup=False), label="detector")
    return lambda size: ScrfdDetector(session, input_size=size)
