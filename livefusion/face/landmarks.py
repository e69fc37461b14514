"""106-point face landmarks: InsightFace's 2d106det, and a per-track cache between detections.

Contract (MODELS.md): input `data` [N,3,192,192] RGB 0-255 (normalisation is inside the
graph) of a square crop centred on the face box with side 1.5 x max(box w, h), no rotation;
first output `fc1` [N,212] in [-1,1], (v + 1) * 96 = crop pixels. Points are returned in frame
pixels, InsightFace's order (livefusion/face/mask.py names the groups).

`LandmarkTracker` runs the model on frames where the face's position came from the detector
(or on a track it has no points for), and between detections moves the last points with the
track: the similarity that takes the detection's five keypoints to the tracked ones, so the
outline follows the face as the 5 points do (they are what the swap is aligned to).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import cv2
import numpy as np

from livefusion.face.align import AlignmentError, similarity_fit
from livefusion.face.onnx_session import as_model_session, numpy_type
from livefusion.packet import Face

INPUT_SIZE = 192
CROP_SCALE = 1.5  # crop side / max(box w, h)
POINTS = 106


def landmark_crop_matrix(bbox: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Frame -> crop (2, 3) affine of 2d106det's square crop around a face box."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(bbox, np.float64)[:4])
    side = CROP_SCALE * max(x2 - x1, y2 - y1)
    if not np.isfinite(side) or side <= 1e-6:
        raise AlignmentError(f"face box {bbox} has no size; no landmarks")
    scale = size / side
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    return np.array([[scale, 0.0, size / 2.0 - scale * cx], [0.0, scale, size / 2.0 - scale * cy]])


class Landmarker106:
    """Runs a 2d106det-contract session on one face box at a time."""

    def __init__(self, session: Any) -> None:
        self.session = as_model_session(session)
        if len(self.session.input_names) != 1:
            raise ValueError("a 106-point landmarker has one input [N,3,192,192]")
        self._input = self.session.input_names[0]
        self._dtype = numpy_type(self.session.input_types[0])

    def detect(self, frame: np.ndarray, bbox: np.ndarray) -> np.ndarray:
        """float32 (106, 2) landmarks in frame pixels for the face in `bbox`."""
        matrix = landmark_crop_matrix(bbox)
        crop = cv2.warpAffine(frame, matrix, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        blob = cv2.dnn.blobFromImage(crop, 1.0, swapRB=True).astype(self._dtype, copy=False)
        out = np.asarray(self.session.run({self._input: blob})[0], np.float64).reshape(-1)
        if out.size < 2 * POINTS:
            raise ValueError(f"the landmarker gave {out.size} values, expected {2 * POINTS}")
        points = (out[:2 * POINTS].reshape(POINTS, 2) + 1.0) * (INPUT_SIZE / 2.0)
        inverse = cv2.invertAffineTransform(matrix)
        return (points @ inverse[:, :2].T + inverse[:, 2]).astype(np.float32)


@dataclass(frozen=True)
class _Known:
    kps: np.ndarray  # (5, 2) the keypoints the landmarks were found with
    points: np.ndarray  # (106, 2)


class LandmarkTracker:
    """Landmarks for the faces of a stream: inference on detections, carried between them."""

    def __init__(self, landmarker: Landmarker106) -> None:
        self.landmarker = landmarker
        self._known: dict[int, _Known] = {}
        self.runs = 0  # model runs so far (for tests and meters)

    def landmarks(self, frame: np.ndarray, face: Face) -> np.ndarray:
        known = self._known.get(face.track_id) if face.track_id >= 0 else None
        if known is not None and face.origin != "detect":
            try:
                moved = similarity_fit(known.kps, face.kps)
            except AlignmentError:
                moved = None
            if moved is not None:
                return (known.points @ moved[:, :2].T + moved[:, 2]).astype(np.float32)
        points = self.landmarker.detect(frame, face.bbox)
        self.runs += 1
        if face.track_id >= 0:
            self._known[face.track_id] = _Known(np.asarray(face.kps, np.float64).copy(), points)
        return points

    def forget_except(self, track_ids: Iterable[int]) -> None:
        keep = set(track_ids)
        self._known = {k: v for k, v in self._known.items() if k in keep}

    def reset(self) -> None:
        self._known.clear()
