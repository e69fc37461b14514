"""`livefusion_ui.main.run(config)` end to end: window up, frames shown, closed from the event loop,
exit code 0, remembered settings written (to a temporary folder, never the user's)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from livefusion.config import load_config
from tests.ui.conftest import video_config
from livefusion_ui.main import run, with_remembered_camera
from livefusion_ui.settings_store import StoredState
from livefusion_ui.window import MainWindow


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
    given = frozenset(key for key, _ in overrides)
    assert with_remembered_camera(config, StoredState(camera=stored), given).input.camera == \
        expected


def test_run_returns_only_after_a_recording_is_finalised(qapp, small_video, settings_dir,
                                                         tmp_path, monkeypatch, no_thread_leak):
    """Closing stops the pipeline within about a second, but a slow recorder is still writing
    then; run() must wait for the file to be finalised before the process may exit."""
    import threading
    import time

    import cv2

    import livefusion_ui.window
    from livefusion.app import RECORD_SINK
    from livefusion.media.sinks import RecorderSink

    monkeypatch.setattr(livefusion_ui.window, "default_recordings_dir", lambda: tmp_path / "recordings")
    closing = threading.Event()
    written = threading.Event()
    send = RecorderSink.send

    def slow_send(self, frame, packet=None):
        # A slow disk: frames queue up behind the writer (so one is waiting when the window
        # closes), and the frame written after the close outlasts the pipeline's 1 s stop.
        time.sleep(1.5 if closing.is_set() else 0.2)
        send(self, frame, packet)
        written.set()

    monkeypatch.setattr(RecorderSink, "send", slow_send)
    seen: dict = {}

    def drive() -> None:
        windows = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, MainWindow) and w.isVisible()]
        if windows:
            window = windows[0]
            if "path" not in seen and window.preview.frames_shown >= 3:
                window.run_action("record")
                seen["path"] = window.app.outputs.recording
            elif "path" in seen and written.is_set() and \
                    RECORD_SINK in window.app.pipeline.sink_names:
                seen["window"] = window
                closing.set()
                window.close()
                return
        QTimer.singleShot(20, drive)

    QTimer.singleShot(0, drive)
    assert run(video_config(small_video, (160, 120))) == 0
    assert seen["window"].stop_seconds < 1.5  # the window itself did not wait
    capture = cv2.VideoCapture(seen["path"])
    try:
        assert capture.isOpened() and capture.read()[0], "the recording plays once run() returns"
    finally:
        capture.release()
