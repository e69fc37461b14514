"""An independent judge of what viewers see: does the user's real face show in an output frame?

It looks at the pictures the way a viewer's tool would, with models of its own that the app
does not use for its decisions: OpenCV's YuNet (`cv2.FaceDetectorYN`) finds the faces and their
five landmarks in the INPUT frame (at full resolution, up to a cap on the longest side), and a
real face recogniser (MobileFaceNet, 128-d, 112x112 ArcFace-aligned RGB, (x - 127.5) / 127.5,
on an onnxruntime CPU session) tells whether the OUTPUT frame still carries that identity:

- the 112x112 crop is cut from the input frame and from the output frame with the same
  similarity transform (the input face's landmarks onto the ArcFace template), both are
  embedded, and their cosine similarity is taken;
- with `search_output`, YuNet also runs on the output frame and each face found there is
  compared with each input face (catches a real face that went out at another place, e.g. a
  repeated older frame);
- an input face is exposed when the best cosine reaches `threshold` (MobileFaceNet gives about
  0.72 for two photos of one person and about 0 for different people; the same picture gives
  1.0, and a face pixelated to 6 blocks or painted over gives about 0);
- but only a face the recogniser can tell apart from a 6x6-block pixelation of itself is
  judged at all (`recognisable`): on dark, blurred or tiny faces the recogniser gives high
  similarity to any dim blob (a dark audience face scores 0.8-0.9 against its own pixelation,
  a lit face under 0.4), so "the output still shows it" would mean nothing there; and the
  output must resemble the face by `margin` more than that pixelation does (a profile face,
  which MobileFaceNet embeds poorly, can score 0.6 against a dark background).

Nothing here reads the app's detections, landmarks, tracks or verdicts (it runs YuNet through
the same OpenCV wrapper the app offers as an alternative to its default SCRFD, on frames of its
own), so the judgement stays independent of the guard it checks. One judge is not thread-safe (YuNet keeps its
input size); give each thread its own.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from livefusion.face.align import AlignmentError, estimate_matrix, warp_crop
from livefusion.face.detect import YunetDetector

log = logging.getLogger(__name__)

ARCFACE_TEMPLATE = "arcface_112_v2"
DEFAULT_THRESHOLD = 0.6
DEFAULT_DET_SCORE = 0.7
DEFAULT_MAX_SIDE = 1920
CONTROL_BLOCKS = 6  # a face the recogniser cannot tell from this pixelation is not judged
DEFAULT_MARGIN = 0.2


@dataclass(frozen=True)
class JudgedFace:
    """One face of the input frame and what the output frame shows of it.

    box: x0, y0, x1, y1 in input-frame pixels; score: YuNet's score; landmarks: 5 (x, y)
    points, image-left eye first; cosine: identity similarity of the output crop taken at the
    input face's landmarks; matched_cosine: the best similarity to a face YuNet finds in the
    output frame (-1 when none is found or not searched); control_cosine: the similarity of the
    input crop to its own 6x6-block pixelation; recognisable: control_cosine < threshold (the
    recogniser can tell this face from a blob); exposed: recognisable, and the best of cosine
    and matched_cosine is at least `threshold` and at least control_cosine + `margin`.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]
    cosine: float
    matched_cosine: float
    exposed: bool
    control_cosine: float = -1.0
    recognisable: bool = True

    @property
    def eye_distance(self) -> float:
        (lx, ly), (rx, ry) = self.landmarks[0], self.landmarks[1]
        return math.hypot(rx - lx, ry - ly)

    @property
    def best_cosine(self) -> float:
        return max(self.cosine, self.matched_cosine)


@dataclass(frozen=True)
class FrameJudgement:
    """The judge's verdict on one (input, output) frame pair."""

    faces: tuple[JudgedFace, ...] = ()

    @property
    def face_count(self) -> int:
        """Faces YuNet found in the input frame."""
        return len(self.faces)

    @property
    def judged_count(self) -> int:
        """Of those, the faces the recogniser can recognise (the ones that can be exposed)."""
        return sum(f.recognisable for f in self.faces)

    @property
    def exposed(self) -> bool:
        """True when any input face's identity is visible in the output frame."""
        return any(f.exposed for f in self.faces)

    @property
    def exposed_count(self) -> int:
        return sum(f.exposed for f in self.faces)

    @property
    def cosines(self) -> tuple[float, ...]:
        """Per input face, the best identity similarity found in the output."""
        return tuple(f.best_cosine for f in self.faces)

    @property
    def boxes(self) -> tuple[tuple[float, float, float, float], ...]:
        return tuple(f.box for f in self.faces)


