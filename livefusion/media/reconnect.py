"""Keeping a live source going through failures: reconnect with backoff, report the state.

The capture thread reads through `ReconnectingSource`; while the camera is gone it gets None
(and the pipeline sends "no signal" frames), and the stream resumes by itself when the camera
comes back, without restarting the app.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import numpy as np

from livefusion.media.sources import Source, SourceEnded

log = logging.getLogger(__name__)

SourceFactory = Callable[[], Source]


class ReconnectingSource:
    """Keeps a live source going through failures, the way OBS keeps a scene alive.

    `open()` opens the first source and raises its `SourceError` (a start-up failure stops the
    app with that message). Later, when `read()` raises (anything but `SourceEnded`) or returns
    None for longer than `lost_after_s`, the source is marked "lost": `read()` returns None,
    and a background thread closes the dead source and calls `source_factory()` + `open()`
    again after 0.25 s, 0.5 s, 1 s, ... up to `max_backoff_s` between attempts ("reconnecting"
    while an attempt runs). When one succeeds the state is "live" again and `reconnects` grows.
    A source lost again within `stable_after_s` of coming back resumes the backoff where it
    left off rather than hammering the device every 0.25 s.
    `read()` never blocks longer than `read_timeout_s` (plus the inner source's own limit).

    `sleep(seconds)` is the wait between attempts; the default waits on an event that
    `close()` sets, so closing is immediate. Tests inject their own to control the attempts.
    """

    def __init__(self, source_factory: SourceFactory, max_backoff_s: float = 5.0, *,
                 initial_backoff_s: float = 0.25, lost_after_s: float = 2.0,
                 stable_after_s: float = 10.0,
                 read_timeout_s: float = 0.5, sleep: Callable[[float], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._factory = source_factory
        self.max_backoff_s = max_backoff_s
        self.initial_backoff_s = min(initial_backoff_s, max_backoff_s)
        self.lost_after_s = lost_after_s
        self.read_timeout_s = read_timeout_s
        self._clock = clock
        self._stop = threading.Event()
        self._sleep = sleep or (lambda s: self._stop.wait(s) and None)
        self._cond = threading.Condition()
        self._source: Source | None = None
        self._last: Source | None = None  # for size/fps/description while lost
        self._threads: list[threading.Thread] = []  # reconnect episodes, joined by close()
        self._none_since: float | None = None
        self.decode_ms = 0.0  # the camera's decode of the frame read() returned last
        self._lost_at = 0.0
        self.stable_after_s = stable_after_s
        self._live_since = 0.0
        self._last_delay = 0.0
        self._state = "live"
        self.reconnects = 0
        self.attempts = 0
        self.last_error = ""

    def open(self) -> None:
        source = self._factory()
        source.open()
        with self._cond:
            self._source = self._last = source
            self._state = "live"
            self._live_since = self._clock()

    @property
    def state(self) -> str:
        """'live', 'lost' (waiting before the next attempt) or 'reconnecting'."""
        return self._state

    def read(self) -> np.ndarray | None:
        with self._cond:
            source = self._source
            if source is None:
                # Lost: wait (bounded) for the reconnect thread instead of letting the caller
                # spin; the next read() uses the source that came back.
                self._cond.wait_for(lambda: self._source is not None or self._stop.is_set(),
                                    timeout=self.read_timeout_s)
                return None
        try:
            frame = source.read()
        except SourceEnded:
            raise
        except Exception as exc:  # any failure of a live device means "lost", never a crash
            self._lose(source, f"{type(exc).__name__}: {exc}")
            return None
        if frame is not None:
            self._none_since = None
            self.decode_ms = float(getattr(source, "decode_ms", 0.0))
            return frame
        now = self._clock()
        if self._none_since is None:
            self._none_since = now
        elif now - self._none_since >= self.lost_after_s:
            self._lose(source, f"no frame for {now - self._none_since:.1f} s")
        return None

    def _lose(self, source: Source, reason: str) -> None:
        with self._cond:
            if self._source is not source or self._stop.is_set():
                return
            self._source = None
            self._state = "lost"
            self.last_error = reason
            self._none_since = None
            self._lost_at = self._clock()
            # A source that fails again soon after coming back (a flapping USB port, a camera
            # another app grabs) keeps the longer backoff instead of starting over.
            flapping = self._lost_at - self._live_since < self.stable_after_s
            first_delay = (min(self._last_delay * 2, self.max_backoff_s)
                           if flapping and self._last_delay else self.initial_backoff_s)
            log.warning("%s lost (%s); retrying with backoff up to %.1f s",
                        source.description, reason, self.max_backoff_s)
            thread = threading.Thread(target=self._reconnect, args=(source, first_delay),
                                      name="lf-reconnect", daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _reconnect(self, dead: Source, delay: float) -> None:
        _close_quietly(dead)
        while not self._stop.is_set():
            self._sleep(delay)
            if self._stop.is_set():
                return
            self._state = "reconnecting"
            self.attempts += 1
            try:
                source = self._factory()
                source.open()
            except Exception as exc:  # the device is still gone: wait longer and try again
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._state = "lost"
                delay = min(delay * 2, self.max_backoff_s)
                log.info("reconnect attempt %d failed (%s); next in %.2f s",
                         self.attempts, self.last_error, delay)
                continue
            with self._cond:
                if self._stop.is_set():
                    _close_quietly(source)
                    return
                self._source = self._last = source
                self._state = "live"
                self.reconnects += 1
                self._live_since = self._clock()
                self._last_delay = delay
                self._cond.notify_all()
            log.warning("%s is back after %.1f s (attempt %d)", source.description,
                        self._clock() - self._lost_at, self.attempts)
            return

    def close(self) -> None:
        with self._cond:
            self._stop.set()
            self._cond.notify_all()
            source, self._source = self._source, None
            threads, self._threads = self._threads, []
        deadline = time.monotonic() + 1.0
        for thread in threads:
            thread.join(timeout=max(deadline - time.monotonic(), 0.01))
            if thread.is_alive():
                log.warning("a reconnect attempt is still blocked in the driver; it will close "
                            "the device when it returns")
        if source is not None:
            source.close()

    @property
    def size(self) -> tuple[int, int]:
        return self._last.size if self._last is not None else (0, 0)

    @property
    def fps(self) -> float:
        return self._last.fps if self._last is not None else 0.0

    @property
    def description(self) -> str:
        inner = self._last.description if self._last is not None else "source"
        return inner if self._state == "live" else f"{inner} ({self._state})"

    @property
    def is_live(self) -> bool:
        return self._last.is_live if self._last is not None else True


def _close_quietly(source: Source) -> None:
    """Close a source that already failed; a second failure is logged, not raised."""
    try:
        source.close()
    except Exception as exc:  # the device is already gone; closing it may fail too
        log.warning("closing the failed %s raised %s: %s", source.description,
                    type(exc).__name__, exc)


# ----- choosing a source from the config -----------------------------------------------------


