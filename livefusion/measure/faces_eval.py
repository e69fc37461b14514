"""Measure the app's multi-face tracking from its own `--faces-out` file against a detector
run on every frame.

    python -m livefusion.measure.faces_eval --clip VIDEO --faces FACES.jsonl [--model DET.onnx]
    python -m livefusion.measure.faces_eval --clip VIDEO --run [--faces FACES.jsonl] [--model DET.onnx]

`--run` first runs the real app (`livefusion.cli`, headless, every frame of the file, the
swap on stand-in embedder/swapper models so no weights are needed, the privacy guard on)
with `--faces-out`, then measures that file. Counts, per clip:

  ref      face-frames the reference detector (the same model, on every frame, at the
           frame's own size, with the swap's limits: score >= --score, side >= --min-face)
           sees
  missed   face-frames the reference sees with no track on them (IoU < 0.3)
  ghost    track face-frames on no face the reference sees (a hand now covers it, the face
           went)
  losses   tracks that ended while the reference still sees their face on the next frame
           (IoU >= 0.3 with the track's last box)
  switches frames where a face the reference keeps seeing (matched to itself on the frame
           before) is not on the track id it had
  ids      distinct track ids the app used

Only the app's tracked faces are compared (track >= 0): faces the guard alone keeps (below
the swap's limits, track -1) are hidden, never swapped, so they are neither tracks nor
ghosts. `seq` in the faces file is the clip's frame index (a file source read losslessly).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, TextIO

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = ROOT.parent / "shared" / "models" / "det_2.5g.onnx"
DEFAULT_SOURCE = ROOT.parent / "shared" / "assets" / "images" / "insightface_Nathalie_Baye_0002.jpg"
MATCH_IOU = 0.3


@dataclass
class Counts:
    frames: int = 0
    ref: int = 0
    missed: int = 0
    ghost: int = 0
    losses: int = 0
    switches: int = 0
    ids: int = 0

    def row(self) -> str:
        return (f"frames {self.frames}  ref {self.ref}  missed {self.missed}  "
                f"ghost {self.ghost}  losses {self.losses}  switches {self.switches}  ids {self.ids}")


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of x0y0x1y1 boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    a, b = np.asarray(a, np.float64)[:, None], np.asarray(b, np.float64)[None]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def match(a: np.ndarray, b: np.ndarray, min_iou: float = MATCH_IOU) -> dict[int, int]:
    """Index in a -> index in b, one to one, by the largest total IoU (each pair >= min_iou)."""
    iou = iou_matrix(a, b)
    if iou.size == 0:
        return {}
    rows, cols = linear_sum_assignment(-iou)
    return {int(r): int(c) for r, c in zip(rows, cols) if iou[r, c] >= min_iou}


def read_faces(path: Path) -> dict[int, list[dict]]:
    """seq -> the frame's tracked faces (track >= 0) from a `--faces-out` file."""
    out: dict[int, list[dict]] = {}
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number} is not a JSON line ({exc.msg}); pass a "
                                 "file written by --faces-out") from None
            out[int(record["seq"])] = [f for f in record["faces"] if f["track"] >= 0]
    return out


def compare(reference: list[np.ndarray], tracked: dict[int, list[dict]]) -> Counts:
    """Counts (see the module doc) for reference boxes per frame against the app's faces."""
    counts = Counts(frames=len(reference))
    ids: set[int] = set()
    prev_ref = np.zeros((0, 4))
    prev_ids: dict[int, int] = {}  # reference index on the previous frame -> its track id
    for t, ref in enumerate(reference):
        faces = tracked.get(t, [])
        boxes = np.array([f["box"] for f in faces], np.float64).reshape(-1, 4)
        track_ids = [int(f["track"]) for f in faces]
        ids.update(track_ids)
        pairs = match(ref, boxes)
        counts.ref += len(ref)
        counts.missed += len(ref) - len(pairs)
        counts.ghost += len(faces) - len(pairs)
        now_ids = {r: track_ids[c] for r, c in pairs.items()}
        for before, now in match(prev_ref, ref).items():
            if before in prev_ids and now_ids.get(now) != prev_ids[before]:
                counts.switches += 1
        prev_ref, prev_ids = ref, now_ids
    counts.ids = len(ids)
    last: dict[int, tuple[int, list[float]]] = {}
    for t in sorted(tracked):
        for face in tracked[t]:
            last[int(face["track"])] = (t, face["box"])
    for t, box in last.values():
        if t + 1 < len(reference) and match(np.array([box]), reference[t + 1]):
            counts.losses += 1
    return counts


