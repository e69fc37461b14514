"""Time the face engine's non-model steps at 1920x1080, per face, next to the naive way.

    .venv/bin/python scripts/bench_face_ops.py [--video PATH | --image PATH] [--frame N] [--repeats N]

Finds the faces of one real frame with SCRFD (det_500m), then times, per face: the alignment
crop (128x128 warped from the face region), the Reinhard colour transfer in crop space (its
target is the alignment crop, as the engine passes it on), the paste-back into the face's
region, and paste-back plus colour as the engine runs them, against a whole-frame paste done
the naive way (warp crop and mask to the full frame, blend the full frame in float). Prints
median and p95 in ms and the naive/ours ratio. The swapper itself is not timed; the stand-in
"swapped" crop is the aligned crop with its colours shifted, so the colour transfer has work.

It also checks what the crop-space colour transfer costs in picture: the same paste done in
float at full resolution, with the Reinhard statistics taken in the frame's ROI from the
warped crop and the frame under the warped mask, and prints the mean and largest absolute
difference (0..255) over the face (where the mask is above zero).

Face mask rows (mask modes face / face+mouth, livefusion/face/mask.py): the 106-point landmark
inference on the face box (counted apart: the model's cost; here the PFLD-106-lite stand-in in
2d106det's contract, not 2d106det itself), the landmarks carried between detections by the
track (a 5-point similarity), the mask built in crop space, and the paste-back with it: on a
tracked frame ("paste-back, face mask": the blender reuses the mask while the outline holds still
in the crop, FaceMaskCache) and on a detection frame ("..., mask rebuilt": fresh landmarks, so
mask + paste together).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livefusion.face.align import estimate_matrix, invert, warp_crop  # noqa: E402
from livefusion.face.blend import BlendOptions, FaceBlender, paste_roi  # noqa: E402
from livefusion.face.detect import ScrfdDetector  # noqa: E402
from livefusion.face.landmarks import Landmarker106  # noqa: E402
from livefusion.face.align import similarity_fit  # noqa: E402
from livefusion.face.mask import MaskMode, MaskOptions, crop_mask, to_crop  # noqa: E402
from livefusion.face.onnx_session import OrtSessionAdapter  # noqa: E402
from livefusion.media.imageio import read_bgr  # noqa: E402

SHARED = ROOT.parent / "shared"
SIZE = 128


def load_frame(args: argparse.Namespace) -> np.ndarray:
    if args.image:
        frame = read_bgr(args.image, max_side=None)
    else:
        capture = cv2.VideoCapture(str(args.video))
        capture.set(cv2.CAP_PROP_POS_FRAMES, args.frame)
        ok, frame = capture.read()
        capture.release()
        if not ok:
            raise SystemExit(f"cannot read frame {args.frame} of {args.video}; pass --video or --image")
    # fill 1920x1080: scale to cover, then centre-crop
    scale = max(1920 / frame.shape[1], 1080 / frame.shape[0])
    frame = cv2.resize(frame, (round(frame.shape[1] * scale), round(frame.shape[0] * scale)))
    y0, x0 = (frame.shape[0] - 1080) // 2, (frame.shape[1] - 1920) // 2
    return np.ascontiguousarray(frame[y0:y0 + 1080, x0:x0 + 1920])


def naive_paste(frame: np.ndarray, crop: np.ndarray, matrix: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The whole-frame way: inverse-warp crop and mask to frame size, blend every pixel."""
    height, width = frame.shape[:2]
    inverse = invert(matrix)
    warped = cv2.warpAffine(crop, inverse, (width, height), borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, inverse, (width, height))[:, :, None]
    out = alpha * warped.astype(np.float32) + (1.0 - alpha) * frame.astype(np.float32)
    return out.astype(np.uint8)


def float_lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)