@dataclass(frozen=True)
class _Detection:
    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray  # (5, 2) float64


class ExposureJudge:
    """judge(input_frame, output_frame) -> FrameJudgement. Frames are BGR uint8 (H, W, 3).

    yunet_path: face_detection_yunet_2023mar.onnx; recogniser_path: MobileFaceNet
    (pixamatch_mobilefacenet.onnx) or any 112x112 ArcFace-aligned recogniser with the same
    normalisation; det_score: YuNet score threshold for a face to be judged; max_side: frames
    larger than this on their longest side are downscaled for detection only (the crops are
    always cut from the full-resolution frames); search_output: also match faces detected in
    the output frame; margin: how much more than the face's own pixelation the output must
    resemble it; threads: onnxruntime intra-op threads (0 = its default).
    """

    def __init__(self, yunet_path: str | Path, recogniser_path: str | Path, *,
                 threshold: float = DEFAULT_THRESHOLD, det_score: float = DEFAULT_DET_SCORE,
                 nms: float = 0.3, max_side: int = DEFAULT_MAX_SIDE, search_output: bool = True,
                 margin: float = DEFAULT_MARGIN, threads: int = 0) -> None:
        yunet_path, recogniser_path = Path(yunet_path), Path(recogniser_path)
        for label, path in (("YuNet detector", yunet_path), ("recogniser", recogniser_path)):
            if not path.is_file():
                raise FileNotFoundError(f"{label} model {path} does not exist; pass the path of "
                                        f"the ONNX file")
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {threshold}")
        self.threshold = float(threshold)
        self.margin = float(margin)
        self.det_score = float(det_score)
        self.max_side = int(max_side)
        self.search_output = bool(search_output)
        # YuNet through the app's own OpenCV wrapper (a model the app's default SCRFD path does
        # not use); frames above max_side are downscaled for detection only.
        self._yunet = YunetDetector(yunet_path, input_size=self.max_side, score=self.det_score,
                                    nms=nms, max_faces=5000)
        self._session = self._make_session(recogniser_path, threads)
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        shape = list(inp.shape)
        if len(shape) != 4:
            raise ValueError(f"the recogniser takes one NCHW image; {recogniser_path} has input {shape}")
        self.crop_size = shape[2] if isinstance(shape[2], int) else 112

    @staticmethod
    def _make_session(path: Path, threads: int) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = int(threads)
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    # --- pieces ------------------------------------------------------------------------------

    def detect(self, frame: np.ndarray) -> list[_Detection]:
        """YuNet's faces in `frame` (full-frame pixels), best score first."""
        _check_frame(frame, "frame")
        return [_Detection(tuple(float(v) for v in face.bbox), float(face.score),
                           np.asarray(face.kps, np.float64).reshape(5, 2))
                for face in self._yunet.detect(frame)]

    def embed(self, frame: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """Unit-length identity vector of the crop of `frame` under `matrix`."""
        return self.embed_crop(warp_crop(frame, matrix, self.crop_size))

    def embed_crop(self, crop: np.ndarray) -> np.ndarray:
        """Unit-length identity vector of an aligned crop (crop_size, crop_size, 3) BGR."""
        rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32)
        blob = ((rgb - 127.5) / 127.5).transpose(2, 0, 1)[None]
        vector = np.asarray(self._session.run(None, {self._input_name: blob})[0],
                            np.float64).reshape(-1)
        norm = float(np.linalg.norm(vector))
        return vector / norm if np.isfinite(norm) and norm > 1e-12 else np.zeros_like(vector)

    def matrix(self, landmarks: np.ndarray) -> np.ndarray:
        return estimate_matrix(landmarks, ARCFACE_TEMPLATE, self.crop_size)

    # --- the judgement ---------------------------------------------------------------------

    def judge(self, input_frame: np.ndarray, output_frame: np.ndarray) -> FrameJudgement:
        """Which of the input frame's faces can a viewer of the output frame recognise?"""
        _check_frame(input_frame, "input frame")
        _check_frame(output_frame, "output frame")
        if output_frame.shape != input_frame.shape:  # a sink may scale: compare like for like
            output_frame = cv2.resize(output_frame, (input_frame.shape[1], input_frame.shape[0]),
                                      interpolation=cv2.INTER_LINEAR)
        found = self.detect(input_frame)
        if not found:
            return FrameJudgement()
        shown: list[np.ndarray] | None = None
        faces = []
        for det in found:
            try:
                m = self.matrix(det.landmarks)
            except AlignmentError as exc:
                log.debug("face at %s not judged: %s", det.box, exc)
                continue
            crop = warp_crop(input_frame, m, self.crop_size)
            reference = self.embed_crop(crop)
            control = float(reference @ self.embed_crop(pixelate(crop, CONTROL_BLOCKS)))
            recognisable = control < self.threshold
            needed = max(self.threshold, control + self.margin)
            cosine = float(reference @ self.embed(output_frame, m))
            matched = -1.0
            if recognisable and self.search_output and cosine < needed:
                if shown is None:
                    shown = self._output_identities(output_frame)
                if shown:
                    matched = float(max(reference @ v for v in shown))
            exposed = recognisable and max(cosine, matched) >= needed
            faces.append(JudgedFace(det.box, det.score,
                                    tuple((float(x), float(y)) for x, y in det.landmarks),
                                    cosine, matched, exposed, control, recognisable))
        return FrameJudgement(tuple(faces))

    def _output_identities(self, output_frame: np.ndarray) -> list[np.ndarray]:
        vectors = []
        for det in self.detect(output_frame):
            try:
                vectors.append(self.embed(output_frame, self.matrix(det.landmarks)))
            except AlignmentError:
                continue
        return vectors


