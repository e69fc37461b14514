"""`ui.main.run(config)` end to end: window up, frames shown, closed from the event loop,
exit code 0, remembered settings written (to a temporary folder, never the user's)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from livefusion.config import load_config
from tests.ui.conftest import video_config
from ui.main import run, with_remembered_camera
from ui.settings_store import StoredState
from ui.window import MainWindow


@pytest.fixture
def settings_dir(tmp_path):
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "config"))
    yield tmp_path / "config"
    default = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, default)  # Qt's default, back


def test_run_shows_frames_and_exits_cleanly(qapp, small_video, settings_dir, no_thread_leak):
    seen = {}

    def close_after_frames() -> None:
        windows = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, MainWindow) and w.isVisible()]
        if windows and windows[0].preview.frames_shown >= 5:
            seen["frames"] = windows[0].preview.frames_shown
            windows[0].close()
            return
        QTimer.singleShot(20, close_after_frames)

    QTimer.singleShot(0, close_after_frames)
    assert run(video_config(small_video, (160, 120))) == 0
    assert seen["frames"] >= 5
    assert list(settings_dir.rglob("*.conf")) or list(settings_dir.rglob("*.ini"))


@pytest.mark.parametrize("overrides,stored,expected", [
    ([], "2", "2"),  # default camera: the one chosen last time
    ([("input.camera", "1")], "2", "1"),  # the command line names another camera: it wins
    ([("input.file", "clip.mp4")], "2", "0"),  # a file input keeps the camera untouched
    ([], "", "0"),
])
def test_remembered_camera_only_replaces_the_default(overrides, stored, expected):
    config = load_config(overrides=overrides)
    assert with_remembered_camera(config, StoredState(camera=stored)).input.camera == expected
