"""Frame sources: what the capture thread reads from.

Every source follows the `Source` protocol: `open()` (raises `SourceError` with a message that
says what to do), `read()` (a BGR uint8 frame, `None` when no frame is ready yet, `SourceEnded`
at the end of a non-looping file) and `close()`. `read()` never blocks for more than about half a
second, so the pipeline can stop within a second.

- `VideoFileSource`: a video file, paced at its own fps like a camera (drift-free schedule) or
  read as fast as possible; optional loop.
- `ImageSource`: a still image repeated at a set fps.
- `CameraSource` (in `livefusion.camera`): a webcam through OpenCV.
- `ReconnectingSource`: wraps a live source; when it fails it reports "lost", retries opening
  with exponential backoff on a background thread and resumes when the device is back.
- `Rescaler`: scales another source's frames to a requested size (`--resolution` with files).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, runtime_checkable

import cv2
import numpy as np

from livefusion.imageio import ImageLoadError, read_bgr

if TYPE_CHECKING:
    from livefusion.config import AppConfig, InputConfig

log = logging.getLogger(__name__)

MAX_WAIT_S = 0.25  # longest a paced read() sleeps before returning None ("not yet")
DEFAULT_FILE_FPS = 30.0
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jp2", ".pgm", ".ppm", ".pnm"}
)


class SourceError(RuntimeError):
    """A source cannot open or stopped working; the message says what to do."""


class SourceEnded(Exception):
    """A non-looping file has no more frames (not a fault)."""


@runtime_checkable
class Source(Protocol):
    """What the capture thread reads frames from."""

    def open(self) -> None: ...

    def read(self) -> np.ndarray | None: ...

    def close(self) -> None: ...

    @property
    def size(self) -> tuple[int, int]: ...

    @property
    def fps(self) -> float: ...

    @property
    def description(self) -> str: ...

    @property
    def is_live(self) -> bool: ...


# ----- pacing --------------------------------------------------------------------------------


class Pacer:
    """A drift-free frame schedule: frame k is due at t0 + k / fps.

    `wait()` sleeps until the next frame is due and returns True; when the due time is more
    than `max_wait_s` away it sleeps `max_wait_s` and returns False, so callers stay responsive
    at low frame rates. A frame that is late is not slept for; when it is more than one frame
    interval late the schedule restarts from now, so lag never accumulates and late frames are
    not followed by a burst that "catches up".
    """

    def __init__(self, fps: float, *, clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep,
                 max_wait_s: float = MAX_WAIT_S) -> None:
        if not fps > 0:
            raise ValueError(f"pacing needs a positive fps, got {fps}")
        self.period = 1.0 / fps
        self._clock = clock
        self._sleep = sleep
        self._max_wait = max_wait_s
        self._due: float | None = None
        self.late = 0  # frames delivered more than one interval late

    def reset(self) -> None:
        self._due = None

    def wait(self) -> bool:
        now = self._clock()
        if self._due is None:
            self._due = now
        delay = self._due - now
        if delay > self._max_wait:
            self._sleep(self._max_wait)
            return False
        if delay > 0:
            self._sleep(delay)
        elif -delay > self.period:
            self.late += 1
            self._due = now
        self._due += self.period
        return True


# ----- scaling -------------------------------------------------------------------------------


def scale_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale `frame` to `size` (w, h) without distorting it.

    When the aspect ratios differ the frame is first cropped around its centre to the target
    aspect (like a webcam does when asked for another aspect), then resized. Returns `frame`
    itself when it already has `size`.

    Interpolation: INTER_AREA only when shrinking to half or less, where bilinear would alias
    and OpenCV's area path is fast (0.6 ms for 1080p -> 540p here); INTER_LINEAR otherwise
    (1.9 ms for 1080p -> 720p, where INTER_AREA's non-integer path takes 13 ms on one core).
    """
    w, h = size
    fh, fw = frame.shape[:2]
    if (fw, fh) == (w, h):
        return frame
    if fw * h != fh * w:
        if fw * h > fh * w:  # source is wider: crop the sides
            cw = max(1, round(fh * w / h))
            x0 = (fw - cw) // 2
            frame = frame[:, x0:x0 + cw]
        else:  # source is taller: crop top and bottom
            ch = max(1, round(fw * h / w))
            y0 = (fh - ch) // 2
            frame = frame[y0:y0 + ch]
        fh, fw = frame.shape[:2]
    halving = w * 2 <= fw and h * 2 <= fh
    return cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA if halving else cv2.INTER_LINEAR)