@dataclass(frozen=True)
class FrameRecord:
    """What the judging sink noted about one output frame.

    action / reasons: the app's privacy verdict for the frame ("" / () when the packet has
    none); guard_ms: the app's "privacy" stage time (None when it has none); errors: the stages
    the app reported failing on the frame."""

    seq: int
    judgement: FrameJudgement
    action: str = ""
    reasons: tuple[str, ...] = ()
    guard_ms: float | None = None
    errors: tuple[str, ...] = ()

    @property
    def faces(self) -> int:
        """Faces the judge found in the input frame."""
        return self.judgement.face_count

    @property
    def judged(self) -> int:
        """Of those, the faces it could recognise (the ones that count)."""
        return self.judgement.judged_count

    @property
    def main_exposed(self) -> bool:
        """The largest recognisable input face (on a webcam: the user) is exposed."""
        faces = [f for f in self.judgement.faces if f.recognisable]
        if not faces:
            return False
        return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1])).exposed

    @property
    def exposed(self) -> bool:
        return self.judgement.exposed


class JudgingSink:
    """A pipeline output that judges every frame viewers would get (`packet.original` is the
    captured input, `frame` what the sinks are sent), keeping one FrameRecord per frame and the
    first `keep_exposed` exposed (seq, input, output) frame pairs as evidence.

    It runs on the pipeline's output thread like any sink; judging takes tens of ms per frame
    on a CPU, so use it on offline (lossless) runs, where it slows the run but changes nothing
    the app decides."""

    def __init__(self, judge: ExposureJudge, *, name: str = "judge", keep_exposed: int = 0) -> None:
        self.name = name
        self.judge = judge
        self.keep_exposed = int(keep_exposed)
        self.records: list[FrameRecord] = []
        self.exposed_frames: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.closed = False

    def send(self, frame: np.ndarray, packet: Any) -> None:
        original = packet.original if packet.original is not None else frame
        judgement = self.judge.judge(original, frame)
        verdict = getattr(packet, "privacy", None)
        action = "" if verdict is None else str(getattr(verdict.action, "value", verdict.action))
        reasons = () if verdict is None else tuple(
            str(getattr(r, "value", r)) for r in verdict.reasons)
        self.records.append(FrameRecord(
            packet.seq, judgement, action, reasons, packet.timings_ms.get("privacy"),
            tuple(sorted(packet.errors))))
        if judgement.exposed and len(self.exposed_frames) < self.keep_exposed:
            self.exposed_frames.append((packet.seq, original.copy(), frame.copy()))

    def close(self) -> None:
        self.closed = True


def pixelate(image: np.ndarray, blocks: int) -> np.ndarray:
    """`image` as blocks x blocks flat cells (area mean), at its own size."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (blocks, blocks), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def _check_frame(frame: np.ndarray, what: str) -> None:
    if (not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3
            or frame.shape[2] != 3 or min(frame.shape[:2]) < 2):
        raise ValueError(f"the {what} must be a BGR uint8 image (H, W, 3), got "
                         f"{getattr(frame, 'dtype', type(frame))} {getattr(frame, 'shape', '')}")
