"""The values that travel between pipeline stages.

One `FramePacket` is created per captured frame by the capture thread and handed from
stage to stage. Each stage adds to it (faces, swapped crops, timings); nothing is global.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterator

import numpy as np

from livefusion.settings import LiveSettings


@dataclass
class Face:
    """One face in one frame, in full-frame pixel coordinates.

    bbox: float32 (4,) x1, y1, x2, y2.
    kps: float32 (5, 2) left eye, right eye, nose tip, left mouth corner, right mouth corner
         (image-left first).
    """

    bbox: np.ndarray
    kps: np.ndarray
    score: float
    track_id: int = -1
    # Set by the tracker: "detect" when this frame's position came from the detector,
    # "track" when it came from optical flow.
    origin: str = "detect"
    # Set by the engine when swap_faces (largest/reference) deliberately leaves this face out.
    unselected: bool = False
    # Set by the privacy guard when it covered this face (or held an earlier frame instead).
    hidden: bool = False
    # Set by the swapper in the inference thread, consumed by the blender in the output thread.
    swapped_crop: np.ndarray | None = None  # BGR uint8 (S, S, 3)
    crop_matrix: np.ndarray | None = None  # float (2, 3) frame -> crop affine
    # The frame under crop_matrix at the crop's size (the swapper's input): the colour
    # transfer's target, so the output thread need not warp it again. None when unknown.
    target_crop: np.ndarray | None = None  # BGR uint8 (S, S, 3)
    # 106 landmarks in frame pixels (InsightFace 2d106det order), set by the engine when the
    # blend mask follows the face; None when no landmarker ran.
    landmarks: np.ndarray | None = None  # float32 (106, 2)

    @property
    def width(self) -> float:
        return float(self.bbox[2] - self.bbox[0])

    @property
    def height(self) -> float:
        return float(self.bbox[3] - self.bbox[1])

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)


class GuardAction(str, Enum):
    """What the privacy guard did to a frame before the outputs viewers see."""

    PASS = "pass"  # every face swapped well (or no face): the frame goes out as it is
    HIDE = "hide"  # some face regions were covered (pixelated or filled)
    HOLD = "hold"  # the last fully swapped frame was repeated instead
    START = "start"  # a neutral frame was sent: the engine is not ready or nothing is known
    REVEAL = "reveal"  # swap is off on purpose: the real face goes out (policy off, too)


class HideReason(str, Enum):
    """Why the guard acted on a frame (counted per reason in the meters)."""

    STARTUP = "startup"  # models loading, no source face yet
    NO_SWAP = "no_swap"  # a face was seen but not swapped well (pose, score, size, unselected)
    TRACK_LOST = "track_lost"  # a face was here recently and no detection has shown it gone
    ERROR = "error"  # a stage failed on this frame
    SWAP_OFF = "swap_off"  # the user turned the swap off (a deliberate reveal)
    LOW_OPACITY = "low_opacity"  # the user set the swap's opacity low: part of the face shows


@dataclass(frozen=True)
class PrivacyVerdict:
    """The guard's decision for one frame: the action, why, and the frame regions it covered
    (x0, y0, x1, y1 in frame pixels)."""

    action: GuardAction
    reasons: tuple[HideReason, ...] = ()
    regions: tuple[tuple[int, int, int, int], ...] = ()

    @property
    def acted(self) -> bool:
        """True when viewers did not get the frame as the engine made it."""
        return self.action in (GuardAction.HIDE, GuardAction.HOLD, GuardAction.START)


@dataclass
class FramePacket:
    """A captured frame on its way through the pipeline.

    seq: capture sequence number, strictly increasing.
    t_capture_ns: `time.perf_counter_ns()` when the frame was read from the source.
    frame: the BGR uint8 picture; stages replace it with the processed one.
    original: the frame as captured (kept for before/after views); same array until a
              stage modifies `frame` in place, so stages copy before writing.
    timings_ms: per-stage wall time in milliseconds, in the order stages ran.
    settings: the run-time settings snapshot this frame was processed with.
    errors: stage name -> message for stages that failed on this frame (the privacy guard
            hides that frame's faces).
    debug: optional extras for overlays (e.g. "mask": float32 full-frame mask).
    """

    seq: int
    t_capture_ns: int
    frame: np.ndarray
    settings: LiveSettings = field(default_factory=LiveSettings)
    faces: list[Face] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    debug: dict[str, Any] = field(default_factory=dict)
    original: np.ndarray | None = None
    source_ok: bool = True  # False for "no signal" frames made while the source is lost
    # Set by the face engine: `located` when its locator ran on this frame, so `faces` lists
    # every face it knows of; `detected` when a full detection ran on this very frame.
    located: bool = False
    detected: bool = False
    scene_cut: bool = False  # the locator saw an abrupt picture change (a cut) on this frame
    # Faces the detector saw only at the privacy guard's lower threshold: never swapped,
    # always hidden (unless the guard is off).
    unswappable: list[Face] = field(default_factory=list)
    privacy: PrivacyVerdict | None = None  # set by the privacy guard on the output thread

    def __post_init__(self) -> None:
        if self.original is None:
            self.original = self.frame

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Record the wall time of the enclosed block under `stage` (accumulates)."""
        start = time.perf_counter_ns()
        try:
            yield
        finally:
            elapsed = (time.perf_counter_ns() - start) / 1e6
            self.timings_ms[stage] = self.timings_ms.get(stage, 0.0) + elapsed

    def age_ms(self, now_ns: int | None = None) -> float:
        """Milliseconds since capture."""
        now = time.perf_counter_ns() if now_ns is None else now_ns
        return (now - self.t_capture_ns) / 1e6
