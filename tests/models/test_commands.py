"""--download-models / --verify-models behaviour against a test catalog on 127.0.0.1."""

from __future__ import annotations

import io
import os

import pytest

from livefusion.config import AppConfig
from livefusion.models.commands import download_models, licence_notice, verify_models
from livefusion.models.store import load_catalog
from tests.helpers_http import LocalServer
from tests.face.onnx_builders import identity_inswapper
from tests.store_env import PLAIN, serve_test_catalog


@pytest.fixture
def env(tmp_path, no_thread_leak):
    with LocalServer() as server:
        yield serve_test_catalog(server, tmp_path)


def _config() -> AppConfig:
    """Roles pointed at the test catalog's ids."""
    config = AppConfig()
    config.models.detector, config.models.embedder, config.models.swapper = "a", "b", "plain"
    return config


def test_default_set_is_what_the_roles_need(env):
    out = io.StringIO()
    assert download_models(_config(), None, out, store=env.store()) == 0
    text = out.getvalue()
    for model_id in ("a", "b", "plain"):
        assert f"ok       {model_id:<20} {env.root / (model_id + '.onnx')}" in text
    assert "3 of 3 models ready" in text
    assert not (env.root / "multi.onnx").exists()


def test_all_downloads_every_model(env):
    out = io.StringIO()
    assert download_models(_config(), ["all"], out, store=env.store()) == 0
    assert sorted(p.name for p in env.root.glob("*.onnx")) == ["a.onnx", "b.onnx", "multi.onnx",
                                                               "plain.onnx"]


def test_offline_prints_one_message_per_missing_file(env):
    env.server.stop()
    out = io.StringIO()
    assert download_models(_config(), ["plain", "multi"], out, store=env.store()) == 1
    text = out.getvalue()
    assert text.count("error: model ") == 2
    assert f"save it as {(env.root / 'plain.onnx').resolve()}" in text
    assert f"save it as {(env.root / 'multi.onnx').resolve()}" in text
    assert env.server.url("/alt.onnx") in text
    assert "0 of 2 models ready" in text


def test_unknown_id_is_reported_with_known_ids(env):
    out = io.StringIO()
    assert download_models(_config(), ["nope"], out, store=env.store()) == 1
    assert "'nope' is not in the catalog; known ids: plain, multi, pack, a, b" in out.getvalue()


def test_verify_reports_ok_missing_and_bad_with_the_fix(env):
    store = env.store()
    store.ensure("plain")
    store.ensure("a")
    (env.root / "a.onnx").write_bytes(b"truncated")
    (env.root / "b.onnx").unlink()
    out = io.StringIO()
    assert verify_models(_config(), out, store=store) == 1
    lines = out.getvalue()
    assert f"ok       plain                {env.root / 'plain.onnx'} (sha256 verified" in lines
    assert f"BAD      a                    {env.root / 'a.onnx'}: size 9 bytes" in lines
    assert "fix: delete it and run run_live.py --download-models, or place a good copy" in lines
    assert f"missing  b                    {env.root / 'b.onnx'}" in lines
    assert "multi" not in lines  # neither needed nor present


def test_verify_all_good_and_checks_overrides(env, tmp_path):
    store = env.store()
    download_models(_config(), None, io.StringIO(), store=store)
    config = _config()
    config.models.overrides = {"swapper": str(identity_inswapper(tmp_path / "mine.onnx"))}
    out = io.StringIO()
    assert verify_models(config, out, store=store) == 0
    assert "--model swapper=" in out.getvalue() and "contract checked" in out.getvalue()
    config.models.overrides = {"embedder": str(tmp_path / "mine.onnx")}
    out = io.StringIO()
    assert verify_models(config, out, store=store) == 1
    assert "BAD      --model embedder=" in out.getvalue() and "arcface contract" in out.getvalue()


def test_rehash_catches_a_changed_file_even_with_a_fresh_stamp(env):
    store = env.store()
    path = store.ensure("plain")
    stat = path.stat()
    altered = bytearray(PLAIN)
    altered[0] ^= 1
    path.write_bytes(bytes(altered))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime as stamped
    assert store.verify("plain").ok  # the quick check trusts the stamp...
    out = io.StringIO()
    assert verify_models(_config(), out, store=store) == 1  # ...--verify-models re-hashes
    assert "BAD      plain" in out.getvalue()


def test_licence_notice_tells_and_goes_on():
    out = io.StringIO()
    entry = load_catalog().get("inswapper_128")
    assert licence_notice(out)(entry) is True
    assert "inswapper_128" in out.getvalue() and "non-commercial" in out.getvalue()
