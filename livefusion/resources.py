"""Where the files that ship with LiveFusion live: the config profiles and the model catalog.

A source checkout keeps them in the product's layout (`configs/*.toml`, `models/catalog.toml` at the
top of the repository). An installed copy (`pip install .`, `pipx install .`) carries the same files
as package data under `livefusion/bundled/`, mapped there by pyproject.toml. The checkout wins when
both exist, so editing `configs/default.toml` in a clone takes effect without a reinstall.

Downloaded weights go to the checkout's `models/` folder when running from a checkout, and to a
per-user data folder (platformdirs) when installed: never into site-packages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "LiveFusion"
PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Layout:
    """The folders one copy of LiveFusion reads its shipped files from."""

    configs: Path
    catalog: Path
    default_models: Path
    checkout: bool


def _checkout_root(package_dir: Path) -> Path | None:
    """The repository root when `package_dir` is a source checkout's `livefusion/`, else None."""
    root = package_dir.parent
    if (root / "pyproject.toml").is_file() and (root / "models" / "catalog.toml").is_file():
        return root
    return None


def layout(package_dir: Path = PACKAGE_DIR) -> Layout:
    root = _checkout_root(package_dir)
    if root is not None:
        return Layout(configs=root / "configs", catalog=root / "models" / "catalog.toml",
                      default_models=root / "models", checkout=True)
    bundled = package_dir / "bundled"
    return Layout(configs=bundled / "configs", catalog=bundled / "catalog" / "catalog.toml",
                  default_models=platformdirs.user_data_path(APP_NAME, appauthor=False) / "models",
                  checkout=False)


def command_name(package_dir: Path = PACKAGE_DIR) -> str:
    """What the user types to run this copy: `run_live.py` in a checkout, `livefusion` installed."""
    return "run_live.py" if _checkout_root(package_dir) is not None else "livefusion"
