"""One-slot "latest wins" hand-off between two pipeline threads.

The producer never blocks: `put` replaces an unread item (which is counted as dropped). The
consumer blocks in `get` until an item arrives, the timeout passes, or the slot is closed.
This keeps at most one frame in flight per hand-off, so latency stays bounded when a
downstream stage is slower than the camera (the idea of MediaPipe's flow limiter).
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class SlotClosed(Exception):
    """The slot was closed and holds nothing more."""


class LatestSlot(Generic[T]):
    def __init__(self, name: str) -> None:
        self.name = name
        self._cond = threading.Condition()
        self._item: T | None = None
        self._has_item = False
        self._closed = False
        self._dropped = 0
        self._delivered = 0

    def put(self, item: T, *, wait: bool = False) -> T | None:
        """Store `item`; returns the unread item it replaced (now dropped), else None.

        wait=True is back-pressure for offline runs (benchmarks): block until the consumer has
        taken the previous item, so nothing is dropped."""
        with self._cond:
            while wait and self._has_item and not self._closed:
                self._cond.wait()
            if self._closed:
                raise SlotClosed(self.name)
            replaced = self._item if self._has_item else None
            if self._has_item:
                self._dropped += 1
            self._item = item
            self._has_item = True
            self._cond.notify()
            return replaced

    def get(self, timeout: float | None = None) -> T | None:
        """Take the latest item; None on timeout; raises SlotClosed once closed and empty."""
        with self._cond:
            if not self._has_item and not self._closed:
                self._cond.wait(timeout)
            if self._has_item:
                item = self._item
                self._item = None
                self._has_item = False
                self._delivered += 1
                self._cond.notify_all()
                return item
            if self._closed:
                raise SlotClosed(self.name)
            return None

    def close(self) -> None:
        """Wake the consumer; items already in the slot can still be taken."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def count_drop(self) -> None:
        """The consumer discarded an item it took (it found a newer one)."""
        with self._cond:
            self._dropped += 1
            self._delivered -= 1

    @property
    def dropped(self) -> int:
        with self._cond:
            return self._dropped

    @property
    def delivered(self) -> int:
        with self._cond:
            return self._delivered
