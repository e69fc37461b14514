"""Model roles: which file the detector, landmarker, embedder, swapper and enhancer load.

- `role_model_ids(config)` is the catalog id per role the configuration needs; `needed_ids`
  leaves out the roles the user overrides.
- `check_override(role, path, config)` checks a user's `--model ROLE=PATH` file: an existing
  `.onnx` that fits the role's contract (livefusion/models/contract.py).
- `resolve_role(config, role)` gives the file for a role: the user's `models.overrides` file
  (contract-checked, hash skipped) or the configured catalog id (verified by the `ModelStore`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from livefusion.config import AppConfig
from livefusion.models.contract import ContractError, check_file
from livefusion.models.store import Catalog, ModelEntry, ModelError, ModelStore

ROLES = ("detector", "landmarker", "embedder", "swapper", "enhancer")
ROLE_CONTRACT = {"landmarker": "landmark_2d106", "embedder": "arcface", "swapper": "inswapper",
                 "enhancer": "enhancer"}
UNCONFIGURED_ROLE_IDS = {"landmarker": "2d106det"}  # roles the config has no key for


class OverrideContractError(ModelError, ContractError):
    """A `--model ROLE=PATH` file does not fit its role (a ModelError for the CLI's error
    handling, and a ContractError like every contract failure)."""


@dataclass(frozen=True)
class ResolvedModel:
    """The file to load for a role; `entry` is the configured catalog entry (for its contract
    and normalisation) even when the file is the user's override."""

    role: str
    path: Path
    entry: ModelEntry | None
    override: bool = False


def role_model_ids(config: AppConfig) -> dict[str, str]:
    """Catalog id per role the configuration needs (enhancer only when one is chosen)."""
    ids = {
        "detector": "yunet_2023mar" if config.face.detector == "yunet" else config.models.detector,
        "embedder": config.models.embedder,
        "swapper": config.models.swapper,
    }
    if config.face.enhancer != "none":
        ids["enhancer"] = config.face.enhancer
    return ids


def contract_kind(role: str, config: AppConfig) -> str:
    if role == "detector":
        return "yunet" if config.face.detector == "yunet" else "scrfd"
    if role not in ROLE_CONTRACT:
        raise ModelError(f"unknown model role {role!r}; roles: {', '.join(ROLES)}")
    return ROLE_CONTRACT[role]


def check_override(role: str, path: Path, config: AppConfig) -> Path:
    """Check a user's `--model ROLE=PATH` file: an existing .onnx that fits the role's contract."""
    if role not in ROLES:
        raise ModelError(f"--model {role}=...: unknown role; use one of {', '.join(ROLES)}")
    path = Path(path).expanduser()
    if path.suffix.lower() != ".onnx":
        raise ModelError(f"--model {role}={path}: only .onnx files are loaded (never pickled "
                         ".pth/.pt/.ckpt); export the model to ONNX first")
    if not path.is_file():
        raise ModelError(f"--model {role}={path}: the file does not exist")
    try:
        check_file(contract_kind(role, config), path, label=f"--model {role}={path}")
    except ContractError as exc:
        raise OverrideContractError(str(exc)) from None
    return path


def resolve_role(config: AppConfig, role: str, *, store: ModelStore | None = None) -> ResolvedModel:
    """The verified (catalog) or contract-checked (override) file to load for `role`.

    Raises ModelUnavailableError, ContractError or ModelError with the fix in the message."""
    store = store or ModelStore.from_config(config)
    ids = {**UNCONFIGURED_ROLE_IDS, **role_model_ids(config)}
    entry = store.catalog.get(ids[role]) if role in ids else None
    if entry is not None and entry.role != role:
        raise ModelError(f"config names {entry.id} for the {role} role, but the catalog lists it "
                         f"as {entry.role}; choose a {role} model from the catalog")
    override = config.models.overrides.get(role)
    if override:
        return ResolvedModel(role, check_override(role, Path(override), config), entry, True)
    if entry is None:
        raise ModelError(f"no model is configured for the {role} role")
    path = store.ensure(entry.id, download=config.models.auto_download)
    return ResolvedModel(role, path, entry, False)


def needed_ids(config: AppConfig, catalog: Catalog) -> list[str]:
    """Catalog ids the configured roles need, without roles the user overrides."""
    overrides = config.models.overrides
    return [catalog.get(mid).id for role, mid in role_model_ids(config).items()
            if not overrides.get(role)]


__all__ = [
    "ROLES", "ROLE_CONTRACT", "OverrideContractError", "ResolvedModel",
    "check_override", "contract_kind", "needed_ids", "resolve_role", "role_model_ids",
]
