"""Work handed to a pipeline thread, run between two frames, with its result in a Future.

This is how run-time changes that must happen on a stage's own thread (adding a source face
on the inference thread, adding an output on the output thread) reach it without any thread
reading shared mutable state.
"""

from __future__ import annotations

import queue
from concurrent.futures import Future
from typing import Any, Callable


def run_command(fn: Callable[[], Any], future: Future) -> None:
    """Run `fn`, putting its result or exception into `future` (unless it was cancelled)."""
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(fn())
    except Exception as exc:  # handed to the caller through the future
        future.set_exception(exc)


class CommandQueue:
    """Commands for one thread: producers `put`, the owning thread `drain`s between frames."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Callable[[], Any], Future]] = queue.Queue()

    def put(self, fn: Callable[[], Any]) -> Future:
        future: Future = Future()
        self._queue.put((fn, future))
        return future

    def drain(self) -> None:
        """Run every queued command, in order, on the calling thread."""
        while True:
            try:
                fn, future = self._queue.get_nowait()
            except queue.Empty:
                return
            run_command(fn, future)

    def fail_pending(self, reason: str) -> None:
        """Fail every command that will never run (the thread has ended)."""
        while True:
            try:
                _, future = self._queue.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                future.set_exception(RuntimeError(reason))
