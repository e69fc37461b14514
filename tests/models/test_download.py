"""Downloads against a real HTTP server on 127.0.0.1 serving bytes the tests create."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from livefusion.models.download import (
    DownloadError, DownloadOptions, RetryPolicy, UrlPolicyError, check_url, download_file,
    part_path,
)
from tests.helpers_http import LocalServer

SIZE = 300_000
DATA = os.urandom(SIZE)
SHA = hashlib.sha256(DATA).hexdigest()


class Sleeps:
    """Injected sleep: records the backoff delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def server(no_thread_leak):
    with LocalServer() as srv:
        yield srv


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def options(sleeps):
    return DownloadOptions(show_bar=False, chunk_size=32 * 1024, timeout_s=5,
                           retry=RetryPolicy(attempts=3, base_delay=0.5, sleep=sleeps))


def test_progress_is_reported_to_callback_and_bar(server, tmp_path, sleeps):
    url = server.add("/m.onnx", DATA)
    calls = []
    bar = io.StringIO()
    opts = DownloadOptions(progress=lambda done, total: calls.append((done, total)),
                           show_bar=True, bar_file=bar, chunk_size=32 * 1024,
                           retry=RetryPolicy(sleep=sleeps))
    dest = download_file([url], tmp_path / "m.onnx", size=SIZE, sha256=SHA, options=opts)
    assert dest.read_bytes() == DATA
    assert len(calls) >= SIZE // (32 * 1024)
    assert calls[-1] == (SIZE, SIZE)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert "m.onnx" in bar.getvalue() and "B/s" in bar.getvalue()
    assert not part_path(dest, SHA).exists()


def test_cut_transfer_resumes_with_range_and_completes(server, tmp_path, options, sleeps):
    url = server.add("/m.onnx", DATA, cut_after=100_000, cut_times=2)
    dest = download_file([url], tmp_path / "m.onnx", size=SIZE, sha256=SHA, options=options)
    assert dest.read_bytes() == DATA
    assert [r.range for r in server.requests] == [None, "bytes=100000-", "bytes=200000-"]
    assert sleeps.delays == [0.5, 0.5]  # progress was made each time: no growing backoff


def test_server_ignoring_range_restarts_from_zero(server, tmp_path, options):
    url = server.add("/m.onnx", DATA, ignore_range=True)
    dest = tmp_path / "m.onnx"
    part_path(dest, SHA).write_bytes(DATA[:50_000])
    download_file([url], dest, size=SIZE, sha256=SHA, options=options)
    assert dest.read_bytes() == DATA
    assert server.requests[0].range == "bytes=50000-"


def test_leftover_part_with_wrong_bytes_is_discarded_then_fetched_clean(server, tmp_path, options):
    url = server.add("/m.onnx", DATA)
    dest = tmp_path / "m.onnx"
    part_path(dest, SHA).write_bytes(b"\0" * 1000)  # not the file's first bytes
    download_file([url], dest, size=SIZE, sha256=SHA, options=options)
    assert dest.read_bytes() == DATA
    assert [r.range for r in server.requests] == ["bytes=1000-", None]


def test_leftover_part_longer_than_the_file_is_discarded(server, tmp_path, options):
    url = server.add("/m.onnx", DATA)
    dest = tmp_path / "m.onnx"
    part_path(dest, SHA).write_bytes(b"x" * (SIZE + 10))
    download_file([url], dest, size=SIZE, sha256=SHA, options=options)
    assert dest.read_bytes() == DATA
    assert [r.range for r in server.requests] == [None]


def test_sha256_mismatch_leaves_no_file_and_keeps_a_good_one(server, tmp_path, options):
    url = server.add("/m.onnx", os.urandom(SIZE))  # right size, wrong bytes
    dest = tmp_path / "m.onnx"
    dest.write_bytes(b"the good copy already here")
    with pytest.raises(DownloadError, match="sha256") as err:
        download_file([url], dest, size=SIZE, sha256=SHA, options=options)
    assert url in str(err.value)
    assert dest.read_bytes() == b"the good copy already here"
    assert not part_path(dest, SHA).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_sha256_mismatch_without_previous_file_leaves_nothing(server, tmp_path, options):
    url = server.add("/m.onnx", os.urandom(SIZE))
    with pytest.raises(DownloadError, match="expected " + SHA):
        download_file([url], tmp_path / "m.onnx", size=SIZE, sha256=SHA, options=options)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("status, retried", [(404, 0), (403, 0), (500, 3), (503, 3)])
