"""How often do viewers see the user's real face? An independent check of the app's output.

    python scripts/privacy_eval.py [--clip PATH[:FRAMES] ...] [--policy off --policy hide ...]
                                   [--no-generated] [--json FILE] [--save-exposed DIR]

Each clip runs through the real app path (`load_config` + `build_app`, the clip as
`input.file`, not paced, every frame processed) with a stand-in swapper that paints every
swapped face magenta (`livefusion.measure.standins.paint_inswapper`), the real SCRFD detector from
../shared/models and a source photo of a different person. An extra output (the judging sink,
`livefusion.measure.exposure.JudgingSink`) sees every frame viewers would get and judges it with its
own models (YuNet + MobileFaceNet, nothing the app decides with): a face of the input frame is
exposed when its identity is still recognisable in the output frame (cosine >= 0.6).

Printed per clip and privacy policy: frames, face-fr (frames where the judge finds a face it
can recognise in the input), dim-fr (frames with a face too dark, blurred or small for its
recogniser: found, not judged), exposed face-frames (count and share of face-fr), main (frames
where the largest recognisable face, on a webcam the user, is exposed), the share of frames the
guard hid / held / replaced by a start frame (from each packet's privacy verdict), the guard's
own cost (stage "privacy": median and p95 over its frames, nearest-rank), and the exposed frame
numbers (seq). Generated clips (`livefusion.measure.privacy_clips`: faces sliding in from each edge,
hard cuts between people, a turned face, empty frames between faces) also print how many of
their ground-truth face frames the judge found.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livefusion.app import build_app  # noqa: E402
from livefusion.config import load_config  # noqa: E402
from livefusion.measure.exposure import ExposureJudge, FrameRecord, JudgingSink  # noqa: E402
from livefusion.measure.privacy_clips import CLIP_NAMES, ClipTruth, make_clips  # noqa: E402
from livefusion.measure.standins import arcface_standin, paint_inswapper  # noqa: E402

SHARED = Path(os.environ.get("LIVEFUSION_SHARED", ROOT.parent / "shared"))
MODELS = SHARED / "models"
VIDEOS = SHARED / "assets" / "videos"
IMAGES = SHARED / "assets" / "images"
DEFAULT_CLIPS = (f"{VIDEOS / 'fr_short_hamilton_clip.mp4'}:240",
                 f"{VIDEOS / 'dfl_Ben_Stiller_Owen_Wilson.mp4'}:240",
                 f"{VIDEOS / 'dfl_Twitch1.mp4'}:240")
DEFAULT_POLICIES = ("off", "hide", "hold")
POLICIES = ("hide", "hold", "off")


@dataclass
class ClipSpec:
    path: Path
    frames: int  # 0 = the whole clip
    truth: ClipTruth | None = None

    @property
    def name(self) -> str:
        return self.truth.name if self.truth is not None else self.path.stem


@dataclass
class RunResult:
    clip: str
    policy: str
    records: list[FrameRecord]
    wall_s: float
    privacy_meters: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    truth: ClipTruth | None = None

    @property
    def frames(self) -> int:
        return len(self.records)

    @property
    def face_frames(self) -> int:
        """Frames with a face the judge can recognise (the ones that can be exposed)."""
        return sum(r.judged > 0 for r in self.records)

    @property
    def dim_frames(self) -> int:
        """Frames with a face too dark, blurred or small for the recogniser (not judged)."""
        return sum(r.faces > r.judged for r in self.records)

    @property
    def main_exposed(self) -> int:
        return sum(r.main_exposed for r in self.records)

    @property
    def exposed_seqs(self) -> list[int]:
        return [r.seq for r in self.records if r.exposed]

    def action_share(self, *actions: str) -> float | None:
        if not any(r.action for r in self.records):
            return None
        return sum(r.action in actions for r in self.records) / max(self.frames, 1)

    def guard_ms(self) -> list[float]:
        return [r.guard_ms for r in self.records if r.guard_ms is not None]

    def truth_found(self) -> tuple[int, int] | None:
        """(whole-face frames per the ground truth, of those where the judge found a face)."""
        if self.truth is None:
            return None
        whole = self.truth.whole_face()
        by_seq = {r.seq: r for r in self.records}
        wanted = [t for t in range(len(whole)) if whole[t] and t in by_seq]
        return len(wanted), sum(by_seq[t].faces > 0 for t in wanted)


def nearest_rank(values: Sequence[float], q: float) -> float:
    """The q-th percentile as an observed value (nearest rank), NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(q / 100.0 * len(ordered)) - 1)])