class Rescaler:
    """Wraps a source and delivers its frames at `size` (w, h), see `scale_frame`."""

    def __init__(self, source: Source, size: tuple[int, int]) -> None:
        self.source = source
        self.target = (int(size[0]), int(size[1]))

    def open(self) -> None:
        self.source.open()
        if self.source.size != self.target:
            log.info("scaling %s from %dx%d to %dx%d", self.source.description,
                     *self.source.size, *self.target)

    def read(self) -> np.ndarray | None:
        frame = self.source.read()
        return None if frame is None else scale_frame(frame, self.target)

    def close(self) -> None:
        self.source.close()

    @property
    def size(self) -> tuple[int, int]:
        return self.target

    @property
    def fps(self) -> float:
        return self.source.fps

    @property
    def description(self) -> str:
        return f"{self.source.description} scaled to {self.target[0]}x{self.target[1]}"

    @property
    def is_live(self) -> bool:
        return self.source.is_live

    @property
    def state(self) -> str:
        return str(getattr(self.source, "state", "live"))


# ----- video file ----------------------------------------------------------------------------


class VideoFileSource:
    """A video file read like a camera.

    realtime=True paces frames at the file's fps (or `fps_override`) on a drift-free schedule;
    realtime=False delivers them as fast as they decode. loop=True restarts at the end, else
    `read()` raises `SourceEnded`. `clock` and `sleep` are injectable for tests.
    """

    def __init__(self, path: str | Path, realtime: bool = True, loop: bool = False,
                 fps_override: float | None = None, *,
                 clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = Path(path)
        self.realtime = realtime
        self.loop = loop
        self.fps_override = fps_override
        self._clock = clock
        self._sleep = sleep
        self._cap: cv2.VideoCapture | None = None
        self._pending: np.ndarray | None = None
        self._pacer: Pacer | None = None
        self._size = (0, 0)
        self._fps = 0.0
        self.frames_read = 0
        self.loops = 0

    def open(self) -> None:
        cap = self._open_capture()
        ok, frame = cap.read()
        if not ok or frame is None:
            cap.release()
            raise SourceError(f"video file {self.path} has no readable frames; "
                              "check that it plays in a video player or pick another file")
        self._cap = cap
        self._pending = frame
        self.frames_read = 1
        self._size = (frame.shape[1], frame.shape[0])
        self._fps = self._choose_fps(cap.get(cv2.CAP_PROP_FPS))
        self._pacer = (Pacer(self._fps, clock=self._clock, sleep=self._sleep)
                       if self.realtime else None)
        log.info("opened %s", self.description)

    def _open_capture(self) -> cv2.VideoCapture:
        if not self.path.is_file():
            raise SourceError(f"video file {self.path} does not exist or is not a file; "
                              "check the path given to --input")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"video file {self.path} cannot be opened: it is empty, corrupt or "
                              "in a format OpenCV cannot decode; re-encode it (e.g. to H.264 MP4) "
                              "or pick another file")
        return cap

    def _choose_fps(self, reported: float) -> float:
        if self.fps_override:
            return float(self.fps_override)
        if math.isfinite(reported) and 1.0 <= reported <= 240.0:
            return float(reported)
        log.warning("video file %s reports %s fps; pacing it at %.0f fps", self.path, reported,
                    DEFAULT_FILE_FPS)
        return DEFAULT_FILE_FPS

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            raise SourceError(f"video file {self.path} is not open; call open() first")
        if self._pending is None:
            self._pending = self._decode_next()
        if self._pacer is not None and not self._pacer.wait():
            return None
        frame, self._pending = self._pending, None
        return frame

    def _decode_next(self) -> np.ndarray:
        assert self._cap is not None
        ok, frame = self._cap.read()
        if ok and frame is not None:
            self.frames_read += 1
            return frame
        if not self.loop:
            raise SourceEnded(f"end of {self.path} after {self.frames_read} frames")
        return self._restart()

    def _restart(self) -> np.ndarray:
        assert self._cap is not None
        self.loops += 1
        if not self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0):
            self._cap.release()
            self._cap = self._open_capture()
        ok, frame = self._cap.read()
        if not ok or frame is None:
            self._cap.release()
            self._cap = self._open_capture()
            ok, frame = self._cap.read()
        if not ok or frame is None:
            raise SourceError(f"video file {self.path} could not be read again from the start "
                              "for looping; check the file or run without loop")
        self.frames_read += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self._pending = None

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def description(self) -> str:
        pace = f"{self._fps:g} fps" if self.realtime else "as fast as possible"
        loop = ", looping" if self.loop else ""
        return f"video {self.path.name} {self._size[0]}x{self._size[1]} ({pace}{loop})"

    @property
    def is_live(self) -> bool:
        return False