def test_mirror_is_used_when_the_primary_fails(server, tmp_path, options, sleeps, status, retried):
    primary = server.add("/primary.onnx", DATA, status=status)
    mirror = server.add("/mirror.onnx", DATA)
    dest = download_file([primary, mirror], tmp_path / "m.onnx", size=SIZE, sha256=SHA,
                         options=options)
    assert dest.read_bytes() == DATA
    paths = [r.path for r in server.requests]
    assert paths.count("/primary.onnx") == max(1, retried)
    assert paths[-1] == "/mirror.onnx"
    assert len(sleeps.delays) == max(0, retried - 1)


def test_transient_error_then_success_on_the_same_url(server, tmp_path, options, sleeps):
    url = server.add("/m.onnx", DATA, status=503, status_times=1)
    download_file([url], tmp_path / "m.onnx", size=SIZE, sha256=SHA, options=options)
    assert len(server.requests) == 2 and sleeps.delays == [0.5]


def test_backoff_grows_exponentially_and_is_bounded():
    policy = RetryPolicy(attempts=6, base_delay=1.0, max_delay=5.0)
    assert [policy.delay(k) for k in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_offline_gives_up_after_bounded_retries_naming_each_url(tmp_path, options, sleeps,
                                                              no_thread_leak):
    with LocalServer() as srv:
        url_a, url_b = srv.url("/a.onnx"), srv.url("/b.onnx")
    with pytest.raises(DownloadError) as err:
        download_file([url_a, url_b], tmp_path / "m.onnx", size=SIZE, sha256=SHA, options=options)
    message = str(err.value)
    assert url_a in message and url_b in message and "gave up after 3 tries" in message
    assert len(sleeps.delays) == 4  # 2 waits per URL, none after the last try
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url, allowed", [
    ("https://github.com/x/y/releases/download/v1/m.onnx", True),
    ("http://127.0.0.1:8000/m.onnx", True),
    ("http://127.9.9.9/m.onnx", True),
    ("http://localhost:9/m.onnx", True),
    ("http://[::1]:9/m.onnx", True),
    ("http://example.com/m.onnx", False),
    ("http://10.0.0.1/m.onnx", False),
    ("http://localhost.example.com/m.onnx", False),
    ("ftp://example.com/m.onnx", False),
    ("file:///etc/passwd", False),
    ("https:///no-host", False),
])
def test_url_policy(url, allowed):
    if allowed:
        check_url(url)
    else:
        with pytest.raises(UrlPolicyError, match="refusing"):
            check_url(url)


def test_non_https_url_is_refused_before_any_request(server, tmp_path, options):
    good = server.add("/m.onnx", DATA)
    with pytest.raises(UrlPolicyError):
        download_file([good, "http://example.com/m.onnx"], tmp_path / "m.onnx", size=SIZE,
                      sha256=SHA, options=options)
    assert server.requests == []


def test_redirect_to_plain_http_elsewhere_is_refused_and_mirror_used(server, tmp_path, options):
    bad = server.add("/r.onnx", redirect_to="http://example.com/m.onnx")
    mirror = server.add("/m.onnx", DATA)
    dest = download_file([bad, mirror], tmp_path / "m.onnx", size=SIZE, sha256=SHA,
                         options=options)
    assert dest.read_bytes() == DATA


def test_redirect_to_loopback_is_followed(server, tmp_path, options):
    target = server.add("/m.onnx", DATA)
    redirect = server.add("/r.onnx", redirect_to=target)
    dest = download_file([redirect], tmp_path / "m.onnx", size=SIZE, sha256=SHA, options=options)
    assert dest.read_bytes() == DATA
