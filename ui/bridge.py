"""Hand finished packets from the pipeline's output thread to the Qt thread.

`FrameBridge.submit` is the pipeline subscriber: it runs on the output thread, stores the newest
packet and, only when the Qt thread has not yet been told about an earlier one, emits a queued
signal. It never waits for the UI: a slow paint means packets are replaced (and counted as
coalesced), not queued, so the preview always shows the newest frame and the event queue holds
at most one pending frame notification.

`Relay` carries any other result from a worker thread (a future's outcome, a camera scan) to a
slot on the Qt thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

from livefusion.packet import FramePacket

log = logging.getLogger(__name__)


class FrameBridge(QObject):
    """Latest-wins mailbox from the output thread to the Qt thread."""

    frame_ready = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._latest: FramePacket | None = None
        self._pending = False  # a frame_ready is queued and not yet taken
        self._closed = False
        self.submitted = 0
        self.coalesced = 0  # packets replaced before the Qt thread took them

    def submit(self, packet: FramePacket) -> None:
        """Pipeline subscriber (output thread): keep the newest packet, notify at most once."""
        with self._lock:
            if self._closed:
                return
            self.submitted += 1
            if self._latest is not None:
                self.coalesced += 1
            self._latest = packet
            notify = not self._pending
            self._pending = True
        if notify:
            self.frame_ready.emit()

    def take(self) -> FramePacket | None:
        """The newest packet not yet taken (Qt thread), or None."""
        with self._lock:
            packet, self._latest = self._latest, None
            self._pending = False
            return packet

    def close(self) -> None:
        """Stop accepting packets (before the window goes away)."""
        with self._lock:
            self._closed = True
            self._latest = None

    def connect_to(self, slot: Any) -> None:
        self.frame_ready.connect(slot, Qt.ConnectionType.QueuedConnection)


class Relay(QObject):
    """Emits `delivered(payload)` from any thread; slots run on the Qt thread.

    After `close()` (or once Qt has deleted the relay with its window) payloads are dropped:
    nothing already queued reaches the slot, and `send` from a worker thread never raises,
    because a worker finishing after the window went away has no one left to tell.
    """

    delivered = Signal(object)

    def __init__(self, slot: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._closed = False
        self._slot = slot
        self.delivered.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self.destroyed.connect(self._mark_closed, Qt.ConnectionType.DirectConnection)

    def send(self, payload: Any) -> None:
        with self._lock:  # close() cannot slip in between the check and the emit
            if self._closed:
                log.debug("relay closed; a late result was dropped")
                return
            try:
                self.delivered.emit(payload)
            except RuntimeError as exc:  # deleted by Qt before `destroyed` reached us
                self._closed = True
                log.debug("relay deleted; a late result was dropped (%s)", exc)

    def close(self) -> None:
        """Drop every payload from now on, including those already queued (Qt thread)."""
        self._mark_closed()

    def _mark_closed(self, *_: Any) -> None:
        with self._lock:
            self._closed = True

    def _deliver(self, payload: Any) -> None:
        with self._lock:
            closed = self._closed
        if not closed:
            self._slot(payload)
