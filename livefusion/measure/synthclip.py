"""A ground-truth clip for measuring face tracking: a real face photo moved over a background
along a known smooth path (translation, rotation, scale, pauses), with the true five keypoints
of every frame known by construction.

The true keypoints of the photo come from the detector run once on the still photo at high
resolution (averaged over a few exactly-known small warps of it, which cancels most of the
detector's own noise); every frame is then one `cv2.warpAffine` of the photo with a known
similarity, so the same similarity carries the keypoints exactly. Each frame gets fresh sensor
noise, so a detector sees a still head the way it sees a webcam: the same scene, never the same
pixels.

    python -m livefusion.measure.synthclip --photo face.jpg --resolution 1280x720 --out clip.mp4
writes the clip (and clip.npz with the keypoints) to look at; `livefusion.measure.tracking_eval`
builds its clips in memory with the same code.
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from livefusion.face.types import Detector

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PHOTO = ROOT.parent / "shared" / "assets" / "images" / "fr_obama.jpg"
DEFAULT_MODEL = ROOT.parent / "shared" / "models" / "det_500m.onnx"


@dataclass(frozen=True)
class Pose:
    """Where the face is: centre as a fraction of the frame, rotation (degrees, positive turns
    the picture clockwise on screen), and scale relative to the clip's base face size."""

    cx: float
    cy: float
    angle: float = 0.0
    scale: float = 1.0

    def blend(self, other: "Pose", w: float) -> "Pose":
        return Pose(*(a + (b - a) * w for a, b in
                      zip((self.cx, self.cy, self.angle, self.scale),
                          (other.cx, other.cy, other.angle, other.scale))))


@dataclass(frozen=True)
class Keyframe:
    at: float  # position in the clip, 0..1
    pose: Pose
    # how the segment that ends here is travelled: eased (cosine: starts and stops gently)
    # or linear (constant speed, an abrupt start and an abrupt stop)
    linear: bool = False


_A = Pose(0.42, 0.48, 0.0, 1.0)
_B = Pose(0.60, 0.48, 0.0, 1.0)
_C = Pose(0.60, 0.48, 15.0, 1.0)
_D = Pose(0.55, 0.42, 15.0, 1.2)
_E = Pose(0.40, 0.52, -8.0, 0.9)
# Pause, translate, pause, rotate, pause, scale (+ move), pause, everything at once, pause.
DEFAULT_PATH: tuple[Keyframe, ...] = (
    Keyframe(0.00, _A), Keyframe(0.10, _A), Keyframe(0.23, _B), Keyframe(0.30, _B),
    Keyframe(0.40, _C), Keyframe(0.47, _C), Keyframe(0.57, _D), Keyframe(0.64, _D),
    Keyframe(0.80, _E), Keyframe(1.00, _E),
)
# Still, slow, still, fast with an abrupt stop, still, fast back (turn + scale), abrupt stop,
# still: the stops right after fast motion are where a tracker snaps (a keyframe detection
# that disagrees with flow), the long stills are where it jitters.
_S0 = Pose(0.40, 0.50, 0.0, 1.0)
_S1 = Pose(0.52, 0.46, 4.0, 1.0)
_S2 = Pose(0.66, 0.52, -10.0, 1.1)
_S3 = Pose(0.45, 0.48, 8.0, 0.95)
SNAP_PATH: tuple[Keyframe, ...] = (
    Keyframe(0.00, _S0), Keyframe(0.12, _S0), Keyframe(0.34, _S1), Keyframe(0.44, _S1),
    Keyframe(0.52, _S2, linear=True), Keyframe(0.70, _S2), Keyframe(0.78, _S3, linear=True),
    Keyframe(1.00, _S3),
)
PATHS = {"default": DEFAULT_PATH, "snap": SNAP_PATH}