def ranges(seqs: Sequence[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    out: list[str] = []
    start = prev = None
    for s in seqs:
        if start is None:
            start = prev = s
        elif s == prev + 1:
            prev = s
        else:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = s
    if start is not None:
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ", ".join(out) or "none"


def clip_size(path: Path) -> tuple[int, int, int]:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise SystemExit(f"cannot open clip {path}")
        return (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        cap.release()


def build_standins(folder: Path) -> dict[str, str]:
    """The stand-in embedder (512-d, w600k_r50 contract) and the magenta swapper."""
    return {"embedder": str(arcface_standin(folder / "w600k_r50_standin.onnx")),
            "swapper": str(paint_inswapper(folder / "inswapper_128_paint.onnx"))}


def eval_config(clip: Path, frames: int, policy: str, *, source: Path, detector: Path,
                standins: dict[str, str]) -> Any:
    w, h, _ = clip_size(clip)
    pairs = [
        ("input.file", str(clip)), ("input.realtime", False), ("input.loop", False),
        ("input.resolution", f"{w}x{h}"),
        ("output.virtual_cam", False), ("output.preview", False), ("runtime.providers", ["cpu"]),
        ("pipeline.frames", int(frames)), ("face.color_transfer", False),
        ("face.sources", [str(source)]),
        ("models.overrides", {"detector": str(detector), **standins}),
    ]
    if policy != "off" or has_privacy_config():  # a tree from before the guard has no key
        pairs.append(("privacy.policy", policy))
    return load_config(overrides=pairs)


def has_privacy_config() -> bool:
    from dataclasses import fields

    from livefusion.config import AppConfig

    return any(f.name == "privacy" for f in fields(AppConfig))


def run_clip(spec: ClipSpec, policy: str, judge: ExposureJudge, *, source: Path, detector: Path,
             standins: dict[str, str], keep_exposed: int = 0
             ) -> tuple[RunResult, JudgingSink]:
    config = eval_config(spec.path, spec.frames, policy, source=source, detector=detector,
                         standins=standins)
    sink = JudgingSink(judge, keep_exposed=keep_exposed)
    start = time.perf_counter()
    app = build_app(config, extra_sinks=[sink])
    with app:
        while not app.pipeline.wait(0.5):
            pass
    app.pipeline.join(10.0)
    snap = app.meters.snapshot()
    result = RunResult(spec.name, policy, list(sink.records), time.perf_counter() - start,
                       dict(getattr(snap, "privacy_frames", {}) or {}), dict(snap.errors),
                       spec.truth)
    return result, sink


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:5.1f}%" if whole else "    -"


def _share(value: float | None) -> str:
    return "   n/a" if value is None else f"{100.0 * value:5.1f}%"


def _ms(values: list[float]) -> str:
    if not values:
        return "      n/a"
    return f"{nearest_rank(values, 50):4.2f}/{nearest_rank(values, 95):4.2f}"


def print_table(results: list[RunResult], out=sys.stdout) -> None:
    head = (f"{'clip':<28} {'policy':<6} {'frames':>6} {'face-fr':>7} {'dim-fr':>6} "
            f"{'exposed':>7} {'exp%':>6} {'main':>5} {'hidden':>6} {'held':>6} {'start':>6} "
            f"{'guard ms p50/p95':>17} {'truth found':>11} {'errors':>6}")
    print(head, file=out)
    print("-" * len(head), file=out)
    for r in results:
        exposed = len(r.exposed_seqs)
        found = r.truth_found()
        truth = "" if found is None else f"{found[1]}/{found[0]}"
        print(f"{r.clip:<28} {r.policy:<6} {r.frames:>6} {r.face_frames:>7} {r.dim_frames:>6} "
              f"{exposed:>7} {_pct(exposed, r.face_frames):>6} {r.main_exposed:>5} "
              f"{_share(r.action_share('hide')):>6} "
              f"{_share(r.action_share('hold')):>6} {_share(r.action_share('start')):>6} "
              f"{_ms(r.guard_ms()):>17} {truth:>11} {sum(r.errors.values()):>6}", file=out)


def as_json(results: list[RunResult], header: dict[str, Any]) -> dict[str, Any]:
    runs = []
    for r in results:
        guard = r.guard_ms()
        found = r.truth_found()
        runs.append({
            "clip": r.clip, "policy": r.policy, "frames": r.frames, "face_frames": r.face_frames,
            "dim_face_frames": r.dim_frames, "main_face_exposed_frames": r.main_exposed,
            "exposed_frames": len(r.exposed_seqs), "exposed_seqs": r.exposed_seqs,
            "hidden_share": r.action_share("hide"), "held_share": r.action_share("hold"),
            "start_share": r.action_share("start"),
            "guard_ms": {"n": len(guard), "p50": nearest_rank(guard, 50) if guard else None,
                         "p95": nearest_rank(guard, 95) if guard else None},
            "privacy_meters": r.privacy_meters, "errors": r.errors,
            "truth_whole_face_frames": None if found is None else found[0],
            "truth_found_by_judge": None if found is None else found[1],
            "wall_s": round(r.wall_s, 2),
            "frames_detail": [{"seq": f.seq, "faces": f.faces, "judged": f.judged,
                               "exposed": f.exposed,
                               "cosines": [round(c, 3) for c in f.judgement.cosines],
                               "at_input_place": [round(x.cosine, 3) for x in f.judgement.faces],
                               "boxes": [[round(v) for v in b] for b in f.judgement.boxes],
                               "scores": [round(x.score, 2) for x in f.judgement.faces],
                               "recognisable": [x.recognisable for x in f.judgement.faces],
                               "action": f.action, "reasons": list(f.reasons),
                               "errors": list(f.errors)} for f in r.records],
        })
    return {**header, "runs": runs}


def parse_clip(text: str, default_frames: int) -> ClipSpec:
    path, _, frames = text.rpartition(":") if text.rpartition(":")[2].isdigit() else (text, "", "")
    return ClipSpec(Path(path), int(frames) if frames else default_frames)


def save_evidence(folder: Path, result: RunResult, sink: JudgingSink) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for seq, original, frame in sink.exposed_frames:
        cv2.imwrite(str(folder / f"{result.clip}_{result.policy}_{seq:04d}.jpg"),
                    np.hstack([original, frame]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", action="append", help="video[:frames] (repeatable; default: "
                        "hamilton, Ben Stiller/Owen Wilson, Twitch1, 240 frames each)")
    parser.add_argument("--frames", type=int, default=240, help="frames per clip without :N")
    parser.add_argument("--policy", action="append", choices=POLICIES,
                        help="privacy.policy to run (repeatable; default off, hide, hold)")
    parser.add_argument("--no-generated", action="store_true", help="skip the generated clips")
    parser.add_argument("--generated", action="append", choices=CLIP_NAMES,
                        help="generated clip to run (repeatable; default all)")
    parser.add_argument("--gen-size", default="640x360", help="generated clips' WxH")
    parser.add_argument("--source", type=Path,
                        default=IMAGES / "insightface_Nathalie_Baye_0002.jpg",
                        help="source face photo (a person in none of the clips)")
    parser.add_argument("--detector", type=Path, default=MODELS / "det_2.5g.onnx",
                        help="the app's SCRFD detector")
    parser.add_argument("--yunet", type=Path, default=MODELS / "face_detection_yunet_2023mar.onnx")
    parser.add_argument("--recogniser", type=Path, default=MODELS / "pixamatch_mobilefacenet.onnx")
    parser.add_argument("--photos", type=Path, default=IMAGES, help="photos for generated clips")
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument("--json", type=Path, help="write every figure (and per frame) here")
    parser.add_argument("--save-exposed", type=Path,
                        help="write up to 5 exposed input|output frame pairs per run here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    for needed in (args.source, args.detector, args.yunet, args.recogniser):
        if not needed.is_file():
            raise SystemExit(f"{needed} is missing: the models and photos come from ../shared")
    policies = args.policy or list(DEFAULT_POLICIES)
    specs = [parse_clip(c, args.frames) for c in (args.clip or DEFAULT_CLIPS)]
    judge = ExposureJudge(args.yunet, args.recogniser, threshold=args.threshold, threads=1)
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="lf-privacy-eval-") as tmp:
        folder = Path(tmp)
        standins = build_standins(folder)
        if not args.no_generated:
            w, _, h = args.gen_size.partition("x")
            for truth in make_clips(args.photos, folder / "clips", args.yunet,
                                    names=args.generated or CLIP_NAMES, size=(int(w), int(h))):
                specs.append(ClipSpec(truth.path, 0, truth))
        header = {
            "machine": f"{platform.machine()} {platform.system()}, 2-core CPU, no GPU "
                       f"(onnxruntime CPU; figures are this machine's)",
            "judge": {"detector": args.yunet.name, "recogniser": args.recogniser.name,
                      "threshold": args.threshold},
            "app": {"detector": args.detector.name, "swapper": "paint_inswapper (magenta)",
                    "embedder": "arcface_standin", "source": args.source.name},
        }
        print(f"privacy eval: {header['machine']}")
        print(f"judge: YuNet + MobileFaceNet, exposed = cosine >= {args.threshold}; app: "
              f"{args.detector.name}, magenta stand-in swapper, source {args.source.name}")
        print("guard ms: the app's 'privacy' stage per frame, median/p95 (nearest rank), n/a "
              "where the app records no such stage")
        for spec in specs:
            for policy in policies:
                result, sink = run_clip(spec, policy, judge, source=args.source,
                                        detector=args.detector, standins=standins,
                                        keep_exposed=5 if args.save_exposed else 0)
                results.append(result)
                print(f"  ran {result.clip} policy={policy}: {result.frames} frames in "
                      f"{result.wall_s:.1f} s", file=sys.stderr, flush=True)
                if args.save_exposed:
                    save_evidence(args.save_exposed, result, sink)
    print()
    print_table(results)
    print()
    for r in results:
        if r.policy != "off" or len(policies) == 1:
            print(f"exposed seqs {r.clip} [{r.policy}]: {ranges(r.exposed_seqs)}")
    if args.json:
        args.json.write_text(json.dumps(as_json(results, header), indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
