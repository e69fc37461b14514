"""Measure how much of a face the blend mask replaces, and what else it paints.

    python scripts/mask_eval.py [--crops DIR] [--shared PATH] [--track-clip NAME ...]

The app runs as it does live (SCRFD det_2.5g, a 106-point landmarker in 2d106det's contract,
the swap, the paste) with a stand-in swapper: `paint_inswapper` (flat magenta, colour transfer
off) shows every pixel a swap replaced, `identity_inswapper` (returns its input) checks that
the paste loses little. The landmarker under test is PFLD-106-lite wrapped into 2d106det's
contract (`livefusion.measure.standins.pfld106_as_2d106det`).

The judge is independent of the app: YuNet finds the face, PFLD-GhostOne (98 points, WFLW
order: jaw 0-32, brows 33-50) draws its outline, and the blend weight is read back from the
pictures alone: w = (out - in) . (magenta - in) / |magenta - in|^2 per pixel.

Per portrait:
  cover   share of the face (convex hull of the judge's jaw line and brows) with weight >= 0.8
  paint   painted weight outside the face and forehead (the hull with the brows lifted by
          JUDGE_FOREHEAD of the chin-to-brow height, grown by 10 % of the face width), as a
          share of the face's area: hair, ears, neck, background
  psnr    identity round trip over the face (dB), face mask
  floor   the same round trip pasting the whole crop (box, no erode, no feather): the 128-pixel
          crop's own fidelity, which bounds any mask; psnr at the floor means the mask loses
          nothing (sharp faces much larger than the crop stay under 35 dB whatever the mask)
  exact   every pixel outside the paste region is bit-for-bit unchanged
`--track-clip`: on a shared clip tracked as live (detection every 5 frames, flow between), how
far the landmarks carried by the track drift from a fresh landmark run on the same frame (mean
distance of the outline points, per face width; the face mask's padding is 0.04).
Portraits: the shared images with exactly one face (YuNet) turned at most |yaw| 0.35, and
not an edge case named so by the assets README (partial face, pre-aligned crop, duplicate).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from livefusion.face.blend import paste_roi
from livefusion.face.detect import ScrfdDetector, YunetDetector
from livefusion.face.embed import Recognizer
from livefusion.face.engine import FaceEngine
from livefusion.face.landmarks import Landmarker106, LandmarkTracker
from livefusion.face.locate import EveryFrameLocator
from livefusion.face.mask import MASK_MODES
from livefusion.face.swap import InswapperSwapper, load_emap
from livefusion.media.imageio import read_bgr
from livefusion.packet import FramePacket
from livefusion.privacy import face_pose
from livefusion.settings import LiveSettings
from livefusion.measure.standins import arcface_standin, identity_inswapper, paint_inswapper, pfld106_as_2d106det

log = logging.getLogger(__name__)

DEFAULT_SHARED = Path(__file__).resolve().parents[2].parent / "shared"
MAGENTA_BGR = np.array([255.0, 0.0, 255.0])
COVER_WEIGHT = 0.8
GROW = 0.10  # paint region: the face and forehead outline grown by this fraction of the face width
JUDGE_FOREHEAD = 0.3  # judge's forehead above the brows, fraction of the chin-to-brow height
JUDGE_CROP = 1.2  # judge's square crop side / max(YuNet box w, h)
WFLW_JAW = np.arange(0, 33)
WFLW_BROWS = np.arange(33, 51)
WFLW_CHIN = 16
MAX_YAW = 0.35
EDGE_CASES = ("fr_32bit.png", "fr_obama_partial_face.jpg", "insightface_Tom_Hanks_54745.png")
SOURCE_FACE = "fr_obama2.jpg"


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class Outline:
    """The judge's view of one face, in frame pixels."""

    face: np.ndarray  # (K, 2) convex polygon: jaw line and brows
    painted_ok: np.ndarray  # (K, 2) face and forehead (not yet grown)
    width: float  # jaw line extent

    def area(self) -> float:
        return float(cv2.contourArea(self.face.astype(np.float32)))

    def face_region(self, shape: tuple[int, ...]) -> np.ndarray:
        region = np.zeros(shape[:2], np.uint8)
        cv2.fillConvexPoly(region, np.round(self.face).astype(np.int32), 1)
        return region.astype(bool)

    def allowed_region(self, shape: tuple[int, ...]) -> np.ndarray:
        region = np.zeros(shape[:2], np.uint8)
        cv2.fillConvexPoly(region, np.round(self.painted_ok).astype(np.int32), 1)
        grow = max(int(round(GROW * self.width)), 1)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        return cv2.dilate(region, kernel).astype(bool)