def roi_space_reference(frame: np.ndarray, crop: np.ndarray, matrix: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The whole paste in float at frame resolution, colour transfer in ROI space: crop and mask
    warped to the frame, LAB statistics of warped crop and frame where the warped mask >= 0.5,
    Reinhard on the warped crop, then the float blend. The yardstick for the crop-space path."""
    height, width = frame.shape[:2]
    inverse = invert(matrix)
    warped = cv2.warpAffine(crop, inverse, (width, height), borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, inverse, (width, height))
    region = (alpha >= 0.5).astype(np.uint8)
    src_lab, dst_lab = float_lab(warped), float_lab(frame)
    src_mean, src_std = (v.reshape(3) for v in cv2.meanStdDev(src_lab, mask=region))
    dst_mean, dst_std = (v.reshape(3) for v in cv2.meanStdDev(dst_lab, mask=region))
    lab = (src_lab - src_mean) * (dst_std / np.maximum(src_std, 1e-3)) + dst_mean
    lab[:, :, 0] = np.clip(lab[:, :, 0], 0.0, 100.0)
    moved = np.clip(cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2BGR) * 255.0, 0, 255)
    out = alpha[:, :, None] * moved + (1.0 - alpha[:, :, None]) * frame.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), alpha


def stand_in_swap(crop: np.ndarray) -> np.ndarray:
    """The aligned crop with its colours shifted (another skin tone and light), as a swap gives."""
    shifted = crop.astype(np.float32) * np.float32([0.8, 0.95, 1.2]) + np.float32([5, 0, 20])
    return np.clip(shifted, 0, 255).astype(np.uint8)


def measure(fn: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """(wall median, wall p95, CPU-time median) in ms. CPU time shows the work itself when
    other processes compete for the cores; with one OpenCV thread it is the per-core cost."""
    for _ in range(3):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter_ns(), time.process_time_ns()
        fn()
        wall.append((time.perf_counter_ns() - start) / 1e6)
        cpu.append((time.process_time_ns() - start_cpu) / 1e6)
    return float(np.median(wall)), float(np.percentile(wall, 95)), float(np.median(cpu))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=SHARED / "assets/videos/rope_target-1080p.mp4")
    parser.add_argument("--image", type=Path, help="use this picture instead of a video frame")
    parser.add_argument("--frame", type=int, default=30, help="video frame index")
    parser.add_argument("--detector", type=Path, default=SHARED / "models/det_500m.onnx")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--pfld", type=Path, default=SHARED / "models/pfld106_lite.onnx",
                        help="PFLD-106-lite, wrapped into 2d106det's contract as the landmarker")
    parser.add_argument("--face-scales", default="1.0,0.5",
                        help="also time the picture shrunk by these factors inside the 1080p frame "
                             "(smaller faces, as with a webcam further away)")
    parser.add_argument("--threads", type=int, default=1,
                        help="OpenCV threads (1 = the one-core budget of the output thread)")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)

    import onnxruntime as ort

    full = load_frame(args)
    detector = ScrfdDetector(OrtSessionAdapter(ort.InferenceSession(str(args.detector),
                                                                     providers=["CPUExecutionProvider"])))
    import tempfile

    from livefusion.measure.standins import pfld106_as_2d106det

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory() as tmp:
        wrapped = pfld106_as_2d106det(args.pfld, Path(tmp) / "2d106det_pfld.onnx")
        landmarker = Landmarker106(ort.InferenceSession(str(wrapped), options,
                                                        providers=["CPUExecutionProvider"]))
    for factor in (float(v) for v in args.face_scales.split(",")):
        frame = shrink_into(full, factor)
        faces = detector.detect(frame)
        if not faces:
            raise SystemExit("no face in the chosen frame; pick another with --frame or --image")
        print(f"\npicture scale {factor:g}")
        bench_frame(frame, faces, args, landmarker)


def shrink_into(frame: np.ndarray, factor: float) -> np.ndarray:
    """The picture scaled by `factor` in the middle of a frame of the same size (reflected edges)."""
    if factor >= 1.0:
        return frame
    h, w = frame.shape[:2]
    small = cv2.resize(frame, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)
    top, left = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    return cv2.copyMakeBorder(small, top, h - small.shape[0] - top, left, w - small.shape[1] - left,
                              cv2.BORDER_REFLECT)


def bench_frame(frame: np.ndarray, faces: list, args: argparse.Namespace,
                landmarker: Landmarker106) -> None:
    blender = FaceBlender()
    rebuilt = FaceBlender(mask_tolerance=-1.0)  # every paste builds the face mask
    options = BlendOptions(color_transfer=False, mask=MaskOptions(mode=MaskMode.BOX))
    face_options = BlendOptions(color_transfer=False, mask=MaskOptions(mode=MaskMode.FACE))
    mouth_options = BlendOptions(color_transfer=False, mask=MaskOptions(mode=MaskMode.FACE_MOUTH))
    with_colour = BlendOptions(color_transfer=True)
    mask = blender.mask(SIZE, options.mask_erode, options.mask_blur)
    print(f"frame {frame.shape[1]}x{frame.shape[0]}, {len(faces)} face(s), crop {SIZE}, "
          f"{args.repeats} runs each, cv2 threads {cv2.getNumThreads()}")
    print(f"{'face':>4} {'box':>9} {'step':<28} {'median ms':>10} {'p95 ms':>8} {'cpu ms':>8} {'naive/ours':>10}")
    copy = measure(lambda: frame.copy(), args.repeats)
    for index, face in enumerate(faces):
        matrix = estimate_matrix(face.kps, "arcface_128", SIZE)
        aligned = warp_crop(frame, matrix, SIZE)  # the swapper's input: the colour target
        crop = stand_in_swap(aligned)
        target = frame.copy()
        rows = [
            ("alignment crop", lambda: warp_crop(frame, matrix, SIZE)),
            ("colour transfer (crop)", lambda: blender.color_transfer(frame, crop, matrix, with_colour, aligned)),
            ("paste-back (ROI)", lambda: blender.paste(target, crop, matrix, options)),
            ("paste-back + colour", lambda: blender.paste(target, crop, matrix, with_colour, target=aligned)),
        ]
        points = landmarker.detect(frame, face.bbox)
        moved_kps = face.kps + 1.5
        rows += [
            ("landmark inference (model)", lambda: landmarker.detect(frame, face.bbox)),
            ("landmarks carried by track", lambda: (lambda m: points @ m[:, :2].T + m[:, 2])(
                similarity_fit(face.kps, moved_kps))),
            ("face mask (crop space)", lambda: crop_mask(SIZE, face_options.mask, to_crop(points, matrix))),
            ("paste-back, face mask", lambda: blender.paste(target, crop, matrix, face_options,
                                                            landmarks=points)),
            ("paste-back, face+mouth mask", lambda: blender.paste(target, crop, matrix, mouth_options,
                                                                  landmarks=points)),
            ("paste-back, face, mask rebuilt", lambda: rebuilt.paste(target, crop, matrix, face_options,
                                                                     landmarks=points)),
        ]
        naive = measure(lambda: naive_paste(frame, crop, matrix, mask), args.repeats)
        box = f"{face.width:.0f}x{face.height:.0f}"
        roi = paste_roi(frame.shape, matrix, SIZE)
        print(f"{index:>4} {box:>9} paste region {roi.x1 - roi.x0}x{roi.y1 - roi.y0} px")
        for name, fn in rows:
            med, p95, cpu = measure(fn, args.repeats)
            ratio = f"{naive[0] / med:10.1f}" if name.startswith("paste") else f"{'':>10}"
            print(f"{index:>4} {box:>9} {name:<28} {med:10.3f} {p95:8.3f} {cpu:8.3f} {ratio}")
        print(f"{index:>4} {box:>9} {'naive whole-frame paste':<28} {naive[0]:10.3f} {naive[1]:8.3f} {naive[2]:8.3f}")
        ours = frame.copy()
        blender.paste(ours, crop, matrix, with_colour, target=aligned)
        reference, alpha = roi_space_reference(frame, crop, matrix, mask)
        face_px = alpha > 0
        diff = np.abs(ours.astype(np.int16) - reference.astype(np.int16))[face_px]
        print(f"{index:>4} {box:>9} vs float ROI-space colour transfer over {int(face_px.sum())} face px: "
              f"mean |diff| {diff.mean():.3f}, p99 {np.percentile(diff, 99):.0f}, max {diff.max()} (0..255)")
    print(f"{'':>4} {'':>9} {'frame copy (once per frame)':<28} {copy[0]:10.3f} {copy[1]:8.3f} {copy[2]:8.3f}")


if __name__ == "__main__":
    main()
