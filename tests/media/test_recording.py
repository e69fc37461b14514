"""Recordings keep real time: frames written with their capture times play for as long as they
were live, also when frames were dropped. Files are decoded back with PyAV (timestamps) and
OpenCV (frame count, rate), independently of the writer."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from livefusion.packet import FramePacket
from livefusion.pipeline import Pipeline, PipelineOptions
from livefusion.media.recording import RECORD_CODECS, RecordBackend, RecordClock
from livefusion.media.sinks import BackgroundSink, RecorderSink, SinkError
from tests.media_helpers import LEVEL_STEP, frame_index, level_frame, read_frames
from livefusion.measure.pipeline_standins import PacedSyntheticSource, SlowInference

FPS = 30.0
# capture times (s) of a stream that drops frames: steady, a 2 s stall, irregular, steady
TIMES = ([k / FPS for k in range(10)] + [2.3 + k / FPS for k in range(5)]
         + [2.6, 2.75, 3.1, 3.12, 3.5] + [4.0 + k / FPS for k in range(6)])


LEVELS = 240 // LEVEL_STEP  # level_frame repeats after this many


def packet_at(k: int, t_s: float) -> FramePacket:
    frame = level_frame(k)
    return FramePacket(seq=k, t_capture_ns=10**12 + round(t_s * 1e9), frame=frame)


def record(path: Path, codec: str, times: list[float], **kwargs) -> RecorderSink:
    sink = RecorderSink(path, fps=FPS, codec=codec, **kwargs)
    for k, t in enumerate(times):
        p = packet_at(k, t)
        sink.send(p.frame, p)
    sink.close()
    return sink


def decoded(path: Path) -> tuple[list[float], float, list[int]]:
    """(presentation times s, duration s, frame indices) as PyAV reads the file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        times = [float(f.pts * f.time_base) for f in frames]
        duration = (float(stream.duration * stream.time_base) if stream.duration
                    else container.duration / 1e6)
        indices = [frame_index(f.to_ndarray(format="bgr24")) for f in frames]
    return times, duration, indices


def covered(times: list[float]) -> float:
    return times[-1] - times[0] + 1 / FPS


@pytest.mark.parametrize("name, codec", [("out.mp4", "h264"), ("out.mkv", "h264"),
                                         ("out.mov", "mp4v")])
def test_frames_keep_their_capture_times(tmp_path: Path, name, codec):
    path = tmp_path / name
    sink = record(path, codec, TIMES)
    pts, duration, indices = decoded(path)
    assert indices == [k % LEVELS for k in range(len(TIMES))]  # every frame, in order, once
    assert np.allclose(np.array(pts) - pts[0], TIMES, atol=0.002)
    assert duration == pytest.approx(covered(TIMES), rel=0.02)
    assert sink.duration_s == pytest.approx(covered(TIMES), rel=0.02)
    cap = cv2.VideoCapture(str(path))  # and it plays elsewhere too
    assert cap.isOpened() and cap.read()[0]
    cap.release()


def test_avi_keeps_time_in_frame_slots(tmp_path: Path):
    """AVI has no timestamps, only a rate: each frame lands in the slot of its time and the
    gaps are skipped slots (the player holds the frame before)."""
    path = tmp_path / "out.avi"
    record(path, "MJPG", TIMES)
    pts, duration, indices = decoded(path)
    assert indices == [k % LEVELS for k in range(len(TIMES))]
    assert np.allclose(np.array(pts) - pts[0], TIMES, atol=0.5 / FPS + 1e-6)
    assert duration == pytest.approx(covered(TIMES), rel=0.02)
    cap = cv2.VideoCapture(str(path))  # the header OpenCV reads says the same
    count, rate = cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    assert rate == pytest.approx(FPS) and count / rate == pytest.approx(covered(TIMES), rel=0.02)


def test_without_pyav_opencv_repeats_frames_to_keep_time(tmp_path: Path):
    path = tmp_path / "out.mp4"
    record(path, "mp4v", TIMES, backend=RecordBackend.OPENCV)
    shown = [frame_index(frame) for frame in read_frames(path)]
    assert len(shown) / FPS == pytest.approx(covered(TIMES), rel=0.02)
    assert shown[:10] == list(range(10))  # steady frames one each; the gap is repeats of 9
    assert shown[10:10 + round((2.3 - 9 / FPS) * FPS) - 1] == [9] * (round((2.3 - 9 / FPS) * FPS) - 1)


def test_offline_clock_writes_frame_k_at_k_over_fps(tmp_path: Path):
    path = tmp_path / "out.mp4"
    times = [k * 0.001 for k in range(12)]  # decoded much faster than real time
    record(path, "h264", times, clock=RecordClock.FRAMES)
    pts, duration, _ = decoded(path)
    assert np.allclose(np.array(pts) - pts[0], [k / FPS for k in range(12)], atol=0.002)
    assert duration == pytest.approx(12 / FPS, rel=0.02)


@pytest.mark.parametrize("codec", sorted(RECORD_CODECS))
def test_each_backend_only_accepts_the_file_types_it_can_write(tmp_path: Path, codec):
    spec = RECORD_CODECS[codec]
    for backend, containers in ((RecordBackend.PYAV, spec.containers),
                                (RecordBackend.OPENCV, spec.cv_containers)):
        for ext in (".mp4", ".mkv", ".mov", ".avi", ".xyz", ""):
            path = tmp_path / f"{backend.value}-{codec}{ext}"
            if ext not in containers:
                with pytest.raises(SinkError, match="name the file e.g."):
                    RecorderSink(path, FPS, codec=codec, backend=backend)
                continue
            if backend is RecordBackend.OPENCV and codec == "avc1":
                continue  # OpenCV's wheel may have no H.264 encoder; named at open
            record(path, codec, TIMES[:6], backend=backend)
            cap = cv2.VideoCapture(str(path))
            assert cap.read()[0], f"{path.name} does not play"
            cap.release()


def test_a_live_recording_that_drops_frames_plays_for_the_time_it_covers(tmp_path: Path):
    """A camera at 30 fps, a stage at ~8 fps: most frames are dropped before the recorder, and
    the file still lasts as long as the stream did."""
    path = tmp_path / "live.mp4"
    sent: list[int] = []
    recorder = RecorderSink(path, fps=FPS, codec="h264")
    pipeline = Pipeline(PacedSyntheticSource(FPS), SlowInference(0.12),
                        sinks=[BackgroundSink(recorder)], guard=None,
                        options=PipelineOptions(frames=14, fps=FPS))
    pipeline.subscribe(lambda packet: sent.append(packet.t_capture_ns))
    pipeline.start()
    assert pipeline.wait(20)
    pipeline.stop()
    assert pipeline.join(10)
    assert pipeline.meters.snapshot().dropped_total > 14  # frames were really dropped
    pts, duration, _ = decoded(path)
    assert len(pts) == recorder.frames == len(sent) == 14
    wall = (sent[-1] - sent[0]) / 1e9 + 1 / FPS
    assert duration == pytest.approx(wall, rel=0.02)
    assert np.allclose(np.array(pts) - pts[0], (np.array(sent) - sent[0]) / 1e9, atol=0.002)
