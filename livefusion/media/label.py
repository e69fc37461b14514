"""The on-stream disclosure label: a short text (e.g. "AI face swap") in a corner of every
frame viewers see, for streamers who want to say the face is generated.

Drawn by the pipeline's output thread after the privacy guard, so it is on the virtual camera,
the recording and the preview alike, and whatever the guard did (a held or neutral frame gets
it too). Off unless `label.text` is set. The text is rendered once per frame size into a small
patch with its alpha, so a frame costs one copy and one blend of the patch.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
BOX_ALPHA = 0.6  # how dark the box behind the text is


class LabelPosition(str, Enum):
    TOP_LEFT = "top-left"
    TOP_RIGHT = "top-right"
    BOTTOM_LEFT = "bottom-left"
    BOTTOM_RIGHT = "bottom-right"


LABEL_POSITIONS = tuple(p.value for p in LabelPosition)


@dataclass(frozen=True)
class LabelStyle:
    text: str
    position: LabelPosition = LabelPosition.BOTTOM_RIGHT
    size: float = 0.04  # text height as a fraction of the frame height


@dataclass(frozen=True)
class _Patch:
    x: int
    y: int
    colour: np.ndarray  # (h, w, 3) float32
    alpha: np.ndarray  # (h, w, 1) float32


class DisclosureLabel:
    """Draws `style.text` onto frames; `apply(frame)` returns a new frame with the label."""

    def __init__(self, style: LabelStyle) -> None:
        if not style.text.strip():
            raise ValueError("a disclosure label needs a text")
        self.style = style
        self._patch: _Patch | None = None
        self._for_size: tuple[int, int] = (0, 0)

    def apply(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        if self._for_size != (w, h):
            self._patch = self._render(w, h)
            self._for_size = (w, h)
        patch = self._patch
        assert patch is not None
        out = frame.copy()  # the frame may be the capture or the guard's held frame
        ph, pw = patch.alpha.shape[:2]
        roi = out[patch.y:patch.y + ph, patch.x:patch.x + pw].astype(np.float32)
        roi = roi * (1.0 - patch.alpha) + patch.colour * patch.alpha
        out[patch.y:patch.y + ph, patch.x:patch.x + pw] = np.clip(roi + 0.5, 0, 255).astype(np.uint8)
        return out

    def _render(self, w: int, h: int) -> _Patch:
        style = self.style
        text_h = max(8, round(h * style.size))
        scale = cv2.getFontScaleFromHeight(FONT, text_h, 1)
        thickness = max(1, round(text_h / 12))
        (tw, th), baseline = cv2.getTextSize(style.text, FONT, scale, thickness)
        pad = max(2, text_h // 3)
        pw, ph = min(tw + 2 * pad, w), min(th + baseline + 2 * pad, h)
        text = np.zeros((ph, pw), np.uint8)
        cv2.putText(text, style.text, (pad, pad + th), FONT, scale, 255, thickness, cv2.LINE_AA)
        text_alpha = text.astype(np.float32) / 255.0
        alpha = np.maximum(text_alpha, BOX_ALPHA)[:, :, None]
        # white text on a dark box: colour is white where the text is, black elsewhere,
        # pre-divided so that colour * alpha is what shows
        colour = np.repeat((255.0 * text_alpha / alpha[:, :, 0])[:, :, None], 3, axis=2)
        margin = max(2, round(min(w, h) * 0.02))
        left = style.position in (LabelPosition.TOP_LEFT, LabelPosition.BOTTOM_LEFT)
        top = style.position in (LabelPosition.TOP_LEFT, LabelPosition.TOP_RIGHT)
        x = margin if left else w - pw - margin
        y = margin if top else h - ph - margin
        x, y = min(max(x, 0), w - pw), min(max(y, 0), h - ph)
        return _Patch(x, y, colour.astype(np.float32), alpha.astype(np.float32))


def label_from_config(text: str, position: str, size: float) -> DisclosureLabel | None:
    """The label the config asks for, or None when `text` is empty (the default)."""
    if not text.strip():
        return None
    return DisclosureLabel(LabelStyle(text.strip(), LabelPosition(position), size))
