"""HTTP(S) downloader for model files: progress, resume, retries, mirrors, verification.

`download_file(urls, dest, size=..., sha256=...)` fetches into `<dest>.<sha>.part`, resuming a
leftover part with an HTTP Range request (a server that ignores Range sends the whole file and
the part is rewritten from byte 0), retries transient failures with bounded exponential backoff,
moves on to the next URL (mirror) when one fails, checks size and sha256, and only then renames
the part over `dest` with `os.replace`. A file that fails verification is deleted and never
replaces an existing `dest`.

URL policy: only https URLs are fetched, and every redirect is checked against the same rule.
The single exception is plain http to a loopback host (127.0.0.0/8, localhost, ::1), which
never leaves the machine and lets the tests serve files from a local server.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import logging
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Sequence
from urllib.parse import urlsplit

from tqdm import tqdm

from livefusion.errors import LiveFusionError

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, "int | None"], None]
"""progress(bytes_done, bytes_total_or_None), called as bytes arrive (the Qt UI hooks in here)."""

USER_AGENT = "LiveFusion-model-store/1"
HASH_CHUNK = 1 << 20


class DownloadError(LiveFusionError, RuntimeError):
    """Every URL failed; the message lists what happened at each one."""


class UrlPolicyError(DownloadError):
    """A URL (or a redirect target) is not https and not loopback http."""


class VerificationError(DownloadError):
    """The bytes arrived but their size or sha256 is not the expected one."""


class _Retryable(Exception):
    """A transient failure (connection, timeout, cut transfer, 5xx): try the same URL again."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff per URL: `attempts` tries in a row without progress, waiting
    base_delay * 2**k (at most max_delay) between them. `sleep` is injectable for tests."""

    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 20.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, failures: int) -> float:
        return min(self.max_delay, self.base_delay * (2 ** max(0, failures - 1)))


@dataclass(frozen=True)
class DownloadOptions:
    """How downloads behave; the store passes one of these to every download."""

    progress: ProgressCallback | None = None
    show_bar: bool = True
    bar_file: IO[str] | None = None  # None = tqdm's default (stderr)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_s: float = 30.0
    chunk_size: int = 256 * 1024


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> None:
    """Raise UrlPolicyError unless `url` is https, or http to a loopback host (tests only)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host:
        raise UrlPolicyError(f"refusing {url!r}: no host in the URL")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and is_loopback_host(host):
        return
    raise UrlPolicyError(
        f"refusing {url!r}: model downloads must use https (plain http is only allowed to "
        "loopback hosts such as 127.0.0.1)"
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(HASH_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def part_path(dest: Path, sha256: str | None) -> Path:
    """Where the partial download of `dest` lives. The sha prefix keeps two accepted copies of
    one file (different bytes, same name) from resuming into each other."""
    tag = f".{sha256[:12]}" if sha256 else ""
    return dest.with_name(f"{dest.name}{tag}.part")


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects (GitHub releases redirect to a CDN) only to URLs the policy allows."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401 (stdlib API)
        check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_CheckedRedirects())


class _Bar(tqdm):
    """tqdm without its process-wide monitor thread (not needed for byte counts, and a thread
    that outlives the download)."""

    monitor_interval = 0


class _Progress:
    """One tqdm bar (size, rate, time left) plus the caller's callback for a whole download."""

    def __init__(self, label: str, total: int | None, options: DownloadOptions) -> None:
        self._callback = options.progress
        self._total = total
        self._bar = _Bar(
            total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024,
            file=options.bar_file, disable=not options.show_bar, leave=True, dynamic_ncols=True,
        )

    def at(self, done: int) -> None:
        self._bar.n = done
        self._bar.refresh()
        self._report(done)

    def advance(self, n: int) -> None:
        self._bar.update(n)
        self._report(self._bar.n)

    def close(self) -> None:
        self._bar.close()

    def _report(self, done: int) -> None:
        if self._callback is not None:
            self._callback(done, self._total)


def _content_range_start(value: str | None) -> int | None:
    """'bytes 100-199/200' -> 100."""
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None


def _fetch_into_part(url: str, part: Path, size: int | None, options: DownloadOptions,
                     bar: _Progress) -> None:
    """One HTTP request that appends to (or rewrites) `part`. Raises _Retryable on transient
    trouble, urllib.error.HTTPError on a definite refusal, UrlPolicyError on a bad redirect."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        log.info("discarding %s: longer than the expected %d bytes", part, size)
        part.unlink()
        offset = 0
    if size is not None and offset == size:
        return  # a complete leftover part: verification decides whether it is good
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = _opener().open(request, timeout=options.timeout_s)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            part.unlink()
            raise _Retryable("the server refused to resume; starting again from byte 0") from None
        if exc.code >= 500 or exc.code in (408, 429):
            raise _Retryable(f"HTTP {exc.code} {exc.reason}") from None
        raise
    except (OSError, http.client.HTTPException) as exc:  # URLError, refused, timeout, TLS
        raise _Retryable(str(getattr(exc, "reason", exc))) from None
    with response:
        mode = "ab"
        if offset and response.status == 206:
            if _content_range_start(response.headers.get("Content-Range")) != offset:
                part.unlink()
                raise _Retryable("the server answered the resume with another range; restarting")
            log.info("resuming %s at byte %d", url, offset)
        elif offset:
            log.info("%s ignored the Range request; downloading from byte 0", url)
            mode, offset = "wb", 0
        bar.at(offset)
        _copy_body(response, part, mode, options, bar)
    got = part.stat().st_size
    if size is not None and got < size:
        raise _Retryable(f"transfer cut off at byte {got} of {size}")


def _copy_body(response, part: Path, mode: str, options: DownloadOptions, bar: _Progress) -> None:
    """Stream the body into `part`. Read failures are transient; write failures (disk full)
    propagate as they are."""
    with part.open(mode) as fh:
        while True:
            try:
                block = response.read(options.chunk_size)
            except (OSError, http.client.HTTPException) as exc:
                fh.flush()
                raise _Retryable(f"transfer interrupted: {exc!r}") from None
            if not block:
                break
            fh.write(block)
            bar.advance(len(block))
        fh.flush()
        os.fsync(fh.fileno())


def _verify_part(part: Path, size: int | None, sha256: str | None) -> None:
    got_size = part.stat().st_size
    if size is not None and got_size != size:
        part.unlink()
        raise VerificationError(f"size {got_size} bytes, expected {size}")
    if sha256:
        got = sha256_file(part)
        if got != sha256.lower():
            part.unlink()
            raise VerificationError(f"sha256 {got}, expected {sha256.lower()}")


def _download_from(url: str, dest: Path, part: Path, size: int | None, sha256: str | None,
                   options: DownloadOptions, bar: _Progress) -> None:
    """Fetch `url` into `part` with retries and verify it; raises on failure (part removed when
    its bytes are wrong)."""
    check_url(url)
    retry = options.retry
    failures = 0
    restarted_clean = False
    while True:
        before = part.stat().st_size if part.exists() else 0
        try:
            _fetch_into_part(url, part, size, options, bar)
        except _Retryable as exc:
            now = part.stat().st_size if part.exists() else 0
            failures = 0 if now > before else failures + 1
            if failures >= retry.attempts:
                raise DownloadError(f"{exc} (gave up after {retry.attempts} tries)") from None
            delay = retry.delay(max(failures, 1))
            log.warning("download of %s: %s; retrying in %.1f s", url, exc, delay)
            retry.sleep(delay)
            continue
        resumed = before > 0
        try:
            _verify_part(part, size, sha256)
            return
        except VerificationError:
            if resumed and not restarted_clean:
                # The leftover part may have come from other bytes: one clean try.
                log.warning("resumed download of %s failed verification; starting over", dest.name)
                restarted_clean = True
                continue
            raise


def download_file(urls: Sequence[str], dest: Path, *, size: int | None, sha256: str | None,
                  options: DownloadOptions | None = None, label: str = "") -> Path:
    """Download `dest` from the first URL that delivers the expected bytes.

    Tries each URL in order (primary, then mirrors), verifies size and sha256, then atomically
    replaces `dest`. Raises UrlPolicyError for a disallowed URL and DownloadError (listing each
    URL's failure) when none worked; `dest` is untouched in every failure case.
    """
    options = options or DownloadOptions()
    dest = Path(dest)
    if not urls:
        raise DownloadError(f"no URL to download {dest.name} from")
    for url in urls:
        check_url(url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest, sha256)
    bar = _Progress(label or dest.name, size, options)
    failures: list[str] = []
    try:
        for url in urls:
            try:
                _download_from(url, dest, part, size, sha256, options, bar)
            except urllib.error.HTTPError as exc:
                failures.append(f"{url}: HTTP {exc.code} {exc.reason}")
                continue
            except DownloadError as exc:  # includes a redirect the URL policy refused
                failures.append(f"{url}: {exc}")
                continue
            os.replace(part, dest)
            log.info("downloaded and verified %s from %s", dest, url)
            return dest
    finally:
        bar.close()
    raise DownloadError(f"could not download {dest.name}:\n  " + "\n  ".join(failures))
