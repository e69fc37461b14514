"""The input the config asks for: a video file, a still image or a camera (with reconnects).

Kept apart from `livefusion.media.sources` so that the camera and the reconnect wrapper, which
build on the source protocol there, and this factory, which builds on all three, import in one
direction only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from livefusion.config import parse_resolution
from livefusion.media.camera import CameraSource
from livefusion.media.reconnect import ReconnectingSource
from livefusion.media.sources import (
    CAMERA_DEFAULT_SIZE,
    ImageSource,
    Rescaler,
    Source,
    VideoFileSource,
    is_image_path,
)

if TYPE_CHECKING:
    from livefusion.config import AppConfig, InputConfig


def open_source(config: "AppConfig | InputConfig", *, scale_files: bool = True,
                reconnect_max_s: float | None = None) -> Source:
    """Build (not open) the source the config asks for.

    `input.file` set: an `ImageSource` (by extension) or a `VideoFileSource`, paced when
    `input.realtime`; with `input.resolution` set (and `scale_files`) fitted into that size
    (letterbox), else at the file's own size. Otherwise a `CameraSource` for `input.camera`
    requesting `input.resolution` (default `CAMERA_DEFAULT_SIZE`) at `input.fps`; it delivers
    what it negotiates,
    wrapped in a `ReconnectingSource` when `reconnect_max_s` is given (taken from
    `pipeline.reconnect_max_s` when an `AppConfig` is passed). Call `open()` on the result.
    """
    inp = getattr(config, "input", config)
    if reconnect_max_s is None and hasattr(config, "pipeline"):
        reconnect_max_s = config.pipeline.reconnect_max_s  # type: ignore[union-attr]
    requested = parse_resolution(inp.resolution) if inp.resolution else None
    if inp.file:
        source: Source
        if is_image_path(inp.file):
            source = ImageSource(inp.file, fps=inp.fps, realtime=inp.realtime)
        else:
            source = VideoFileSource(inp.file, realtime=inp.realtime, loop=inp.loop)
        return Rescaler(source, requested) if scale_files and requested else source
    width, height = requested or CAMERA_DEFAULT_SIZE

    def make_camera() -> Source:
        return CameraSource(inp.camera, width, height, inp.fps, backend=inp.camera_backend,
                            mjpg=inp.mjpg)

    if reconnect_max_s:
        # while lost, read() waits at most one frame interval, so "no signal" frames keep the
        # virtual camera at the stream's rate instead of stuttering at 2 fps
        return ReconnectingSource(make_camera, max_backoff_s=reconnect_max_s,
                                  read_timeout_s=min(0.5, 1.0 / max(inp.fps, 1.0)))
    return make_camera()
