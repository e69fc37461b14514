"""The command line end to end: real sources, the real pipeline, real sinks."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from livefusion.cli import main
from tests.conftest import RECORDER_BACKEND, ROOT
from tests.media_helpers import make_video


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_video(tmp_path / "clip.mp4", 40, size=(160, 120), fps=30.0)


def test_benchmark_prints_a_table_and_writes_the_json_shape(clip, tmp_path, no_thread_leak):
    report = tmp_path / "bench.json"
    code, text = run_cli("--benchmark", "--input", str(clip), "--resolution", "320x240",
                         "--frames", "30", "--json", str(report))
    assert code == 0, text
    assert "end-to-end" in text and "throughput" in text
    data = json.loads(report.read_text())
    assert data["frames"] == 30 and data["dropped"] == 0 and data["fps"] > 0
    assert set(data["e2e_ms"]) >= {"p50", "p95"}
    assert {"read", "capture", "blend"} <= set(data["stages"])
    for stats in data["stages"].values():
        assert set(stats) == {"p50_ms", "p95_ms", "p99_ms", "mean_ms"}
        assert stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"]
    assert data["config"]["input"]["resolution"] == "320x240"
    assert data["machine"]["cpu_count"] >= 1
    # the clip has 40 frames: 30 + warm-up needs it to loop
    assert data["config"]["input"]["loop"] is True
    # no source face: the guard sent its neutral frame for every one, and says so
    privacy = data["privacy"]
    assert privacy["policy"] == "hide" and privacy["frames"] == 30
    assert privacy["hidden"] == {"frames": 30, "share": 1.0, "reasons": {"startup": 30}}
    assert privacy["held"]["frames"] == 0 and privacy["revealed"]["frames"] == 0
    assert set(privacy["guard_ms"]) == {"p50_ms", "p95_ms", "p99_ms", "mean_ms"}
    assert "privacy guard (hide): hidden 30 (100.0 %; startup 30)" in text


@pytest.mark.parametrize("flag, policy", [(["--privacy", "off"], "off"),
                                          (["--privacy", "hold"], "hold"), ([], "hide")])
def test_privacy_flag_sets_the_policy_over_the_config(flag, policy, tmp_path):
    from livefusion.cli import build_parser, config_from_args

    profile = tmp_path / "p.toml"
    profile.write_text('[privacy]\npolicy = "hold"\n')
    args = build_parser().parse_args(["--config", str(profile)] + flag)
    assert config_from_args(args).privacy.policy == (policy if flag else "hold")


def test_headless_run_records_every_frame_and_stops_after_n(clip, tmp_path, no_thread_leak):
    out_file = tmp_path / "out.mp4"
    code, text = run_cli("--input", str(clip), "--no-preview", "--no-virtual-cam", "--frames",
                         "25", "--record", str(out_file), "--no-realtime")
    assert code == 0, text
    assert "25 frames out" in text
    assert count_frames(out_file) == 25


def test_still_image_input_is_repeated_like_a_camera(tmp_path, no_thread_leak):
    image = tmp_path / "still.png"
    cv2.imwrite(str(image), np.full((90, 120, 3), 99, np.uint8))
    out_file = tmp_path / "out.avi"
    code, text = run_cli("--input", str(image), "--no-preview", "--no-virtual-cam", "--fps",
                         "60", "--frames", "12", "--resolution", "120x90", "--record",
                         str(out_file), "--set", "output.record_codec=MJPG")
    assert code == 0, text
    assert count_frames(out_file) == 12


def test_virtual_camera_gets_every_frame_at_its_size(clip, recording_backend, no_thread_leak):
    code, text = run_cli("--input", str(clip), "--no-preview", "--frames", "20", "--no-realtime",
                         "--resolution", "320x240", "--vcam-backend", RECORDER_BACKEND,
                         "--set", "output.virtual_cam_size=256x192")
    assert code == 0, text
    (cam,) = recording_backend
    assert len(cam.frames) == 20
    assert (cam.width, cam.height) == (256, 192)
    assert all(f.size == 192 * 256 * 3 for f in cam.frames)  # pyvirtualcam hands backends flat BGR
    assert cam.closed == 1


def test_missing_virtual_camera_names_the_fix_and_the_run_goes_on(clip, caplog, no_thread_leak):
    code, text = run_cli("--input", str(clip), "--no-preview", "--frames", "10", "--no-realtime",
                         "--vcam-backend", "v4l2loopback", "--vcam-device", "/dev/video99")
    assert code == 0, text
    assert "10 frames out" in text
    assert "v4l2loopback" in caplog.text and "modprobe" in caplog.text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--input", "nope.mp4", "--no-preview"], "nope.mp4"),
        (["--set", "face.swap_faces=most", "--no-preview"], "choose one of: all, largest, reference"),
        (["--resolution", "big", "--no-preview"], "use WIDTHxHEIGHT"),
        (["--profile", "nope"], "profiles: cpu, default, low-latency, quality"),
        (["--benchmark"], "--benchmark needs --input"),
        (["--model", "swapper=weights.pth", "--input", "x.png", "--no-preview",
          "--source", "x.png"], ""),
    ],
)
def test_bad_input_gives_a_clear_error_and_exit_code_2(argv, message, tmp_path, no_thread_leak):
    code, text = run_cli(*argv)
    assert code == 2
    assert text.startswith("error: ") and message in text


def test_help_config_lists_every_section(capsys):
    assert main(["--help-config"]) == 0
    listing = capsys.readouterr().out
    for key in ("input.camera", "face.detect_every", "runtime.providers", "output.virtual_cam"):
        assert key in listing


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_ctrl_c_finalises_a_playable_recording(sig, tmp_path):
    clip = make_video(tmp_path / "long.mp4", 30, size=(160, 120), fps=30.0)
    out_file = tmp_path / "rec.mp4"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "run_live.py"), "--input", str(clip), "--loop",
         "--no-preview", "--no-virtual-cam", "--record", str(out_file)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    for line in proc.stdout:  # wait for the first status line: frames are flowing
        if line.startswith("in ") or time.monotonic() > deadline:
            break
    proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, rest
    assert f"stopped ({sig.name})" in rest
    assert count_frames(out_file) >= 20


# ----- bad input through the whole app: a clear message naming the input, exit code 2 -------


@pytest.fixture(scope="module")
def small_models(tmp_path_factory):
    """The real SCRFD-500M from ../shared plus stand-ins with the exact ArcFace and inswapper
    contracts, as `--model ROLE=PATH` arguments."""
    from tests.conftest import SHARED_MODELS
    from tests.face.onnx_builders import arcface_standin, identity_inswapper

    det = SHARED_MODELS / "det_500m.onnx"
    if not det.exists():
        pytest.skip(f"{det} is missing: the real models come from ../shared (see README)")
    folder = tmp_path_factory.mktemp("models")
    return ["--model", f"detector={det}",
            "--model", f"embedder={arcface_standin(folder / 'embedder.onnx')}",
            "--model", f"swapper={identity_inswapper(folder / 'swapper.onnx')}"]


def _bad_image(kind: str, folder: Path) -> Path:
    path = folder / f"{kind}.png"
    if kind == "corrupt":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    elif kind == "noface":
        cv2.imwrite(str(path), np.full((200, 200, 3), 128, np.uint8))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path = folder / "notes.jpg"
        path.write_text("not an image")
    return path


@pytest.mark.parametrize(
    "kind, message",
    [
        ("corrupt", "corrupt.png"),
        ("noface", "no face"),
        ("empty", "empty.png"),
        ("text", "notes.jpg"),
        ("missing", "missing.png"),
    ],
)
def test_bad_source_photo_is_named_with_what_to_do(kind, message, small_models, clip, tmp_path,
                                                   no_thread_leak):
    source = _bad_image(kind, tmp_path)
    code, text = run_cli("--input", str(clip), "--no-preview", "--no-virtual-cam", "--frames", "3",
                         "--source", str(source), *small_models)
    assert code == 2, text
    assert text.startswith("error: ") and message in text.lower(), text


@pytest.mark.parametrize("kind", ["zero_frames", "corrupt_video", "directory"])
def test_unusable_input_video_is_named(kind, tmp_path, no_thread_leak):
    if kind == "zero_frames":
        path = make_video(tmp_path / "empty.mp4", 0, size=(64, 48))
    elif kind == "corrupt_video":
        path = tmp_path / "broken.mp4"
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 400)
    else:
        path = tmp_path / "folder.mp4"
        path.mkdir()
    code, text = run_cli("--input", str(path), "--no-preview", "--no-virtual-cam", "--frames", "3")
    assert code == 2, text
    assert path.name in text


def test_swap_runs_end_to_end_with_small_models(small_models, clip, shared_image, tmp_path,
                                                no_thread_leak):
    """A real face photo as the source, the identity swapper: frames come out, no errors."""
    face = shared_image("fr_obama.jpg")
    report = tmp_path / "b.json"
    code, text = run_cli("--benchmark", "--input", str(shared_image("fr_obama-720p.jpg")),
                         "--resolution", "640x360", "--frames", "12", "--source", str(face),
                         "--json", str(report), "--provider", "cpu", *small_models)
    assert code == 0, text
    data = json.loads(report.read_text())
    assert data["engine"] == "face-engine" and data["errors"] == {}
    assert {"detect", "swap", "blend"} <= set(data["stages"])
    assert data["machine"]["providers_used"] == ["CPUExecutionProvider"]


@pytest.mark.parametrize("name", ["out.xyz", "out", "out.avi.txt"])
def test_a_recording_name_the_codec_cannot_write_stops_at_start_with_the_fix(name, clip,
                                                                            tmp_path):
    target = tmp_path / name
    code, text = run_cli("--input", str(clip), "--no-preview", "--no-virtual-cam", "--frames",
                         "5", "--record", str(target), "--no-realtime")
    assert code == 2, text
    assert "codec h264 writes .mp4" in text and target.with_suffix(".mp4").name in text
    assert "frames out" not in text  # refused before the run, not after it
    assert not target.exists()


def test_loop_plays_a_file_again_and_again_headless(clip, no_thread_leak):
    """The clip has 40 frames; --loop keeps it going until --frames is reached."""
    code, text = run_cli("--input", str(clip), "--no-preview", "--no-virtual-cam", "--loop",
                         "--no-realtime", "--frames", "100")
    assert code == 0, text
    assert "stopped (100 frames done): 100 frames out" in text
    code, text = run_cli("--input", str(clip), "--no-preview", "--no-virtual-cam",
                         "--no-realtime", "--frames", "100")
    assert code == 0 and "stopped (source ended): 40 frames out" in text, text


@pytest.mark.parametrize("flags, mode, padding", [
    (["--mask", "box"], "box", 0.07), (["--mask", "face+mouth", "--mask-padding", "0.1"], "face+mouth", 0.1),
    ([], "face", 0.07)])
def test_mask_flags_win_over_the_config(flags, mode, padding, tmp_path):
    from livefusion.app import settings_from_config
    from livefusion.cli import build_parser, config_from_args

    profile = tmp_path / "p.toml"
    profile.write_text('[face]\nmask = "face"\nmask_padding = 0.07\n')
    config = config_from_args(build_parser().parse_args(["--config", str(profile)] + flags))
    settings = settings_from_config(config)
    assert (settings.mask_mode, settings.face_padding) == (mode, padding)


def test_a_bad_mask_mode_is_refused_with_the_choices(capsys):
    from livefusion.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["--mask", "oval"])
    assert "face+mouth" in capsys.readouterr().err
