"""Headless `--benchmark`: run the real pipeline over a file and report per-stage latency.

Input is read as fast as possible by default (hand-offs apply back-pressure so every frame
is processed and throughput is the slowest stage's); `--realtime` paces it like a camera and
uses the live latest-wins hand-offs instead. The first frames warm caches and are left out.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np

from livefusion.config import AppConfig, ConfigError
from livefusion.meters import MetersSnapshot

WARMUP_FRAMES = 10


def machine_info(providers_used: list[str] | None = None) -> dict[str, Any]:
    import onnxruntime as ort

    cpu = platform.processor() or ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "onnxruntime": ort.__version__,
        "providers_available": ort.get_available_providers(),
        "providers_used": providers_used or [],
        "opencv": cv2.__version__,
        "numpy": np.__version__,
    }


def results_dict(snap: MetersSnapshot, config: AppConfig, engine: str,
                 providers_used: list[str] | None = None) -> dict[str, Any]:
    return {
        "frames": snap.frames_out,
        "fps": round(snap.fps_out if snap.elapsed_s <= 0 else snap.frames_out / snap.elapsed_s, 3),
        "dropped": snap.dropped_total,
        "errors": snap.errors,
        "e2e_ms": {"p50": round(snap.e2e.p50_ms, 3), "p95": round(snap.e2e.p95_ms, 3),
                   "p99": round(snap.e2e.p99_ms, 3), "mean": round(snap.e2e.mean_ms, 3)},
        "stages": {name: stats.as_dict() for name, stats in snap.stages.items()},
        "privacy": privacy_dict(snap, config),
        "engine": engine,
        "machine": machine_info(providers_used),
        "config": config.to_dict(),
    }


def privacy_dict(snap: MetersSnapshot, config: AppConfig) -> dict[str, Any]:
    """What the privacy guard did over the run: frames hidden / held / revealed (swap off), in
    all and per reason, their share of the frames, and the guard's own cost."""
    counts = snap.privacy_frames
    frames = counts.get("frames", 0)
    out: dict[str, Any] = {"policy": config.privacy.policy, "frames": frames}
    for key in ("hidden", "held", "revealed"):
        n = counts.get(key, 0)
        out[key] = {"frames": n, "share": round(n / frames, 4) if frames else 0.0,
                    "reasons": dict(snap.privacy.get(key, {}))}
    stage = snap.stages.get("privacy")
    out["guard_ms"] = stage.as_dict() if stage is not None else None
    return out


def format_table(results: dict[str, Any], title: str) -> str:
    lines = [title, f"{'stage':<22}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'mean ms':>9}"]
    own_cost = 0.0
    for name, s in results["stages"].items():
        lines.append(f"{name:<22}{s['p50_ms']:>9.2f}{s['p95_ms']:>9.2f}{s['p99_ms']:>9.2f}"
                     f"{s['mean_ms']:>9.2f}")
        # "capture" is the source's decode (and scaling) since it stopped reading 0.0
        if name not in ("read", "capture", "detect", "swap", "enhance", "embed"):
            own_cost += s["mean_ms"]
    e2e = results["e2e_ms"]
    lines.append(f"{'end-to-end':<22}{e2e['p50']:>9.2f}{e2e['p95']:>9.2f}{e2e['p99']:>9.2f}"
                 f"{e2e['mean']:>9.2f}")
    lines.append(f"throughput {results['fps']:.1f} fps over {results['frames']} frames; "
                 f"dropped {results['dropped']}; errors {sum(results['errors'].values())}")
    lines.append(f"pipeline's own cost (stages other than decode and model inference, mean): "
                 f"{own_cost:.2f} ms/frame")
    privacy = results.get("privacy") or {}
    if privacy.get("frames"):
        shares = ", ".join(
            f"{key} {privacy[key]['frames']} ({100 * privacy[key]['share']:.1f} %"
            + "".join(f"; {r} {n}" for r, n in sorted(privacy[key]['reasons'].items())) + ")"
            for key in ("hidden", "held", "revealed"))
        lines.append(f"privacy guard ({privacy['policy']}): {shares}")
    m = results["machine"]
    lines.append(f"machine: {m['cpu']} x{m['cpu_count']}, onnxruntime {m['onnxruntime']} "
                 f"(used: {', '.join(m['providers_used']) or 'none'})")
    return "\n".join(lines)


def run_benchmark(config: AppConfig, out: TextIO) -> int:
    from livefusion.app import build_app

    if not config.input.file:
        raise ConfigError("--benchmark needs --input VIDEO_OR_IMAGE (a clip or a still image)")
    frames = config.pipeline.frames or 300
    config = replace(config, input=replace(config.input, loop=True),
                     pipeline=replace(config.pipeline, frames=frames + WARMUP_FRAMES,
                                      status_interval_s=0),
                     output=replace(config.output, preview=False))
    seen = [0]
    app = build_app(config, benchmark=True)

    def after_warmup(_packet: Any) -> None:
        seen[0] += 1
        if seen[0] == WARMUP_FRAMES:
            app.meters.reset()

    app.pipeline.subscribe(after_warmup)
    with app:
        app.pipeline.wait()
    app.pipeline.join(timeout=15.0)
    snap = app.meters.snapshot()
    engine = app.engine
    providers = sorted({getattr(s, "provider", "") for s in _sessions(engine)} - {""})
    results = results_dict(snap, config, "face-engine" if engine else "passthrough", providers)
    w, h = app.frame_size
    title = (f"LiveFusion benchmark: {config.input.file} at {w}x{h}, {results['frames']} frames "
             f"after {WARMUP_FRAMES} warm-up, {'paced' if config.input.realtime else 'as fast as possible'}"
             f", engine {results['engine']}")
    out.write(format_table(results, title) + "\n")
    if config.benchmark.json:
        Path(config.benchmark.json).write_text(json.dumps(results, indent=2))
        out.write(f"wrote {config.benchmark.json}\n")
    return 0


def _sessions(engine: Any) -> list[Any]:
    if engine is None:
        return []
    found = []
    for part in ("detector", "recognizer", "swapper", "enhancer"):
        obj = getattr(engine, part, None)
        session = getattr(obj, "session", None)
        if session is not None:
            found.append(session)
    return found
