"""The picture sent while the source is lost, so viewers see "no signal", not a frozen face."""

from __future__ import annotations

import cv2
import numpy as np


def no_signal_frame(last: np.ndarray | None, size: tuple[int, int], text: str) -> np.ndarray:
    """The last good frame dimmed with a 'NO SIGNAL' caption (or a grey frame if none)."""
    w, h = size
    if last is not None:
        frame = (last // 3).astype(np.uint8)
    else:
        frame = np.full((h, w, 3), 40, np.uint8)
    scale = max(frame.shape[1] / 960.0, 0.6)
    thickness = max(int(2 * scale), 1)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    org = ((frame.shape[1] - tw) // 2, (frame.shape[0] + th) // 2)
    cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness,
                cv2.LINE_AA)
    return frame
