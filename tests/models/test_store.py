"""The model store: catalog vs MODELS.md, verification, downloads, packs, guidance."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from livefusion.config import AppConfig
from livefusion.models.download import part_path
from livefusion.models.roles import role_model_ids
from livefusion.models.store import (
    CatalogError, ModelUnavailableError, load_catalog, models_dir,
)
from tests.conftest import ROOT, SHARED
from tests.helpers_http import LocalServer
from tests.store_env import (
    ALT, MEMBER_A, MEMBER_B, PLAIN, catalog_text, serve_test_catalog, sha,
)

REQUIRED_IDS = {"det_10g", "w600k_r50", "2d106det", "buffalo_l", "inswapper_128",
                "inswapper_128_fp16", "arcface_w600k_r50", "retinaface_10g", "yunet_2023mar",
                "gfpgan_1.4", "gpen_bfr_256", "gpen_bfr_512"}


# --- the real catalog ----------------------------------------------------------------------------

def _models_md_rows(text: str) -> list[tuple[str, int, str]]:
    """(file name, bytes, sha256) of every row of MODELS.md's catalog table."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"[0-9a-f]{64}", cells[3]):
            name = cells[0].split()[0]
            rows.append((name, int(cells[2].replace(",", "")), cells[3]))
    return rows


def test_catalog_holds_every_row_of_models_md():
    models_md = SHARED / "MODELS.md"
    if not models_md.is_file():
        pytest.skip(f"{models_md} is missing")
    rows = _models_md_rows(models_md.read_text())
    assert len(rows) == 14
    catalog = load_catalog()
    published = {(e.file, s.size, s.sha256) for e in catalog.entries.values() for s in e.sources}
    missing = [row for row in rows if row not in published]
    assert not missing, f"catalog lacks (file, size, sha256): {missing}"


def test_catalog_entries_are_complete():
    catalog = load_catalog()
    assert REQUIRED_IDS <= set(catalog.entries)
    for entry in catalog.entries.values():
        assert entry.role in ("detector", "landmarker", "embedder", "swapper", "enhancer", "pack")
        assert entry.licence and entry.sources
        if entry.role != "pack":
            assert entry.file.endswith(".onnx") and entry.contract is not None
            assert entry.contract.inputs and entry.contract.outputs and entry.contract.std > 0
        for source in entry.sources:
            assert source.urls or source.pack
            assert all(url.startswith("https://") for url in source.urls)
    for mid in ("det_10g", "w600k_r50", "2d106det"):
        assert catalog.get(mid).pack == "buffalo_l"
    assert [s.name for s in catalog.get("inswapper_128").sources] == [
        "insightface (deep-live-cam copy)", "facefusion re-export"]
    ff = catalog.get("gfpgan_1.4").sources[0].urls
    assert "github.com/facefusion" in ff[0] and "huggingface.co/facefusion" in ff[1]


def test_configured_defaults_are_in_the_catalog():
    catalog = load_catalog()
    config = AppConfig()
    for role, mid in role_model_ids(config).items():
        assert catalog.get(mid).role == role
    for enhancer in ("gfpgan_1.4", "gpen_bfr_256", "gpen_bfr_512"):
        assert catalog.get(enhancer).role == "enhancer"


def test_unknown_id_lists_the_known_ones():
    with pytest.raises(CatalogError, match="known ids: .*inswapper_128"):
        load_catalog().get("inswapper_512")


def test_models_dir_precedence(monkeypatch, tmp_path):
    config = AppConfig()
    monkeypatch.delenv("LIVEFUSION_MODELS", raising=False)
    assert models_dir(config) == ROOT / "models"  # a checkout keeps its weights in its own models/
    monkeypatch.setenv("LIVEFUSION_MODELS", str(tmp_path / "env"))
    assert models_dir(config) == tmp_path / "env"
    config.models.dir = str(tmp_path / "cfg")
    assert models_dir(config) == tmp_path / "cfg"


# --- a store over a test catalog served from 127.0.0.1 ------------------------------------------

@pytest.fixture
def env(tmp_path, no_thread_leak):
    with LocalServer() as server:
        yield serve_test_catalog(server, tmp_path)


def test_ensure_downloads_verifies_and_then_needs_no_network(env):
    store = env.store()
    path = store.ensure("plain")
    assert path == env.root / "plain.onnx" and path.read_bytes() == PLAIN
    assert [r.path for r in env.server.requests] == ["/gone.onnx", "/plain.onnx"]  # mirror used
    assert env.licence_asked == []  # not a non-commercial model
    status = store.verify("plain")
    assert status.ok and status.detail == "verified earlier"
    assert store.ensure("plain") == path
    assert len(env.server.requests) == 2


def test_second_accepted_source_is_used_and_named(env):
    store = env.store()
    path = store.ensure("multi")
    assert path.read_bytes() == ALT
    assert store.verify("multi", full=True).source == "second copy"
    assert env.licence_asked == ["multi"]


