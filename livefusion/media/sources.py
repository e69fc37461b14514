"""Frame sources: what the capture thread reads from.

Every source follows the `Source` protocol: `open()` (raises `SourceError` with a message that
says what to do), `read()` (a BGR uint8 frame, `None` when no frame is ready yet, `SourceEnded`
at the end of a non-looping file) and `close()`. `read()` never blocks for more than about half a
second, so the pipeline can stop within a second.

- `VideoFileSource`: a video file, paced at its own fps like a camera (drift-free schedule) or
  read as fast as possible; optional loop.
- `ImageSource`: a still image repeated at a set fps.
- `CameraSource` (in `livefusion.media.camera`): a webcam through OpenCV.
- `ReconnectingSource` (in `livefusion.media.reconnect`): wraps a live source; when it fails it reports "lost", retries opening
  with exponential backoff on a background thread and resumes when the device is back.
- `Rescaler`: fits another source's frames into a requested size, letterboxed, never cropped
  or stretched (`--resolution` with files; without it a file keeps its own size).

`livefusion.media.input.open_source` builds the one the config asks for.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import cv2
import numpy as np

from livefusion.errors import LiveFusionError
from livefusion.media.imageio import ImageLoadError, read_bgr

log = logging.getLogger(__name__)

MAX_WAIT_S = 0.25  # longest a paced read() sleeps before returning None ("not yet")
DEFAULT_FILE_FPS = 30.0
CAMERA_DEFAULT_SIZE = (1280, 720)  # asked of a camera when input.resolution is not set
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jp2", ".pgm", ".ppm", ".pnm"}
)


class SourceError(LiveFusionError, RuntimeError):
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


def fit_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Fit `frame` into `size` (w, h) without cropping or stretching it (letterbox).

    The frame is scaled by one factor so that it fits inside `size`, and centred on black
    bands where the aspect ratios differ; nothing of the picture is cut off. Returns `frame`
    itself when it already has `size`.

    Interpolation: INTER_AREA only when shrinking to half or less, where bilinear would alias
    and OpenCV's area path is fast (0.6 ms for 1080p -> 540p here); INTER_LINEAR otherwise
    (1.9 ms for 1080p -> 720p, where INTER_AREA's non-integer path takes 13 ms on one core).
    """
    w, h = size
    fh, fw = frame.shape[:2]
    if (fw, fh) == (w, h):
        return frame
    scale = min(w / fw, h / fh)
    sw, sh = min(w, max(1, round(fw * scale))), min(h, max(1, round(fh * scale)))
    halving = scale <= 0.5
    scaled = cv2.resize(frame, (sw, sh),
                        interpolation=cv2.INTER_AREA if halving else cv2.INTER_LINEAR)
    if (sw, sh) == (w, h):
        return scaled
    canvas = np.zeros((h, w) + frame.shape[2:], frame.dtype)
    x0, y0 = (w - sw) // 2, (h - sh) // 2
    canvas[y0:y0 + sh, x0:x0 + sw] = scaled
    return canvas


def source_work_ms(source: object) -> float:
    """Milliseconds the source spent making its last frame (decoding, converting, scaling),
    without the time it waited for the frame to be due or to arrive; 0 when it does not say."""
    return float(getattr(source, "decode_ms", 0.0))


class Rescaler:
    """Wraps a source and delivers its frames fitted into `size` (w, h), see `fit_frame`."""

    def __init__(self, source: Source, size: tuple[int, int]) -> None:
        self.source = source
        self.target = (int(size[0]), int(size[1]))
        self.decode_ms = 0.0  # the wrapped source's work plus the scaling, last frame

    def open(self) -> None:
        self.source.open()
        if self.source.size != self.target:
            log.info("scaling %s from %dx%d to %dx%d", self.source.description,
                     *self.source.size, *self.target)

    def read(self) -> np.ndarray | None:
        frame = self.source.read()
        if frame is None:
            return None
        start = time.perf_counter()
        scaled = fit_frame(frame, self.target)
        self.decode_ms = source_work_ms(self.source) + (time.perf_counter() - start) * 1e3
        return scaled

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
        return f"{self.source.description} fitted into {self.target[0]}x{self.target[1]}"

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
        self.decode_ms = 0.0  # decoding the frame read() returned last (not the pacing wait)
        self._pending_ms = 0.0

    def open(self) -> None:
        cap = self._open_capture()
        start = self._clock()
        ok, frame = cap.read()
        self._pending_ms = (self._clock() - start) * 1e3
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
            start = self._clock()
            self._pending = self._decode_next()
            self._pending_ms = (self._clock() - start) * 1e3
        if self._pacer is not None and not self._pacer.wait():
            return None
        frame, self._pending = self._pending, None
        self.decode_ms = self._pending_ms
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
        self.decode_ms = 0.0  # the copy read() made last

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
        start = time.perf_counter()
        frame = self._image.copy()
        self.decode_ms = (time.perf_counter() - start) * 1e3
        return frame

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


def is_image_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS
