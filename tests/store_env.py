"""A test model catalog served from 127.0.0.1: a plain file with a mirror, a model with two
accepted copies, and a zip pack with two members. Shared by the store and command tests."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

from livefusion.models.download import DownloadOptions, RetryPolicy
from livefusion.models.store import ModelStore, load_catalog
from tests.helpers_http import LocalServer

PLAIN = os.urandom(120_000)
ALT = os.urandom(110_000)
MEMBER_A = os.urandom(90_000)
MEMBER_B = os.urandom(70_000)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_zip(members: dict[str, bytes], folder: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(folder + name, data)
    return buf.getvalue()


PACK = make_zip({"a.onnx": MEMBER_A, "b.onnx": MEMBER_B, "extra.onnx": b"unused"}, folder="pack/")


def catalog_text(server: LocalServer, *, member_b_sha: str = sha(MEMBER_B)) -> str:
    return f"""
[models.plain]
role = "swapper"
file = "plain.onnx"
licence = "free"
noncommercial = false
[[models.plain.sources]]
name = "primary copy"
urls = ["{server.url('/gone.onnx')}", "{server.url('/plain.onnx')}"]
size = {len(PLAIN)}
sha256 = "{sha(PLAIN)}"

[models.multi]
role = "swapper"
file = "multi.onnx"
licence = "research only"
noncommercial = true
[[models.multi.sources]]
name = "first copy"
urls = ["{server.url('/missing-first.onnx')}"]
size = {len(PLAIN)}
sha256 = "{sha(PLAIN)}"
[[models.multi.sources]]
name = "second copy"
urls = ["{server.url('/alt.onnx')}"]
size = {len(ALT)}
sha256 = "{sha(ALT)}"

[models.pack]
role = "pack"
file = "pack.zip"
licence = "research only"
noncommercial = true
[[models.pack.sources]]
name = "upstream"
urls = ["{server.url('/pack.zip')}"]
size = {len(PACK)}
sha256 = "{sha(PACK)}"

[models.a]
role = "detector"
file = "a.onnx"
licence = "research only"
noncommercial = true
[[models.a.sources]]
name = "pack"
pack = "pack"
member = "a.onnx"
size = {len(MEMBER_A)}
sha256 = "{sha(MEMBER_A)}"

[models.b]
role = "embedder"
file = "b.onnx"
licence = "research only"
noncommercial = true
[[models.b.sources]]
name = "pack"
pack = "pack"
member = "b.onnx"
size = {len(MEMBER_B)}
sha256 = "{member_b_sha}"
"""


class Env:
    def __init__(self, server: LocalServer, root: Path, catalog_path: Path) -> None:
        self.server, self.root, self.catalog_path = server, root, catalog_path
        self.licence_asked: list[str] = []
        self.sleeps: list[float] = []

    def store(self, *, agree: bool = True, **kwargs) -> ModelStore:
        def hook(entry):
            self.licence_asked.append(entry.id)
            return agree
        options = DownloadOptions(show_bar=False, chunk_size=16 * 1024,
                                  retry=RetryPolicy(attempts=2, sleep=self.sleeps.append))
        return ModelStore(self.root, load_catalog(self.catalog_path), download=options,
                          licence_hook=hook, **kwargs)


def serve_test_catalog(server: LocalServer, tmp_path: Path) -> Env:
    """Register the test files on `server` and write the catalog; models go to tmp_path/models."""
    server.add("/plain.onnx", PLAIN)
    server.add("/alt.onnx", ALT)
    server.add("/pack.zip", PACK)
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(catalog_text(server))
    return Env(server, tmp_path / "models", catalog)
