"""Webcams through OpenCV: `CameraSource`, `probe_camera` and `list_cameras`.

Backend order ("auto"), chosen per OS:

- Windows: DirectShow first, then Media Foundation. DirectShow opens in well under a second,
  honours a requested MJPG fourcc, size and fps on almost every USB webcam, and so reaches
  1080p30. Media Foundation (OpenCV's default on Windows) can take many seconds to open while it
  enumerates hardware transforms, often ignores the MJPG request and then falls back to raw
  YUY2 at 5-10 fps for 1080p. It stays as the fallback for cameras only it can open (some
  laptop/IR cameras exposed only through Media Foundation).
- Linux: V4L2 (the kernel's video API; index N is /dev/videoN), then ANY (GStreamer/FFmpeg,
  for device paths or URLs V4L2 cannot take).
- macOS: AVFoundation, then ANY.

A device given as a path or URL rather than an index also gets ANY last. That is also how the
tests drive this class without a webcam: OpenCV opens a video file through the same
`VideoCapture` calls.

The camera is asked for MJPG before the size (many drivers only offer high resolutions at full
rate in MJPG and pick the format when the size is set), then size, then fps. What it really
delivers is reported: the size from the first frame, the fps measured over the first frames
(CAP_PROP_FPS is often just the requested value echoed back).

Frames are read on a grabber thread into a one-frame, latest-wins slot, so `read()` returns
within `read_timeout_s` even when a driver stalls (an unplugged camera can block
`VideoCapture.read` for seconds), and the pipeline always gets the newest frame, never one
that waited in the driver's buffer.
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from livefusion.media.sources import SourceError

log = logging.getLogger(__name__)

BACKENDS: dict[str, int] = {
    "dshow": cv2.CAP_DSHOW,
    "msmf": cv2.CAP_MSMF,
    "v4l2": cv2.CAP_V4L2,
    "avfoundation": cv2.CAP_AVFOUNDATION,
    "any": cv2.CAP_ANY,
}
AUTO_ORDER: dict[str, tuple[str, ...]] = {
    "Windows": ("dshow", "msmf"),
    "Linux": ("v4l2", "any"),
    "Darwin": ("avfoundation", "any"),
}

# Operating systems that block camera access per app say nothing to OpenCV but "cannot open".
CAMERA_PERMISSION = {
    "Darwin": ", allow camera access for your terminal or Python in System Settings > Privacy & "
              "Security > Camera",
    "Windows": ", turn on \"Let desktop apps access your camera\" in Settings > Privacy > Camera",
}


@dataclass(frozen=True)
class CameraInfo:
    """A camera found by `list_cameras`: its index, the backend that opened it, its default size."""

    index: int | str
    backend: str
    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.index}: {self.width}x{self.height} via {self.backend}"


def parse_device(camera: str | int) -> int | str:
    """'0' -> 0 (an index); '/dev/video2' or a URL stays a string."""
    if isinstance(camera, int):
        return camera
    text = str(camera).strip()
    return int(text) if text.isdigit() else text


def backend_order(backend: str = "auto", device: int | str = 0,
                  system: str | None = None) -> list[str]:
    """The backends to try, in order, for `device` on `system` (default: this OS)."""
    if backend != "auto":
        if backend not in BACKENDS:
            raise SourceError(f"camera backend {backend!r} is unknown; choose one of: auto, "
                              + ", ".join(BACKENDS))
        return [backend]
    order = list(AUTO_ORDER.get(system or platform.system(), ("any",)))
    if isinstance(device, str) and "any" not in order:
        order.append("any")
    return order


def _open_capture(device: int | str, backend: str) -> cv2.VideoCapture | None:
    try:
        cap = cv2.VideoCapture(device, BACKENDS[backend])
    except cv2.error as exc:
        log.debug("backend %s could not open %r: %s", backend, device, exc)
        return None
    if cap.isOpened():
        return cap
    cap.release()
    return None


def _read_first(cap: cv2.VideoCapture, attempts: int = 10) -> np.ndarray | None:
    """The first frame; some cameras return a few empty reads while they start streaming."""
    for _ in range(attempts):
        ok, frame = cap.read()
        if ok and frame is not None and frame.size:
            return frame
    return None


def probe_camera(camera: str | int, backend: str = "auto") -> CameraInfo | None:
    """Open `camera`, read one frame, close it: its info, or None when nothing opens."""
    device = parse_device(camera)
    for name in backend_order(backend, device):
        cap = _open_capture(device, name)
        if cap is None:
            continue
        try:
            frame = _read_first(cap, attempts=3)
            if frame is not None:
                return CameraInfo(device, cap.getBackendName(), frame.shape[1], frame.shape[0])
        finally:
            cap.release()
    return None


def list_cameras(max_index: int = 10, backend: str = "auto") -> list[CameraInfo]:
    """Cameras at indexes 0..max_index-1 that open and deliver a frame (for --list-cameras)."""
    found = []
    for index in range(max_index):
        info = probe_camera(index, backend)
        if info is not None:
            found.append(info)
    return found


def _fourcc_text(value: float) -> str:
    code = int(value)
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text if text.isprintable() and text.strip() else f"0x{code:08x}"


class CameraSource:
    """A webcam (index or device path) read on its own grabber thread.

    `size` is what the camera delivers (first frame's shape), `fps` what it was measured to
    deliver over the first `measure_frames` frames (until then what the driver reports, or the
    request). `read()` returns the newest frame not yet returned, None when none arrived within
    `read_timeout_s`, and raises SourceError after `fail_after` failed reads in a row (the device
    is gone), so a `ReconnectingSource` around it can take over.
    """

    def __init__(self, camera: str | int = 0, width: int = 1280, height: int = 720,
                 fps: float = 30.0, backend: str = "auto", mjpg: bool = True, *,
                 read_timeout_s: float = 0.5, fail_after: int = 25,
                 measure_frames: int = 30) -> None:
        self.device = parse_device(camera)
        self.requested = (int(width), int(height), float(fps))
        self.backend = backend
        self.mjpg = mjpg
        self.read_timeout_s = read_timeout_s
        self.fail_after = fail_after
        self.measure_frames = measure_frames
        self.backend_name = ""
        self.fourcc = ""
        self.measured_fps: float | None = None
        self._reported_fps = 0.0
        self._size = (0, 0)
        self._cap: cv2.VideoCapture | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._latest: np.ndarray | None = None
        self._latest_decode_ms = 0.0
        self.decode_ms = 0.0  # decoding the frame read() returned last (on the grab thread)
        self._latest_id = 0
        self._returned_id = 0
        self._failure = ""
        self._times: list[float] = []

    # ----- opening ---------------------------------------------------------------------------

    def open(self) -> None:
        tried = []
        for name in backend_order(self.backend, self.device):
            cap = _open_capture(self.device, name)
            if cap is None:
                tried.append(name.upper())
                continue
            self._configure(cap)
            frame = _read_first(cap)
            if frame is None:
                cap.release()
                tried.append(f"{name.upper()} (opened but sent no frame)")
                continue
            self._start(cap, name, frame)
            return
        raise SourceError(self._not_found_message(tried))

    def _not_found_message(self, tried: list[str]) -> str:
        where = (f"at index {self.device}" if isinstance(self.device, int)
                 else f"at {self.device}")
        permission = CAMERA_PERMISSION.get(platform.system(), "")
        return (f"No camera could be opened {where} (tried backends {', '.join(tried)}): "
                "check that it is plugged in, close other apps that may be using it (Zoom, OBS, "
                f"a browser tab){permission}, or pick another one with --camera (see "
                "--list-cameras).")

    def _configure(self, cap: cv2.VideoCapture) -> None:
        width, height, fps = self.requested
        if self.mjpg:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        cap.set(cv2.CAP_PROP_FPS, fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # fewer stale frames where the driver supports it

    def _start(self, cap: cv2.VideoCapture, name: str, frame: np.ndarray) -> None:
        self._cap = cap
        self.backend_name = cap.getBackendName() or name.upper()
        self.fourcc = _fourcc_text(cap.get(cv2.CAP_PROP_FOURCC))
        reported = cap.get(cv2.CAP_PROP_FPS)
        self._reported_fps = reported if 0 < reported <= 1000 else 0.0
        self._size = (frame.shape[1], frame.shape[0])
        prop_size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                     int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        if prop_size != self._size:
            log.info("camera %s: driver says %dx%d but frames are %dx%d; using the frames' size",
                     self.device, *prop_size, *self._size)
        req_w, req_h, req_fps = self.requested
        log.info("camera %s via %s: requested %dx%d@%g%s, delivers %dx%d, format %s, driver "
                 "reports %g fps (measuring)", self.device, self.backend_name, req_w, req_h,
                 req_fps, " MJPG" if self.mjpg else "", *self._size, self.fourcc,
                 self._reported_fps)
        self._stop.clear()
        self._failure = ""
        self._latest, self._latest_id, self._returned_id = frame, 1, 0
        self._times = []
        self._thread = threading.Thread(target=self._grab_loop, args=(cap,),
                                        name=f"lf-camera-{self.device}", daemon=True)
        self._thread.start()

    # ----- grabbing --------------------------------------------------------------------------

    def _grab_loop(self, cap: cv2.VideoCapture) -> None:
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    # grab() waits for the device; retrieve() decodes (MJPG, YUYV -> BGR): the
                    # capture meter shows the decoding, not the wait for the next frame.
                    ok = cap.grab()
                    started = time.perf_counter()
                    ok, frame = cap.retrieve() if ok else (False, None)
                    decode_ms = (time.perf_counter() - started) * 1e3
                except cv2.error as exc:
                    self._fail(f"camera {self.device} raised an OpenCV error: {exc}")
                    return
                if not ok or frame is None or not frame.size:
                    failures += 1
                    if failures >= self.fail_after:
                        self._fail(f"camera {self.device} stopped delivering frames "
                                   f"({failures} failed reads in a row); it may have been "
                                   "unplugged or taken by another app")
                        return
                    self._stop.wait(0.01)
                    continue
                failures = 0
                self._publish(frame, decode_ms)
        finally:
            cap.release()  # only this thread touches the capture once it runs

    def _publish(self, frame: np.ndarray, decode_ms: float = 0.0) -> None:
        now = time.perf_counter()
        with self._cond:
            self._latest = frame
            self._latest_decode_ms = decode_ms
            self._latest_id += 1
            self._cond.notify_all()
        if self.measured_fps is None:
            self._times.append(now)
            if len(self._times) > self.measure_frames:
                span = self._times[-1] - self._times[0]
                self.measured_fps = (len(self._times) - 1) / span if span > 0 else float("inf")
                req_w, req_h, req_fps = self.requested
                log.info("camera %s: requested %dx%d@%g, delivers %dx%d@%.1f (measured over %d "
                         "frames)", self.device, req_w, req_h, req_fps, *self._size,
                         self.measured_fps, len(self._times))
                if self.measured_fps < 0.8 * req_fps:
                    log.warning("camera %s delivers %.1f fps, below the %g requested; more light, "
                                "MJPG or a lower resolution usually helps", self.device,
                                self.measured_fps, req_fps)

    def _fail(self, message: str) -> None:
        log.warning("%s", message)
        with self._cond:
            self._failure = message
            self._cond.notify_all()

    # ----- the Source protocol ---------------------------------------------------------------

    def read(self) -> np.ndarray | None:
        if self._thread is None:
            raise SourceError(f"camera {self.device} is not open; call open() first")
        with self._cond:
            self._cond.wait_for(lambda: self._latest_id != self._returned_id
                                or bool(self._failure) or self._stop.is_set(),
                                timeout=self.read_timeout_s)
            if self._latest_id != self._returned_id:
                self._returned_id = self._latest_id
                self.decode_ms = self._latest_decode_ms
                return self._latest
            if self._failure:
                raise SourceError(self._failure)
        return None

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=1.0)
            if thread.is_alive():
                log.warning("camera %s: the driver is blocking a read; the device is released "
                            "when it returns", self.device)
        self._cap = None
        self._latest = None

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def fps(self) -> float:
        if self.measured_fps is not None:
            return self.measured_fps
        return self._reported_fps or self.requested[2]

    @property
    def description(self) -> str:
        w, h = self._size
        return f"camera {self.device} ({self.backend_name or self.backend}) {w}x{h}@{self.fps:.1f}"

    @property
    def is_live(self) -> bool:
        return True
