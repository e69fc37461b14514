"""The real app under a real X server: Xvfb, the openbox window manager, keys sent by xdotool
as a user's keyboard would (no Qt test hooks). Five runs in a row, each through start, every
hotkey (and the dialogs some of them open) and quit: exit code 0 each time and no
"Fatal Python error".

Needs `apt-get install xvfb xdotool openbox` (.ci/run installs them); skipped with the reason
when they or Qt's xcb libraries are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from livefusion_ui.qt_platform import xcb_problem

ROOT = Path(__file__).resolve().parents[2]
RUNS = 5
TOOLS = ("Xvfb", "xdotool", "openbox")
TIMEOUT_S = 20.0


def _missing_tools() -> str:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return (f"{', '.join(missing)} not installed (apt-get install -y xvfb xdotool openbox; "
                ".ci/run does it)")
    return xcb_problem({"QT_QPA_PLATFORM": "xcb"}, "Linux") or ""


pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    sys.platform != "linux" or bool(_missing_tools()),
    reason=_missing_tools() or "X11 runs are Linux only")]


class Display:
    """Xvfb on a free display number, with openbox managing its windows."""

    def __init__(self, size: str = "1280x800") -> None:
        read, write = os.pipe()
        self.xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0",
                                      f"{size}x24", "-nolisten", "tcp"], pass_fds=(write,),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write)
        with os.fdopen(read) as pipe:
            self.name = ":" + pipe.readline().strip()
        self.env = dict(os.environ, DISPLAY=self.name)
        self.wm = subprocess.Popen(["openbox"], env=self.env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)

    def xdotool(self, *args: str, timeout: float = TIMEOUT_S) -> str:
        done = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        return done.stdout.strip()

    def window(self, title: str) -> str:
        """The id of the visible window whose title matches (waits for it)."""
        ids = self.xdotool("search", "--sync", "--onlyvisible", "--name", title)
        return ids.splitlines()[-1]

    def keys(self, wid: str, *keys: str) -> None:
        self.xdotool("windowactivate", "--sync", wid, "key", "--delay", "40", *keys)

    def close(self) -> None:
        for process in (self.wm, self.xvfb):
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def display():
    screen = Display()
    yield screen
    screen.close()


def drive_once(display: Display, image: Path, home: Path) -> tuple[int, str]:
    env = dict(display.env, QT_QPA_PLATFORM="xcb", HOME=str(home),
               XDG_CONFIG_HOME=str(home / "config"), PYTHONPATH=str(ROOT),
               PYTHONFAULTHANDLER="1")
    app = subprocess.Popen([sys.executable, "run_live.py", "--input", str(image), "--fps", "15",
                            "--no-virtual-cam", "--provider", "cpu", "--log-level", "WARNING",
                            # a backend no machine has: V shows the no-driver box everywhere
                            "--vcam-backend", "livefusion-no-such-driver"],
                           cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    try:
        wid = display.window("^LiveFusion — ")
        time.sleep(0.2)  # a few frames shown
        display.keys(wid, "space", "space", "e", "d", "m", "b", "plus", "minus", "1")
        display.keys(wid, "r")
        time.sleep(0.3)  # a moment recorded
        display.keys(wid, "r")
        display.keys(wid, "v")  # no driver here: the box that says how to install one
        display.keys(display.window("no virtual camera"), "Escape")
        display.keys(wid, "o")  # the source-photo file dialog
        display.keys(display.window("Add a source face"), "Escape")
        display.keys(wid, "f")
        time.sleep(0.2)
        display.keys(wid, "f", "h")
        display.keys(wid, "Escape")  # closes the help, not the app
        time.sleep(0.2)
        assert app.poll() is None, "Esc over the help overlay quit the app"
        display.keys(wid, "q")
        output, _ = app.communicate(timeout=TIMEOUT_S)
    finally:
        if app.poll() is None:
            app.kill()
            app.communicate()
    return app.returncode, output


def test_five_runs_through_every_hotkey_exit_cleanly(display, tmp_path):
    image = tmp_path / "still.png"
    frame = np.full((240, 320, 3), 80, np.uint8)
    cv2.circle(frame, (160, 120), 60, (40, 180, 230), -1)
    cv2.imwrite(str(image), frame)
    for run in range(1, RUNS + 1):
        code, output = drive_once(display, image, tmp_path / "home")
        assert "Fatal Python error" not in output, f"run {run}:\n{output[-3000:]}"
        assert code == 0, f"run {run} exited {code}:\n{output[-3000:]}"
    recordings = list((tmp_path / "home").rglob("livefusion-*.mp4"))
    assert len(recordings) >= 1, "R ... R wrote recordings"  # same second: names may repeat
