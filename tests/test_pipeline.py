import threading

import numpy as np
import pytest

from livefusion.packet import FramePacket
from livefusion.media.no_signal import no_signal_frame
from livefusion.pipeline import Pipeline, PipelineOptions
from livefusion.settings import SettingsBox
from livefusion.measure.pipeline_standins import (
    PacedSyntheticSource,
    RecordingSink,
    SlowInference,
    read_stamp,
    stamp,
)

FPS = 30.0
INTERVAL_MS = 1000.0 / FPS


@pytest.mark.slow
def test_slow_inference_keeps_latency_bounded_and_order(no_thread_leak):
    """Inference at twice the frame interval on a paced 30 fps input: e2e p95 stays under
    three frame intervals and does not grow across 300 frames; drops are counted; frames
    leave in capture order."""
    source = PacedSyntheticSource(fps=FPS, count=300)
    sink = RecordingSink()
    pipe = Pipeline(source, SlowInference(delay_s=2 * INTERVAL_MS / 1000.0), sinks=[sink],
                    options=PipelineOptions(meter_window=1000))
    with pipe:
        assert pipe.wait(timeout=30), "the run did not finish"
    assert source.closed and sink.closed.is_set()
    e2e = np.array(sink.e2e_ms)
    assert len(e2e) >= 100  # about half the frames get through a 2x-slow stage
    assert np.percentile(e2e, 95) < 3 * INTERVAL_MS
    third = len(e2e) // 3
    first, last = np.percentile(e2e[:third], 95), np.percentile(e2e[-third:], 95)
    assert last < first * 1.25 + 5.0, f"latency grew: {first:.1f} -> {last:.1f} ms"
    assert sink.seqs == sorted(sink.seqs) and len(set(sink.seqs)) == len(sink.seqs)
    snap = pipe.meters.snapshot()
    assert snap.frames_in == 300
    assert snap.dropped_total == 300 - len(sink.seqs)
    assert snap.dropped_total > 100
    assert pipe.order_violations == 0


def test_passthrough_delivers_every_frame_unchanged(no_thread_leak):
    source = PacedSyntheticSource(fps=1000.0, count=50)
    sink = RecordingSink()
    with Pipeline(source, sinks=[sink], guard=None) as pipe:  # the mechanics, no guard
        assert pipe.wait(timeout=10)
    assert [read_stamp(f) for f in sink.frames] == sink.seqs
    for seq, frame in zip(sink.seqs, sink.frames):
        assert np.array_equal(frame, stamp(seq))
    # latest-wins may drop under load, but every frame is either delivered or counted
    assert len(sink.seqs) + pipe.meters.snapshot().dropped_total == 50


def test_frames_option_stops_after_n_frames(no_thread_leak):
    sink = RecordingSink()
    with Pipeline(PacedSyntheticSource(fps=500.0), sinks=[sink],
                  options=PipelineOptions(frames=25)) as pipe:
        assert pipe.wait(timeout=10)
    assert len(sink.seqs) == 25
    assert pipe.end_reason == "25 frames done"


def test_stop_returns_within_a_second_and_leaves_no_thread():
    before = set(threading.enumerate())
    pipe = Pipeline(PacedSyntheticSource(fps=30.0), SlowInference(delay_s=0.2),
                    sinks=[RecordingSink()]).start()
    assert pipe.running
    import time

    t0 = time.perf_counter()
    pipe.stop()
    assert time.perf_counter() - t0 < 1.2
    assert not pipe.running
    assert [t for t in threading.enumerate() if t not in before] == []


def test_a_failing_stage_never_sends_its_half_done_work(no_thread_leak):
    """Without a guard (guard=None, the bare mechanics) the failed frame goes out as captured."""
    sink = RecordingSink()
    source = PacedSyntheticSource(fps=1000.0, count=40)
    stage = SlowInference(fail_every=4)
    with Pipeline(source, stage, sinks=[sink], options=PipelineOptions(lossless=True),
                  guard=None) as pipe:
        assert pipe.wait(timeout=10)
    assert sink.seqs == list(range(40))  # lossless: every frame, however loaded the machine
    for seq, frame in zip(sink.seqs, sink.frames):
        if seq % 4 == 0:
            assert np.array_equal(frame, stamp(seq)), "the capture, not the half-done work"
        else:
            assert frame[0, 0, 2] == 200
    assert pipe.meters.snapshot().errors["inference"] == sum(1 for s in stage.seen if s % 4 == 0)


