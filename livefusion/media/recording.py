"""Video files that keep real time: the recorder's codecs, clock and writers.

A live stream is variable-rate (frames are dropped when a stage falls behind, a camera slows
down in the dark), so a file written at a fixed rate plays too fast. Each frame is written
with its time instead:

- `PyAVWriter` (PyAV, FFmpeg's encoders in a wheel): every frame gets its presentation time
  (pts) on a millisecond time base, so a frame shows for as long as it was on screen live.
  H.264 (libx264) by default. AVI stores no timestamps, only a frame rate: there the pts count
  frame slots and FFmpeg's AVI muxer writes the gaps as skipped (repeated) frames.
- `OpenCVWriter` (cv2.VideoWriter, when PyAV is not installed): a fixed rate, with the
  previous frame repeated to fill each gap and frames that come early dropped, so the
  duration stays right.

The time a frame is written at comes from a `RecordClock`: its capture time for live runs,
or k / fps for offline runs (a file read as fast as it decodes, where capture times say how
fast the machine was, not how the clip plays).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

log = logging.getLogger(__name__)

FINE_TIME_BASE = Fraction(1, 1000)  # pts unit for containers that store timestamps


class RecordClock(str, Enum):
    CAPTURE = "capture"  # each frame at its capture time (live runs)
    FRAMES = "frames"  # frame k at k / fps (offline runs)


class RecordBackend(str, Enum):
    PYAV = "pyav"
    OPENCV = "opencv"


@dataclass(frozen=True)
class RecordCodec:
    """How one `output.record_codec` is written by each backend."""

    encoder: str  # FFmpeg encoder (PyAV)
    pix_fmt: str
    containers: tuple[str, ...]  # file types PyAV writes it to
    fourcc: str  # OpenCV's FourCC for the fallback
    cv_containers: tuple[str, ...]  # file types OpenCV's FFmpeg backend writes it to
    options: dict[str, str] = field(default_factory=dict)
    codec_tag: str = ""
    bits_per_pixel: float = 0.0  # bit rate per pixel per frame (0: the encoder's own control)


_H264_OPTIONS = {"preset": "superfast", "crf": "21", "bf": "0"}  # no B-frames: exact VFR pts;
# superfast: the swap needs the CPU more than the file needs the last few percent of size
RECORD_CODECS: dict[str, RecordCodec] = {
    "h264": RecordCodec("libx264", "yuv420p", (".mp4", ".mkv", ".mov"), "mp4v",
                        (".mp4", ".m4v", ".mov"), _H264_OPTIONS),
    "avc1": RecordCodec("libx264", "yuv420p", (".mp4", ".mkv", ".mov"), "avc1",
                        (".mp4", ".m4v", ".mov"), _H264_OPTIONS),
    "mp4v": RecordCodec("mpeg4", "yuv420p", (".mp4", ".m4v", ".mov", ".mkv", ".avi"), "mp4v",
                        (".mp4", ".m4v", ".mov", ".avi"), bits_per_pixel=0.2),
    "MJPG": RecordCodec("mjpeg", "yuvj420p", (".avi", ".mkv", ".mov"), "MJPG", (".avi",),
                        bits_per_pixel=1.0),
    "XVID": RecordCodec("mpeg4", "yuv420p", (".avi",), "XVID", (".avi",), codec_tag="XVID",
                        bits_per_pixel=0.2),
}
MIN_BIT_RATE = 2_000_000


def pyav_installed() -> bool:
    return importlib.util.find_spec("av") is not None


def default_backend() -> RecordBackend:
    return RecordBackend.PYAV if pyav_installed() else RecordBackend.OPENCV


def containers_for(codec: RecordCodec, backend: RecordBackend) -> tuple[str, ...]:
    return codec.containers if backend is RecordBackend.PYAV else codec.cv_containers


def record_extension(codec_name: str) -> str:
    """The usual file extension for recordings made with `codec_name` here."""
    codec = RECORD_CODECS.get(codec_name)
    return containers_for(codec, default_backend())[0] if codec else ".mp4"


class WriteError(RuntimeError):
    """The writer could not write a frame (disk full, device gone)."""


class FrameWriter(Protocol):
    frames_written: int

    def write(self, frame: np.ndarray, t_s: float) -> None: ...

    def close(self) -> None: ...


class PyAVWriter:
    """Frames with their own times through PyAV; `t_s` is seconds since the first frame."""

    def __init__(self, path: Path, codec: RecordCodec, size: tuple[int, int], fps: float) -> None:
        import av  # imported here: loading FFmpeg's libraries is work, not import

        self._av = av
        self.path = path
        self.frames_written = 0
        self._slots = path.suffix.lower() == ".avi"  # AVI: pts count frame slots
        rate = Fraction(fps).limit_denominator(1001)
        self._time_base = 1 / rate if self._slots else FINE_TIME_BASE
        self._last_pts = -1
        try:
            self._container = av.open(str(path), "w")
            stream = self._container.add_stream(codec.encoder, rate=rate,
                                                options=dict(codec.options))
            stream.width, stream.height = size
            stream.pix_fmt = codec.pix_fmt
            if codec.codec_tag:
                stream.codec_tag = codec.codec_tag
            if codec.bits_per_pixel:
                stream.bit_rate = max(MIN_BIT_RATE, int(size[0] * size[1] * fps
                                                        * codec.bits_per_pixel))
            stream.time_base = self._time_base
            stream.codec_context.time_base = self._time_base
            self._stream = stream
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise WriteError(f"{type(exc).__name__}: {exc}") from exc

    def write(self, frame: np.ndarray, t_s: float) -> None:
        pts = max(round(t_s / self._time_base), self._last_pts + 1)
        self._last_pts = pts
        video = self._av.VideoFrame.from_ndarray(frame, format="bgr24")
        video.pts = pts
        video.time_base = self._time_base
        try:
            for packet in self._stream.encode(video):
                self._container.mux(packet)
        except (self._av.FFmpegError, OSError) as exc:
            raise WriteError(f"{type(exc).__name__}: {exc}") from exc
        self.frames_written += 1

    def close(self) -> None:
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        except (self._av.FFmpegError, OSError) as exc:
            raise WriteError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            try:
                self._container.close()
            except (self._av.FFmpegError, OSError) as exc:
                log.error("closing %s failed: %s", self.path, exc)


class OpenCVWriter:
    """A fixed-rate file through cv2.VideoWriter that still keeps real time: frame slot
    k = round(t_s * fps); a gap is filled by repeating the previous frame, a frame whose slot
    is already written is dropped."""

    def __init__(self, path: Path, codec: RecordCodec, size: tuple[int, int], fps: float) -> None:
        self.path = path
        self.fps = fps
        self.frames_written = 0  # slots in the file, repeats included
        self.frames_dropped = 0
        self._previous: np.ndarray | None = None
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec.fourcc), fps,
                                       size)
        if not self._writer.isOpened():
            self._writer.release()
            raise WriteError(f"OpenCV could not open a {codec.fourcc} writer for {path.name}")

    def write(self, frame: np.ndarray, t_s: float) -> None:
        slot = round(t_s * self.fps)
        if slot < self.frames_written:
            self.frames_dropped += 1
            return
        while self._previous is not None and self.frames_written < slot:
            self._writer.write(self._previous)
            self.frames_written += 1
        self._writer.write(frame)
        self.frames_written += 1
        self._previous = frame

    def close(self) -> None:
        self._writer.release()


def open_writer(backend: RecordBackend, path: Path, codec: RecordCodec, size: tuple[int, int],
                fps: float) -> Any:
    writer_type = PyAVWriter if backend is RecordBackend.PYAV else OpenCVWriter
    return writer_type(path, codec, size, fps)
