"""What `run_live.py --download-models` and `--verify-models` do; they print to `out` (CLI output)
and return the process exit code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, TextIO

from livefusion.config import AppConfig
from livefusion.models.download import DownloadOptions
from livefusion.models.roles import check_override, needed_ids
from livefusion.models.store import ModelEntry, ModelError, ModelStatus, ModelStore
from livefusion.resources import command_name


def licence_notice(out: TextIO) -> Callable[[ModelEntry], bool]:
    """Licence hook for the CLI: tell the user, then go on."""
    def notice(entry: ModelEntry) -> bool:
        print(f"note: {entry.id} — {entry.licence}. Downloading it means accepting these terms.",
              file=out)
        return True
    return notice


def cli_store(config: AppConfig, out: TextIO) -> ModelStore:
    """A store whose progress bars and licence notices go to `out`."""
    return ModelStore.from_config(config, download=DownloadOptions(bar_file=out),
                                  licence_hook=licence_notice(out))


def _wanted_ids(config: AppConfig, store: ModelStore, ids: list[str] | None) -> list[str]:
    if ids and [i.lower() for i in ids] == ["all"]:
        return [e.id for e in store.catalog.entries.values() if e.role != "pack"]
    if ids:
        return [store.catalog.get(i).id for i in ids]
    return needed_ids(config, store.catalog)


def download_models(config: AppConfig, ids: list[str] | None = None, out: TextIO = sys.stderr,
                    *, store: ModelStore | None = None) -> int:
    """Fetch and verify `ids` (default: what the configured roles need; ['all'] = every model).
    Returns 0 when all are in place, 1 otherwise (each failure printed with its fix)."""
    store = store or cli_store(config, out)
    try:
        wanted = _wanted_ids(config, store, ids)
    except ModelError as exc:
        print(f"error: {exc}", file=out)
        return 1
    failed = 0
    for model_id in wanted:
        try:
            path = store.ensure(model_id, download=True)
        except ModelError as exc:
            failed += 1
            print(f"error: {exc}", file=out)
            continue
        print(f"ok       {model_id:<20} {path}", file=out)
    print(f"{len(wanted) - failed} of {len(wanted)} models ready in {store.root}", file=out)
    return 1 if failed else 0


def _status_line(status: ModelStatus) -> str:
    if status.ok:
        return f"ok       {status.id:<20} {status.path} ({status.detail}, {status.source})"
    if status.state == "missing":
        return (f"missing  {status.id:<20} {status.path}\n"
                f"         fix: {command_name()} --download-models (with the same config options)")
    return (f"BAD      {status.id:<20} {status.path}: {status.detail}\n"
            f"         fix: delete it and run {command_name()} --download-models, "
            "or place a good copy at that path")


def verify_models(config: AppConfig, out: TextIO = sys.stderr, *,
                  store: ModelStore | None = None) -> int:
    """Re-hash every catalog model present plus those the configuration needs; check override
    files' contracts. Returns 0 when everything needed is ok and nothing present is bad."""
    store = store or cli_store(config, out)
    try:
        needed = set(needed_ids(config, store.catalog))
    except ModelError as exc:
        print(f"error: {exc}", file=out)
        return 1
    problems = 0
    for entry in store.catalog.entries.values():
        present = (store.root / entry.file).exists()
        if entry.id not in needed and not present:
            continue
        status = store.verify(entry.id, full=True)
        print(_status_line(status), file=out)
        problems += not status.ok
    for role, path in config.models.overrides.items():
        try:
            check_override(role, Path(path), config)
            print(f"ok       --model {role}={path} (contract checked, no catalog hash)", file=out)
        except ModelError as exc:
            problems += 1
            print(f"BAD      {exc}", file=out)
    return 1 if problems else 0
