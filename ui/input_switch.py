"""Changing the window's input while it runs: the camera scan and the switch to another camera
or video file.

Both take seconds (opening a camera index, stopping a pipeline that finalises a recording), so they
run on worker threads and their outcomes come back on the Qt thread through the window's `Relay`.
The window owns one `InputSwitcher` and decides what to show; the switcher owns the threads, the
app built but not yet taken up, and the pipelines a switch retired.
"""

from __future__ import annotations

import logging
import threading
import time
from copy import deepcopy
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from livefusion.app import LiveApp, build_app
from livefusion.config import AppConfig
from livefusion_ui.bridge import Relay

if TYPE_CHECKING:
    from livefusion.media.camera import CameraInfo

log = logging.getLogger(__name__)

Switched = Callable[[LiveApp, LiveApp], None]  # (old, new), on the Qt thread, new not started yet


class InputSwitcher:
    """Switches the window's `LiveApp` to another input and lists cameras, off the Qt thread.

    A switch builds the new app and stops the old one on a worker thread, then hands the new one
    to the Qt thread, which carries the engine and settings over and adopts it. `close()` orders
    that hand-over against the window's shutdown: a switch that finishes after it gets nothing,
    and the input it opened is closed again.
    """

    def __init__(self, relay: Relay) -> None:
        self._relay = relay
        self._lock = threading.Lock()  # orders the worker's hand-over against close()
        self._closed = False
        self._switch_thread: threading.Thread | None = None
        self._pending: LiveApp | None = None  # built and not yet adopted
        self._scan_threads: list[threading.Thread] = []
        self.retired: list[LiveApp] = []  # stopped by a switch; may still finalise a recording
        self.switching = False

    # --- camera scan ---------------------------------------------------------------------------

    def scan_cameras(self, backend: str, found: Callable[[list[CameraInfo]], None],
                     failed: Callable[[str], None]) -> None:
        """List cameras on a worker thread (opening each index takes a moment); `found(cameras)`
        or `failed(message)` runs on the Qt thread."""
        from livefusion.media.camera import list_cameras

        def scan() -> None:
            try:
                cameras = list_cameras(backend=backend)
            except Exception as exc:  # reported by `failed`
                log.warning("camera scan failed: %s", exc)
                message = f"Camera scan failed: {exc}"  # `exc` is unbound after this block
                self._relay.send(lambda: failed(message))
                return
            self._relay.send(lambda: found(cameras))

        thread = threading.Thread(target=scan, name="lf-camera-scan", daemon=True)
        self._scan_threads = [t for t in self._scan_threads if t.is_alive()] + [thread]
        thread.start()

    # --- switching -----------------------------------------------------------------------------

    def switch(self, old: LiveApp, camera: str, switched: Switched,
               failed: Callable[[str], None]) -> None:
        """Start switching from `old` to `camera` (an index or a file path). On the Qt thread
        later: `switched(old, new)` once `old` is stopped and `new` has `old`'s engine and
        settings (the caller adopts and starts it), or `failed(message)` when the input would
        not open (`old` keeps running)."""
        if self.switching:
            raise RuntimeError("an input switch is already under way; wait for it (`switching`)")
        self.switching = True
        config = _copy_config(old.config, camera)
        self._switch_thread = threading.Thread(target=self._open_input,
                                               args=(old, config, camera, switched, failed),
                                               name="lf-switch-input", daemon=True)
        self._switch_thread.start()

    def _open_input(self, old: LiveApp, config: AppConfig, camera: str, switched: Switched,
                    failed: Callable[[str], None]) -> None:
        """Worker thread: build the new app, stop the old one, hand the new one to the Qt
        thread. After close() the new app is stopped here instead."""
        try:
            new = build_app(config)
        except Exception as exc:  # the source's message says what to check
            log.warning("switching to input %s failed: %s", camera, exc)
            message = str(exc)
            self._relay.send(lambda: self._failed(message, failed))
            return
        with self._lock:
            abandoned = self._closed
            if not abandoned:
                old.stop()  # within about a second; a recording is finalised
                self._pending = new
        if abandoned:
            new.stop()  # never started: closes the input it opened
            return
        self._relay.send(lambda: self._adopt(old, new, switched))

    def _adopt(self, old: LiveApp, new: LiveApp, switched: Switched) -> None:
        with self._lock:
            if self._pending is not new:  # close() took it
                return
            self._pending = None
        self.switching = False
        self.retired.append(old)
        new.holder.set(old.engine)
        if old.engine is not None:
            new.pipeline.call_in_inference(old.engine.reset)
        new.settings.update(**asdict(old.settings.snapshot()))
        switched(old, new)

    def _failed(self, message: str, failed: Callable[[str], None]) -> None:
        self.switching = False
        failed(message)

    # --- shutdown ------------------------------------------------------------------------------

    def close(self) -> None:
        """From now on a finished switch is not handed over; waits while a switch is stopping
        the old pipeline. Call first when the window shuts down."""
        with self._lock:
            self._closed = True

    def wind_down(self) -> None:
        """After close() and the window's own stop: stop an app a switch built that was never
        taken up, and give camera scans a moment to end."""
        with self._lock:
            unadopted, self._pending = self._pending, None
        if unadopted is not None:
            unadopted.stop()
        for thread in self._scan_threads:
            thread.join(timeout=0.2)

    def join(self, timeout: float) -> bool:
        """Wait up to `timeout` s for the worker threads and for the retired pipelines (one may
        still be finalising a recording); True when none is left."""
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(deadline - time.monotonic(), 0.0)

        threads = [t for t in (self._switch_thread, *self._scan_threads) if t is not None]
        for thread in threads:
            thread.join(left())
        finished = [app.pipeline.join(left()) for app in self.retired]
        return all(finished) and not any(t.is_alive() for t in threads)


def _copy_config(config: AppConfig, camera: str) -> AppConfig:
    """The same configuration on another input: a file path or a camera; no source faces (the
    engine is carried over) and no virtual camera (re-enabled by the window)."""
    new = deepcopy(config)
    if Path(camera).is_file() and not camera.isdigit():
        new.input.file = camera
    else:
        new.input.file, new.input.camera = "", camera
    new.face.sources = []
    new.output.virtual_cam = False
    new.output.record = ""
    return new
