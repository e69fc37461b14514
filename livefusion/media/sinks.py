"""Output sinks: where finished frames go, called from the pipeline's output thread.

Every sink follows the `Sink` protocol: a `name`, `send(frame, packet)` with a BGR uint8 HxWx3
frame, and `close()`. Sinks open lazily on the first frame (its size is known then) or through
an explicit `open(width, height, fps)`, which lets the app learn at start-up that an output is
unavailable. A sink that cannot go on raises `SinkError` with a message saying what to do; the
pipeline then stops that sink and keeps the others.

- `VirtualCameraSink`: pyvirtualcam (OBS / Unity Capture on Windows, OBS on macOS,
  v4l2loopback on Linux), BGR in, so no colour conversion on our side.
- `RecorderSink`: a video file that keeps real time (PyAV with timestamps, or cv2.VideoWriter
  repeating frames), finalised on close, watching the disk.
- `NullSink`, `CallbackSink` (hands packets to the UI).
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, Protocol, runtime_checkable

import numpy as np

from livefusion.errors import LiveFusionError
from livefusion.media.recording import (
    RECORD_CODECS,
    FrameWriter,
    RecordBackend,
    RecordClock,
    WriteError,
    containers_for,
    default_backend,
    open_writer,
)
from livefusion.media.sources import fit_frame

log = logging.getLogger(__name__)


class SinkError(LiveFusionError, RuntimeError):
    """An output cannot open or stopped working; the message says what to do."""


class VirtualCameraUnavailable(SinkError):
    """No pyvirtualcam backend could start; the message names the fix for this OS."""

    def __init__(self, message: str, reasons: list[str], fix: str) -> None:
        super().__init__(message)
        self.reasons = reasons
        self.fix = fix


@runtime_checkable
class Sink(Protocol):
    name: str

    def send(self, frame: np.ndarray, packet: Any) -> None: ...

    def close(self) -> None: ...


# ----- null and callback ---------------------------------------------------------------------


class NullSink:
    """Accepts frames and drops them (benchmarks, headless runs); counts what it got."""

    def __init__(self, name: str = "null") -> None:
        self.name = name
        self.frames = 0

    def send(self, frame: np.ndarray, packet: Any) -> None:
        self.frames += 1

    def close(self) -> None:
        pass


class CallbackSink:
    """Calls `fn(packet)` for each frame, for the UI.

    `fn` runs on the output thread and must only hand the packet over (e.g. emit a queued Qt
    signal), never draw or wait; a call slower than `warn_ms` is logged once so a blocking
    callback shows up instead of silently slowing the stream.
    """

    def __init__(self, fn: Callable[[Any], None], name: str = "preview",
                 warn_ms: float = 5.0) -> None:
        self.name = name
        self._fn = fn
        self._warn_ms = warn_ms
        self._warned = False

    def send(self, frame: np.ndarray, packet: Any) -> None:
        start = time.perf_counter()
        self._fn(packet)
        elapsed_ms = (time.perf_counter() - start) * 1e3
        if elapsed_ms > self._warn_ms and not self._warned:
            self._warned = True
            log.warning("output %s: its callback took %.1f ms on the output thread; it should "
                        "only hand the frame over (e.g. emit a queued signal)", self.name,
                        elapsed_ms)

    def close(self) -> None:
        pass


# ----- virtual camera ------------------------------------------------------------------------

VIRTUAL_CAMERA_FIXES = {
    "Linux": ("install v4l2loopback (e.g. `sudo apt install v4l2loopback-dkms`) and load it with "
              "`sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=LiveFusion`"),
    "Windows": ("install OBS Studio 26 or newer and start its Virtual Camera once (then stop it "
                "and close OBS), or install Unity Capture"),
    "Darwin": ("install OBS Studio 30 or newer, start its Virtual Camera once and allow the OBS "
               "system extension in System Settings > Privacy & Security"),
}


def virtual_camera_fix(system: str | None = None) -> str:
    """What to do on `system` (default: this OS) so that a virtual camera exists."""
    system = system or platform.system()
    return VIRTUAL_CAMERA_FIXES.get(
        system, f"pyvirtualcam has no virtual camera for {system}; run with --no-virtual-cam")


def _unavailable(reasons: list[str], system: str | None = None) -> VirtualCameraUnavailable:
    fix = virtual_camera_fix(system)
    said = "; ".join(reasons) if reasons else "no backend is registered for this OS"
    message = (f"No virtual camera is available: {fix}, then start LiveFusion again "
               f"(pyvirtualcam said: {said}).")
    return VirtualCameraUnavailable(message, reasons, fix)


class VirtualCameraSink:
    """Sends frames to a virtual camera through pyvirtualcam, in BGR (no colour conversion).

    width/height/fps of 0 or None are taken from the first frame (and 30 fps). A frame of
    another size is fitted into the camera's (`fit_frame`: letterboxed, never cropped or
    stretched). `backend`/`device` select a pyvirtualcam backend and device; None tries every
    registered backend on its default device.
    """

    def __init__(self, width: int | None = None, height: int | None = None, fps: float = 30.0,
                 backend: str | None = None, device: str | None = None,
                 name: str = "virtualcam") -> None:
        self.name = name
        self.width = width or 0
        self.height = height or 0
        self.fps = fps or 30.0
        self.backend = backend or None
        self.device = device or None
        self.camera: Any = None  # pyvirtualcam.Camera once open
        self.frames = 0

    def open(self, width: int | None = None, height: int | None = None,
             fps: float | None = None) -> None:
        import pyvirtualcam  # imported here: loading its native backend is work, not import

        if self.camera is not None:
            return
        self.width = self.width or int(width or 0)
        self.height = self.height or int(height or 0)
        self.fps = fps or self.fps
        if not (self.width > 0 and self.height > 0):
            raise SinkError("virtual camera: the output size is unknown; pass width and height "
                            "or send a frame first")
        if self.backend and self.backend not in pyvirtualcam.camera.BACKENDS:
            known = ", ".join(pyvirtualcam.camera.BACKENDS) or "none"
            raise _unavailable([f"backend {self.backend!r} does not exist here (available: "
                                f"{known})"])
        try:
            self.camera = pyvirtualcam.Camera(self.width, self.height, self.fps,
                                              fmt=pyvirtualcam.PixelFormat.BGR,
                                              backend=self.backend, device=self.device)
        except RuntimeError as exc:  # pyvirtualcam joins each backend's failure, one per line
            reasons = [line.strip() for line in str(exc).splitlines() if line.strip()]
            raise _unavailable(reasons) from exc
        log.info("virtual camera %s (%s backend): %dx%d@%g, BGR in, native %s",
                 self.camera.device, self.camera.backend, self.width, self.height, self.fps,
                 self.camera.native_fmt)

    def send(self, frame: np.ndarray, packet: Any = None) -> None:
        if self.camera is None:
            self.open(frame.shape[1], frame.shape[0])
        frame = fit_frame(frame, (self.width, self.height))
        try:
            self.camera.send(np.ascontiguousarray(frame))
        except Exception as exc:  # driver gone, device reconfigured, ...
            raise SinkError(f"virtual camera {self.camera.device} stopped accepting frames "
                            f"({type(exc).__name__}: {exc}); restart the virtual camera "
                            "driver or run with --no-virtual-cam") from exc
        self.frames += 1

    def close(self) -> None:
        camera, self.camera = self.camera, None
        if camera is not None:
            camera.close()


# ----- recorder ------------------------------------------------------------------------------


class DiskUsage(NamedTuple):
    total: int
    used: int
    free: int


DiskUsageFn = Callable[[str], Any]  # like shutil.disk_usage: returns an object with .free


class RecorderSink:
    """Records the output to a video file that keeps real time (see `livefusion.media.recording`).

    Each frame is written at its time from `clock`: its capture time (`packet.t_capture_ns`;
    a frame without a later one than the last gets the next slot at `fps`) or k / fps. With
    PyAV (the default when installed) the file gets those times as timestamps; with OpenCV
    (`backend=RecordBackend.OPENCV`, or PyAV missing) frames are repeated or dropped to keep
    a fixed rate on time. The duration of the file is the time the frames covered.

    The folder, the codec (`RECORD_CODECS`) and the file type it can be written to are checked
    at construction; the writer opens on the first frame (or `open`). `close()` finalises the
    file so it plays; it is safe to call from any thread and more than once.

    Every `check_every` frames the recorder checks the free space (`disk_usage`, injectable)
    and that the file keeps growing (cv2.VideoWriter.write fails silently); when free space
    drops below `min_free_bytes`, the file has not grown for `stall_frames` frames, or a write
    fails, it finalises what it has and raises SinkError.
    """

    def __init__(self, path: str | Path, fps: float = 30.0, codec: str = "h264", *,
                 name: str = "recorder", min_free_bytes: int = 100 * 1024 * 1024,
                 check_every: int = 30, stall_frames: int = 300,
                 disk_usage: DiskUsageFn = shutil.disk_usage,
                 clock: RecordClock = RecordClock.CAPTURE,
                 backend: RecordBackend | None = None) -> None:
        self.name = name
        self.path = Path(path)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.backend = backend or default_backend()
        self.clock = clock
        if codec not in RECORD_CODECS:
            raise SinkError(f"recording codec {codec!r} is not known; use one of "
                            f"{', '.join(RECORD_CODECS)} (output.record_codec)")
        self.codec = codec
        self._codec = RECORD_CODECS[codec]
        containers = containers_for(self._codec, self.backend)
        if self.path.suffix.lower() not in containers:
            raise SinkError(
                f"cannot record to {self.path}: codec {codec} writes "
                f"{' / '.join(containers)} files here ({self.backend.value}); name the file e.g. "
                f"{self.path.with_suffix(containers[0]).name}, or pick another codec "
                f"(output.record_codec: {', '.join(RECORD_CODECS)})")
        self.folder = self.path.absolute().parent
        if not self.folder.is_dir():
            raise SinkError(f"cannot record to {self.path}: the folder {self.folder} does not "
                            "exist; create it or choose another path for --record")
        self.min_free_bytes = min_free_bytes
        self.check_every = max(1, check_every)
        self.stall_frames = stall_frames
        self._disk_usage = disk_usage
        self._lock = threading.Lock()
        self._writer: FrameWriter | None = None
        self._size = (0, 0)
        self._last_bytes = -1
        self._frames_since_growth = 0
        self._t0_ns: int | None = None
        self._last_t = -1.0
        self.frames = 0
        self.closed = False

    @property
    def duration_s(self) -> float:
        """The time the frames written so far cover (last frame's time + one interval)."""
        return max(self._last_t, 0.0) + 1.0 / self.fps if self.frames else 0.0

    def open(self, width: int, height: int, fps: float | None = None) -> None:
        with self._lock:
            self._open_locked(width, height, fps)

    def _open_locked(self, width: int, height: int, fps: float | None) -> None:
        if self._writer is not None:
            return
        if self.closed:
            raise SinkError(f"recorder for {self.path} is closed")
        self.fps = fps or self.fps
        self._check_free_space()
        size = (max(2, int(width) // 2 * 2), max(2, int(height) // 2 * 2))  # 4:2:0 needs even
        try:
            self._writer = open_writer(self.backend, self.path, self._codec, size, self.fps)
        except WriteError as exc:
            raise SinkError(f"cannot record to {self.path} with codec {self.codec}: {exc}; "
                            f"use h264 or mp4v with a .mp4 file or MJPG with a .avi file") from exc
        self._size = size
        self._last_bytes = self.path.stat().st_size if self.path.exists() else 0
        self._frames_since_growth = 0
        log.info("recording %dx%d@%g %s (%s, %s time) to %s", *size, self.fps, self.codec,
                 self.backend.value, self.clock.value, self.path)

    def _frame_time(self, packet: Any) -> float:
        """Seconds from the first frame to this one, on the recorder's clock."""
        step = self._last_t + 1.0 / self.fps
        t_ns = getattr(packet, "t_capture_ns", None) if self.clock is RecordClock.CAPTURE else None
        if not t_ns:
            return max(step, 0.0)
        if self._t0_ns is None:
            self._t0_ns = int(t_ns) - round(max(step, 0.0) * 1e9)
        t = (int(t_ns) - self._t0_ns) / 1e9
        return t if t > self._last_t else step

    def send(self, frame: np.ndarray, packet: Any = None) -> None:
        with self._lock:
            if self._writer is None:
                self._open_locked(frame.shape[1], frame.shape[0], None)
            assert self._writer is not None
            t = self._frame_time(packet)
            try:
                self._writer.write(fit_frame(frame, self._size), t)
            except WriteError as exc:
                self._close_locked()
                raise SinkError(f"recording to {self.path} stopped: writing failed ({exc}); "
                                "free some space or record to another disk") from exc
            self._last_t = t
            self.frames += 1
            if self.frames % self.check_every == 0:
                self._check_disk()

    def _check_disk(self) -> None:
        """Free space and file growth; on trouble finalise the file and raise SinkError."""
        try:
            self._check_free_space()
            self._check_growth()
        except SinkError:
            self._close_locked()
            raise

    def _check_free_space(self) -> None:
        free = self._disk_usage(str(self.folder)).free
        if free < self.min_free_bytes:
            raise SinkError(f"recording to {self.path} stopped: only {free / 2**20:.0f} MiB free "
                            f"in {self.folder}; free some space or record to another disk")

    def _file_bytes(self) -> int:
        try:
            return os.stat(self.path).st_size
        except OSError as exc:
            raise SinkError(f"recording to {self.path} stopped: the file cannot be read back "
                            f"({exc.strerror}); record to another folder") from exc

    def _check_growth(self) -> None:
        size = self._file_bytes()
        if size > self._last_bytes:
            self._last_bytes = size
            self._frames_since_growth = 0
            return
        self._frames_since_growth += self.check_every
        if self._frames_since_growth >= self.stall_frames:
            raise SinkError(f"recording to {self.path} stopped: the file has not grown for "
                            f"{self._frames_since_growth} frames, so the disk is full or "
                            "failing; free some space or record to another disk")

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        writer, self._writer = self._writer, None
        self.closed = True
        if writer is not None:
            try:
                writer.close()
            except (WriteError, OSError) as exc:
                raise SinkError(f"recording to {self.path} could not be finalised ({exc}); "
                                "free some space or record to another disk") from exc
            finally:
                log.info("recorded %d frames (%.1f s) to %s", self.frames, self.duration_s,
                         self.path)


# ----- background writing ----------------------------------------------------------------------


class BackgroundSink:
    """Runs a slow sink (the recorder: 10-30 ms to encode a 1080p frame) on its own thread so the
    output thread, and with it the virtual camera's latency, never waits for it.

    Frames wait in a bounded queue (`max_queue`); when the writer falls behind, the oldest
    waiting frame is dropped and counted, never the output thread blocked. A failure of the
    wrapped sink is raised from the next `send`, so the pipeline stops this sink and goes on.
    `close()` writes what is queued (bounded by `drain_timeout_s`), then closes the wrapped sink.
    """

    def __init__(self, inner: Any, *, max_queue: int = 8, drain_timeout_s: float = 0.8,
                 lossless: bool = False) -> None:
        self.inner = inner
        self.lossless = lossless  # offline runs: wait for room instead of dropping
        self.name = inner.name
        self.max_queue = max(1, max_queue)
        self.drain_timeout_s = drain_timeout_s
        self.dropped = 0
        self._cond = threading.Condition()
        self._queue: list[tuple[np.ndarray, Any]] = []
        self._error: BaseException | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"lf-sink-{self.name}",
                                        daemon=True)
        self._thread.start()

    def send(self, frame: np.ndarray, packet: Any = None) -> None:
        with self._cond:
            if self._error is not None:
                raise self._error
            if self._closing:
                raise SinkError(f"{self.name} is closed")
            while self.lossless and len(self._queue) >= self.max_queue and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            if len(self._queue) >= self.max_queue:
                self._queue.pop(0)
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 100 == 0:
                    log.warning("%s cannot keep up; %d frames left out so far", self.name,
                                self.dropped)
            self._queue.append((frame, packet))
            self._cond.notify()

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._closing:
                        self._cond.wait()
                    if not self._queue:
                        return
                    frame, packet = self._queue.pop(0)
                    self._cond.notify_all()
                try:
                    self.inner.send(frame, packet)
                except Exception as exc:  # handed to the output thread by the next send()
                    with self._cond:
                        self._error = exc
                        self._queue.clear()
                        self._cond.notify_all()
                    return
        finally:
            # Closed here, on the writer's own thread, so a close (a recorder's release) never
            # runs while a write is still in progress.
            self.inner.close()

    def close(self, finish_timeout_s: float = 10.0) -> None:
        """Write what is queued (up to `drain_timeout_s`), drop the rest, then wait for the
        writer to finish its current frame and finalise the file (up to `finish_timeout_s`)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(self.drain_timeout_s)
        if self._thread.is_alive():
            with self._cond:
                left = len(self._queue)
                self._queue.clear()
            log.warning("%s: %d queued frames not written at close", self.name, left)
            self._thread.join(finish_timeout_s)
            if self._thread.is_alive():
                log.error("%s is still writing after %.0f s; the file may not be finalised",
                          self.name, self.drain_timeout_s + finish_timeout_s)
