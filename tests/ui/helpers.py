"""Waiting helpers for the UI tests: run the Qt event loop until something holds.

They run a real `QEventLoop`, which releases the GIL while idle. `QTest.qWait` does not (in
PySide6 it keeps the GIL while it sleeps), which starves the pipeline's threads and makes a
model load on the inference thread take many seconds.
"""

from __future__ import annotations

import time
from typing import Callable

WAIT_MS = 10_000  # generous upper bound for anything the tests wait for; normally far less
POLL_MS = 5


def wait_for(predicate: Callable[[], bool], what: str, timeout_ms: int = WAIT_MS) -> None:
    """Run the Qt event loop until `predicate()` holds (fails with `what` otherwise)."""
    from PySide6.QtCore import QEventLoop, QTimer

    if predicate():
        return
    deadline = time.monotonic() + timeout_ms / 1000.0
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(POLL_MS)
    timer.timeout.connect(lambda: loop.quit() if predicate() or time.monotonic() > deadline
                          else None)
    timer.start()
    loop.exec()
    timer.stop()
    assert predicate(), f"timed out waiting for {what}"


def wait_frames(window, count: int = 3) -> None:
    start = window.preview.frames_shown
    wait_for(lambda: window.preview.frames_shown >= start + count, f"{count} new frames shown")
