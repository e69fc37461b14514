"""Command line: `python run_live.py [options]` (installed as `livefusion`).

Flags map onto config keys (`--set section.key=value` reaches any key); precedence is
defaults < configs/default.toml < --config files < --profile < remembered window settings <
flags (the window learns which keys the flags set from `flag_keys`). The window starts
unless --no-preview or --benchmark; headless runs print one status line per second.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Sequence, TextIO

from livefusion import __version__
from livefusion.errors import LiveFusionError
from livefusion.resources import command_name, layout
from livefusion.config import (
    PRIVACY_POLICIES,
    AppConfig,
    ConfigError,
    describe_keys,
    load_config,
    parse_override,
)

log = logging.getLogger(__name__)

DEFAULT_BENCHMARK_FRAMES = 300


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=command_name(),
        description="LiveFusion: real-time face swap from a webcam to a preview window and a "
                    "virtual camera (OBS, Zoom, Meet, Discord).",
    )
    src = p.add_argument_group("input")
    src.add_argument("--camera", help="camera index or device path (default 0)")
    src.add_argument("--input", metavar="VIDEO_OR_IMAGE",
                     help="use a video file or a still image instead of the camera")
    src.add_argument("--resolution", metavar="WxH", help="camera size requested (default 1280x720; the camera delivers what it "
                          "negotiates) / files fitted into, letterboxed (default: the file's "
                          "own size)")
    src.add_argument("--fps", type=float,
                     help="camera fps requested; pace of a still image (video files play at "
                          "their own rate)")
    src.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=None,
                     help="pace file input like a camera (default: yes; no for --benchmark)")
    src.add_argument("--loop", action=argparse.BooleanOptionalAction, default=None,
                     help="restart a video file at its end")
    src.add_argument("--list-cameras", action="store_true", help="list cameras and exit")

    face = p.add_argument_group("face")
    face.add_argument("--source", metavar="FACE_IMAGE", action="append",
                      help="photo of the face to put on (repeat to average several photos)")
    face.add_argument("--detect-every", type=int, metavar="N",
                      help="full face detection every N frames, tracking in between")
    face.add_argument("--swap-faces", choices=("all", "largest", "reference"))
    face.add_argument("--reference", metavar="IMAGE",
                      help="with --swap-faces reference: swap only the face that matches this photo")
    face.add_argument("--enhancer", choices=("none", "gfpgan_1.4", "gpen_bfr_256", "gpen_bfr_512"))
    face.add_argument("--color-transfer", action=argparse.BooleanOptionalAction, default=None)
    face.add_argument("--opacity", type=float, help="0..1, how much of the swapped face shows")
    face.add_argument("--detector", choices=("scrfd", "yunet"))
    face.add_argument("--mask", choices=("auto", "box", "face", "face+mouth"),
                      help="blend mask: face follows your face outline (106 landmarks), "
                           "face+mouth keeps your own mouth, box the crop square (default auto: "
                           "face when the landmarker is on disk)")
    face.add_argument("--mask-padding", type=float, metavar="F",
                      help="face masks: grow the outline by F of the face width (default 0.04)")
    face.add_argument("--mask-feather", type=float, metavar="F",
                      help="face masks: feather band of F of the face width (default 0.08)")
    face.add_argument("--mouth-padding", type=float, metavar="F",
                      help="face+mouth: grow the kept mouth by F of the face width (default 0.02)")

    out = p.add_argument_group("output")
    out.add_argument("--privacy", choices=PRIVACY_POLICIES,
                     help="where a face is not swapped well (turned, lost, model error, "
                          "start-up): hide it (default), hold the last good frame briefly, "
                          "or off (viewers see your real face)")
    out.add_argument("--no-preview", action="store_true", help="run without a window (headless)")
    out.add_argument("--virtual-cam", action=argparse.BooleanOptionalAction, default=None,
                     help="send the output to a virtual camera (default: on; off for --benchmark)")
    out.add_argument("--vcam-backend", help="pyvirtualcam backend (obs, unitycapture, v4l2loopback)")
    out.add_argument("--vcam-device", help="virtual camera device, e.g. /dev/video10")
    out.add_argument("--record", metavar="FILE", help="record the output to a video file")
    out.add_argument("--frames", type=int, metavar="N", help="stop after N output frames")
    out.add_argument("--faces-out", metavar="FILE",
                     help="write every output frame's faces (box, keypoints, track, swapped, "
                          "hidden) to FILE as JSON lines")

    out.add_argument("--label", metavar="TEXT",
                     help="draw a disclosure label (e.g. 'AI face swap') on what viewers see")
    out.add_argument("--label-position",
                     choices=("top-left", "top-right", "bottom-left", "bottom-right"))
    out.add_argument("--label-size", type=float, metavar="FRACTION",
                     help="label text height as a fraction of the frame height (default 0.04)")

    bench = p.add_argument_group("benchmark")
    bench.add_argument("--benchmark", action="store_true",
                       help="headless latency run over --input; prints a per-stage table")
    bench.add_argument("--json", metavar="FILE", help="write the benchmark results as JSON")

    models = p.add_argument_group("models")
    models.add_argument("--models-dir", help="where model weights live (default: models/)")
    models.add_argument("--model", action="append", metavar="ROLE=PATH",
                        help="use your own ONNX file for a role (detector, landmarker, embedder, "
                             "swapper, enhancer); repeatable")
    models.add_argument("--download-models", nargs="*", metavar="ID", default=None,
                        help="download the models the configuration needs (or the catalog ids "
                             "given, or 'all'), then exit")
    models.add_argument("--verify-models", action="store_true",
                        help="re-hash the models present and report, then exit")
    models.add_argument("--provider", action="append", metavar="NAME",
                        help="execution provider preference: auto, tensorrt, cuda, directml, "
                             "coreml, cpu (repeatable, in order)")

    cfg = p.add_argument_group("configuration")
    cfg.add_argument("--config", action="append", metavar="FILE", help="TOML config (repeatable)")
    cfg.add_argument("--profile", help="a profile from configs/ (e.g. cpu, quality, low-latency)")
    cfg.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", dest="overrides",
                     help="set any config key, e.g. --set face.det_score=0.6")
    cfg.add_argument("--help-config", action="store_true", help="list every config key and exit")
    cfg.add_argument("--log-level", default="INFO",
                     choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.add_argument("--version", action="version", version=f"LiveFusion {__version__}")
    return p


def _flag_overrides(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """Named flags as (section.key, value) pairs, applied after the config files."""
    pairs: list[tuple[str, Any]] = []

    def put(key: str, value: Any) -> None:
        if value is not None:
            pairs.append((key, value))

    put("input.camera", args.camera)
    put("input.file", args.input)
    put("input.resolution", args.resolution)
    put("input.fps", args.fps)
    put("input.loop", args.loop)
    realtime = args.realtime
    if realtime is None and args.benchmark:
        realtime = False
    put("input.realtime", realtime)
    put("face.sources", args.source)
    put("face.detect_every", args.detect_every)
    put("face.swap_faces", args.swap_faces)
    put("face.reference", args.reference)
    put("face.enhancer", args.enhancer)
    put("face.color_transfer", args.color_transfer)
    put("face.opacity", args.opacity)
    put("face.detector", args.detector)
    put("face.mask", args.mask)
    put("face.mask_padding", args.mask_padding)
    put("face.mask_feather", args.mask_feather)
    put("face.mouth_padding", args.mouth_padding)
    vcam = args.virtual_cam
    if vcam is None and args.benchmark:
        vcam = False
    put("privacy.policy", args.privacy)
    put("output.virtual_cam", vcam)
    put("output.virtual_cam_backend", args.vcam_backend)
    put("output.virtual_cam_device", args.vcam_device)
    put("output.record", args.record)
    put("output.faces_out", args.faces_out)
    put("label.text", args.label)
    put("label.position", args.label_position)
    put("label.size", args.label_size)
    if args.no_preview or args.benchmark:
        put("output.preview", False)
    frames = args.frames
    if frames is None and args.benchmark:
        frames = DEFAULT_BENCHMARK_FRAMES
    put("pipeline.frames", frames)
    put("benchmark.json", args.json)
    put("models.dir", args.models_dir)
    if args.model:
        overrides: dict[str, str] = {}
        for item in args.model:
            role, path = parse_override(item)
            overrides[role] = path
        put("models.overrides", overrides)
    if args.provider:
        put("runtime.providers", [p for item in args.provider for p in item.split(",") if p])
    return pairs


def config_files(args: argparse.Namespace) -> list[Path]:
    """configs/default.toml, then the --config files, then the --profile (later ones win)."""
    files = []
    config_dir = layout().configs
    default = config_dir / "default.toml"
    if default.is_file():
        files.append(default)
    files += [Path(f) for f in args.config or []]
    if args.profile:
        profile = Path(args.profile)
        if not profile.suffix:
            profile = config_dir / f"{args.profile}.toml"
        if not profile.is_file():
            known = sorted(p.stem for p in config_dir.glob("*.toml"))
            raise ConfigError(f"profile {args.profile!r} not found; profiles: {', '.join(known)}")
        files.append(profile)
    return files


def _command_line_pairs(args: argparse.Namespace) -> list[tuple[str, Any]]:
    return [parse_override(o) for o in args.overrides or []] + _flag_overrides(args)


def config_from_args(args: argparse.Namespace) -> AppConfig:
    return load_config(config_files(args), _command_line_pairs(args))


def flag_keys(args: argparse.Namespace) -> frozenset[str]:
    """The config keys the command line set (named flags and --set): these win over the
    settings the window remembered from the last run."""
    return frozenset(key for key, _ in _command_line_pairs(args))


def _print_config_keys(out: TextIO) -> None:
    for key, default, text in describe_keys():
        out.write(f"{key:34} {default!r:24} {text}\n")


def _list_cameras(config: AppConfig, out: TextIO) -> int:
    from livefusion.media.camera import list_cameras

    cameras = list_cameras(backend=config.input.camera_backend)
    if not cameras:
        out.write("No camera found. Check the cable, close other apps that use the camera, "
                  "or use --input VIDEO to run from a file.\n")
        return 1
    for cam in cameras:
        out.write(f"{cam.index}: {cam.width}x{cam.height} via {cam.backend}\n")
    return 0


class _StopFlag:
    """Set by SIGINT/SIGTERM so a headless run stops cleanly (recordings are finalised)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name = ""

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signal_name = signal.Signals(signum).name
        self.event.set()


