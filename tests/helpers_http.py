"""A real HTTP file server on 127.0.0.1 for download tests.

It serves bytes the test registers, honours Range requests, and can be told per path to cut a
transfer after N bytes, to answer with an error status, to ignore Range, or to redirect.
Use it as a context manager so its threads are always shut down:

    with LocalServer() as server:
        url = server.add("/a.bin", data)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Rule:
    data: bytes = b""
    cut_after: int | None = None  # close the connection after this many bytes of a body...
    cut_times: int = 1  # ...this many times
    status: int | None = None  # answer with this status instead of the file...
    status_times: int | None = None  # ...this many times (None = always)
    ignore_range: bool = False
    redirect_to: str = ""


@dataclass
class Request:
    path: str
    range: str | None


@dataclass
class _State:
    rules: dict[str, Rule] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
        return

    def do_GET(self):  # noqa: N802 - stdlib name
        state = self.server.state
        with state.lock:
            state.requests.append(Request(self.path, self.headers.get("Range")))
            rule = state.rules.get(self.path)
            if rule is None:
                self.send_error(404)
                return
            status = self._take_status(rule)
            cut = self._take_cut(rule)
        if rule.redirect_to:
            self.send_response(302)
            self.send_header("Location", rule.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if status is not None:
            self.send_error(status)
            return
        self._send_body(rule, cut)

    @staticmethod
    def _take_status(rule: Rule) -> int | None:
        if rule.status is None or rule.status_times == 0:
            return None
        if rule.status_times is not None:
            rule.status_times -= 1
        return rule.status

    @staticmethod
    def _take_cut(rule: Rule) -> int | None:
        if rule.cut_after is None or rule.cut_times <= 0:
            return None
        rule.cut_times -= 1
        return rule.cut_after

    def _send_body(self, rule: Rule, cut: int | None) -> None:
        data, start = rule.data, 0
        requested = self.headers.get("Range")
        if requested and not rule.ignore_range and requested.startswith("bytes="):
            start = int(requested[6:].split("-", 1)[0])
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if cut is not None:
            body = body[:cut]
            self.close_connection = True
        self.wfile.write(body)
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True

    def __init__(self, state: _State):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class LocalServer:
    """Starts on enter, stops (and joins every thread) on exit or `stop()`."""

    def __init__(self) -> None:
        self.state = _State()
        self._server = _Server(self.state)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="test-http-server", kwargs={"poll_interval": 0.05})
        self._running = False

    def __enter__(self) -> "LocalServer":
        self._thread.start()
        self._running = True
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Shut down; afterwards connections to the port are refused (the "offline" case)."""
        if self._running:
            self._server.shutdown()
            self._thread.join()
            self._running = False
        self._server.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, data: bytes = b"", **rule) -> str:
        with self.state.lock:
            self.state.rules[path] = Rule(data=data, **rule)
        return self.url(path)

    @property
    def requests(self) -> list[Request]:
        with self.state.lock:
            return list(self.state.requests)
