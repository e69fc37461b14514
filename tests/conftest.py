"""Shared fixtures: where ../shared lives, and skips with a reason when it is absent."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

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