def run_headless(config: AppConfig, out: TextIO, stop: _StopFlag | None = None) -> int:
    from livefusion.app import build_app

    stop = stop or _StopFlag()
    app = build_app(config)
    interval = config.pipeline.status_interval_s
    with app:
        out.write(f"LiveFusion headless: {app.pipeline.source.description} "  # type: ignore[attr-defined]
                  f"{app.frame_size[0]}x{app.frame_size[1]} @ {app.fps:.1f} fps; Ctrl-C stops\n")
        while not app.pipeline.wait(timeout=interval or 1.0):
            if stop.event.is_set():
                break
            if interval:
                out.write(app.meters.snapshot().status_line() + "\n")
                out.flush()
    if not app.pipeline.join(timeout=15.0):  # a recording still being finalised
        log.error("some outputs were still closing when LiveFusion exited")
    snap = app.meters.snapshot()
    reason = stop.signal_name or app.pipeline.end_reason or "stopped"
    out.write(f"stopped ({reason}): {snap.frames_out} frames out, {snap.dropped_total} dropped, "
              f"e2e p50 {snap.e2e.p50_ms:.1f} ms p95 {snap.e2e.p95_ms:.1f} ms\n")
    for name, message in app.pipeline.sink_failures.items():
        out.write(f"output {name} failed: {message}\n")
    return 0