# ----- still image ---------------------------------------------------------------------------


def load_still(path: Path) -> np.ndarray:
    """The image as BGR uint8 HxWx3 (any depth or channel count converted), or SourceError."""
    try:
        return read_bgr(path)
    except ImageLoadError as exc:
        raise SourceError(str(exc)) from exc


class ImageSource:
    """A still image delivered again and again at `fps`, like a camera pointed at a photo.

    Each read returns a fresh copy, so a stage writing into its frame cannot change later ones.
    realtime=False delivers copies as fast as they are read.
    """

    def __init__(self, path: str | Path, fps: float = 30.0, realtime: bool = True, *,
                 clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not fps > 0:
            raise SourceError(f"image source {path}: fps must be positive, got {fps}")
        self.path = Path(path)
        self._fps = float(fps)
        self.realtime = realtime
        self._clock = clock
        self._sleep = sleep
        self._image: np.ndarray | None = None
        self._pacer: Pacer | None = None

    def open(self) -> None:
        image = load_still(self.path)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise SourceError(f"image file {self.path} loaded as {image.dtype} {image.shape}, "
                              "not an 8-bit colour picture; convert it to an 8-bit PNG or JPEG")
        self._image = np.ascontiguousarray(image)
        self._pacer = (Pacer(self._fps, clock=self._clock, sleep=self._sleep)
                       if self.realtime else None)
        log.info("opened %s", self.description)

    def read(self) -> np.ndarray | None:
        if self._image is None:
            raise SourceError(f"image file {self.path} is not open; call open() first")
        if self._pacer is not None and not self._pacer.wait():
            return None
        return self._image.copy()

    def close(self) -> None:
        self._image = None

    @property
    def size(self) -> tuple[int, int]:
        if self._image is None:
            return (0, 0)
        return (self._image.shape[1], self._image.shape[0])

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def description(self) -> str:
        w, h = self.size
        return f"image {self.path.name} {w}x{h} repeated at {self._fps:g} fps"

    @property
    def is_live(self) -> bool:
        return False


# ----- reconnecting wrapper ------------------------------------------------------------------

SourceFactory = Callable[[], Source]


class ReconnectingSource:
    """Keeps a live source going through failures, the way OBS keeps a scene alive.

    `open()` opens the first source and raises its `SourceError` (a start-up failure stops the
    app with that message). Later, when `read()` raises (anything but `SourceEnded`) or returns
    None for longer than `lost_after_s`, the source is marked "lost": `read()` returns None,
    and a background thread closes the dead source and calls `source_factory()` + `open()`
    again after 0.25 s, 0.5 s, 1 s, ... up to `max_backoff_s` between attempts ("reconnecting"
    while an attempt runs). When one succeeds the state is "live" again and `reconnects` grows.
    A source lost again within `stable_after_s` of coming back resumes the backoff where it
    left off rather than hammering the device every 0.25 s.
    `read()` never blocks longer than `read_timeout_s` (plus the inner source's own limit).

    `sleep(seconds)` is the wait between attempts; the default waits on an event that
    `close()` sets, so closing is immediate. Tests inject their own to control the attempts.
    """

    def __init__(self, source_factory: SourceFactory, max_backoff_s: float = 5.0, *,
                 initial_backoff_s: float = 0.25, lost_after_s: float = 2.0,
                 stable_after_s: float = 10.0,
                 read_timeout_s: float = 0.5, sleep: Callable[[float], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._factory = source_factory
        self.max_backoff_s = max_backoff_s
        self.initial_backoff_s = min(initial_backoff_s, max_backoff_s)
        self.lost_after_s = lost_after_s
        self.read_timeout_s = read_timeout_s
        self._clock = clock
        self._stop = threading.Event()
        self._sleep = sleep or (lambda s: self._stop.wait(s) and None)
        self._cond = threading.Condition()
        self._source: Source | None = None
        self._last: Source | None = None  # for size/fps/description while lost
        self._threads: list[threading.Thread] = []  # reconnect episodes, joined by close()
        self._none_since: float | None = None
        self._lost_at = 0.0
        self.stable_after_s = stable_after_s
        self._live_since = 0.0
        self._last_delay = 0.0
        self._state = "live"
        self.reconnects = 0
        self.attempts = 0
        self.last_error = ""

    def open(self) -> None:
        source = self._factory()
        source.open()
        with self._cond:
            self._source = self._last = source
            self._state = "live"
            self._live_since = self._clock()

    @property
    def state(self) -> str:
        """'live', 'lost' (waiting before the next attempt) or 'reconnecting'."""
        return self._state

    def read(self) -> np.ndarray | None:
        with self._cond:
            source = self._source
            if source is None:
                # Lost: wait (bounded) for the reconnect thread instead of letting the caller
                # spin; the next read() uses the source that came back.
                self._cond.wait_for(lambda: self._source is not None or self._stop.is_set(),
                                    timeout=self.read_timeout_s)
                return None
        try:
            frame = source.read()
        except SourceEnded:
            raise
        except Exception as exc:  # any failure of a live device means "lost", never a crash
            self._lose(source, f"{type(exc).__name__}: {exc}")
            return None
        if frame is not None:
            self._none_since = None
            return frame
        now = self._clock()
        if self._none_since is None:
            self._none_since = now
        elif now - self._none_since >= self.lost_after_s:
            self._lose(source, f"no frame for {now - self._none_since:.1f} s")
        return None

    def _lose(self, source: Source, reason: str) -> None:
        with self._cond:
            if self._source is not source or self._stop.is_set():
                return
            self._source = None
            self._state = "lost"
            self.last_error = reason
            self._none_since = None
            self._lost_at = self._clock()
            # A source that fails again soon after coming back (a flapping USB port, a camera
            # another app grabs) keeps the longer backoff instead of starting over.
            flapping = self._lost_at - self._live_since < self.stable_after_s
            first_delay = (min(self._last_delay * 2, self.max_backoff_s)
                           if flapping and self._last_delay else self.initial_backoff_s)
            log.warning("%s lost (%s); retrying with backoff up to %.1f s",
                        source.description, reason, self.max_backoff_s)
            thread = threading.Thread(target=self._reconnect, args=(source, first_delay),
                                      name="lf-reconnect", daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _reconnect(self, dead: Source, delay: float) -> None:
        _close_quietly(dead)
        while not self._stop.is_set():
            self._sleep(delay)
            if self._stop.is_set():
                return
            self._state = "reconnecting"
            self.attempts += 1
            try:
                source = self._factory()
                source.open()
            except Exception as exc:  # the device is still gone: wait longer and try again
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._state = "lost"
                delay = min(delay * 2, self.max_backoff_s)
                log.info("reconnect attempt %d failed (%s); next in %.2f s",
                         self.attempts, self.last_error, delay)
                continue
            with self._cond:
                if self._stop.is_set():
                    _close_quietly(source)
                    return
                self._source = self._last = source
                self._state = "live"
                self.reconnects += 1
                self._live_since = self._clock()
                self._last_delay = delay
                self._cond.notify_all()
            log.warning("%s is back after %.1f s (attempt %d)", source.description,
                        self._clock() - self._lost_at, self.attempts)
            return

    def close(self) -> None:
        with self._cond:
            self._stop.set()
            self._cond.notify_all()
            source, self._source = self._source, None
            threads, self._threads = self._threads, []
        deadline = time.monotonic() + 1.0
        for thread in threads:
            thread.join(timeout=max(deadline - time.monotonic(), 0.01))
            if thread.is_alive():
                log.warning("a reconnect attempt is still blocked in the driver; it will close "
                            "the device when it returns")
        if source is not None:
            source.close()

    @property
    def size(self) -> tuple[int, int]:
        return self._last.size if self._last is not None else (0, 0)

    @property
    def fps(self) -> float:
        return self._last.fps if self._last is not None else 0.0

    @property
    def description(self) -> str:
        inner = self._last.description if self._last is not None else "source"
        return inner if self._state == "live" else f"{inner} ({self._state})"

    @property
    def is_live(self) -> bool:
        return self._last.is_live if self._last is not None else True


def _close_quietly(source: Source) -> None:
    """Close a source that already failed; a second failure is logged, not raised."""
    try:
        source.close()
    except Exception as exc:  # the device is already gone; closing it may fail too
        log.warning("closing the failed %s raised %s: %s", source.description,
                    type(exc).__name__, exc)


# ----- choosing a source from the config -----------------------------------------------------


def is_image_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def open_source(config: "AppConfig | InputConfig", *, scale_files: bool = True,
                reconnect_max_s: float | None = None) -> Source:
    """Build (not open) the source the config asks for.

    `input.file` set: an `ImageSource` (by extension) or a `VideoFileSource`, paced when
    `input.realtime`, scaled to `input.resolution` when `scale_files` and the sizes differ.
    Otherwise a `CameraSource` for `input.camera` requesting `input.resolution` at `input.fps`,
    wrapped in a `ReconnectingSource` when `reconnect_max_s` is given (taken from
    `pipeline.reconnect_max_s` when an `AppConfig` is passed). Call `open()` on the result.
    """
    from livefusion.camera import CameraSource
    from livefusion.config import parse_resolution

    inp = getattr(config, "input", config)
    if reconnect_max_s is None and hasattr(config, "pipeline"):
        reconnect_max_s = config.pipeline.reconnect_max_s  # type: ignore[union-attr]
    width, height = parse_resolution(inp.resolution)
    if inp.file:
        source: Source
        if is_image_path(inp.file):
            source = ImageSource(inp.file, fps=inp.fps, realtime=inp.realtime)
        else:
            source = VideoFileSource(inp.file, realtime=inp.realtime, loop=inp.loop)
        return Rescaler(source, (width, height)) if scale_files else source

    def make_camera() -> Source:
        return CameraSource(inp.camera, width, height, inp.fps, backend=inp.camera_backend,
                            mjpg=inp.mjpg)

    if reconnect_max_s:
        return ReconnectingSource(make_camera, max_backoff_s=reconnect_max_s)
    return make_camera()
