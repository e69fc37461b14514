"""Quitting the real app is a clean exit: code 0 and no crash at interpreter shutdown.

Each run is its own process (`livefusion_ui.main.run`, as `run_live.py` starts it), since the crash this
guards against (PySide6 6.12.0 losing references to True on every signal emit) only showed
when the interpreter tore down at exit: "Fatal Python error: bool_dealloc", exit code 134.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.ui.conftest import moving_video

ROOT = Path(__file__).resolve().parents[2]

DRIVER = textwrap.dedent("""
    import sys
    from PySide6.QtCore import QTimer, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication
    from livefusion.config import load_config
    from livefusion_ui.main import application, run

    key = getattr(Qt.Key, sys.argv[2])
    app = application([])

    def press():
        windows = [w for w in QApplication.topLevelWidgets() if w.isVisible()]
        for window in windows:
            QTest.keyClick(window, Qt.Key.Key_D)  # a few hotkeys first: overlay on, off
            QTest.keyClick(window, Qt.Key.Key_D)
            QTest.keyClick(window, Qt.Key.Key_Space)
            QTest.keyClick(window, key)

    QTimer.singleShot(1500, press)
    config = load_config(overrides=[("input.file", sys.argv[1]), ("input.loop", True),
                                    ("input.realtime", False),  # many frames: many emits
                                    ("output.virtual_cam", False)])
    sys.exit(run(config))
""")


@pytest.mark.slow
@pytest.mark.parametrize("key", ["Key_Q", "Key_Q", "Key_Escape"])
def test_quitting_exits_cleanly(key, tmp_path):
    clip = moving_video(tmp_path / "clip.avi")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "cfg"),
               HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", DRIVER, str(clip), key], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=90)
    output = done.stdout + done.stderr
    assert "Fatal Python error" not in output, output[-2000:]
    assert done.returncode == 0, output[-2000:]