def reference_boxes(clip: Path, model: Path, *, score: float, min_face: float,
                    max_faces: int) -> list[np.ndarray]:
    """The reference detector's boxes on every frame of the clip."""
    from livefusion.config import RuntimeConfig
    from livefusion.face.detect import ScrfdDetector, YunetDetector
    from livefusion.models.runtime import create_session

    if "yunet" in model.name.lower():
        detector = YunetDetector(model, input_size=0, score=score, max_faces=max_faces,
                                 min_face=min_face)
    else:
        session = create_session(model, RuntimeConfig(providers=["cpu"], warmup=False),
                                 label="reference detector")
        detector = ScrfdDetector(session, input_size=0, score=score, max_faces=max_faces,
                                 min_face=min_face)
    capture = cv2.VideoCapture(str(clip))
    if not capture.isOpened():
        raise FileNotFoundError(f"cannot open clip {clip}; pass a readable video file")
    out = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            faces = detector.detect(frame)
            out.append(np.array([f.bbox for f in faces], np.float64).reshape(-1, 4))
    finally:
        capture.release()
    return out


def run_app(clip: Path, faces_out: Path, model: Path, source: Path,
            extra: Sequence[str] = ()) -> None:
    """The real app over every frame of the clip, headless, writing `faces_out`; the
    embedder and swapper are the stand-ins (their output does not move the tracking)."""
    from livefusion.cli import main as cli_main
    from livefusion.measure.standins import arcface_standin, paint_inswapper

    capture = cv2.VideoCapture(str(clip))
    size = f"{int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))}x{int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))}"
    capture.release()
    with tempfile.TemporaryDirectory() as tmp:
        code = cli_main([
            "--input", str(clip), "--resolution", size,  # the clip's own pixels
            "--no-preview", "--no-virtual-cam", "--no-realtime",
            "--provider", "cpu", "--source", str(source),
            "--model", f"detector={model}",
            "--model", f"embedder={arcface_standin(Path(tmp) / 'e.onnx')}",
            "--model", f"swapper={paint_inswapper(Path(tmp) / 's.onnx')}",
            "--faces-out", str(faces_out), *extra], out=sys.stderr)
    if code != 0:
        raise RuntimeError(f"the app exited with {code} on {clip}")


def cached_reference(args: argparse.Namespace, clip: Path) -> list[np.ndarray]:
    """The reference boxes of the clip, from `--ref-cache` when they were computed before."""
    cache = None
    if args.ref_cache is not None:
        key = f"{clip.stem}_{args.model.stem}_{args.score}_{args.min_face}_{args.max_faces}"
        cache = args.ref_cache / f"{key}.npz"
        if cache.is_file():
            with np.load(cache) as data:
                return [data[f"f{i}"] for i in range(len(data.files))]
    reference = reference_boxes(clip, args.model, score=args.score, min_face=args.min_face,
                                max_faces=args.max_faces)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **{f"f{i}": boxes for i, boxes in enumerate(reference)})
    return reference


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="python -m livefusion.measure.faces_eval",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, required=True, action="append")
    parser.add_argument("--faces", type=Path, action="append", default=[],
                        help="the app's --faces-out file for each --clip (with --run: "
                             "where to write it; default a temporary file)")
    parser.add_argument("--run", action="store_true", help="run the app first")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="detector ONNX")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="source face")
    parser.add_argument("--score", type=float, default=0.5, help="the swap's face.det_score")
    parser.add_argument("--min-face", type=float, default=32, help="the swap's face.min_face")
    parser.add_argument("--max-faces", type=int, default=4, help="the swap's face.max_faces")
    parser.add_argument("--ref-cache", type=Path,
                        help="folder to keep the reference detections in (reused when there)")
    parser.add_argument("--app-arg", action="append", default=[],
                        help="extra argument for the app run (repeatable), e.g. --app-arg=--set "
                             "--app-arg=face.detect_every=3")
    args = parser.parse_args(argv)
    if not args.run and len(args.faces) != len(args.clip):
        parser.error("give one --faces file per --clip, or --run to make them")
    if not args.model.is_file():
        parser.error(f"detector model {args.model} does not exist; pass --model PATH.onnx")
    with tempfile.TemporaryDirectory() as tmp:
        for i, clip in enumerate(args.clip):
            faces = args.faces[i] if i < len(args.faces) else Path(tmp) / f"faces{i}.jsonl"
            if args.run:
                run_app(clip, faces, args.model, args.source, args.app_arg)
            reference = cached_reference(args, clip)
            out.write(f"{clip.name}: {compare(reference, read_faces(faces)).row()}\n")
    out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
