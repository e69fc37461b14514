"""Waiting helpers for the UI tests: run the Qt event loop until something holds."""

from __future__ import annotations

from typing import Callable

WAIT_MS = 10_000  # generous upper bound for anything the tests wait for; normally far less


def wait_for(predicate: Callable[[], bool], what: str, timeout_ms: int = WAIT_MS) -> None:
    """Run the Qt event loop until `predicate()` holds (fails with `what` otherwise)."""
    import time

    from PySide6.QtTest import QTest

    deadline = time.monotonic() + timeout_ms / 1000.0
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        QTest.qWait(10)  # processes Qt events (queued frames, future results) meanwhile


def wait_frames(window, count: int = 3) -> None:
    start = window.preview.frames_shown
    wait_for(lambda: window.preview.frames_shown >= start + count, f"{count} new frames shown")