def test_a_pipeline_fails_closed_unless_told_otherwise(no_thread_leak):
    """No guard named: the default privacy guard. A stage that locates no faces (here one that
    fails, or passes frames through) gets nothing of the camera picture out."""
    from livefusion.privacy import PrivacyGuard

    sink = RecordingSink()
    with Pipeline(PacedSyntheticSource(fps=1000.0, count=12), SlowInference(fail_every=4),
                  sinks=[sink], options=PipelineOptions(lossless=True)) as pipe:
        assert pipe.wait(timeout=10)
    assert isinstance(pipe.guard, PrivacyGuard)
    assert len(sink.frames) == 12
    assert not any(np.array_equal(frame, stamp(seq)) for seq, frame in zip(sink.seqs, sink.frames))
    assert all(frame[0, 0, 2] != 200 for frame in sink.frames)
    snap = pipe.meters.snapshot()
    assert snap.privacy_frames["hidden"] == 12
    assert snap.privacy["hidden"] == {"startup": 9, "error": 3}


def test_failing_sink_is_removed_and_others_go_on(no_thread_leak):
    bad = RecordingSink("vcam", fail_after=5)
    good = RecordingSink("rec")
    # lossless: a loaded machine must not make "the others go on" depend on latest-wins luck
    with Pipeline(PacedSyntheticSource(fps=1000.0, count=30), sinks=[bad, good],
                  options=PipelineOptions(lossless=True), guard=None) as pipe:
        assert pipe.wait(timeout=10)
    assert len(bad.seqs) == 5 and bad.closed.is_set()
    assert good.seqs == list(range(30))
    assert "device went away" in pipe.sink_failures["vcam"]
    assert pipe.meters.snapshot().extra["vcam"] == "failed"


def test_settings_change_reaches_the_stage_between_frames(no_thread_leak):
    seen: list[bool] = []

    class Recorder:
        def process(self, packet: FramePacket) -> None:
            seen.append(packet.settings.swap_enabled)

    box = SettingsBox()
    with Pipeline(PacedSyntheticSource(fps=200.0), Recorder(), settings=box) as pipe:
        while len(seen) < 5:
            pipe.wait(0.01)
        box.update(swap_enabled=False)
        n = len(seen)
        while len(seen) < n + 5:
            pipe.wait(0.01)
    assert seen[0] is True and seen[-1] is False
    flip = seen.index(False)
    assert all(v is False for v in seen[flip:])


def test_call_in_inference_runs_on_the_inference_thread(no_thread_leak):
    with Pipeline(PacedSyntheticSource(fps=100.0)) as pipe:
        name = pipe.call_in_inference(lambda: threading.current_thread().name).result(2)
        boom = pipe.call_in_inference(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            boom.result(2)
    assert name == "lf-inference"


@pytest.mark.parametrize(
    "bad_frame",
    [np.zeros((0, 0, 3), np.uint8), np.zeros((4, 4, 5), np.uint8), np.zeros((2, 4, 4, 3), np.uint8)],
)
def test_bad_frame_from_source_is_counted_not_fatal(bad_frame, no_thread_leak):
    class Flaky(PacedSyntheticSource):
        def read(self):
            frame = super().read()
            return bad_frame if self._n == 3 else frame

    sink = RecordingSink()
    with Pipeline(Flaky(fps=1000.0, count=10), sinks=[sink], guard=None) as pipe:
        assert pipe.wait(5)
    delivered = [read_stamp(f) for f in sink.frames]
    assert 2 not in delivered and delivered == sorted(delivered)
    assert len(sink.seqs) + pipe.meters.snapshot().dropped_total == 9
    assert pipe.meters.snapshot().errors["capture"] == 1


def test_grey_and_bgra_frames_are_converted(no_thread_leak):
    class Odd(PacedSyntheticSource):
        def read(self):
            frame = super().read()
            return frame[:, :, 0] if self._n % 2 else np.dstack([frame, frame[:, :, :1]])

    sink = RecordingSink()
    with Pipeline(Odd(fps=1000.0, count=6), sinks=[sink]) as pipe:
        assert pipe.wait(5)
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in sink.frames)


