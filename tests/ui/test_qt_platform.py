"""The xcb check before Qt starts: with libraries missing, one sentence that names them, the
Debian/Ubuntu packages and the fix (the probe is injected; the real one is dlopen)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from livefusion_ui.qt_platform import XCB_LIBRARIES, library_loads, xcb_problem

ROOT = Path(__file__).resolve().parents[2]
MISSING = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1"}  # what this machine lacked


def probe(lib: str) -> bool:
    return lib not in MISSING


def test_missing_libraries_name_the_packages_and_the_fix():
    text = xcb_problem({"DISPLAY": ":0"}, "Linux", probe)
    assert text is not None and text.count(". ") == 0 and text.endswith(".")  # one sentence
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in text
    assert "`sudo apt-get install libxcb-icccm4 libxcb-keysyms1`" in text
    assert "QT_QPA_PLATFORM=offscreen" in text and "--no-preview" in text


@pytest.mark.parametrize("environ, system", [
    ({"QT_QPA_PLATFORM": "offscreen"}, "Linux"),  # headless: no xcb
    ({"WAYLAND_DISPLAY": "wayland-0"}, "Linux"),  # Qt picks Wayland there
    ({}, "Windows"), ({}, "Darwin"),
])
def test_no_check_where_qt_does_not_use_xcb(environ, system):
    assert xcb_problem(environ, system, lambda lib: False) is None


def test_nothing_to_say_when_all_load():
    assert xcb_problem({"QT_QPA_PLATFORM": "xcb"}, "Linux", lambda lib: True) is None


def test_the_real_probe_loads_a_library_that_is_there_and_not_one_that_is_not():
    assert library_loads("libc.so.6") and not library_loads("libno-such-thing.so.7")


@pytest.mark.skipif(sys.platform != "linux", reason="xcb is Linux only")
def test_the_window_command_stops_with_the_sentence(tmp_path):
    """The CLI, with QT_QPA_PLATFORM=xcb: either every library is there, or exit 2 with the
    sentence instead of Qt's abort."""
    missing = [lib for lib in XCB_LIBRARIES if not library_loads(lib)]
    if not missing:
        pytest.skip("every xcb library is installed here")
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", DISPLAY=":99", HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "run_live.py", "--input", "nothing.png",
                           "--no-virtual-cam"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "sudo apt-get install" in done.stderr and "Aborted" not in done.stderr
