"""Short generated clips for checking that viewers never see the user's real face by accident.

Each clip is made from real face photos (a folder the caller gives) pasted with a soft oval
edge over a room-like background (the pieces of `livefusion.measure.synthclip`), with fresh sensor
noise per frame, and written as an .mp4 (mp4v). The hard moments for a face swap are built in:

  slide_left/right/top/bottom  a face slides in from that frame edge and stops inside, next
                               to a face that is there all along
  cuts                         hard cuts between two different people at different places
  turned                       a turned (three-quarter) face, drifting, then its mirror image
  gap                          a face, empty frames (background only), then another face

Every clip comes with its ground truth: for each frame, the face boxes (the photo's face box
carried into the frame) and how much of each lies inside the frame, so a check can also
confirm that its own judge sees the faces there.

    python -m livefusion.measure.privacy_clips --photos ../shared/assets/images --yunet yunet.onnx --out DIR
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from livefusion.measure.synthclip import oval_alpha, load_photo, make_background

log = logging.getLogger(__name__)

DEFAULT_SIZE = (640, 360)
FPS = 30.0
CLIP_NAMES = ("slide_left", "slide_right", "slide_top", "slide_bottom", "cuts", "turned", "gap")
# Photos each clip uses, in the order of the people it shows (all in ../shared/assets/images).
DEFAULT_PHOTOS: dict[str, tuple[str, ...]] = {
    "slide_left": ("fr_biden.jpg", "dfl_celeba_000020.jpg"),
    "slide_right": ("dfl_celeba_000007.jpg", "insightface_Rob_Lowe_0001.jpg"),
    "slide_top": ("insightface_woman.png", "fr_lin-manuel-miranda.png"),
    "slide_bottom": ("dfl_celeba_000016.jpg", "insightface_yifei.jpg"),
    "cuts": ("dfl_celeba_000002.jpg", "dfl_Elon_Musk.png"),
    "turned": ("insightface_left_face.jpeg",),
    "gap": ("fr_alex-lacamoire.png", "dfl_celeba_000013.jpg"),
}
FULLY_VISIBLE = 0.99  # visible fraction from which a face counts as whole in the frame
FACE_VISIBLE = 0.5  # visible fraction from which a frame counts as showing a face


@dataclass(frozen=True)
class Cutout:
    """A face cut out of a photo: BGR crop, soft oval alpha and the face box in crop pixels."""

    image: np.ndarray
    alpha: np.ndarray
    box: tuple[float, float, float, float]

    @property
    def face_height(self) -> float:
        return self.box[3] - self.box[1]


@dataclass(frozen=True)
class Placement:
    """Where one face is in one frame: the cut-out index, the face box centre (frame px),
    the face box height (frame px) and whether the photo is mirrored."""

    person: int
    cx: float
    cy: float
    height: float
    mirror: bool = False


@dataclass
class ClipTruth:
    """A written clip and its ground truth.

    boxes[t]: the face boxes (x0, y0, x1, y1, frame pixels, may reach outside the frame) of
    frame t; visible[t]: for each box, the fraction of its area inside the frame; people[t]:
    which photo (index into `photos`) each face is.
    """

    name: str
    path: Path
    size: tuple[int, int]
    fps: float
    photos: tuple[str, ...]
    boxes: list[list[tuple[float, float, float, float]]] = field(default_factory=list)
    visible: list[list[float]] = field(default_factory=list)
    people: list[list[int]] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return len(self.boxes)

    def has_face(self, min_visible: float = FACE_VISIBLE) -> np.ndarray:
        """(n_frames,) bool: frames showing at least one face this much inside the frame."""
        return np.array([any(v >= min_visible for v in vis) for vis in self.visible], bool)

    def whole_face(self) -> np.ndarray:
        """(n_frames,) bool: frames with a face entirely inside the frame."""
        return self.has_face(FULLY_VISIBLE)

    def empty(self) -> np.ndarray:
        """(n_frames,) bool: frames with no face at all (not even part of one)."""
        return np.array([not any(v > 0 for v in vis) for vis in self.visible], bool)


FaceFinder = Callable[[np.ndarray], "tuple[float, float, float, float] | None"]


def yunet_face_finder(model_path: str | Path, score: float = 0.7) -> FaceFinder:
    """finder(photo) -> the largest face box (x0, y0, x1, y1) YuNet finds, or None."""
    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"YuNet model {path} does not exist; pass --yunet PATH.onnx")
    yunet = cv2.FaceDetectorYN.create(str(path), "", (320, 320), float(score), 0.3, 5000)

    def find(photo: np.ndarray) -> tuple[float, float, float, float] | None:
        h, w = photo.shape[:2]
        scale = min(1.0, 1280.0 / max(h, w))
        image = photo if scale == 1.0 else cv2.resize(
            photo, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        yunet.setInputSize((image.shape[1], image.shape[0]))
        _, rows = yunet.detect(image)
        if rows is None or len(rows) == 0:
            return None
        x, y, bw, bh = max(rows, key=lambda r: r[2] * r[3])[:4] / scale
        return float(x), float(y), float(x + bw), float(y + bh)

    return find


def cut_out(photo: np.ndarray, box: Sequence[float]) -> Cutout:
    """Head and some hair around the face box, with a soft oval edge (as synthclip does)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_w, half_h = 0.85 * (x1 - x0), 0.8 * (y1 - y0)
    left, top = max(0, int(cx - half_w)), max(0, int(cy - half_h))
    right = min(photo.shape[1], int(math.ceil(cx + half_w)))
    bottom = min(photo.shape[0], int(math.ceil(cy + half_h)))
    crop = np.ascontiguousarray(photo[top:bottom, left:right])
    return Cutout(crop, oval_alpha(crop.shape[:2]), (x0 - left, y0 - top, x1 - left, y1 - top))