def test_lost_source_emits_no_signal_frames(no_thread_leak):
    class Lost(PacedSyntheticSource):
        state = "live"

        def read(self):
            if self._n >= 3:
                self.state = "reconnecting"
                import time

                time.sleep(0.005)
                return None
            return super().read()

    sink = RecordingSink()
    with Pipeline(Lost(fps=200.0), sinks=[sink], options=PipelineOptions(frames=8, fps=200.0),
                  guard=None) as pipe:
        assert pipe.wait(5)
    assert len(sink.seqs) == 8
    assert pipe.meters.snapshot().extra["source"] == "reconnecting"
    # live frames first (latest-wins may skip one under load), then only no-signal frames
    live = sink.source_ok.index(False)
    assert 1 <= live <= 3 and sink.source_ok[live:] == [False] * (8 - live)
    last_live = read_stamp(sink.frames[live - 1])
    assert np.array_equal(sink.frames[-1],
                          no_signal_frame(stamp(2), (64, 48), "NO SIGNAL (reconnecting)"))
    assert last_live <= 2


def test_no_signal_frame_without_history_has_requested_size():
    frame = no_signal_frame(None, (320, 240), "NO SIGNAL")
    assert frame.shape == (240, 320, 3) and frame.max() == 255


def test_lossless_mode_processes_every_frame(no_thread_leak):
    sink = RecordingSink()
    source = PacedSyntheticSource(fps=10000.0, count=60)
    with Pipeline(source, SlowInference(delay_s=0.002), sinks=[sink],
                  options=PipelineOptions(lossless=True)) as pipe:
        assert pipe.wait(10)
    assert sink.seqs == list(range(60))
    assert pipe.meters.snapshot().dropped_total == 0


def test_stop_without_start_closes_source_and_sinks():
    source = PacedSyntheticSource()
    sink = RecordingSink()
    Pipeline(source, sinks=[sink]).stop()
    assert source.closed and sink.closed.is_set()


def test_a_stage_that_fails_on_every_frame_is_logged_once(caplog, no_thread_leak):
    import logging

    caplog.set_level(logging.WARNING, logger="livefusion.pipeline")
    sink = RecordingSink()
    with Pipeline(PacedSyntheticSource(fps=2000.0, count=60), SlowInference(fail_every=1),
                  sinks=[sink], options=PipelineOptions(lossless=True)) as pipe:
        assert pipe.wait(10)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "its faces are hidden" in errors[0].getMessage()
    assert pipe.meters.snapshot().errors["inference"] == 60
    assert len(sink.seqs) == 60  # every frame still went out


def test_a_sink_added_after_the_run_ended_is_closed_not_leaked(no_thread_leak):
    pipe = Pipeline(PacedSyntheticSource(fps=1000.0, count=5)).start()
    assert pipe.wait(5)
    late = RecordingSink("late")
    future = pipe.add_sink(late)
    pipe.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        future.result(1)
    assert late.closed.is_set() and pipe.sink_names == []


def test_remove_sink_removes_every_sink_of_that_name(no_thread_leak):
    a, b = RecordingSink("vcam"), RecordingSink("vcam")
    pipe = Pipeline(PacedSyntheticSource(fps=100.0), sinks=[a, b])
    assert pipe.remove_sink("vcam").result(1) is True
    assert a.closed.is_set() and b.closed.is_set() and pipe.sink_names == []
    pipe.stop()


def test_no_signal_frame_shows_nothing_of_the_last_picture():
    last = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    frame = no_signal_frame(last, (320, 240), "NO SIGNAL")
    assert frame.shape == last.shape
    assert np.array_equal(frame, no_signal_frame(np.zeros_like(last), (320, 240), "NO SIGNAL"))


