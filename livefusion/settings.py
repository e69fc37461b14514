"""Settings that change while the stream runs, and the thread-safe box that holds them.

The UI (or a hotkey, or the CLI) calls `SettingsBox.update(...)`; the pipeline takes one
immutable snapshot per frame, so a frame is never processed with half-applied settings and
no worker thread reads mutable shared state.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields, replace
from typing import Any, Callable

SWAP_FACES_CHOICES = ("all", "largest", "reference")
MASK_MODE_CHOICES = ("box", "face", "face+mouth")  # livefusion.face.mask.MaskMode


@dataclass(frozen=True)
class LiveSettings:
    swap_enabled: bool = True
    enhancer_enabled: bool = False
    color_transfer: bool = True
    opacity: float = 1.0
    detect_every: int = 5
    swap_faces: str = "all"
    active_source: int = 0
    # Blend mask (livefusion/face/mask.py). "face" and "face+mouth" follow 106 landmarks and
    # fall back to the box when there are none (no landmarker loaded).
    mask_mode: str = "face"
    mask_blur: float = 0.05  # box: feather, as a fraction of the crop size
    mask_erode: float = 0.03  # box: shrink the mask, as a fraction of the crop size
    face_padding: float = 0.04  # face: outline grown by this fraction of the face width
    face_feather: float = 0.08  # face: feather band, fraction of the face width
    mouth_padding: float = 0.02  # face+mouth: lips grown by this fraction of the face width
    mouth_feather: float = 0.06  # face+mouth: feather band at the lips, fraction of the face width
    # Overlay/debug views (drawn by the UI or a debug sink; the engine only reads them).
    show_debug: bool = False
    show_mask: bool = False
    before_after: bool = False

    def validated(self) -> "LiveSettings":
        """Return self, or raise ValueError naming the bad field and what is allowed."""
        if not 0.0 <= self.opacity <= 1.0:
            raise ValueError(f"opacity must be between 0 and 1, got {self.opacity}")
        if not 1 <= self.detect_every <= 120:
            raise ValueError(f"detect_every must be between 1 and 120, got {self.detect_every}")
        if self.swap_faces not in SWAP_FACES_CHOICES:
            raise ValueError(
                f"swap_faces must be one of {', '.join(SWAP_FACES_CHOICES)}, got {self.swap_faces!r}"
            )
        if self.active_source < 0:
            raise ValueError(f"active_source must be >= 0, got {self.active_source}")
        if not 0.0 <= self.mask_blur <= 0.5:
            raise ValueError(f"mask_blur must be between 0 and 0.5, got {self.mask_blur}")
        if not 0.0 <= self.mask_erode <= 0.4:
            raise ValueError(f"mask_erode must be between 0 and 0.4, got {self.mask_erode}")
        if self.mask_mode not in MASK_MODE_CHOICES:
            raise ValueError(
                f"mask_mode must be one of {', '.join(MASK_MODE_CHOICES)}, got {self.mask_mode!r}")
        for name, top in (("face_padding", 0.3), ("face_feather", 0.5), ("mouth_padding", 0.3),
                          ("mouth_feather", 0.5)):
            value = getattr(self, name)
            if not 0.0 <= value <= top:
                raise ValueError(f"{name} must be between 0 and {top}, got {value}")
        return self


SETTING_NAMES = tuple(f.name for f in fields(LiveSettings))


class SettingsBox:
    """Holds the current `LiveSettings`; safe to update from any thread."""

    def __init__(self, initial: LiveSettings | None = None) -> None:
        self._lock = threading.Lock()
        self._current = (initial or LiveSettings()).validated()
        self._listeners: list[Callable[[LiveSettings], None]] = []

    def snapshot(self) -> LiveSettings:
        with self._lock:
            return self._current

    def update(self, **changes: Any) -> LiveSettings:
        """Apply changes atomically; raises ValueError (nothing applied) when invalid."""
        unknown = set(changes) - set(SETTING_NAMES)
        if unknown:
            raise ValueError(
                f"unknown setting(s) {sorted(unknown)}; known: {', '.join(SETTING_NAMES)}"
            )
        with self._lock:
            new = replace(self._current, **changes).validated()
            self._current = new
            listeners = list(self._listeners)
        for listener in listeners:
            listener(new)
        return new

    def toggle(self, name: str) -> LiveSettings:
        with self._lock:
            value = getattr(self._current, name)
        if not isinstance(value, bool):
            raise ValueError(f"setting {name!r} is not a toggle")
        return self.update(**{name: not value})

    def subscribe(self, listener: Callable[[LiveSettings], None]) -> None:
        with self._lock:
            self._listeners.append(listener)