def run_window(config: AppConfig, given: frozenset[str] = frozenset()) -> int:
    try:
        from livefusion_ui.main import run as run_ui
    except ImportError as exc:
        raise SystemExit(
            f"The preview window needs PySide6 ({exc}). Install it with `pip install PySide6`, "
            "or run headless with --no-preview."
        ) from exc
    from livefusion_ui.qt_platform import QtPlatformError

    try:
        return run_ui(config, given=given)
    except QtPlatformError as exc:
        log.error("%s", exc)
        return 2


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    if args.help_config:
        _print_config_keys(sys.stdout)
        return 0
    try:
        config = config_from_args(args)
        if args.list_cameras:
            return _list_cameras(config, out)
        if args.download_models is not None or args.verify_models:
            from livefusion.models.commands import download_models, verify_models

            code = 0
            if args.download_models is not None:
                code = download_models(config, args.download_models or None, out=out)
            return code or (verify_models(config, out=out) if args.verify_models else 0)
        if args.benchmark:
            from livefusion.measure.benchmark import run_benchmark

            return run_benchmark(config, out)
        if not config.output.preview:
            stop = _StopFlag()
            stop.install()
            return run_headless(config, out, stop)
        return run_window(config, flag_keys(args))
    except LiveFusionError as exc:
        out.write(f"error: {exc}\n")
        return 2
