import pytest

from livefusion.meters import Meters, summarize


@pytest.mark.parametrize(
    "values, p50, p95",
    [
        ([1.0], 1.0, 1.0),
        (list(range(1, 101)), 50.5, 95.05),
        ([5.0] * 10, 5.0, 5.0),
    ],
)
def test_summarize_percentiles(values, p50, p95):
    s = summarize(values)
    assert s.count == len(values)
    assert s.p50_ms == pytest.approx(p50)
    assert s.p95_ms == pytest.approx(p95)


def test_empty_summary_is_zero():
    assert summarize([]).count == 0


def test_window_keeps_only_recent_values():
    m = Meters(window=10)
    for v in range(100):
        m.record_stage("swap", float(v))
    s = m.snapshot().stages["swap"]
    assert s.count == 10
    assert s.p50_ms == pytest.approx(94.5)


def test_fps_from_an_injected_clock():
    now = [0.0]
    m = Meters(clock=lambda: now[0])
    for i in range(31):
        now[0] = i / 30.0
        m.frame_in()
        m.frame_out(10.0)
    snap = m.snapshot()
    assert snap.fps_in == pytest.approx(30.0, rel=1e-6)
    assert snap.fps_out == pytest.approx(30.0, rel=1e-6)
    assert snap.frames_out == 31


def test_status_line_names_stages_drops_and_errors():
    m = Meters()
    m.record_stages({"swap": 12.0, "blend": 2.0})
    m.frame_out(20.0)
    m.set_dropped("capture->inference", 3)
    m.count_error("inference")
    m.set_extra("vcam", "off")
    line = m.snapshot().status_line()
    for part in ("swap=12.0", "blend=2.0", "dropped 3", "errors 1", "vcam off"):
        assert part in line


def test_a_stage_that_stopped_reporting_leaves_the_snapshot_after_a_window():
    m = Meters(window=10)
    m.record_stage("passthrough", 0.1)
    for _ in range(11):
        m.record_stage("swap", 5.0)
        m.frame_out(5.0)
    stages = m.snapshot().stages
    assert "swap" in stages and "passthrough" not in stages


def test_reset_restarts_the_drop_counts_too():
    m = Meters()
    m.set_dropped("capture->inference", 7)
    m.reset()
    m.set_dropped("capture->inference", 9)  # hand-offs report running totals
    assert m.snapshot().dropped == {"capture->inference": 2}


def test_privacy_counts_per_reason_and_swap_off_leads_the_status_line():
    from livefusion.packet import GuardAction, HideReason, PrivacyVerdict

    meters = Meters()
    for verdict in [PrivacyVerdict(GuardAction.START, (HideReason.STARTUP,)),
                    PrivacyVerdict(GuardAction.HIDE, (HideReason.NO_SWAP, HideReason.TRACK_LOST)),
                    PrivacyVerdict(GuardAction.HOLD, (HideReason.ERROR,)),
                    PrivacyVerdict(GuardAction.PASS)]:
        meters.count_privacy(verdict)
    snap = meters.snapshot()
    assert snap.privacy_frames == {"frames": 4, "hidden": 2, "held": 1}
    assert snap.privacy == {"hidden": {"startup": 1, "no_swap": 1, "track_lost": 1},
                            "held": {"error": 1}}
    line = snap.status_line()
    assert "hidden 2 (no_swap 1, startup 1, track_lost 1) held 1 (error 1) revealed 0" in line
    assert not line.startswith("SWAP OFF")
    meters.count_privacy(PrivacyVerdict(GuardAction.REVEAL, (HideReason.SWAP_OFF,)))
    assert meters.snapshot().status_line().startswith("SWAP OFF: viewers see your real face")
    meters.reset()
    assert meters.snapshot().privacy_frames == {} and meters.snapshot().privacy_line() == ""


@pytest.mark.parametrize("interval_s, expected", [(1 / 30, 30.0), (1.0, 1.0), (3.0, 1 / 3),
                                                  (8.0, 0.125)])
def test_slow_streams_read_their_real_rate_not_zero(interval_s, expected):
    now = [0.0]
    m = Meters(clock=lambda: now[0])
    for i in range(6):
        now[0] = i * interval_s
        m.frame_out(10.0)
    assert m.snapshot().fps_out == pytest.approx(expected, rel=1e-6)


def test_a_stopped_stream_reads_zero():
    now = [0.0]
    m = Meters(clock=lambda: now[0])
    for i in range(5):
        now[0] = i / 30.0
        m.frame_out(10.0)
    now[0] = 30.0
    assert m.snapshot().fps_out == 0.0