class _Renderer:
    """Pastes cut-outs over one background; caches each (person, height, mirror) resize."""

    def __init__(self, cutouts: Sequence[Cutout], size: tuple[int, int], seed: int,
                 noise: float) -> None:
        self.cutouts = list(cutouts)
        self.size = size
        self.noise = float(noise)
        self.seed = seed
        self.background = make_background(size, seed)
        self._noise = self._noise_bank() if self.noise > 0 else None
        self._cache: dict[tuple[int, int, bool], tuple[np.ndarray, np.ndarray, float]] = {}

    def _scaled(self, person: int, height: float, mirror: bool
                ) -> tuple[np.ndarray, np.ndarray, float]:
        key = (person, int(round(height)), mirror)
        if key not in self._cache:
            cut = self.cutouts[person]
            scale = key[1] / cut.face_height
            w = max(2, int(round(cut.image.shape[1] * scale)))
            h = max(2, int(round(cut.image.shape[0] * scale)))
            image = cv2.resize(cut.image, (w, h), interpolation=cv2.INTER_AREA)
            alpha = cv2.resize(cut.alpha, (w, h), interpolation=cv2.INTER_AREA)
            if mirror:
                image, alpha = image[:, ::-1].copy(), alpha[:, ::-1].copy()
            self._cache[key] = (image, alpha, scale)
        return self._cache[key]

    def box(self, p: Placement) -> tuple[float, float, float, float]:
        cut = self.cutouts[p.person]
        half_h = p.height / 2
        half_w = (cut.box[2] - cut.box[0]) * p.height / cut.face_height / 2
        return p.cx - half_w, p.cy - half_h, p.cx + half_w, p.cy + half_h

    def render(self, t: int, placements: Sequence[Placement]) -> np.ndarray:
        frame = self.background.copy()
        fw, fh = self.size
        for p in placements:
            image, alpha, scale = self._scaled(p.person, p.height, p.mirror)
            cut = self.cutouts[p.person]
            bx = (cut.box[0] + cut.box[2]) / 2 * scale
            if p.mirror:
                bx = image.shape[1] - bx
            by = (cut.box[1] + cut.box[3]) / 2 * scale
            ox, oy = int(round(p.cx - bx)), int(round(p.cy - by))
            x0, y0 = max(0, ox), max(0, oy)
            x1, y1 = min(fw, ox + image.shape[1]), min(fh, oy + image.shape[0])
            if x1 <= x0 or y1 <= y0:
                continue
            src = image[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
            a = alpha[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
            frame[y0:y1, x0:x1] = cv2.blendLinear(src, frame[y0:y1, x0:x1], a,
                                                  np.ascontiguousarray(1.0 - a))
        if self._noise is not None:  # fresh sensor noise: one field read at a per-frame offset
            positive, negative = self._noise
            dy, dx = (int(v) for v in np.random.default_rng((self.seed, t)).integers(0, 64, 2))
            frame = cv2.add(frame, positive[dy:dy + fh, dx:dx + fw])
            frame = cv2.subtract(frame, negative[dy:dy + fh, dx:dx + fw])
        return frame

    def _noise_bank(self) -> tuple[np.ndarray, np.ndarray]:
        w, h = self.size
        rng = np.random.default_rng((self.seed, 2**31))
        field = np.clip(np.rint(rng.normal(0.0, self.noise, (h + 64, w + 64, 3))), -127, 127)
        return (np.clip(field, 0, None).astype(np.uint8),
                np.clip(-field, 0, None).astype(np.uint8))


def _visible(box: tuple[float, float, float, float], size: tuple[int, int]) -> float:
    x0, y0, x1, y1 = box
    area = max(x1 - x0, 0.0) * max(y1 - y0, 0.0)
    if area <= 0:
        return 0.0
    ix = max(0.0, min(x1, size[0]) - max(x0, 0.0))
    iy = max(0.0, min(y1, size[1]) - max(y0, 0.0))
    return float(ix * iy / area)


def _ease(u: float) -> float:
    return (1.0 - math.cos(math.pi * min(max(u, 0.0), 1.0))) / 2.0


# --- the clips' scripts: frame t -> placements ---------------------------------------------


Script = list[list[Placement]]


def _slide(edge: str, size: tuple[int, int], aspect: float, frames: int = 45) -> Script:
    """Person 1 sits still on one side throughout (so the app is already tracking a face and
    may detect only every few frames); person 0 is outside `edge` for the first 6-9 frames
    (staggered by edge, so the four clips meet a detection schedule at different phases),
    slides in over 10 frames (someone leaning into the picture) and stops inside."""
    w, h = size
    height = 0.4 * h
    half_w, half_h = aspect * height / 2, height / 2
    stop = {"left": (0.28 * w, 0.5 * h), "right": (0.72 * w, 0.5 * h),
            "top": (0.3 * w, 0.4 * h), "bottom": (0.3 * w, 0.6 * h)}[edge]
    start = {"left": (-1.8 * half_w, stop[1]), "right": (w + 1.8 * half_w, stop[1]),
             "top": (stop[0], -1.8 * half_h), "bottom": (stop[0], h + 1.8 * half_h)}[edge]
    seated = Placement(1, (0.3 if edge == "right" else 0.72) * w, 0.5 * h, 0.36 * h)
    enter = {"left": 6, "right": 7, "top": 8, "bottom": 9}[edge]
    script: Script = []
    for t in range(frames):
        if t < enter:
            script.append([seated])
            continue
        u = _ease((t - enter) / 10)
        cx, cy = start[0] + (stop[0] - start[0]) * u, start[1] + (stop[1] - start[1]) * u
        script.append([seated, Placement(0, cx, cy, height)])
    return script


def _cuts(size: tuple[int, int], frames: int = 80) -> Script:
    """Shots of 8-14 frames alternating between two people at different places and sizes."""
    w, h = size
    shots = [(0, 0.30, 0.50, 0.45), (1, 0.70, 0.45, 0.40), (0, 0.62, 0.55, 0.35),
             (1, 0.35, 0.48, 0.50), (0, 0.50, 0.50, 0.42), (1, 0.25, 0.55, 0.38),
             (0, 0.72, 0.50, 0.48), (1, 0.50, 0.45, 0.44)]
    lengths = [12, 8, 10, 14, 9, 11, 8]
    lengths.append(frames - sum(lengths))
    script: Script = []
    for (person, cx, cy, fh), n in zip(shots, lengths):
        for k in range(n):  # a little motion inside each shot
            script.append([Placement(person, (cx + 0.002 * k) * w, cy * h, fh * h)])
    return script


def _turned(size: tuple[int, int], frames: int = 60) -> Script:
    """A turned face drifting right, then (hard cut) its mirror image drifting left."""
    w, h = size
    half = frames // 2
    script: Script = []
    for t in range(frames):
        if t < half:
            u = t / max(half - 1, 1)
            script.append([Placement(0, (0.35 + 0.2 * u) * w, 0.5 * h, 0.5 * h)])
        else:
            u = (t - half) / max(frames - half - 1, 1)
            script.append([Placement(0, (0.65 - 0.2 * u) * w, 0.48 * h, 0.46 * h, mirror=True)])
    return script


def _gap(size: tuple[int, int], frames: int = 75) -> Script:
    """Person A for 24 frames, 28 empty frames, then person B at another place from frame 52
    (an arrival off any every-5th-frame detection schedule) to the end."""
    w, h = size
    script: Script = []
    for t in range(frames):
        if t < 24:
            script.append([Placement(0, (0.35 + 0.002 * t) * w, 0.5 * h, 0.45 * h)])
        elif t < 52:
            script.append([])
        else:
            script.append([Placement(1, 0.68 * w, 0.48 * h, 0.42 * h)])
    return script


def _script(name: str, size: tuple[int, int], cutouts: Sequence[Cutout]) -> Script:
    if name.startswith("slide_"):
        cut = cutouts[0]
        return _slide(name[len("slide_"):], size, (cut.box[2] - cut.box[0]) / cut.face_height)
    return {"cuts": _cuts, "turned": _turned, "gap": _gap}[name](size)


# --- writing -----------------------------------------------------------------------------


def make_clip(name: str, photos_dir: str | Path, out_dir: str | Path, finder: FaceFinder, *,
              size: tuple[int, int] = DEFAULT_SIZE, photos: Sequence[str] | None = None,
              noise: float = 2.0, seed: int = 0) -> ClipTruth:
    """Write clip `name` (one of CLIP_NAMES) to out_dir/name.mp4 and return its truth."""
    if name not in CLIP_NAMES:
        raise ValueError(f"unknown clip {name!r}; choose one of: {', '.join(CLIP_NAMES)}")
    photos = tuple(photos or DEFAULT_PHOTOS[name])
    cutouts = []
    for photo_name in photos:
        photo = load_photo(Path(photos_dir) / photo_name)
        box = finder(photo)
        if box is None:
            raise ValueError(f"no face found in {Path(photos_dir) / photo_name}; "
                             f"pass a photo with a visible face")
        cutouts.append(cut_out(photo, box))
    renderer = _Renderer(cutouts, size, seed, noise)
    script = _script(name, size, cutouts)
    out = Path(out_dir) / f"{name}.mp4"
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, size)
    if not writer.isOpened():
        raise OSError(f"cannot open {out} for writing; pass a writable folder")
    truth = ClipTruth(name, out, size, FPS, photos)
    try:
        for t, placements in enumerate(script):
            writer.write(renderer.render(t, placements))
            boxes = [renderer.box(p) for p in placements]
            truth.boxes.append(boxes)
            truth.visible.append([_visible(b, size) for b in boxes])
            truth.people.append([p.person for p in placements])
    finally:
        writer.release()
    return truth


def make_clips(photos_dir: str | Path, out_dir: str | Path, yunet_path: str | Path, *,
               names: Sequence[str] = CLIP_NAMES, size: tuple[int, int] = DEFAULT_SIZE,
               seed: int = 0) -> list[ClipTruth]:
    """Write the named clips into out_dir (created if needed); YuNet finds the photos' faces."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    finder = yunet_face_finder(yunet_path)
    return [make_clip(name, photos_dir, out, finder, size=size, seed=seed + i)
            for i, name in enumerate(names)]


def main(argv: Sequence[str] | None = None) -> int:
    from livefusion.config import parse_resolution

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, required=True, help="folder of face photos")
    parser.add_argument("--yunet", type=Path, required=True,
                        help="face_detection_yunet_2023mar.onnx (finds the photos' faces)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--resolution", default=f"{DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}")
    parser.add_argument("--clip", action="append", choices=CLIP_NAMES,
                        help="clip to write (repeatable; default all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for truth in make_clips(args.photos, args.out, args.yunet, names=args.clip or CLIP_NAMES,
                            size=parse_resolution(args.resolution)):
        log.info("wrote %s: %d frames, %d with a face", truth.path, truth.n_frames,
                 int(truth.has_face().sum()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
