"""Qt test setup: the offscreen platform (set before Qt is imported), one QApplication per
session, and a factory for a running window over a real video file."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from livefusion.config import load_config  # noqa: E402

from tests.ui.helpers import WAIT_MS  # noqa: E402


@pytest.fixture(scope="session")
def qapp():
    from livefusion_ui.main import application

    return application([])


def moving_video(path: Path, frames: int = 60, size: tuple[int, int] = (160, 120),
                 fps: float = 30.0) -> Path:
    """A small clip: a bright square moving over a gradient, so frames differ."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened(), f"test setup: cannot write {path}"
    base = np.tile(np.linspace(30, 200, w, dtype=np.uint8)[None, :, None], (h, 1, 3))
    for k in range(frames):
        frame = base.copy()
        x = (k * 4) % (w - 24)
        frame[40:64, x:x + 24] = (40, 220, 250)
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture
def small_video(tmp_path) -> Path:
    return moving_video(tmp_path / "clip.avi")


def video_config(video: Path, size: tuple[int, int], **overrides: Any):
    pairs = [("input.file", str(video)), ("input.resolution", f"{size[0]}x{size[1]}"),
             ("input.loop", True), ("input.realtime", True), ("output.virtual_cam", False),
             ("runtime.providers", ["cpu"])]
    pairs += list(overrides.items())
    return load_config(overrides=pairs)


@dataclass
class Running:
    window: Any
    app: Any
    store: Any


@pytest.fixture
def make_window(qapp, tmp_path) -> Callable[..., Running]:
    """make_window(config, start=True) -> Running; the window is closed after the test."""
    from PySide6.QtCore import QSettings
    from PySide6.QtTest import QTest

    from livefusion.app import build_app
    from livefusion_ui.settings_store import SettingsStore
    from livefusion_ui.window import MainWindow

    made: list[Any] = []

    def make(config, *, start: bool = True, store=None, state=None) -> Running:
        store = store or SettingsStore(QSettings(str(tmp_path / "settings.ini"),
                                                 QSettings.Format.IniFormat))
        app = build_app(config)
        window = MainWindow(app, store=store, state=state if state is not None else store.load(),
                            recordings_dir=tmp_path / "recordings")
        made.append(window)
        window.show()
        window.activateWindow()
        assert QTest.qWaitForWindowActive(window, WAIT_MS)
        if start:
            window.start()
        return Running(window, app, store)

    yield make
    for window in made:
        window.quit_now()  # without the question a live virtual camera would ask
        window.deleteLater()
    qapp.processEvents()
