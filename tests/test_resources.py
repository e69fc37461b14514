"""Where shipped files are found: a source checkout's own layout, or an installed copy's package data."""

from __future__ import annotations

from pathlib import Path

import pytest

from livefusion import resources
from livefusion.models.store import load_catalog, models_dir


def make_checkout(root: Path) -> Path:
    (root / "livefusion").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "configs").mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'livefusion'\n")
    (root / "models" / "catalog.toml").write_text("")
    return root / "livefusion"


def make_installed(site: Path) -> Path:
    package = site / "livefusion"
    (package / "bundled" / "catalog").mkdir(parents=True)
    (package / "bundled" / "configs").mkdir()
    return package


def test_checkout_reads_its_own_folders(tmp_path):
    package = make_checkout(tmp_path / "clone")
    found = resources.layout(package)
    assert found.checkout
    assert found.configs == tmp_path / "clone" / "configs"
    assert found.catalog == tmp_path / "clone" / "models" / "catalog.toml"
    assert found.default_models == tmp_path / "clone" / "models"
    assert resources.command_name(package) == "run_live.py"


def test_installed_copy_reads_package_data_and_keeps_models_per_user(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    package = make_installed(tmp_path / "site-packages")
    found = resources.layout(package)
    assert not found.checkout
    assert found.configs == package / "bundled" / "configs"
    assert found.catalog == package / "bundled" / "catalog" / "catalog.toml"
    assert found.default_models == tmp_path / "data" / "LiveFusion" / "models"
    assert "site-packages" not in str(found.default_models)
    assert resources.command_name(package) == "livefusion"


def test_a_folder_without_the_catalog_is_not_taken_for_a_checkout(tmp_path):
    package = make_checkout(tmp_path / "clone")
    (tmp_path / "clone" / "models" / "catalog.toml").unlink()
    assert not resources.layout(package).checkout


@pytest.mark.parametrize("setting, env, expected", [
    ("/from/config", "/from/env", "/from/config"),
    ("", "/from/env", "/from/env"),
])
def test_models_dir_settings_still_win(monkeypatch, setting, env, expected):
    from livefusion.config import AppConfig

    config = AppConfig()
    config.models.dir = setting
    monkeypatch.setenv("LIVEFUSION_MODELS", env)
    assert models_dir(config) == Path(expected)


def test_models_dir_defaults_to_the_layout(monkeypatch):
    monkeypatch.delenv("LIVEFUSION_MODELS", raising=False)
    assert models_dir(None) == resources.layout().default_models


def test_this_checkout_loads_its_catalog_by_default():
    assert "2d106det" in load_catalog().entries
