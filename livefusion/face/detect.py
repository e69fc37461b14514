"""Face detectors: SCRFD (any public ONNX export) and YuNet (OpenCV's FaceDetectorYN).

Both return `Face` objects in full-frame pixels, best score first, each box grown to contain
its five keypoints. The SCRFD decoding is a pure numpy function (`decode_scrfd`) so it can be
tested on its own; the session is given to the detector (the wiring picks the providers).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from livefusion.face.onnx_session import as_model_session, fixed_dim
from livefusion.packet import Face

log = logging.getLogger(__name__)

SCRFD_STRIDES = (8, 16, 32, 64, 128)
# Longest side a detector sees when it runs at the frame's own size ("auto" input size): frames
# up to 1920x1080 are detected at full resolution, larger ones are scaled down to this.
DEFAULT_MAX_SIDE = 1920


def auto_input_hw(frame_hw: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The (h, w) input for a frame detected at its own resolution, scaled down only when its
    longer side exceeds `max_side`, each side rounded up to a multiple of 32 (SCRFD's largest
    stride of 32 needs it; the frame is letterboxed into the extra rows/columns)."""
    h, w = frame_hw
    scale = min(1.0, max_side / max(h, w))
    return (max(32, -(-round(h * scale) // 32) * 32), max(32, -(-round(w * scale) // 32) * 32))


@dataclass
class Detections:
    """Raw detections in one coordinate frame: boxes (N,4) x1y1x2y2, scores (N,), kps (N,5,2)."""

    boxes: np.ndarray
    scores: np.ndarray
    kps: np.ndarray

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32),
                   np.zeros((0, 5, 2), np.float32))

    def __len__(self) -> int:
        return len(self.scores)


def decode_scrfd(
    scores: Sequence[np.ndarray],
    boxes: Sequence[np.ndarray],
    kps: Sequence[np.ndarray],
    input_hw: tuple[int, int],
    score_threshold: float,
    strides: Sequence[int] | None = None,
) -> Detections:
    """Decode SCRFD head outputs (one array per stride) into input-pixel detections.

    scores[i] (N,1), boxes[i] (N,4) distances, kps[i] (N,10) offsets, all in stride units;
    N = cells * anchors with the anchors of a cell adjacent. Non-finite values never reach
    the result: rows with a NaN/inf score, box or keypoint are dropped.
    Raises ValueError when the arrays do not fit the input size (a wrong export or size).
    """
    levels = len(scores)
    if not (levels == len(boxes) == len(kps)) or levels == 0:
        raise ValueError(
            f"SCRFD outputs must come as equal groups of scores/boxes/keypoints, got "
            f"{len(scores)}/{len(boxes)}/{len(kps)}"
        )
    strides = tuple(strides) if strides is not None else SCRFD_STRIDES[:levels]
    height, width = input_hw
    out_boxes, out_scores, out_kps = [], [], []
    for level, stride in enumerate(strides):
        score = np.asarray(scores[level], np.float32).reshape(-1)
        dist = np.asarray(boxes[level], np.float32).reshape(-1, 4) if np.size(boxes[level]) % 4 == 0 else None
        offs = np.asarray(kps[level], np.float32).reshape(-1, 10) if np.size(kps[level]) % 10 == 0 else None
        rows, cols = -(-height // stride), -(-width // stride)
        cells = rows * cols
        count = score.shape[0]
        if dist is None or offs is None or dist.shape[0] != count or offs.shape[0] != count \
                or cells == 0 or count % cells:
            raise ValueError(
                f"SCRFD stride {stride}: {count} scores, boxes {np.shape(boxes[level])}, "
                f"keypoints {np.shape(kps[level])} do not fit a {width}x{height} input; "
                f"feed the size the model was exported for"
            )
        anchors = count // cells
        with np.errstate(invalid="ignore"):
            keep = np.flatnonzero(np.isfinite(score) & (score >= score_threshold))
        if keep.size == 0:
            continue
        cell = keep // anchors
        centres = np.stack([(cell % cols) * stride, (cell // cols) * stride], axis=1).astype(np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            d = dist[keep] * stride
            box = np.concatenate([centres - d[:, :2], centres + d[:, 2:]], axis=1)
            points = centres[:, None, :] + offs[keep].reshape(-1, 5, 2) * stride
        finite = np.isfinite(box).all(axis=1) & np.isfinite(points).all(axis=(1, 2))
        out_boxes.append(box[finite])
        out_scores.append(score[keep][finite])
        out_kps.append(points[finite])
    if not out_scores:
        return Detections.empty()
    return Detections(np.concatenate(out_boxes), np.concatenate(out_scores), np.concatenate(out_kps))


def nms_and_limit(
    dets: Detections, *, score_threshold: float, nms_threshold: float, max_faces: int, min_face: float
) -> Detections:
    """Drop boxes smaller than min_face, suppress overlaps (cv2.dnn.NMSBoxes), best first."""
    if len(dets) == 0:
        return dets
    wh = dets.boxes[:, 2:] - dets.boxes[:, :2]
    big = np.flatnonzero((wh.min(axis=1) >= min_face) & (wh.min(axis=1) > 0))
    if big.size == 0:
        return Detections.empty()
    rects = [[float(x), float(y), float(w), float(h)]
             for (x, y), (w, h) in zip(dets.boxes[big, :2], wh[big])]
    picked = cv2.dnn.NMSBoxes(rects, dets.scores[big].astype(float).tolist(),
                              score_threshold, nms_threshold)
    picked = big[np.asarray(picked, dtype=np.int64).reshape(-1)]
    picked = picked[np.argsort(-dets.scores[picked], kind="stable")][:max_faces]
    return Detections(dets.boxes[picked], dets.scores[picked], dets.kps[picked])


def to_faces(dets: Detections) -> list[Face]:
    """Faces with each box grown to contain its keypoints (so kps are always inside the box)."""
    faces = []
    for box, score, points in zip(dets.boxes, dets.scores, dets.kps):
        lo = np.minimum(box[:2], points.min(axis=0))
        hi = np.maximum(box[2:], points.max(axis=0))
        faces.append(Face(bbox=np.concatenate([lo, hi]).astype(np.float32),
                          kps=points.astype(np.float32), score=float(score)))
    return faces


class ScrfdDetector:
    """SCRFD through an ONNX session: det_10g/2.5g/500m, retinaface_10g and re-exports.

    Outputs are matched by shape, not name: arrays with last dimension 1, 4 and 10 are
    scores, box distances and keypoints; within each group the largest is stride 8. A leading
    batch dimension of 1 is accepted. Models exported for a fixed input size are fed that
    size whatever `input_size` says.

    `input_size` 0 ("auto"): each frame is fed at its own resolution (sides rounded up to
    multiples of 32), scaled down only when its longer side exceeds `max_side`. A fixed square
    input (e.g. 640) letterboxes a 16:9 frame into 640x360 of it: a face of 40 px at 720p is
    seen at 20 px, where SCRFD's keypoints are already coarse.
    """

    def __init__(
        self,
        session: Any,
        *,
        input_size: int | tuple[int, int] = 640,
        max_side: int = DEFAULT_MAX_SIDE,
        score: float = 0.5,
        nms: float = 0.4,
        max_faces: int = 16,
        min_face: float = 0,
    ) -> None:
        self.session = as_model_session(session)
        if len(self.session.input_names) != 1:
            raise ValueError(f"an SCRFD model has one input, this one has {self.session.input_names}")
        if len(self.session.output_names) % 3 or not self.session.output_names:
            raise ValueError(
                f"this detector has {len(self.session.output_names)} outputs; an SCRFD export with "
                f"keypoints has 9 (scores, boxes and keypoints for 3 strides): use a *_kps model"
            )
        self.input_name = self.session.input_names[0]
        self.max_side = int(max_side)
        if self.max_side < 32:
            raise ValueError(f"detector max_side {max_side}: must be at least 32")
        # None: auto, sized per frame (see auto_input_hw)
        self.input_hw: tuple[int, int] | None = self._input_hw(input_size)
        self.score = float(score)
        self.nms = float(nms)
        self.max_faces = int(max_faces)
        self.min_face = float(min_face)
        self._buffers = _LetterboxBuffers()

    def _input_hw(self, requested: int | tuple[int, int]) -> tuple[int, int] | None:
        w, h = (requested, requested) if isinstance(requested, int) else requested
        auto = (w, h) == (0, 0)
        if not auto and (w % 32 or h % 32 or w <= 0 or h <= 0):
            raise ValueError(f"detector input size {w}x{h}: both sides must be positive multiples "
                             f"of 32 (or 0 for the frame's own size)")
        shape = list(self.session.input_shapes[0])
        fixed_h, fixed_w = (fixed_dim(shape[2]), fixed_dim(shape[3])) if len(shape) == 4 else (None, None)
        if fixed_h and fixed_w:
            if auto or (fixed_w, fixed_h) != (w, h):
                log.info("SCRFD model is fixed at %dx%d; using that instead of %s",
                         fixed_w, fixed_h, "the frame's size" if auto else f"{w}x{h}")
            return fixed_h, fixed_w
        return None if auto else (h, w)

    def input_hw_for(self, frame_hw: tuple[int, int]) -> tuple[int, int]:
        """The (h, w) input a frame of this size is fed at."""
        return self.input_hw or auto_input_hw(frame_hw, self.max_side)

    def detect(self, frame: np.ndarray) -> list[Face]:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 2 or frame.shape[1] < 2:
            raise ValueError(f"detector needs a BGR frame (H, W, 3), got shape {frame.shape}")
        input_hw = self.input_hw_for(frame.shape[:2])
        blob, scale = self.letterbox(frame, input_hw)
        outputs = self.session.run({self.input_name: blob})
        scores, boxes, kps = split_scrfd_outputs(outputs)
        dets = decode_scrfd(scores, boxes, kps, input_hw, self.score)
        if len(dets):
            dets = Detections(dets.boxes / scale, dets.scores, dets.kps / scale)
        dets = nms_and_limit(dets, score_threshold=self.score, nms_threshold=self.nms,
                             max_faces=self.max_faces, min_face=self.min_face)
        return to_faces(dets)

    def letterbox(self, frame: np.ndarray,
                  input_hw: tuple[int, int] | None = None) -> tuple[np.ndarray, float]:
        """Scale the frame into the top-left of the input, keeping its aspect; blob NCHW RGB,
        (x - 127.5) / 128.

        The canvas and the blob are this thread's buffers, reused while the input size stays
        the same (a 1920x1088 blob is 25 MB): the blob is only valid until this thread's next
        call. Filling the planes by hand instead of cv2.dnn.blobFromImage (and no new 25 MB blob
        per call) made it 4-6x faster at 720p and 1.1-1.3x at 1080p on one core (the
        "of which letterbox" rows of scripts/bench_detector.py)."""
        in_h, in_w = input_hw or self.input_hw_for(frame.shape[:2])
        h, w = frame.shape[:2]
        scale = min(in_h / h, in_w / w)
        new_w, new_h = max(1, min(in_w, round(w * scale))), max(1, min(in_h, round(h * scale)))
        canvas, blob = self._buffers.get(in_h, in_w)
        if (new_w, new_h) == (w, h):
            canvas[:h, :w] = frame
        else:
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            canvas[:new_h, :new_w] = cv2.resize(frame, (new_w, new_h), interpolation=interp)
        canvas[new_h:] = 0
        canvas[:new_h, new_w:] = 0
        for channel, plane in enumerate(cv2.split(canvas)[::-1]):  # BGR -> RGB
            out = blob[0, channel]
            out[...] = plane
            out *= np.float32(1.0 / 128.0)
            out -= np.float32(127.5 / 128.0)
        return blob, new_w / w


class _LetterboxBuffers(threading.local):
    """One thread's canvas (uint8 HWC) and blob (float32 NCHW) for the detector's input."""

    def __init__(self) -> None:
        self.shape: tuple[int, int] = (0, 0)
        self.canvas = np.zeros((0, 0, 3), np.uint8)
        self.blob = np.zeros((1, 3, 0, 0), np.float32)

    def get(self, in_h: int, in_w: int) -> tuple[np.ndarray, np.ndarray]:
        if self.shape != (in_h, in_w):
            self.shape = (in_h, in_w)
            self.canvas = np.zeros((in_h, in_w, 3), np.uint8)
            self.blob = np.empty((1, 3, in_h, in_w), np.float32)
        return self.canvas, self.blob


def split_scrfd_outputs(
    outputs: Sequence[np.ndarray],
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Group raw outputs into (scores, boxes, kps) lists ordered stride 8 first."""
    groups: dict[int, list[np.ndarray]] = {1: [], 4: [], 10: []}
    for out in outputs:
        arr = np.asarray(out)
        if arr.ndim == 3 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim != 2 or arr.shape[1] not in groups:
            raise ValueError(
                f"unexpected SCRFD output shape {np.shape(out)}; expected [N,1], [N,4] and [N,10] "
                f"(optionally with a batch dimension of 1)"
            )
        groups[arr.shape[1]].append(arr)
    if not (len(groups[1]) == len(groups[4]) == len(groups[10])):
        raise ValueError(
            "SCRFD outputs do not come in score/box/keypoint triples: "
            f"{len(groups[1])} score, {len(groups[4])} box, {len(groups[10])} keypoint arrays"
        )
    ordered = [sorted(groups[k], key=lambda a: -a.shape[0]) for k in (1, 4, 10)]
    return ordered[0], ordered[1], ordered[2]


class YunetDetector:
    """OpenCV's YuNet (face_detection_yunet_2023mar.onnx) via cv2.FaceDetectorYN.

    Frames larger than `input_size` on their longest side are downscaled first (YuNet's cost
    grows with the pixel count); results are scaled back to frame pixels. `input_size` 0 means
    `max_side`: frames up to that are detected at their own resolution. A 640 cap costs YuNet
    its keypoint accuracy on mid-size faces (NME 0.081 against 0.047 at full 720p).
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        input_size: int = 0,
        max_side: int = DEFAULT_MAX_SIDE,
        score: float = 0.6,
        nms: float = 0.3,
        max_faces: int = 16,
        min_face: float = 0,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"YuNet model {path} does not exist; download it with the model store")
        self.input_size = int(input_size) or int(max_side)
        if self.input_size < 32:
            raise ValueError(f"YuNet input size {self.input_size}: must be at least 32 (0: auto)")
        self.max_faces = int(max_faces)
        self.min_face = float(min_face)
        self._size: tuple[int, int] = (self.input_size, self.input_size)
        self._yunet = cv2.FaceDetectorYN.create(str(path), "", self._size, float(score), float(nms),
                                                5000)

    def detect(self, frame: np.ndarray) -> list[Face]:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 2 or frame.shape[1] < 2:
            raise ValueError(f"detector needs a BGR frame (H, W, 3), got shape {frame.shape}")
        h, w = frame.shape[:2]
        scale = min(1.0, self.input_size / max(h, w))
        image = frame if scale == 1.0 else cv2.resize(
            frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        size = (image.shape[1], image.shape[0])
        if size != self._size:
            self._yunet.setInputSize(size)
            self._size = size
        _, rows = self._yunet.detect(image)
        if rows is None or len(rows) == 0:
            return []
        rows = np.asarray(rows, np.float32)
        rows = rows[np.isfinite(rows).all(axis=1)]
        real_scale = size[0] / w
        boxes = np.concatenate([rows[:, 0:2], rows[:, 0:2] + rows[:, 2:4]], axis=1) / real_scale
        kps = rows[:, 4:14].reshape(-1, 5, 2) / real_scale
        dets = Detections(boxes, rows[:, 14], kps)
        wh = boxes[:, 2:] - boxes[:, :2]
        keep = np.flatnonzero(wh.min(axis=1) >= max(self.min_face, 1e-3))
        order = keep[np.argsort(-dets.scores[keep], kind="stable")][: self.max_faces]
        return to_faces(Detections(boxes[order], dets.scores[order], kps[order]))
