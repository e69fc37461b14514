"""The capture meter shows what making a frame costs (decoding, scaling), not 0.0: the source
says how long its last frame took to decode, without the time spent waiting for it."""

from __future__ import annotations

import numpy as np

from livefusion.pipeline import Pipeline, PipelineOptions
from livefusion.media.sources import ImageSource, Rescaler, VideoFileSource
from tests.media_helpers import make_video
from livefusion.measure.pipeline_standins import PacedSyntheticSource, RecordingSink


class TickingClock:
    """Each reading is 4 ms after the last: a decode between two readings 'takes' 4 ms."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.004
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_video_file_reports_each_frames_decode_time(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", frames=6)
    clock = TickingClock()
    source = VideoFileSource(clip, realtime=False, clock=clock, sleep=clock.sleep)
    source.open()
    costs = []
    for _ in range(5):
        assert source.read() is not None
        costs.append(round(source.decode_ms, 6))
    source.close()
    assert costs == [4.0] * 5  # one clock step per decode, the first (in open) included


def test_rescaler_adds_its_scaling_to_the_decode(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", frames=4, size=(320, 240))
    clock = TickingClock()
    inner = VideoFileSource(clip, realtime=False, clock=clock, sleep=clock.sleep)
    scaled = Rescaler(inner, (160, 120))
    scaled.open()
    assert scaled.read().shape == (120, 160, 3)
    assert scaled.decode_ms > inner.decode_ms == 4.0
    scaled.close()


def test_a_still_image_costs_its_copy_only(tmp_path):
    import cv2

    path = tmp_path / "still.png"
    cv2.imwrite(str(path), np.full((480, 640, 3), 90, np.uint8))
    source = ImageSource(path, fps=1000.0, realtime=False)
    source.open()
    source.read()
    assert source.decode_ms > 0.0  # a 640x480 copy, measured
    source.close()


class DecodingSource(PacedSyntheticSource):
    """A source whose every frame took 12.5 ms to decode (it says so, as the real ones do)."""

    def read(self):
        frame = super().read()
        self.decode_ms = 12.5
        return frame


def test_the_capture_stage_meter_includes_the_sources_decode(no_thread_leak):
    sink = RecordingSink()
    with Pipeline(DecodingSource(fps=500.0), sinks=[sink], guard=None,
                  options=PipelineOptions(frames=20)) as pipe:
        assert pipe.wait(timeout=10)
    capture = pipe.meters.snapshot().stages["capture"]
    assert 12.5 <= capture.p50_ms < 12.5 + 5.0
