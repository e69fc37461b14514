"""How a window run ends: --frames N closes it (exit code 0), a video file that ends says so in
the picture and the status bar (and R then explains instead of claiming a recording), --loop
plays the file again and again. A real offscreen window over real video files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from livefusion.pipeline import RunEnd
from tests.conftest import ROOT
from tests.ui.conftest import moving_video, video_config
from tests.ui.helpers import wait_for

SIZE = (160, 120)


def test_frames_n_ends_the_window_run_after_n_frames(make_window, tmp_path):
    clip = moving_video(tmp_path / "long.avi", frames=90)
    running = make_window(video_config(clip, SIZE, **{"pipeline.frames": 12,
                                                      "input.loop": False}))
    window, app = running.window, running.app
    wait_for(lambda: not window.isVisible(), "the window to close after 12 frames")
    assert app.ended is RunEnd.FRAME_LIMIT and app.pipeline.frames_out == 12
    assert not app.pipeline.running


def test_a_video_that_ends_says_so_and_r_explains(make_window, tmp_path):
    clip = moving_video(tmp_path / "short.avi", frames=15)
    running = make_window(video_config(clip, SIZE, **{"input.loop": False}))
    window, app = running.window, running.app
    wait_for(lambda: "has ended" in window.preview.notice, "the end shown in the picture")
    assert app.ended is RunEnd.SOURCE_ENDED
    assert "short.avi has ended" in window.statusBar().currentMessage()
    assert "--loop" in window.preview.notice
    assert window.isVisible()  # the window stays: the user decides what next
    QTest.keyClick(window, Qt.Key.Key_R)
    assert app.outputs.recording == ""  # the status does not claim a recording
    assert "nothing left to record" in window.statusBar().currentMessage()
    assert window.last_dialog is None
    assert not (tmp_path / "recordings").exists() or not any((tmp_path / "recordings").iterdir())
    window.refresh_status()
    assert "rec off" in window.status_label.text()


def test_a_recording_running_when_the_video_ends_is_saved_and_reported(make_window, tmp_path):
    clip = moving_video(tmp_path / "short.avi", frames=45)
    running = make_window(video_config(clip, SIZE, **{"input.loop": False}))
    window, app = running.window, running.app
    QTest.keyClick(window, Qt.Key.Key_R)
    path = app.outputs.recording
    assert path
    wait_for(lambda: app.ended is not None and "Recording saved" in
             window.statusBar().currentMessage(), "the end and the saved recording")
    assert path in window.statusBar().currentMessage() and app.outputs.recording == ""
    window.refresh_status()
    assert "rec off" in window.status_label.text()
    cap = cv2.VideoCapture(path)
    assert cap.isOpened() and cap.read()[0], "the recording plays"
    cap.release()


def test_loop_plays_the_file_again_and_again(make_window, tmp_path):
    clip = moving_video(tmp_path / "short.avi", frames=10)
    running = make_window(video_config(clip, SIZE, **{"input.loop": True,
                                                      "pipeline.frames": 35}))
    window, app = running.window, running.app
    wait_for(lambda: not window.isVisible(), "35 frames from a 10-frame clip")
    assert app.ended is RunEnd.FRAME_LIMIT and app.pipeline.frames_out == 35
    assert window.preview.notice == ""


def test_the_real_app_exits_0_after_frames_n(tmp_path):
    """run_live.py as a user starts it (offscreen, its own settings folder): --frames ends it."""
    clip = moving_video(tmp_path / "clip.avi", frames=60)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    done = subprocess.run([sys.executable, str(Path(ROOT) / "run_live.py"), "--input",
                           str(clip), "--frames", "20", "--no-virtual-cam", "--loop"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Fatal Python error" not in done.stderr
    assert "after 20 frames" in done.stderr