class _MarkingGuard:
    """Paints the frame black and says so; remembers the frames it was given."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.given: list[np.ndarray] = []

    def guard(self, packet: FramePacket) -> None:
        from livefusion.packet import GuardAction, HideReason, PrivacyVerdict

        self.given.append(packet.frame)
        if self.fail:
            raise RuntimeError("guard bug")
        packet.frame = np.zeros_like(packet.frame)
        packet.privacy = PrivacyVerdict(GuardAction.HIDE, (HideReason.NO_SWAP,))


def test_the_guard_sees_the_blended_frame_and_the_sinks_get_only_its_picture(no_thread_leak):
    guard, sink = _MarkingGuard(), RecordingSink()
    with Pipeline(PacedSyntheticSource(fps=1000.0, count=5), SlowInference(), sinks=[sink],
                  options=PipelineOptions(lossless=True), guard=guard) as pipe:
        assert pipe.wait(5)
    assert len(guard.given) == 5 and all((f[:, :, 2] == 200).all() for f in guard.given)
    assert len(sink.frames) == 5 and all(not f.any() for f in sink.frames)
    snap = pipe.meters.snapshot()
    assert snap.privacy == {"hidden": {"no_swap": 5}}
    assert snap.privacy_frames == {"frames": 5, "hidden": 5}
    assert "privacy" in snap.stages
    assert "hidden 5 (no_swap 5)" in snap.status_line()


def test_a_failing_guard_sends_a_neutral_frame_not_the_picture(no_thread_leak):
    sink = RecordingSink()
    with Pipeline(PacedSyntheticSource(fps=1000.0, count=4), sinks=[sink],
                  options=PipelineOptions(lossless=True), guard=_MarkingGuard(fail=True)) as pipe:
        assert pipe.wait(5)
    assert len(sink.frames) == 4
    neutral = no_signal_frame(np.zeros((48, 64, 3), np.uint8), (0, 0), "LiveFusion: face hidden")
    assert all(np.array_equal(frame, neutral) for frame in sink.frames)  # no camera pixel
    snap = pipe.meters.snapshot()
    assert snap.errors["privacy"] == 4 and snap.privacy_frames["hidden"] == 4


def test_a_failed_step_is_counted_under_its_name_and_its_swaps_are_dropped(no_thread_leak):
    from livefusion.packet import Face
    from livefusion.stages import StageFailure

    class SwapFails:
        def process(self, packet: FramePacket) -> None:
            face = Face(bbox=np.array([1, 1, 20, 20], np.float32),
                        kps=np.zeros((5, 2), np.float32), score=0.9)
            face.swapped_crop = np.zeros((8, 8, 3), np.uint8)
            packet.faces, packet.located = [face], True
            packet.frame = np.full_like(packet.frame, 255)  # half-done work
            raise StageFailure("swap", RuntimeError("cuda oom"))

    guard, sink = _MarkingGuard(), RecordingSink()
    with Pipeline(PacedSyntheticSource(fps=1000.0, count=3), SwapFails(), sinks=[sink],
                  options=PipelineOptions(lossless=True), guard=guard) as pipe:
        assert pipe.wait(5)
    assert pipe.meters.snapshot().errors == {"swap": 3}
    assert all(read_stamp(f) >= 0 for f in guard.given)  # the captured picture, not the 255s
    assert not any((f == 255).all() for f in guard.given)


class StaleAfter:
    """An inference stage with a reordering bug: at `at` it hands on a frame stamped with an
    older capture sequence (`stale`), as a stage that returned a held-back frame would."""

    def __init__(self, at: int, stale: int) -> None:
        self.at, self.stale = at, stale

    def process(self, packet: FramePacket) -> None:
        if packet.seq == self.at:
            packet.seq = self.stale


def test_a_frame_older_than_one_already_sent_is_dropped_not_shown(no_thread_leak):
    """Viewers never see the picture jump back in time: the output keeps capture order, drops
    the stale frame and counts it."""
    source = PacedSyntheticSource(fps=1000.0, count=20)
    sink = RecordingSink()
    pipe = Pipeline(source, StaleAfter(at=10, stale=3), sinks=[sink], guard=None,
                    options=PipelineOptions(lossless=True))
    with pipe:
        assert pipe.wait(timeout=10)
    assert sink.seqs == [s for s in range(20) if s != 10]
    assert pipe.order_violations == 1