def test_declined_licence_downloads_nothing(env):
    store = env.store(agree=False)
    with pytest.raises(ModelUnavailableError, match="declined") as err:
        store.ensure("multi")
    assert str(env.root / "multi.onnx") in str(err.value)
    assert env.server.requests == []


def test_pack_member_is_extracted_and_verified_with_its_siblings(env):
    store = env.store()
    path = store.ensure("a")
    assert path == env.root / "a.onnx" and path.read_bytes() == MEMBER_A
    assert (env.root / "b.onnx").read_bytes() == MEMBER_B  # same pack, extracted once
    assert not (env.root / "extra.onnx").exists()  # not in the catalog: not extracted
    assert not (env.root / "pack.zip").exists()  # pack removed after extraction
    assert env.licence_asked == ["pack"]
    assert store.verify("b", full=True).ok
    assert [r.path for r in env.server.requests] == ["/pack.zip"]


def test_pack_kept_on_request_and_manual_pack_copy_used_offline(env):
    store = env.store(keep_packs=True)
    store.ensure("a")
    assert (env.root / "pack.zip").is_file()
    (env.root / "a.onnx").unlink()
    env.server.stop()
    assert store.ensure("a", download=False).read_bytes() == MEMBER_A


def test_pack_member_not_matching_the_catalog_is_refused(env):
    env.catalog_path.write_text(catalog_text(env.server, member_b_sha="0" * 64))
    store = env.store()
    with pytest.raises(ModelUnavailableError, match="b.onnx inside pack does not match"):
        store.ensure("b")
    assert not (env.root / "b.onnx").exists()
    assert not list(env.root.glob("*.part"))


def test_offline_message_gives_urls_and_exact_path(env):
    env.server.stop()
    store = env.store()
    with pytest.raises(ModelUnavailableError) as err:
        store.ensure("plain")
    message = str(err.value)
    assert env.server.url("/plain.onnx") in message and env.server.url("/gone.onnx") in message
    assert f"save it as {(env.root / 'plain.onnx').resolve()}" in message
    assert f"{len(PLAIN):,} bytes" in message and sha(PLAIN) in message
    with pytest.raises(ModelUnavailableError) as err:
        store.ensure("a")
    assert env.server.url("/pack.zip") in str(err.value)
    assert f"save it as {(env.root / 'pack.zip').resolve()}" in str(err.value)


def test_truncated_file_on_disk_is_rejected_with_the_fix(env):
    store = env.store()
    path = store.ensure("plain")
    path.write_bytes(PLAIN[:5000])
    status = store.verify("plain")
    assert status.state == "bad" and "truncated" in status.detail
    with pytest.raises(ModelUnavailableError) as err:
        store.ensure("plain", download=False)
    message = str(err.value)
    assert "the file there is bad: size 5,000 bytes" in message and "save it as" in message
    assert path.read_bytes() == PLAIN[:5000]  # nothing deleted behind the user's back


def test_altered_file_of_the_right_size_is_caught_despite_the_stamp(env):
    store = env.store()
    path = store.ensure("plain")
    altered = bytearray(PLAIN)
    altered[1234] ^= 0xFF
    path.write_bytes(bytes(altered))
    status = store.verify("plain")
    assert status.state == "bad" and "sha256" in status.detail


def test_bad_file_is_replaced_by_a_verified_download(env):
    store = env.store()
    (env.root).mkdir()
    (env.root / "plain.onnx").write_bytes(b"junk")
    assert store.ensure("plain").read_bytes() == PLAIN


def test_leftover_part_is_never_handed_out(env):
    store = env.store()
    env.root.mkdir()
    part = part_path(env.root / "plain.onnx", sha(PLAIN))
    part.write_bytes(PLAIN)  # complete bytes, but still only a .part
    with pytest.raises(ModelUnavailableError):
        store.ensure("plain", download=False)
    assert store.ensure("plain").read_bytes() == PLAIN  # verified, then renamed into place
    assert not part.exists()


def test_offline_names_every_missing_model_not_just_the_first(env):
    """The server refuses every connection (stopped): one error, every model, every path."""
    env.server.stop()
    store = env.store()
    with pytest.raises(ModelUnavailableError) as caught:
        store.ensure_all(["plain", "multi", "a"])
    text = str(caught.value)
    assert text.startswith("3 of 3 models are not available: plain, multi, a")
    for name in ("plain.onnx", "multi.onnx", "pack.zip"):
        assert f"save it as {(env.root / name).resolve()}" in text
    assert env.server.url("/alt.onnx") in text  # the second copy's URL too


def test_ensure_all_returns_every_path_when_online(env):
    paths = env.store().ensure_all(["plain", "a", "b"])
    assert {k: p.name for k, p in paths.items()} == {"plain": "plain.onnx", "a": "a.onnx",
                                                       "b": "b.onnx"}