class Judge:
    """YuNet + PFLD-GhostOne 98: where the face is, drawn without the app's models."""

    def __init__(self, shared: Path) -> None:
        self.detector = YunetDetector(shared / "models" / "face_detection_yunet_2023mar.onnx", score=0.6)
        self.session = _session(shared / "models" / "pfld_ghostone_98pt_112.onnx")

    def faces(self, frame: np.ndarray) -> list:
        return self.detector.detect(frame)

    def points(self, frame: np.ndarray, bbox: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = (float(v) for v in bbox[:4])
        side = JUDGE_CROP * max(x2 - x1, y2 - y1)
        scale = 112.0 / side
        m = np.array([[scale, 0, 56 - scale * (x1 + x2) / 2], [0, scale, 56 - scale * (y1 + y2) / 2]])
        crop = cv2.warpAffine(frame, m, (112, 112), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        blob = cv2.dnn.blobFromImage(crop, 1.0 / 255.0, swapRB=True)
        out = self.session.run(None, {self.session.get_inputs()[0].name: blob})[0].reshape(-1, 2) * 112.0
        inverse = cv2.invertAffineTransform(m)
        return out @ inverse[:, :2].T + inverse[:, 2]

    def outline(self, frame: np.ndarray, bbox: np.ndarray) -> Outline:
        pts = self.points(frame, bbox)
        jaw, brows = pts[WFLW_JAW], pts[WFLW_BROWS]
        axis = brows.mean(axis=0) - pts[WFLW_CHIN]
        height = float(np.hypot(*axis))
        lifted = brows + axis / max(height, 1e-6) * (JUDGE_FOREHEAD * height)
        face = cv2.convexHull(np.vstack([jaw, brows]).astype(np.float32)).reshape(-1, 2)
        ok = cv2.convexHull(np.vstack([jaw, brows, lifted]).astype(np.float32)).reshape(-1, 2)
        width = float(np.hypot(*(jaw[-1] - jaw[0])))
        return Outline(face.astype(np.float64), ok.astype(np.float64), width)


def blend_weight(before: np.ndarray, after: np.ndarray, paint: np.ndarray = MAGENTA_BGR) -> np.ndarray:
    """Per-pixel weight w of `paint` in after = w * paint + (1 - w) * before (least squares over
    the channels), 0 where before is too close to the paint to tell."""
    b = before.astype(np.float64)
    d = paint - b
    norm = (d * d).sum(axis=2)
    w = ((after.astype(np.float64) - b) * d).sum(axis=2) / np.maximum(norm, 1.0)
    w[norm < 400.0] = 0.0
    return np.clip(w, 0.0, 1.0)


@dataclass
class ModeResult:
    cover: float
    paint: float


@dataclass
class PortraitResult:
    name: str
    face_width: float
    modes: dict[str, ModeResult] = field(default_factory=dict)
    psnr: float = 0.0
    floor: float = 0.0
    exact_outside: bool = False


def select_portraits(shared: Path, judge: Judge) -> list[Path]:
    chosen = []
    for path in sorted((shared / "assets" / "images").iterdir()):
        if path.name in EDGE_CASES or path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        faces = judge.faces(read_bgr(path, max_side=None))
        if len(faces) == 1 and abs(face_pose(faces[0].kps).yaw) <= MAX_YAW:
            chosen.append(path)
    return chosen


class AppUnderTest:
    """The app's engine with the stand-in swappers and the wrapped 106-point landmarker."""

    def __init__(self, shared: Path, workdir: Path) -> None:
        models = shared / "models"
        self.detector = ScrfdDetector(_session(models / "det_2.5g.onnx"))
        self.recognizer = Recognizer(_session(arcface_standin(workdir / "arcface.onnx")))
        landmarker_path = pfld106_as_2d106det(models / "pfld106_lite.onnx", workdir / "2d106det_pfld.onnx")
        self.landmarker = Landmarker106(_session(landmarker_path))
        paint = paint_inswapper(workdir / "paint.onnx")
        same = identity_inswapper(workdir / "identity.onnx")
        self.paint = InswapperSwapper(_session(paint), load_emap(paint))
        self.identity = InswapperSwapper(_session(same), load_emap(same))
        self.source = shared / "assets" / "images" / SOURCE_FACE

    def engine(self, swapper: InswapperSwapper, *, landmarks: bool = True) -> FaceEngine:
        engine = FaceEngine(EveryFrameLocator(self.detector), detector=self.detector,
                            recognizer=self.recognizer, swapper=swapper,
                            landmarks=LandmarkTracker(self.landmarker) if landmarks else None)
        engine.add_source(self.source)
        return engine

    @staticmethod
    def run(engine: FaceEngine, frame: np.ndarray, **settings) -> FramePacket:
        packet = FramePacket(seq=1, t_capture_ns=0, frame=frame,
                             settings=LiveSettings(color_transfer=False, **settings))
        engine.process(packet)
        engine.blend(packet)
        return packet


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def evaluate_portrait(app: AppUnderTest, judge: Judge, path: Path,
                      modes: Sequence[str] = MASK_MODES) -> tuple[PortraitResult, dict[str, np.ndarray]]:
    frame = read_bgr(path, max_side=None)
    bbox = judge.faces(frame)[0].bbox
    outline = judge.outline(frame, bbox)
    face_px = outline.face_region(frame.shape)
    allowed = outline.allowed_region(frame.shape)
    result = PortraitResult(path.name, outline.width)
    pictures = {"original": frame}
    paint_engine = app.engine(app.paint)
    for mode in modes:
        out = app.run(paint_engine, frame, mask_mode=mode).frame
        w = blend_weight(frame, out)
        result.modes[mode] = ModeResult(float((w[face_px] >= COVER_WEIGHT).mean()),
                                        float(w[~allowed].sum() / max(face_px.sum(), 1)))
        pictures[mode] = out
    identity = app.engine(app.identity)
    whole = app.run(identity, frame, mask_mode="box", mask_erode=0.0, mask_blur=0.0).frame
    result.floor = psnr(whole[face_px], frame[face_px])
    packet = app.run(identity, frame, mask_mode="face")
    result.psnr = psnr(packet.frame[face_px], frame[face_px])
    untouched = np.ones(frame.shape[:2], bool)
    for face in packet.faces:
        if face.swapped_crop is not None:
            roi = paste_roi(frame.shape, face.crop_matrix, face.swapped_crop.shape[0])
            untouched[roi.y0:roi.y1, roi.x0:roi.x1] = False
    result.exact_outside = bool(np.array_equal(packet.frame[untouched], frame[untouched]))
    pictures["outline"] = outline.face
    pictures["allowed"] = outline.painted_ok
    return result, pictures


def side_by_side(pictures: dict[str, np.ndarray], outline: np.ndarray, width: float,
                 modes: Sequence[str] = MASK_MODES, side: int = 256) -> np.ndarray:
    """Crops around the face: original (judge's outline in green), then each mode's paint."""
    centre = outline.mean(axis=0)
    half = 0.95 * width
    x0, y0 = int(centre[0] - half), int(centre[1] - 1.2 * half)
    panels = []
    for name in ("original", *modes):
        image = pictures[name].copy()
        if name == "original":
            cv2.polylines(image, [np.round(outline).astype(np.int32)], True, (0, 255, 0),
                          max(1, int(width / 150)))
        padded = cv2.copyMakeBorder(image, 2000, 2000, 2000, 2000, cv2.BORDER_CONSTANT)
        cut = padded[y0 + 2000:y0 + 2000 + int(2.2 * half), x0 + 2000:x0 + 2000 + int(2 * half)]
        panel = cv2.resize(cut, (side, int(side * 1.1)), interpolation=cv2.INTER_AREA)
        cv2.putText(panel, name, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1)
        panels.append(panel)
    return np.hstack(panels)


def evaluate(shared: Path, crops: Path | None = None) -> list[PortraitResult]:
    judge = Judge(shared)
    with tempfile.TemporaryDirectory() as tmp:
        app = AppUnderTest(shared, Path(tmp))
        results = []
        for path in select_portraits(shared, judge):
            result, pictures = evaluate_portrait(app, judge, path)
            results.append(result)
            if crops is not None:
                crops.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(crops / f"{path.stem}.png"),
                            side_by_side(pictures, pictures["outline"], result.face_width))
    return results


def format_table(results: Sequence[PortraitResult], modes: Sequence[str] = MASK_MODES) -> str:
    head = f"{'portrait':<34} {'face px':>7} " + " ".join(
        f"{'cover ' + m:>16} {'paint ' + m:>16}" for m in modes) + f" {'psnr dB':>8} {'floor':>6} {'exact':>5}"
    lines = [head]
    for r in results:
        lines.append(f"{r.name:<34} {r.face_width:7.0f} " + " ".join(
            f"{r.modes[m].cover:16.3f} {r.modes[m].paint:16.3f}" for m in modes)
            + f" {r.psnr:8.1f} {r.floor:6.1f} {str(r.exact_outside):>5}")
    lines.append(f"{'median':<34} {'':>7} " + " ".join(
        f"{statistics.median(r.modes[m].cover for r in results):16.3f} "
        f"{statistics.median(r.modes[m].paint for r in results):16.3f}" for m in modes)
        + f" {statistics.median(r.psnr for r in results):8.1f}")
    lines.append(f"{'worst':<34} {'':>7} " + " ".join(
        f"{min(r.modes[m].cover for r in results):16.3f} "
        f"{max(r.modes[m].paint for r in results):16.3f}" for m in modes)
        + f" {min(r.psnr for r in results):8.1f}")
    return "\n".join(lines)


def carried_drift(shared: Path, clip: str, frames: int = 150) -> list[float]:
    """Per tracked (not detected) frame: outline drift of carried landmarks / face width."""
    from livefusion.face.mask import BROWS, CONTOUR, face_width
    from livefusion.face.track import TrackingLocator

    models = shared / "models"
    detector = ScrfdDetector(_session(models / "det_2.5g.onnx"))
    with tempfile.TemporaryDirectory() as tmp:
        landmarker = Landmarker106(_session(pfld106_as_2d106det(models / "pfld106_lite.onnx",
                                                                Path(tmp) / "2d106det_pfld.onnx")))
    locator, tracker = TrackingLocator(detector), LandmarkTracker(landmarker)
    capture = cv2.VideoCapture(str(shared / "assets" / "videos" / clip))
    outline = np.r_[CONTOUR, BROWS]
    drift = []
    try:
        for index in range(frames):
            ok, frame = capture.read()
            if not ok:
                break
            packet = FramePacket(seq=index, t_capture_ns=index * 33_333_333, frame=frame,
                                 settings=LiveSettings(detect_every=5))
            for face in locator.locate(packet):
                carried = tracker.landmarks(frame, face)
                if face.origin != "detect":
                    fresh = landmarker.detect(frame, face.bbox)
                    drift.append(float(np.linalg.norm(carried[outline] - fresh[outline], axis=1).mean()
                                       / face_width(fresh)))
    finally:
        capture.release()
    return drift


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED,
                        help="folder with models/ and assets/images/ (default ../shared)")
    parser.add_argument("--crops", type=Path, help="write side-by-side crops (original, box, face, "
                        "face+mouth) per portrait to this folder")
    parser.add_argument("--track-clip", action="append", default=[], metavar="NAME",
                        help="also measure carried-landmark drift on this shared clip "
                             "(e.g. dfl_Obama_speaking.mp4)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    for clip in args.track_clip:
        drift = carried_drift(args.shared, clip)
        if drift:
            print(f"{clip}: landmarks carried by the track vs a fresh run, over {len(drift)} tracked "
                  f"frames: mean {np.mean(drift):.3f}, p95 {np.percentile(drift, 95):.3f}, "
                  f"max {max(drift):.3f} of the face width")
    results = evaluate(args.shared, args.crops)
    if not results:
        print(f"no portraits found under {args.shared / 'assets' / 'images'}", file=sys.stderr)
        return 1
    print(format_table(results))
    print(f"cover: weight >= {COVER_WEIGHT} over the judge's jaw-to-brows hull; paint: weight outside "
          f"that hull plus forehead ({JUDGE_FOREHEAD} of chin-brow height) grown by {GROW:.0%} of the "
          "face width, / face area; psnr: identity swap, face mode, over the face")
    return 0
