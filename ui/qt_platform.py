"""Before Qt starts on Linux/X11: are the xcb libraries its platform plugin needs installed?

Without them Qt aborts with "could not load the Qt platform plugin xcb ... reinstalling the
application may fix this", which sends users the wrong way. `xcb_problem()` names the missing
libraries, the Debian/Ubuntu packages that bring them and the `apt-get install` line. It does not
import Qt, so it runs before any QApplication exists.
"""

from __future__ import annotations

import ctypes
import os
import platform
from typing import Callable, Mapping

# The libraries PySide6's libqxcb.so / libQt6XcbQpa.so.6 link against (ldd), with the
# Debian/Ubuntu package of each.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}


class QtPlatformError(RuntimeError):
    """Qt's windowing platform cannot start here; the message says what to install."""


def library_loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def uses_xcb(environ: Mapping[str, str], system: str) -> bool:
    """Whether Qt will pick its X11 (xcb) plugin: Linux, and QT_QPA_PLATFORM says xcb, or says
    nothing outside a Wayland session."""
    if system != "Linux":
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "").strip().lower()
    if chosen:
        return chosen.split(";")[0].startswith("xcb")
    return not environ.get("WAYLAND_DISPLAY")


def missing_message(missing: list[str]) -> str:
    """One sentence: what is missing, the packages, the fix, the headless way round."""
    packages = " ".join(dict.fromkeys(XCB_LIBRARIES[lib] for lib in missing))
    return (f"The window cannot start because Qt's X11 (xcb) platform needs libraries that are "
            f"not installed ({', '.join(missing)}): install them with "
            f"`sudo apt-get install {packages}` (Debian/Ubuntu), or run without a window "
            "(--no-preview, or QT_QPA_PLATFORM=offscreen on a headless machine).")


def xcb_problem(environ: Mapping[str, str] | None = None, system: str | None = None,
                probe: Callable[[str], bool] = library_loads) -> str | None:
    """The message for the missing xcb libraries, or None when Qt can start (or will not use
    xcb)."""
    environ = os.environ if environ is None else environ
    if not uses_xcb(environ, system or platform.system()):
        return None
    missing = [lib for lib in XCB_LIBRARIES if not probe(lib)]
    return missing_message(missing) if missing else None
