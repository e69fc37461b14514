"""Shared fixtures: where ../shared lives, and skips with a reason when it is absent."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import pyvirtualcam

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LIVEFUSION_SHARED", ROOT.parent / "shared"))
SHARED_MODELS = SHARED / "models"
SHARED_IMAGES = SHARED / "assets" / "images"
SHARED_VIDEOS = SHARED / "assets" / "videos"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is missing: the real models and clips come from ../shared (see README)")
    return path


@pytest.fixture
def shared_model():
    """shared_model('det_500m.onnx') -> Path, or skip when ../shared is absent."""
    return lambda name: _need(SHARED_MODELS / name)


@pytest.fixture
def shared_image():
    return lambda name: _need(SHARED_IMAGES / name)


@pytest.fixture
def shared_video():
    return lambda name: _need(SHARED_VIDEOS / name)


@pytest.fixture
def no_thread_leak():
    """Fails the test if it leaves a non-daemon or pipeline thread running."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"


RECORDER_BACKEND = "livefusion-test-recorder"


@pytest.fixture
def recording_backend(monkeypatch):
    """Registers a pyvirtualcam backend that keeps every frame it is sent; yields the list of
    backend instances created (one per Camera)."""
    created = []

    class RecordingBackend:
        def __init__(self, *, width, height, fps, fourcc, device, **kw):
            self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
            self._device = device or "LiveFusion test camera"
            self.frames: list[np.ndarray] = []
            self.closed = 0
            self.fail_sends = False
            created.append(self)

        def send(self, frame: np.ndarray) -> None:
            if self.fail_sends:
                raise RuntimeError("device went away")
            self.frames.append(frame.copy())

        def close(self) -> None:
            self.closed += 1

        def device(self) -> str:
            return self._device

        def native_fourcc(self):
            return self.fourcc

    monkeypatch.setitem(pyvirtualcam.camera.BACKENDS, RECORDER_BACKEND, RecordingBackend)
    return created


@pytest.fixture(scope="session")
def privacy_clips(tmp_path_factory):
    """The generated privacy clips (livefusion.measure.privacy_clips), made once per test session."""
    from livefusion.measure.privacy_clips import make_clips

    yunet = _need(SHARED_MODELS / "face_detection_yunet_2023mar.onnx")
    folder = tmp_path_factory.mktemp("privacy_clips")
    return {t.name: t for t in make_clips(_need(SHARED_IMAGES), folder, yunet)}


@pytest.fixture(scope="session")
def exposure_judge():
    """The independent judge (YuNet + MobileFaceNet) of what viewers see."""
    from livefusion.measure.exposure import ExposureJudge

    return ExposureJudge(_need(SHARED_MODELS / "face_detection_yunet_2023mar.onnx"),
                         _need(SHARED_MODELS / "pixamatch_mobilefacenet.onnx"), threads=1)
