"""--faces-out: every output frame's faces as JSON lines, as the outputs got them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from livefusion.media.faces_out import FacesOutSink, frame_record
from livefusion.packet import Face, FramePacket
from livefusion.media.sinks import SinkError

KEYS = {"track", "box", "kps", "score", "detected", "swapped", "hidden"}


def _face(track: int, origin: str, swapped: bool, hidden: bool) -> Face:
    kps = np.array([[10, 10], [20, 10], [15, 15], [11, 20], [19, 20]], np.float32) + track
    face = Face(bbox=np.array([5, 5, 25, 28], np.float32) + track, kps=kps, score=0.91,
                track_id=track, origin=origin)
    face.swapped_crop = np.zeros((4, 4, 3), np.uint8) if swapped else None
    face.hidden = hidden
    return face


def test_a_frame_record_has_every_field_in_frame_pixels():
    packet = FramePacket(seq=7, t_capture_ns=2_500_000_000, frame=np.zeros((40, 60, 3), np.uint8))
    packet.faces = [_face(0, "detect", True, False), _face(3, "track", True, True)]
    packet.unswappable = [_face(9, "detect", False, True)]
    record = frame_record(packet)
    assert record["seq"] == 7 and record["t_capture_ms"] == 2500.0
    faces = record["faces"]
    assert [set(f) for f in faces] == [KEYS] * 3
    assert [(f["track"], f["detected"], f["swapped"], f["hidden"]) for f in faces] == [
        (0, True, True, False), (3, False, False, True), (-1, True, False, True)]
    assert faces[1]["box"] == [8.0, 8.0, 28.0, 31.0] and len(faces[1]["kps"]) == 5
    assert faces[1]["kps"][0] == [13.0, 13.0]


def test_a_path_that_cannot_be_written_says_what_to_do(tmp_path):
    with pytest.raises(SinkError, match="--faces-out a path in a folder you can write to"):
        FacesOutSink(tmp_path / "missing" / "faces.jsonl")


@pytest.mark.shared
def test_a_run_writes_one_line_per_output_frame(tmp_path, shared_model, shared_image,
                                               shared_video, no_thread_leak):
    from livefusion.measure.standins import arcface_standin, paint_inswapper
    from tests.test_cli import run_cli

    out = tmp_path / "faces.jsonl"
    code, text = run_cli(
        "--input", str(shared_video("dfl_Twitch1.mp4")), "--no-preview", "--no-virtual-cam",
        "--no-realtime", "--frames", "24", "--resolution", "642x488", "--provider", "cpu",
        "--source", str(shared_image("insightface_Nathalie_Baye_0002.jpg")),
        "--model", f"detector={shared_model('det_500m.onnx')}",
        "--model", f"embedder={arcface_standin(tmp_path / 'e.onnx')}",
        "--model", f"swapper={paint_inswapper(tmp_path / 's.onnx')}",
        "--faces-out", str(out))
    assert code == 0, text
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 24
    assert [r["seq"] for r in lines] == sorted({r["seq"] for r in lines})
    times = [r["t_capture_ms"] for r in lines]
    assert times == sorted(times)
    faces = [f for r in lines for f in r["faces"]]
    assert all(set(f) == KEYS for f in faces) and len(faces) >= 24  # the streamer, every frame
    assert sum(f["detected"] for f in faces) >= 4 and any(not f["detected"] for f in faces)
    for f in faces:
        x0, y0, x1, y1 = f["box"]
        assert -50 < x0 < x1 < 700 and -50 < y0 < y1 < 540
        assert all(x0 - 5 <= x <= x1 + 5 and y0 - 5 <= y <= y1 + 5 for x, y in f["kps"])
        assert f["swapped"] != f["hidden"]  # a frontal streamer: swapped, or else covered
