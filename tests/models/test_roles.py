"""Model roles: --model overrides checked against their contract, catalog ids resolved and
verified, the ids a configuration needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from livefusion.config import AppConfig
from livefusion.models.contract import ContractError
from livefusion.models.roles import needed_ids, resolve_role
from livefusion.models.store import ModelError, ModelStore, ModelUnavailableError, load_catalog
from livefusion.models.runtime import SessionFactory
from tests.face.onnx_builders import arcface_standin, identity_inswapper
from tests.helpers_http import LocalServer
from tests.store_env import PLAIN, serve_test_catalog


@pytest.fixture
def env(tmp_path, no_thread_leak):
    with LocalServer() as server:
        yield serve_test_catalog(server, tmp_path)


@pytest.fixture(scope="module")
def own_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("own")
    return {"swapper": identity_inswapper(d / "my_swapper.onnx"),
            "swapper_256": identity_inswapper(d / "big_swapper.onnx", target=(1, 3, 256, 256)),
            "embedder": arcface_standin(d / "my_arcface.onnx")}


def _config(**overrides) -> AppConfig:
    config = AppConfig()
    config.models.overrides = {k: str(v) for k, v in overrides.items()}
    config.runtime.providers = ["cpu"]
    return config


def test_override_with_a_correct_contract_loads(own_models, shared_model, tmp_path):
    config = _config(detector=shared_model("det_500m.onnx"), swapper=own_models["swapper"],
                     embedder=own_models["embedder"])
    store = ModelStore(tmp_path, licence_hook=None)
    factory = SessionFactory(config.runtime)
    for role in ("detector", "swapper", "embedder"):
        resolved = resolve_role(config, role, store=store)
        assert resolved.override and resolved.path == Path(config.models.overrides[role])
        assert resolved.entry is not None and resolved.entry.role == role
        session = factory.create(resolved.path, label=role)
        assert session.provider == "CPUExecutionProvider"
    assert list(tmp_path.iterdir()) == []  # nothing downloaded for overridden roles


def test_override_with_a_wrong_contract_names_the_mismatch(own_models, tmp_path):
    config = _config(swapper=own_models["swapper_256"])
    with pytest.raises(ContractError) as err:
        resolve_role(config, "swapper", store=ModelStore(tmp_path))
    assert isinstance(err.value, ModelError)  # the CLI prints ModelErrors without a traceback
    message = str(err.value)
    assert "--model swapper=" in message and "inswapper contract" in message
    assert "target [1,3,128,128]" in message and "target [1,3,256,256]" in message


def test_override_for_the_wrong_role_names_the_mismatch(own_models, tmp_path):
    config = _config(detector=own_models["embedder"])
    with pytest.raises(ContractError, match="scrfd contract.*9 outputs"):
        resolve_role(config, "detector", store=ModelStore(tmp_path))


@pytest.mark.parametrize("name, message", [
    ("weights.pth", "only .onnx files are loaded"),
    ("absent.onnx", "does not exist"),
])
def test_override_refuses_pickles_and_missing_files(tmp_path, name, message):
    path = tmp_path / name
    if name.endswith(".pth"):
        path.write_bytes(b"\x80\x04pickle")
    with pytest.raises(ModelError, match=message):
        resolve_role(_config(embedder=path), "embedder", store=ModelStore(tmp_path))


def test_catalog_role_resolution_downloads_the_configured_id(env):
    config = _config()
    config.models.swapper = "plain"
    resolved = resolve_role(config, "swapper", store=env.store())
    assert not resolved.override and resolved.path.read_bytes() == PLAIN
    config.models.auto_download = False
    config.models.embedder = "b"
    with pytest.raises(ModelUnavailableError, match="downloads are turned off"):
        resolve_role(config, "embedder", store=env.store())


def test_role_mismatch_in_config_is_explained(tmp_path):
    config = _config()
    config.models.detector = "w600k_r50"
    with pytest.raises(ModelError, match="w600k_r50 for the detector role, but the catalog lists it as embedder"):
        resolve_role(config, "detector", store=ModelStore(tmp_path))


def test_needed_ids_follow_config_and_skip_overrides():
    catalog = load_catalog()
    config = AppConfig()
    assert needed_ids(config, catalog) == ["det_10g", "w600k_r50", "inswapper_128_fp16"]
    config.face.detector = "yunet"
    config.face.enhancer = "gpen_bfr_256"
    config.models.overrides = {"swapper": "/x/s.onnx"}
    assert needed_ids(config, catalog) == ["yunet_2023mar", "w600k_r50", "gpen_bfr_256"]


def test_landmarker_resolves_to_the_pack_member_without_network(tmp_path):
    config = _config()
    config.models.auto_download = False
    with pytest.raises(ModelUnavailableError, match=r"(?s)2d106det \(landmarker\).*comes inside buffalo_l.zip"):
        resolve_role(config, "landmarker", store=ModelStore(tmp_path))