def pose_at(path: Sequence[Keyframe], u: float) -> Pose:
    """Pose at clip position u in [0, 1], eased (cosine) between keyframes."""
    if u <= path[0].at:
        return path[0].pose
    for a, b in zip(path, path[1:]):
        if u <= b.at:
            span = b.at - a.at
            local = 0.0 if span <= 0 else (u - a.at) / span
            if b.linear:
                return a.pose.blend(b.pose, local)
            return a.pose.blend(b.pose, (1.0 - math.cos(math.pi * local)) / 2.0)
    return path[-1].pose


@dataclass(frozen=True)
class FaceSource:
    """The face photo cut out for rendering: BGR crop, soft alpha (float32 0..1) and the
    true keypoints and detector box in crop pixels."""

    image: np.ndarray
    alpha: np.ndarray
    kps: np.ndarray  # (5, 2) float64
    box: np.ndarray  # (4,) float64

    @property
    def face_height(self) -> float:
        return float(self.box[3] - self.box[1])


def load_photo(path: Path | str) -> np.ndarray:
    """A BGR uint8 photo (alpha, if any, composited on mid grey)."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise FileNotFoundError(f"cannot read face photo {path}; pass --photo with a JPEG or PNG")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        alpha = image[:, :, 3:].astype(np.float32) / 255.0
        grey = np.full_like(image[:, :, :3], 128, dtype=np.float32)
        return (image[:, :, :3] * alpha + grey * (1 - alpha)).round().astype(np.uint8)
    return image


def input_size_for(image: np.ndarray, cap: int = 1280) -> int:
    """Detector input side (multiple of 32) that holds `image` without downscaling."""
    side = max(image.shape[:2])
    return int(min(cap, max(160, math.ceil(side / 32) * 32)))


def _augmentations(count: int, centre: np.ndarray, seed: int) -> list[np.ndarray]:
    """Small known similarities (scale 0.9-1.1, +-3 degrees, sub-pixel shifts) about centre."""
    rng = np.random.default_rng(seed)
    out = [np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])]
    for _ in range(count - 1):
        m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])),
                                    float(rng.uniform(-3, 3)), float(rng.uniform(0.9, 1.1)))
        m[:, 2] += rng.uniform(-0.5, 0.5, 2)
        out.append(m)
    return out


def photo_keypoints(image: np.ndarray, detector: Detector, *, augmentations: int = 9,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The largest face's keypoints and box in `image`, as the per-coordinate median over
    `augmentations` exactly-known small warps of it (each mapped back exactly)."""
    centre = np.array([image.shape[1], image.shape[0]], np.float64) / 2.0
    kps_all, box_all = [], []
    for m in _augmentations(augmentations, centre, seed):
        warped = cv2.warpAffine(image, m, (image.shape[1], image.shape[0]),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        faces = detector.detect(warped)
        if not faces:
            continue
        face = max(faces, key=lambda f: f.area)
        inv = cv2.invertAffineTransform(m)
        kps_all.append(np.asarray(face.kps, np.float64) @ inv[:, :2].T + inv[:, 2])
        corners = np.asarray(face.bbox, np.float64).reshape(2, 2) @ inv[:, :2].T + inv[:, 2]
        box_all.append(corners.reshape(4))
    if not kps_all:
        raise ValueError("the detector finds no face in the photo; pass a frontal face photo")
    return np.median(np.stack(kps_all), axis=0), np.median(np.stack(box_all), axis=0)


def prepare_face(photo: np.ndarray, detector_for: Callable[[int], Detector], *,
                 augmentations: int = 9) -> FaceSource:
    """Cut the largest face out of `photo` (head and some hair, soft oval edge) and find its
    true keypoints. `detector_for(input_size)` returns a detector with that input side."""
    faces = detector_for(input_size_for(photo)).detect(photo)
    if not faces:
        raise ValueError("the detector finds no face in the photo; pass a frontal face photo")
    box = np.asarray(max(faces, key=lambda f: f.area).bbox, np.float64)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half_w, half_h = 0.85 * (box[2] - box[0]), 0.8 * (box[3] - box[1])
    x0, y0 = max(0, int(cx - half_w)), max(0, int(cy - half_h))
    x1 = min(photo.shape[1], int(math.ceil(cx + half_w)))
    y1 = min(photo.shape[0], int(math.ceil(cy + half_h)))
    crop = np.ascontiguousarray(photo[y0:y1, x0:x1])
    kps, crop_box = photo_keypoints(crop, detector_for(input_size_for(crop)),
                                    augmentations=augmentations)
    return FaceSource(crop, oval_alpha(crop.shape[:2]), kps, crop_box)


def oval_alpha(shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    alpha = np.zeros((h, w), np.float32)
    cv2.ellipse(alpha, (w // 2, h // 2), (int(w * 0.44), int(h * 0.46)), 0, 0, 360, 1.0, -1)
    k = max(3, int(min(h, w) * 0.06) | 1)
    return cv2.GaussianBlur(alpha, (k, k), 0)


def make_background(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A room-like static background: smooth colour shading, a few flat shapes, fine texture."""
    w, h = size
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 200, (6, 10, 3)).astype(np.float32)
    bg = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(12):
        x, y = int(rng.uniform(0, w)), int(rng.uniform(0, h))
        rw, rh = int(rng.uniform(0.03, 0.2) * w), int(rng.uniform(0.03, 0.3) * h)
        colour = tuple(float(c) for c in rng.uniform(20, 230, 3))
        cv2.rectangle(bg, (x, y), (x + rw, y + rh), colour, -1)
    texture = cv2.GaussianBlur(rng.normal(0, 12, (h, w)).astype(np.float32), (0, 0), 1.5)
    bg += texture[:, :, None]
    return np.clip(bg, 0, 255).astype(np.uint8)


class SynthClip:
    """The ground-truth clip: frame(t) renders frame t, keypoints(t) is its truth.

    size: (width, height); face_height: the base detector-box height as a fraction of the frame
    height; noise: sensor noise standard deviation in grey levels.
    """

    def __init__(self, source: FaceSource, size: tuple[int, int], n_frames: int = 300, *,
                 path: Sequence[Keyframe] = DEFAULT_PATH, face_height: float = 0.3,
                 noise: float = 3.0, seed: int = 0) -> None:
        if n_frames < 3:
            raise ValueError(f"a clip needs at least 3 frames, got {n_frames}")
        self.source = source
        self.size = (int(size[0]), int(size[1]))
        self.n_frames = int(n_frames)
        self.path = tuple(path)
        self.seed = seed
        self.noise = float(noise)
        self.base_scale = face_height * self.size[1] / source.face_height
        self._background = make_background(self.size, seed)
        # Pre-blur the photo for the downscale (geometry unchanged), against aliasing.
        sigma = 0.5 * math.sqrt(max(1.0 / self.base_scale ** 2 - 1.0, 0.0))
        self._image = (cv2.GaussianBlur(source.image, (0, 0), sigma) if sigma > 0.05
                       else source.image)
        self._noise_pos, self._noise_neg = self._noise_bank() if noise > 0 else (None, None)
        self._poses = [pose_at(self.path, t / (self.n_frames - 1)) for t in range(self.n_frames)]

    def __len__(self) -> int:
        return self.n_frames

    def pose(self, t: int) -> Pose:
        return self._poses[t]

    def matrix(self, t: int) -> np.ndarray:
        """(2, 3) similarity from crop pixels to frame pixels at frame t."""
        pose = self._poses[t]
        w, h = self.size
        face_centre = (self.source.box[:2] + self.source.box[2:]) / 2.0
        m = cv2.getRotationMatrix2D((0.0, 0.0), -pose.angle, self.base_scale * pose.scale)
        m[:, 2] = np.array([pose.cx * w, pose.cy * h]) - m[:, :2] @ face_centre
        return m

    def keypoints(self, t: int) -> np.ndarray:
        """The true (5, 2) keypoints of frame t, in frame pixels."""
        m = self.matrix(t)
        return self.source.kps @ m[:, :2].T + m[:, 2]

    def box(self, t: int) -> np.ndarray:
        """The photo's detector box carried to frame t (centre mapped, sides scaled)."""
        m = self.matrix(t)
        scale = math.hypot(m[0, 0], m[1, 0])
        box = self.source.box
        centre = ((box[:2] + box[2:]) / 2.0) @ m[:, :2].T + m[:, 2]
        half = (box[2:] - box[:2]) * scale / 2.0
        return np.concatenate([centre - half, centre + half])

    def still(self) -> np.ndarray:
        """(n_frames,) bool: the pose of t equals that of t-1 and t+1 (a paused head)."""
        poses = self._poses
        out = np.zeros(self.n_frames, bool)
        for t in range(1, self.n_frames - 1):
            out[t] = poses[t - 1] == poses[t] == poses[t + 1]
        return out

    def frame(self, t: int) -> np.ndarray:
        """Render frame t (BGR uint8)."""
        if not 0 <= t < self.n_frames:
            raise IndexError(f"frame {t} outside the clip (0..{self.n_frames - 1})")
        frame = self._background.copy()
        m = self.matrix(t)
        ch, cw = self._image.shape[:2]
        corners = np.array([[0, 0], [cw, 0], [0, ch], [cw, ch]], np.float64) @ m[:, :2].T + m[:, 2]
        w, h = self.size
        x0, y0 = max(0, int(corners[:, 0].min()) - 1), max(0, int(corners[:, 1].min()) - 1)
        x1 = min(w, int(math.ceil(corners[:, 0].max())) + 2)
        y1 = min(h, int(math.ceil(corners[:, 1].max())) + 2)
        if x1 > x0 and y1 > y0:
            local = m.copy()
            local[:, 2] -= (x0, y0)
            size = (x1 - x0, y1 - y0)
            face = cv2.warpAffine(self._image, local, size, flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT)
            alpha = cv2.warpAffine(self.source.alpha, local, size, flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT)
            frame[y0:y1, x0:x1] = cv2.blendLinear(face, frame[y0:y1, x0:x1], alpha, 1.0 - alpha)
        if self._noise_pos is not None and self._noise_neg is not None:
            rng = np.random.default_rng((self.seed, t))
            dy, dx = (int(v) for v in rng.integers(0, 64, 2))
            frame = cv2.add(frame, self._noise_pos[dy:dy + h, dx:dx + w])
            frame = cv2.subtract(frame, self._noise_neg[dy:dy + h, dx:dx + w])
        return frame

    def _noise_bank(self) -> tuple[np.ndarray, np.ndarray]:
        """One noise field 64 px larger than the frame; each frame reads it at its own offset."""
        w, h = self.size
        rng = np.random.default_rng((self.seed, 2**31))
        field = np.rint(rng.normal(0.0, self.noise, (h + 64, w + 64, 3)))
        field = np.clip(field, -127, 127)
        return (np.clip(field, 0, None).astype(np.uint8),
                np.clip(-field, 0, None).astype(np.uint8))


def write_clip(clip: SynthClip, out: Path, fps: float = 30.0) -> Path:
    """Write the clip as a video (mp4v) and its true keypoints beside it (.npz)."""
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, clip.size)
    if not writer.isOpened():
        raise OSError(f"cannot open {out} for writing; pick a .mp4 or .avi path in a writable folder")
    try:
        for t in range(len(clip)):
            writer.write(clip.frame(t))
    finally:
        writer.release()
    npz = out.with_suffix(".npz")
    np.savez(npz, keypoints=np.stack([clip.keypoints(t) for t in range(len(clip))]),
             still=clip.still())
    return npz


def main(argv: Sequence[str] | None = None) -> int:
    from livefusion.config import parse_resolution
    from livefusion.measure.detectors import make_detector_factory

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="SCRFD ONNX file")
    parser.add_argument("--resolution", default="1280x720")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--noise", type=float, default=3.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    source = prepare_face(load_photo(args.photo), make_detector_factory(args.model))
    clip = SynthClip(source, parse_resolution(args.resolution), args.frames, noise=args.noise)
    npz = write_clip(clip, args.out)
    log.info("wrote %s and %s", args.out, npz)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
