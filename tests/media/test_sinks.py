"""Sinks: the real pyvirtualcam.Camera with a recording backend registered here, the recorder
writing real files (reopened and counted), and injected disk faults."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import pyvirtualcam
from pyvirtualcam.util import encode_fourcc

from livefusion.packet import FramePacket
from livefusion.media.sinks import (
    CallbackSink,
    DiskUsage,
    NullSink,
    RecorderSink,
    Sink,
    SinkError,
    VirtualCameraSink,
    VirtualCameraUnavailable,
    virtual_camera_fix,
)
from tests.media_helpers import frame_index, level_frame, read_frames

from tests.conftest import RECORDER_BACKEND


def noise(seed: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    w, h = size
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def packet(frame: np.ndarray, seq: int = 0) -> FramePacket:
    return FramePacket(seq=seq, t_capture_ns=0, frame=frame)


# ----- virtual camera ------------------------------------------------------------------------


def test_virtual_camera_receives_every_frame_in_bgr_at_its_size(recording_backend):
    sink = VirtualCameraSink(64, 48, 30.0, backend=RECORDER_BACKEND, device="LF cam")
    assert isinstance(sink, Sink)
    sent = [noise(k) for k in range(5)] + [noise(9, (128, 96))]
    for k, frame in enumerate(sent):
        sink.send(frame, packet(frame, k))
    sink.close()
    sink.close()
    backend, = recording_backend
    assert (backend.width, backend.height, backend.fps) == (64, 48, 30.0)
    assert backend.fourcc == encode_fourcc(pyvirtualcam.PixelFormat.BGR.value)
    assert backend.closed == 1 and sink.frames == 6
    received = [f.reshape(48, 64, 3) for f in backend.frames]
    assert len(received) == 6
    for mine, theirs in zip(sent[:5], received[:5]):
        assert np.array_equal(mine, theirs)  # bytes as sent: no colour conversion
    expected = cv2.resize(sent[5], (64, 48), interpolation=cv2.INTER_AREA)
    assert np.array_equal(received[5], expected)


def test_virtual_camera_takes_its_size_from_the_first_frame(recording_backend):
    sink = VirtualCameraSink(fps=25.0, backend=RECORDER_BACKEND)
    frame = noise(1, (80, 60))[:, ::-1]          # a non-contiguous view is fine too
    sink.send(frame, packet(frame))
    sink.close()
    backend, = recording_backend
    assert (backend.width, backend.height, backend.fps) == (80, 60, 25.0)
    assert np.array_equal(backend.frames[0].reshape(60, 80, 3), frame)


def test_explicit_open_uses_the_given_size(recording_backend):
    sink = VirtualCameraSink(backend=RECORDER_BACKEND)
    sink.open(32, 24, 15.0)
    assert sink.camera.backend == RECORDER_BACKEND
    sink.send(noise(2), None)
    sink.close()
    assert recording_backend[0].frames[0].size == 32 * 24 * 3


def test_a_failing_send_becomes_a_sink_error(recording_backend):
    sink = VirtualCameraSink(64, 48, 30.0, backend=RECORDER_BACKEND)
    sink.send(noise(0), None)
    recording_backend[0].fail_sends = True
    with pytest.raises(SinkError, match="device went away.*--no-virtual-cam"):
        sink.send(noise(1), None)
    sink.close()


def _one_sentence(message: str) -> None:
    assert "\n" not in message and message.endswith(".")
    assert message.count(". ") == 0 or message.index(". ") > message.index("(")


def test_without_a_working_backend_the_error_names_the_fix_for_this_os():
    """The real default path: on a machine without v4l2loopback / OBS this fails."""
    sink = VirtualCameraSink(64, 48, 30.0)
    try:
        sink.open()
    except VirtualCameraUnavailable as exc:
        message = str(exc)
        assert virtual_camera_fix() in message
        assert all(reason in message for reason in exc.reasons)
        _one_sentence(message)
    else:
        sink.close()
        pytest.skip("this machine has a working virtual camera")


def test_a_backend_that_cannot_start_is_reported_with_its_reason(monkeypatch):
    class NoDriver:
        def __init__(self, **kw):
            raise RuntimeError("driver not installed")

    monkeypatch.setitem(pyvirtualcam.camera.BACKENDS, "broken", NoDriver)
    with pytest.raises(VirtualCameraUnavailable) as err:
        VirtualCameraSink(64, 48, 30.0, backend="broken").send(noise(0), None)
    assert err.value.reasons == ["'broken' backend: driver not installed"]
    assert "driver not installed" in str(err.value) and err.value.fix in str(err.value)
    _one_sentence(str(err.value))


def test_an_unknown_backend_name_lists_the_ones_that_exist():
    with pytest.raises(VirtualCameraUnavailable, match="'nope' does not exist here"):
        VirtualCameraSink(64, 48, 30.0, backend="nope").open()


@pytest.mark.parametrize("system, must_say", [
    ("Linux", "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=LiveFusion"),
    ("Linux", "v4l2loopback-dkms"),
    ("Windows", "OBS Studio 26"),
    ("Windows", "Unity Capture"),
    ("Darwin", "OBS Studio 30"),
    ("Darwin", "system extension"),
    ("Haiku", "--no-virtual-cam"),
])
def test_the_fix_is_specific_to_each_os(system, must_say):
    assert must_say in virtual_camera_fix(system)


# ----- recorder ------------------------------------------------------------------------------


def count_frames(path: Path) -> tuple[int, list[np.ndarray]]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} is not a playable video"
    cap.release()
    frames = read_frames(path)
    return len(frames), frames


@pytest.mark.parametrize("name, codec", [("out.mp4", "mp4v"), ("out.avi", "MJPG")])
def test_recording_is_a_playable_file_with_every_frame(tmp_path: Path, name, codec):
    path = tmp_path / name
    sink = RecorderSink(path, fps=25.0, codec=codec)
    for k in range(12):
        sink.send(level_frame(k), packet(level_frame(k), k))
    sink.send(level_frame(3, (128, 96)), None)   # another size is scaled to the first
    sink.close()
    sink.close()
    n, frames = count_frames(path)
    assert n == 13 == sink.frames
    assert [frame_index(f) for f in frames] == list(range(12)) + [3]
    assert frames[0].shape == (48, 64, 3)


def test_missing_folder_fails_at_once_naming_it(tmp_path: Path):
    with pytest.raises(SinkError, match="does not exist") as err:
        RecorderSink(tmp_path / "no" / "such" / "out.mp4", 30.0)
    assert str(tmp_path / "no" / "such") in str(err.value)


@pytest.mark.parametrize("codec", ["ZZZZ", "toolong"])
def test_a_codec_that_cannot_open_is_named(tmp_path: Path, codec):
    with pytest.raises(SinkError, match=codec):
        RecorderSink(tmp_path / "out.mp4", 30.0, codec=codec).send(level_frame(0), None)


def test_low_free_space_stops_the_recording_and_keeps_what_was_written(tmp_path: Path):
    free = {"bytes": 10 * 2**30}

    def disk_usage(folder: str) -> DiskUsage:
        assert Path(folder) == tmp_path
        return DiskUsage(100 * 2**30, 0, free["bytes"])

    path = tmp_path / "out.avi"
    sink = RecorderSink(path, 25.0, codec="MJPG", check_every=5, disk_usage=disk_usage)
    for k in range(10):
        sink.send(level_frame(k), None)
    free["bytes"] = 20 * 2**20                  # another program filled the disk
    with pytest.raises(SinkError, match="only 20 MiB free") as err:
        for k in range(10, 15):
            sink.send(level_frame(k), None)
    assert str(path) in str(err.value)
    assert sink.closed
    with pytest.raises(SinkError):
        sink.send(level_frame(0), None)
    assert count_frames(path)[0] == 15          # finalised: playable, nothing lost so far


def test_a_disk_that_is_already_full_stops_it_before_the_first_frame(tmp_path: Path):
    sink = RecorderSink(tmp_path / "out.mp4", 25.0,
                        disk_usage=lambda folder: DiskUsage(1, 1, 0))
    with pytest.raises(SinkError, match="free some space"):
        sink.send(level_frame(0), None)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_writes_that_fail_silently_are_detected(tmp_path: Path):
    """A real ENOSPC: the file is a link to /dev/full, every write fails and nothing grows."""
    path = tmp_path / "out.avi"
    path.symlink_to("/dev/full")
    sink = RecorderSink(path, 25.0, codec="MJPG", check_every=5, stall_frames=20,
                        disk_usage=shutil.disk_usage)
    with pytest.raises(SinkError, match="has not grown for 20 frames"):
        for k in range(100):
            sink.send(noise(k), None)
    assert sink.frames == 20


def test_shared_clip_recorded_frame_for_frame(tmp_path: Path, shared_video):
    cap = cv2.VideoCapture(str(shared_video("dfl_Twitch1.mp4")))
    sink = RecorderSink(tmp_path / "copy.avi", 25.0, codec="MJPG")
    for _ in range(8):
        ok, frame = cap.read()
        assert ok
        sink.send(frame, None)
    cap.release()
    sink.close()
    n, frames = count_frames(tmp_path / "copy.avi")
    assert n == 8 and frames[0].shape == frame.shape


# ----- null and callback ---------------------------------------------------------------------


def test_null_sink_counts_and_callback_sink_hands_over_the_packet(caplog):
    null = NullSink()
    got: list[FramePacket] = []
    ui = CallbackSink(got.append, warn_ms=-1.0)  # every call counts as slow: warned once
    for k in range(3):
        p = packet(level_frame(k), k)
        null.send(p.frame, p)
        ui.send(p.frame, p)
    null.close()
    ui.close()
    assert null.frames == 3
    assert [p.seq for p in got] == [0, 1, 2]
    assert sum("callback took" in r.getMessage() for r in caplog.records) == 1


# ----- background sink ---------------------------------------------------------------------


class _SlowSink:
    def __init__(self, delay: float = 0.0, fail_at: int | None = None) -> None:
        import threading as _t

        self.name = "slow"
        self.delay = delay
        self.fail_at = fail_at
        self.frames: list[int] = []
        self.closed = False
        self.gate = _t.Event()
        self.gate.set()

    def send(self, frame, packet=None) -> None:
        self.gate.wait(5)
        if self.fail_at is not None and len(self.frames) == self.fail_at:
            raise OSError("disk full")
        self.frames.append(int(frame[0, 0, 0]))

    def close(self) -> None:
        self.closed = True


def test_background_sink_writes_every_frame_in_order_and_closes_the_inner_sink():
    from livefusion.media.sinks import BackgroundSink

    inner = _SlowSink()
    sink = BackgroundSink(inner, max_queue=100)
    for k in range(50):
        sink.send(np.full((4, 4, 3), k, np.uint8))
    sink.close()
    assert inner.frames == list(range(50)) and inner.closed and sink.dropped == 0


def test_background_sink_drops_oldest_instead_of_blocking_when_behind():
    from livefusion.media.sinks import BackgroundSink

    inner = _SlowSink()
    inner.gate.clear()  # the writer is stuck
    sink = BackgroundSink(inner, max_queue=3)
    for k in range(10):
        sink.send(np.full((4, 4, 3), k, np.uint8))  # must not block
    inner.gate.set()
    sink.close()
    assert sink.dropped >= 6
    assert inner.frames[-3:] == [7, 8, 9]


def test_background_sink_reports_the_inner_failure_on_the_next_send():
    from livefusion.media.sinks import BackgroundSink

    inner = _SlowSink(fail_at=2)
    sink = BackgroundSink(inner, max_queue=100)
    frame = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(OSError, match="disk full"):
        for _ in range(200):
            sink.send(frame)
            import time as _time

            _time.sleep(0.002)
    sink.close()
    assert inner.closed


def test_lossless_background_sink_waits_instead_of_dropping():
    from livefusion.media.sinks import BackgroundSink

    inner = _SlowSink()
    sink = BackgroundSink(inner, max_queue=2, lossless=True)
    for k in range(30):
        sink.send(np.full((4, 4, 3), k, np.uint8))
    sink.close()
    assert inner.frames == list(range(30)) and sink.dropped == 0


def test_background_sink_never_closes_the_inner_sink_during_a_write():
    """A writer stuck in send() at close: the inner close waits for that write to finish."""
    import threading as _threading

    from livefusion.media.sinks import BackgroundSink

    events: list[str] = []
    entered = _threading.Event()

    class Stuck:
        name = "stuck"

        def __init__(self) -> None:
            self.release = _threading.Event()

        def send(self, frame, packet=None) -> None:
            events.append("write-start")
            entered.set()
            self.release.wait(5)
            events.append("write-end")

        def close(self) -> None:
            events.append("close")

    inner = Stuck()
    sink = BackgroundSink(inner, drain_timeout_s=0.05)
    sink.send(np.zeros((4, 4, 3), np.uint8))
    assert entered.wait(2)
    _threading.Timer(0.2, inner.release.set).start()
    sink.close()
    assert events == ["write-start", "write-end", "close"]
