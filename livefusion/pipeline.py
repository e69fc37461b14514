"""The live pipeline: three threads, producer to consumer, with one-slot hand-offs.

    capture thread            inference thread              output thread
    source.read() --slot--> inference.process() --slot--> blend.blend() -> sinks -> subscribers

Each hand-off is a `LatestSlot`: a stage never waits for a slower one downstream; an unread
packet is replaced and counted as dropped, so latency stays bounded. Frames leave in capture
order (each thread handles packets in the order it takes them, and a slot only ever holds the
newest). A stage that raises for one frame has its error counted, logged once per cause with
its traceback and then summarised, and the stream goes on; the frame's swapped crops are
discarded and the privacy guard (the output thread's last stage before the sinks, when the
app gives one) hides its faces: a failure never sends the raw face out. A sink that raises is
closed and removed; the other sinks go on.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from livefusion.commands import CommandQueue, run_command
from livefusion.media.imageio import to_bgr_uint8
from livefusion.mailbox import LatestSlot, SlotClosed
from livefusion.meters import Meters
from livefusion.media.no_signal import no_signal_frame
from livefusion.packet import FramePacket, GuardAction, HideReason, PrivacyVerdict
from livefusion.privacy import PrivacyGuard
from livefusion.settings import SettingsBox
from livefusion.media.sources import SourceEnded, source_work_ms
from livefusion.stages import (
    BlendStage,
    GuardStage,
    OverlayStage,
    InferenceStage,
    PassthroughBlend,
    PassthroughInference,
    StageFailure,
)

log = logging.getLogger(__name__)

POLL_S = 0.05  # how often idle threads look at the stop flag and their command queue
STOP_TIMEOUT_S = 1.0


class SourceLike(Protocol):
    """What the capture thread needs of a source (see livefusion.media.sources)."""

    def open(self) -> None: ...

    def read(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


class SinkLike(Protocol):
    name: str

    def send(self, frame: np.ndarray, packet: FramePacket) -> None: ...

    def close(self) -> None: ...


def _is_source_end(exc: BaseException) -> bool:
    return isinstance(exc, (SourceEnded, EOFError))


@dataclass(frozen=True)
class PipelineOptions:
    frames: int = 0  # stop after this many output frames; 0 = until stopped or the source ends
    fps: float = 30.0  # pace of "no signal" frames while the source is lost
    meter_window: int = 300
    # When the inference thread frees up and the newest frame is already more than half a frame
    # interval old, wait (at most until the next frame is due) for a fresh one. A stage slower
    # than the camera then starts in step with capture, which keeps end-to-end latency near the
    # stage's own time instead of up to one frame interval more.
    align_to_capture: bool = True
    # Offline runs (the as-fast-as-possible benchmark): hand-offs wait instead of dropping, so
    # every frame is processed and throughput is the slowest stage's. Never for live input.
    lossless: bool = False


class RunEnd(str, Enum):
    """Why a run ended by itself (not stopped by its owner)."""

    FRAME_LIMIT = "frame limit"  # options.frames output frames were done
    SOURCE_ENDED = "source ended"  # a file without loop reached its end


class _DefaultGuard:
    """Marks "no guard argument given" (as opposed to an explicit None)."""


DEFAULT_GUARD = _DefaultGuard()


class _ErrorReporter:
    """Logs a stage's first failure of each exception type with its traceback, then one summary
    per 100 failures, so a model that fails on every frame is reported once, not per frame
    (messages often carry per-frame details, so they are not what makes a failure new)."""

    def __init__(self, meters: Meters) -> None:
        self._meters = meters
        self._seen: set[tuple[str, str]] = set()

    def report(self, stage: str, seq: int, exc: BaseException) -> None:
        count = self._meters.count_error(stage)
        key = (stage, type(exc).__name__)
        message = f"{type(exc).__name__}: {exc}"
        if key not in self._seen:
            self._seen.add(key)
            log.error("stage %s failed on frame %d (its faces are hidden, the stream goes on): %s",
                      stage, seq, message, exc_info=exc)
        elif count % 100 == 0:
            log.warning("stage %s has now failed on %d frames; last: %s", stage, count, message)
        else:
            log.debug("stage %s failed on frame %d: %s", stage, seq, message)


def _as_bgr_uint8(frame: np.ndarray) -> np.ndarray:
    """Bring a source frame to HxWx3 uint8 BGR, or raise ValueError saying what it was."""
    if not isinstance(frame, np.ndarray) or frame.size == 0:
        raise ValueError("source returned an empty frame")
    return to_bgr_uint8(frame)


class Pipeline:
    """Runs source -> inference -> blend -> sinks on three threads.

    Use as a context manager, or call `start()` and `stop()`. `stop()` returns within about a
    second and leaves no thread behind. Settings reach the stages between frames: the inference
    thread takes one `LiveSettings` snapshot per frame. Work that must run on a stage's thread
    (changing the source face, adding a sink) goes through `call_in_inference` / `call_in_output`.
    """

    def __init__(
        self,
        source: SourceLike,
        inference: InferenceStage | None = None,
        blend: BlendStage | None = None,
        sinks: Sequence[SinkLike] = (),
        settings: SettingsBox | None = None,
        options: PipelineOptions | None = None,
        meters: Meters | None = None,
        guard: GuardStage | None | _DefaultGuard = DEFAULT_GUARD,
        label: OverlayStage | None = None,
    ) -> None:
        self.source = source
        self.inference = inference or PassthroughInference()
        self.blend = blend or PassthroughBlend()
        # Fail closed unless told otherwise: a pipeline built without naming a guard gets the
        # default privacy guard; guard=None is an explicit "no guard" (tests of the mechanics).
        self.guard: GuardStage | None = PrivacyGuard() if isinstance(guard, _DefaultGuard) else guard
        # Drawn after the guard on every frame viewers see (the disclosure label), or None.
        self.label = label
        self.settings = settings or SettingsBox()
        self.options = options or PipelineOptions()
        self.meters = meters or Meters(window=self.options.meter_window)
        self._sinks: list[SinkLike] = list(sinks)
        self._subscribers: list[Callable[[FramePacket], None]] = []
        self._slot_in: LatestSlot[FramePacket] = LatestSlot("capture->inference")
        self._slot_out: LatestSlot[FramePacket] = LatestSlot("inference->output")
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._inference_cmds = CommandQueue()
        self._output_cmds = CommandQueue()
        self._threads: list[threading.Thread] = []
        self._errors = _ErrorReporter(self.meters)
        self._frames_out = 0
        self._last_seq_out = -1
        self._order_violations = 0
        self.sink_failures: dict[str, str] = {}
        self.end_reason = ""
        self.ended: RunEnd | None = None

    # ----- lifecycle -------------------------------------------------------------------------

    def start(self, *, open_source: bool = True) -> "Pipeline":
        """Start the threads; pass open_source=False when the caller opened the source already
        (e.g. to size the outputs from the size it really delivers)."""
        if self._threads:
            raise RuntimeError("pipeline already started")
        if open_source:
            self.source.open()
        self.meters.set_extra("source", "live")
        self._threads = [
            threading.Thread(target=self._capture_loop, name="lf-capture", daemon=True),
            threading.Thread(target=self._inference_loop, name="lf-inference", daemon=True),
            threading.Thread(target=self._output_loop, name="lf-output", daemon=True),
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop all threads; returns within about `timeout` seconds. A pipeline that never
        started still closes its source and sinks (they may hold devices or writer threads)."""
        self._stop.set()
        if not self._threads:
            for sink in list(self._sinks):
                self._close_sink(sink)
            self._sinks.clear()
            try:
                self.source.close()
            except Exception as exc:
                log.warning("closing the source failed: %s", exc)
        self._slot_in.close()
        self._slot_out.close()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(deadline - time.monotonic(), 0.01))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("pipeline threads still finishing after %.1f s: %s", timeout, alive)
        for commands in (self._inference_cmds, self._output_cmds):
            commands.fail_pending("pipeline stopped before the command ran")
        if not any(t.name == "lf-output" and t.is_alive() for t in self._threads):
            for sink in list(self._sinks):  # added after the output thread had closed its own
                self._close_sink(sink)
            self._sinks.clear()

    def join(self, timeout: float = 10.0) -> bool:
        """After `stop()`: wait up to `timeout` s for threads still finishing (an output thread
        finalising a recording). Call before the process exits; True when none is left."""
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(deadline - time.monotonic(), 0.0))
        return not self.running

    def __enter__(self) -> "Pipeline":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run finishes (frame limit reached or source ended)."""
        return self._finished.wait(timeout)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    @property
    def frames_out(self) -> int:
        return self._frames_out

    @property
    def order_violations(self) -> int:
        return self._order_violations

    # ----- run-time control ------------------------------------------------------------------

    def subscribe(self, callback: Callable[[FramePacket], None]) -> None:
        """Call `callback(packet)` on the output thread for every finished frame. It must not
        block (a UI should hand the packet to its own thread, e.g. through a Qt signal)."""
        self._subscribers.append(callback)

    def call_in_inference(self, fn: Callable[[], Any]) -> Future:
        """Run `fn` on the inference thread between two frames (or now, if not running)."""
        return self._submit(self._inference_cmds, fn)

    def call_in_output(self, fn: Callable[[], Any]) -> Future:
        """Run `fn` on the output thread between two frames (or now, if not running)."""
        return self._submit(self._output_cmds, fn)

    def add_sink(self, sink: SinkLike, *, when: Callable[[], bool] | None = None) -> Future:
        """Add an output between frames; the future's result says whether it was added.

        `when`, checked on the output thread just before adding, can decline (the sink is then
        closed). Once the run has ended (or if the command never gets to run) the sink is closed
        and the future fails, so no device or thread is left open."""
        def _add() -> bool:
            if self._threads and (self._stop.is_set() or self._finished.is_set()):
                raise RuntimeError("the pipeline has stopped; the output was not added")
            if when is not None and not when():
                self._close_sink(sink)
                return False
            self._sinks.append(sink)
            return True

        future = self.call_in_output(_add)
        future.add_done_callback(lambda f: self._close_sink(sink) if f.exception() else None)
        return future

    def remove_sink(self, name: str) -> Future:
        """Close and remove every sink called `name`; the future's result says if any was."""
        def _remove() -> bool:
            found = [sink for sink in self._sinks if sink.name == name]
            for sink in found:
                self._sinks.remove(sink)
                self._close_sink(sink)
            return bool(found)
        return self.call_in_output(_remove)

    @property
    def sink_names(self) -> list[str]:
        return [s.name for s in self._sinks]

    def _submit(self, commands: CommandQueue, fn: Callable[[], Any]) -> Future:
        """Queue `fn` for its stage's thread. Before the start it runs at once (wiring); after
        the run has ended it runs on a short-lived thread, never the caller's (often the UI's)."""
        if self.running:
            return commands.put(fn)
        future: Future = Future()
        if not self._threads:
            run_command(fn, future)
        else:
            threading.Thread(target=run_command, args=(fn, future), name="lf-command",
                             daemon=True).start()
        return future

    # ----- threads ---------------------------------------------------------------------------

    def _capture_loop(self) -> None:
        seq = 0
        last_good: np.ndarray | None = None
        last_no_signal = 0.0
        no_signal_period = 1.0 / max(self.options.fps, 1.0)
        try:
            while not self._stop.is_set():
                t0 = time.perf_counter_ns()
                try:
                    raw = self.source.read()
                except Exception as exc:
                    if _is_source_end(exc):
                        self.end_reason = "source ended"
                        self.ended = RunEnd.SOURCE_ENDED
                        log.info("source ended after %d frames", seq)
                        break
                    self._errors.report("capture", seq, exc)
                    self._stop.wait(POLL_S)
                    continue
                t_read = time.perf_counter_ns()
                state = str(getattr(self.source, "state", "live"))
                self.meters.set_extra("source", state)
                if raw is None:
                    now = time.monotonic()
                    if state != "live" and now - last_no_signal >= no_signal_period:
                        last_no_signal = now
                        size = ((last_good.shape[1], last_good.shape[0]) if last_good is not None
                                else tuple(getattr(self.source, "size", (640, 480))))
                        frame = no_signal_frame(last_good, size, f"NO SIGNAL ({state})")
                        self._emit(FramePacket(seq=seq, t_capture_ns=t_read, frame=frame,
                                               source_ok=False))
                        seq += 1
                    continue
                packet = FramePacket(seq=seq, t_capture_ns=t_read, frame=raw)
                packet.timings_ms["read"] = (t_read - t0) / 1e6
                try:
                    with packet.timed("capture"):
                        frame = _as_bgr_uint8(raw)
                except ValueError as exc:
                    self._errors.report("capture", seq, exc)
                    continue
                # "capture" is the work of making the frame: the source's own decode and
                # scaling (inside "read", which is mostly waiting) plus the conversion here.
                packet.timings_ms["capture"] += source_work_ms(self.source)
                packet.frame = packet.original = frame
                last_good = frame
                self._emit(packet)
                seq += 1
        finally:
            self._slot_in.close()
            try:
                self.source.close()
            except Exception as exc:
                log.warning("closing the source failed: %s", exc)

    def _emit(self, packet: FramePacket) -> None:
        self.meters.frame_in()
        try:
            self._slot_in.put(packet, wait=self.options.lossless)
        except SlotClosed:
            return
        self.meters.set_dropped(self._slot_in.name, self._slot_in.dropped)

    def _inference_loop(self) -> None:
        try:
            while True:
                self._inference_cmds.drain()
                try:
                    packet = self._slot_in.get(timeout=POLL_S)
                except SlotClosed:
                    break
                if packet is None:
                    continue
                packet = self._freshest(packet)
                packet.settings = self.settings.snapshot()
                if packet.source_ok:
                    try:
                        self.inference.process(packet)
                    except Exception as exc:
                        self._inference_failed(packet, exc)
                try:
                    self._slot_out.put(packet, wait=self.options.lossless)
                except SlotClosed:
                    break
                self.meters.set_dropped(self._slot_out.name, self._slot_out.dropped)
        finally:
            self._slot_out.close()
            self._inference_cmds.drain()

    def _inference_failed(self, packet: FramePacket, exc: Exception) -> None:
        """Count the failure under the step that failed; keep the faces located so far (the
        guard hides them) but none of the swaps, so nothing half-made is pasted."""
        stage = exc.stage if isinstance(exc, StageFailure) else "inference"
        self._errors.report(stage, packet.seq, exc)
        packet.errors[stage] = f"{type(exc).__name__}: {exc}"
        packet.frame = packet.original
        for face in packet.faces:
            face.swapped_crop = None
            face.crop_matrix = None

    def _freshest(self, packet: FramePacket) -> FramePacket:
        """Swap a stale packet for the next captured one if it is due soon (see options)."""
        if self.options.lossless or not self.options.align_to_capture or not packet.source_ok:
            return packet
        interval_ms = 1000.0 / max(self.options.fps, 1.0)
        age_ms = packet.age_ms()
        if age_ms <= interval_ms / 2 or age_ms >= interval_ms:
            return packet
        try:
            newer = self._slot_in.get(timeout=(interval_ms - age_ms + 2.0) / 1000.0)
        except SlotClosed:
            return packet
        if newer is None:
            return packet
        self._slot_in.count_drop()
        self.meters.set_dropped(self._slot_in.name, self._slot_in.dropped)
        return newer

    def _output_loop(self) -> None:
        try:
            while True:
                self._output_cmds.drain()
                try:
                    packet = self._slot_out.get(timeout=POLL_S)
                except SlotClosed:
                    if not self._stop.is_set():
                        self._finished.set()
                    break
                if packet is None:
                    continue
                self._finish(packet)
                if self.options.frames and self._frames_out >= self.options.frames:
                    self.end_reason = f"{self._frames_out} frames done"
                    self.ended = RunEnd.FRAME_LIMIT
                    self._finished.set()
                    self._stop.set()
                    self._slot_in.close()
                    break
        finally:
            self._finished.set()
            self._output_cmds.drain()
            for sink in list(self._sinks):
                self._close_sink(sink)
            self._sinks.clear()

    def _finish(self, packet: FramePacket) -> None:
        if packet.seq <= self._last_seq_out:
            self._order_violations += 1
            log.error("frame %d arrived after %d; dropped to keep capture order",
                      packet.seq, self._last_seq_out)
            return
        self._last_seq_out = packet.seq
        if packet.source_ok:
            try:
                self.blend.blend(packet)
            except Exception as exc:
                self._errors.report("blend", packet.seq, exc)
                packet.errors["blend"] = f"{type(exc).__name__}: {exc}"
                packet.frame = packet.original
        if self.guard is not None:
            self._guard(packet)
        if self.label is not None:
            self._draw_label(packet)
        for sink in list(self._sinks):
            try:
                with packet.timed(f"sink:{sink.name}"):
                    sink.send(packet.frame, packet)
            except Exception as exc:
                self._on_sink_failure(sink, exc)
        e2e_ms = packet.age_ms()
        self.meters.record_stages(packet.timings_ms)
        self.meters.frame_out(e2e_ms)
        self._frames_out += 1
        for callback in list(self._subscribers):
            try:
                callback(packet)
            except Exception as exc:
                self._errors.report("subscriber", packet.seq, exc)

    def _guard(self, packet: FramePacket) -> None:
        """The last stage before the sinks. Should the guard itself fail, the frame is not
        trusted at all: viewers get a neutral frame."""
        assert self.guard is not None
        try:
            with packet.timed("privacy"):
                self.guard.guard(packet)
        except Exception as exc:
            self._errors.report("privacy", packet.seq, exc)
            packet.errors["privacy"] = f"{type(exc).__name__}: {exc}"
            packet.frame = no_signal_frame(packet.frame, (0, 0), "LiveFusion: face hidden")
            h, w = packet.frame.shape[:2]
            packet.privacy = PrivacyVerdict(GuardAction.START, (HideReason.ERROR,), ((0, 0, w, h),))
        if packet.privacy is not None:
            self.meters.count_privacy(packet.privacy)

    def _draw_label(self, packet: FramePacket) -> None:
        """After the guard: the label goes on whatever viewers get. Should it fail, the frame
        goes out without it (the guard's work is kept) and the failure is counted."""
        assert self.label is not None
        try:
            with packet.timed("label"):
                packet.frame = self.label.apply(packet.frame)
        except Exception as exc:
            self._errors.report("label", packet.seq, exc)

    def _on_sink_failure(self, sink: SinkLike, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        log.error("output %s failed and was stopped; other outputs go on: %s", sink.name, message)
        self.sink_failures[sink.name] = message
        self.meters.count_error(f"sink:{sink.name}")
        self.meters.set_extra(sink.name, "failed")
        if sink in self._sinks:
            self._sinks.remove(sink)
        self._close_sink(sink)

    @staticmethod
    def _close_sink(sink: SinkLike) -> None:
        try:
            sink.close()
        except Exception as exc:
            log.warning("closing output %s failed: %s", sink.name, exc)
