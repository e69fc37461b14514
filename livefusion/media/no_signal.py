"""The picture sent while the source is lost, so viewers see "no signal", not a frozen face.

It never shows the last camera picture, not even dimmed: a dimmed face is still a face, and
no-signal frames skip the engine and its privacy guard."""

from __future__ import annotations

import cv2
import numpy as np


def no_signal_frame(last: np.ndarray | None, size: tuple[int, int], text: str) -> np.ndarray:
    """A dark grey frame with a 'NO SIGNAL' caption, the size of the last good frame (its
    picture is not used) or `size` when there was none."""
    h, w = last.shape[:2] if last is not None else (size[1], size[0])
    frame = np.full((h, w, 3), 40, np.uint8)
    scale = max(frame.shape[1] / 960.0, 0.6)
    thickness = max(int(2 * scale), 1)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    org = ((frame.shape[1] - tw) // 2, (frame.shape[0] + th) // 2)
    cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness,
                cv2.LINE_AA)
    return frame
