"""The model store: the catalog, where weights live, verification, downloads.

- `load_catalog()` reads `models/catalog.toml` into `ModelEntry` values.
- `models_dir(config)` is config `models.dir`, else `$LIVEFUSION_MODELS`, else `models/` in a
  checkout or the per-user data folder of an installed copy (livefusion/resources.py).
- `ModelStore.verify(id)` checks size and sha256 against every accepted source; `ensure(id)`
  returns the path of a verified file, downloading it (or extracting it from its verified zip
  pack) when missing or bad, and raises `ModelUnavailableError` with the URLs and the exact path
  for a manual copy when that is impossible.

Which model each role (detector, embedder, ...) uses is livefusion/models/roles.py.

Only `.onnx` files are ever handed out for loading; `.part` files and pickles never are.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from livefusion.errors import LiveFusionError
from livefusion.config import AppConfig
from livefusion.models.download import DownloadError, DownloadOptions, download_file, sha256_file
from livefusion.models.contract import ContractError
from livefusion.resources import command_name, layout

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

log = logging.getLogger(__name__)

ENV_MODELS_DIR = "LIVEFUSION_MODELS"
STAMP_SUFFIX = ".verified"

LicenceHook = Callable[["ModelEntry"], bool]
"""Asked before the first download of a non-commercial model; returns whether to go on."""


class ModelError(LiveFusionError, RuntimeError):
    """Base of the store's errors; messages say what to do."""


class CatalogError(ModelError):
    """The catalog file is missing or malformed, or an id is unknown."""


class ModelUnavailableError(ModelError):
    """A model is missing or bad and could not be downloaded; the message has the fix."""


@dataclass(frozen=True)
class Source:
    """One accepted copy of a model: fetched from `urls` or extracted from zip pack `pack`."""

    name: str
    size: int
    sha256: str
    urls: tuple[str, ...] = ()
    pack: str = ""
    member: str = ""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple


@dataclass(frozen=True)
class Contract:
    """What the model expects and gives; x' = (x - mean) / std for pixels x in 0..255."""

    kind: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    color: str
    mean: float
    std: float
    input_size: int
    template: str
    notes: str = ""


@dataclass(frozen=True)
class ModelEntry:
    id: str
    role: str
    file: str
    sources: tuple[Source, ...]
    licence: str
    noncommercial: bool
    description: str = ""
    contract: Contract | None = None

    @property
    def pack(self) -> str:
        """The zip pack this model comes out of, or '' for a directly downloaded file."""
        return next((s.pack for s in self.sources if s.pack), "")


@dataclass(frozen=True)
class ModelStatus:
    """Result of verifying one model file: state is 'ok', 'missing' or 'bad'."""

    id: str
    path: Path
    state: str
    detail: str = ""
    source: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "ok"


# --- catalog --------------------------------------------------------------------------------

def _contract(raw: Mapping[str, Any] | None) -> Contract | None:
    if not raw:
        return None
    specs = lambda items: tuple(TensorSpec(t.get("name", ""), tuple(t["shape"])) for t in items)  # noqa: E731
    return Contract(
        kind=raw["kind"], inputs=specs(raw.get("inputs", [])), outputs=specs(raw.get("outputs", [])),
        color=raw.get("color", "RGB"), mean=float(raw.get("mean", 0.0)),
        std=float(raw.get("std", 1.0)), input_size=int(raw.get("input_size", 0)),
        template=raw.get("template", ""), notes=raw.get("notes", ""),
    )


def _source(model_id: str, raw: Mapping[str, Any]) -> Source:
    urls = tuple(raw.get("urls", ()))
    pack = raw.get("pack", "")
    if not urls and not pack:
        raise CatalogError(f"catalog model {model_id}: a source needs `urls` or `pack`")
    sha = str(raw["sha256"]).lower()
    if len(sha) != 64:
        raise CatalogError(f"catalog model {model_id}: sha256 must be 64 hex digits")
    return Source(name=raw.get("name", ""), size=int(raw["size"]), sha256=sha, urls=urls,
                  pack=pack, member=raw.get("member", ""))


def _entry(model_id: str, raw: Mapping[str, Any]) -> ModelEntry:
    try:
        return ModelEntry(
            id=model_id, role=raw["role"], file=raw["file"],
            sources=tuple(_source(model_id, s) for s in raw["sources"]),
            licence=raw.get("licence", ""), noncommercial=bool(raw.get("noncommercial", False)),
            description=raw.get("description", ""), contract=_contract(raw.get("contract")),
        )
    except KeyError as exc:
        raise CatalogError(f"catalog model {model_id}: missing key {exc}") from None


@dataclass(frozen=True)
class Catalog:
    entries: Mapping[str, ModelEntry]

    def get(self, model_id: str) -> ModelEntry:
        if model_id not in self.entries:
            raise CatalogError(
                f"model id {model_id!r} is not in the catalog; known ids: {', '.join(self.entries)}"
            )
        return self.entries[model_id]

    def members_of(self, pack_id: str) -> list[ModelEntry]:
        return [e for e in self.entries.values() if e.pack == pack_id]


def load_catalog(path: Path | None = None) -> Catalog:
    """Read the catalog at `path`, by default the one this copy ships (livefusion/resources.py)."""
    path = layout().catalog if path is None else Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise CatalogError(f"model catalog {path} is missing; reinstall LiveFusion or restore models/catalog.toml from the repository") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"model catalog {path} is not valid TOML: {exc}") from None
    entries = {mid: _entry(mid, raw) for mid, raw in data.get("models", {}).items()}
    for entry in entries.values():
        for source in entry.sources:
            if source.pack and source.pack not in entries:
                raise CatalogError(f"catalog model {entry.id}: pack {source.pack!r} is not in the catalog")
    return Catalog(entries)


# --- where files live -------------------------------------------------------------------------

def models_dir(config: AppConfig | None = None) -> Path:
    """config `models.dir` (also set by --models-dir), else $LIVEFUSION_MODELS, else the default.

    The default is the checkout's models/ folder, or the per-user data folder of an installed copy.
    """
    if config is not None and config.models.dir:
        return Path(config.models.dir).expanduser()
    env = os.environ.get(ENV_MODELS_DIR, "")
    if env:
        return Path(env).expanduser()
    return layout().default_models


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + STAMP_SUFFIX)


def _read_stamp(path: Path) -> dict[str, Any]:
    try:
        return json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        return {}


def _write_stamp(path: Path, sha256: str) -> None:
    st = path.stat()
    record = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}
    _stamp_path(path).write_text(json.dumps(record))


def warn_licence(entry: ModelEntry) -> bool:
    """Default licence hook: log a warning and go on."""
    log.warning("%s: %s. By downloading it you accept these terms.", entry.id, entry.licence)
    return True


# --- the store ---------------------------------------------------------------------------------

class ModelStore:
    """Verified model files in one folder, downloaded on demand."""

    def __init__(self, root: Path, catalog: Catalog | None = None, *,
                 download: DownloadOptions | None = None,
                 licence_hook: LicenceHook | None = warn_licence,
                 keep_packs: bool = False) -> None:
        self.root = Path(root)
        self.catalog = catalog or load_catalog()
        self.download_options = download or DownloadOptions()
        self.licence_hook = licence_hook
        self.keep_packs = keep_packs

    @classmethod
    def from_config(cls, config: AppConfig, **kwargs: Any) -> "ModelStore":
        return cls(models_dir(config), **kwargs)

    def path_for(self, model_id: str) -> Path:
        return self.root / self.catalog.get(model_id).file

    # verification ------------------------------------------------------------------------

    def verify(self, model_id: str, *, full: bool = False) -> ModelStatus:
        """Check the file of `model_id` against its sources' sizes and sha256.

        A fresh stamp (same size and mtime as when last hashed) saves re-hashing hundreds of MB
        on every start; `full=True` always re-hashes (`--verify-models`)."""
        entry = self.catalog.get(model_id)
        path = self.root / entry.file
        if not path.is_file():
            return ModelStatus(model_id, path, "missing", "not downloaded yet")
        st = path.stat()
        candidates = [s for s in entry.sources if s.size == st.st_size]
        if not candidates:
            expected = " or ".join(f"{s.size:,}" for s in entry.sources)
            return ModelStatus(model_id, path, "bad",
                               f"size {st.st_size:,} bytes, expected {expected} (truncated or altered)")
        stamp = _read_stamp(path)
        by_sha = {s.sha256: s for s in candidates}
        if (not full and stamp.get("size") == st.st_size and stamp.get("mtime_ns") == st.st_mtime_ns
                and stamp.get("sha256") in by_sha):
            return ModelStatus(model_id, path, "ok", "verified earlier", by_sha[stamp["sha256"]].name)
        digest = sha256_file(path)
        if digest not in by_sha:
            return ModelStatus(model_id, path, "bad",
                               f"sha256 {digest} matches no published copy (corrupt or altered)")
        _write_stamp(path, digest)
        return ModelStatus(model_id, path, "ok", "sha256 verified", by_sha[digest].name)

    # getting files --------------------------------------------------------------------------

    def ensure(self, model_id: str, *, download: bool = True) -> Path:
        """Path of a verified copy of `model_id`, fetching it when needed (and allowed)."""
        status = self.verify(model_id)
        if status.ok:
            return status.path
        if status.state == "bad":
            log.warning("%s at %s is bad: %s", model_id, status.path, status.detail)
        entry = self.catalog.get(model_id)
        try:
            if entry.pack:
                self._extract_from_pack(entry, download=download)
            elif not download:
                raise ModelError("downloads are turned off (models.auto_download = false)")
            else:
                self._download(entry)
        except (ModelError, DownloadError, OSError, zipfile.BadZipFile) as exc:
            if isinstance(exc, ModelUnavailableError):
                raise
            raise ModelUnavailableError(self.guidance(model_id, reason=str(exc), status=status)) from exc
        final = self.verify(model_id, full=True)
        if not final.ok:  # cannot happen after a verified rename unless the disk lies
            raise ModelUnavailableError(self.guidance(model_id, reason=final.detail, status=final))
        return final.path

    def ensure_all(self, model_ids: Iterable[str], *, download: bool = True,
                   started: Callable[[str, int, int], None] | None = None) -> dict[str, Path]:
        """`ensure` each of `model_ids`, going on past a failure, so that one error names every
        model that is missing (offline, a user fetching files by hand needs the whole list).
        `started(id, position, count)` is called before each."""
        ids = list(dict.fromkeys(model_ids))
        paths: dict[str, Path] = {}
        failures: dict[str, str] = {}
        for position, model_id in enumerate(ids):
            if started is not None:
                started(model_id, position, len(ids))
            try:
                paths[model_id] = self.ensure(model_id, download=download)
            except ModelError as exc:
                failures[model_id] = str(exc)
        if len(failures) == 1:
            raise ModelUnavailableError(next(iter(failures.values())))
        if failures:
            head = (f"{len(failures)} of {len(ids)} models are not available: "
                    f"{', '.join(failures)}")
            raise ModelUnavailableError("\n\n".join([head, *failures.values()]))
        return paths

    def _confirm_licence(self, entry: ModelEntry) -> None:
        if entry.noncommercial and self.licence_hook is not None and not self.licence_hook(entry):
            raise ModelError(f"download of {entry.id} declined ({entry.licence})")

    def _download(self, entry: ModelEntry) -> None:
        """Try each accepted source in turn (each with its own URLs, size and sha256)."""
        self._confirm_licence(entry)
        dest = self.root / entry.file
        failures = []
        for source in entry.sources:
            try:
                download_file(source.urls, dest, size=source.size, sha256=source.sha256,
                              options=self.download_options, label=entry.file)
                _write_stamp(dest, source.sha256)
                return
            except DownloadError as exc:
                failures.append(f"[{source.name}] {exc}")
        raise ModelError("\n".join(failures))

    def _extract_from_pack(self, entry: ModelEntry, *, download: bool) -> None:
        """Get the verified pack (already present, or downloaded), then extract and verify
        every catalog member of it that is not already good."""
        pack_id = entry.pack
        pack_status = self.verify(pack_id)
        if not pack_status.ok:
            if not download:
                raise ModelError(f"{pack_id} is {pack_status.state} and downloads are turned off")
            self._download(self.catalog.get(pack_id))
        pack_path = self.path_for(pack_id)
        with zipfile.ZipFile(pack_path) as archive:
            for member in self.catalog.members_of(pack_id):
                if member.id == entry.id or not self.verify(member.id).ok:
                    self._extract_member(archive, member)
        if not self.keep_packs:
            pack_path.unlink()
            _stamp_path(pack_path).unlink(missing_ok=True)
            log.info("extracted %s; removed the pack archive", pack_id)

    def _extract_member(self, archive: zipfile.ZipFile, entry: ModelEntry) -> None:
        source = next(s for s in entry.sources if s.pack)
        wanted = source.member or entry.file
        infos = [i for i in archive.infolist() if Path(i.filename).name == Path(wanted).name]
        if not infos:
            raise ModelError(f"{entry.pack} has no member {wanted}")
        dest = self.root / entry.file  # never a path from inside the archive
        part = dest.with_name(dest.name + ".extract.part")
        digest = hashlib.sha256()
        with archive.open(infos[0]) as src, part.open("wb") as out:
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
        size = part.stat().st_size
        if size != source.size or digest.hexdigest() != source.sha256:
            part.unlink()
            raise ModelError(f"{wanted} inside {entry.pack} does not match the catalog "
                             f"(size {size:,}, sha256 {digest.hexdigest()})")
        os.replace(part, dest)
        _write_stamp(dest, source.sha256)

    # messages ---------------------------------------------------------------------------

    def guidance(self, model_id: str, *, reason: str = "", status: ModelStatus | None = None) -> str:
        """One clear message: what is wrong, the URLs, and the exact path for a manual copy."""
        entry = self.catalog.get(model_id)
        path = (self.root / entry.file).resolve()
        lines = [f"model {model_id} ({entry.role}) is not available at {path}"]
        if status is not None and status.state == "bad":
            lines.append(f"  the file there is bad: {status.detail}; delete it or replace it")
        if reason:
            lines.append("  reason: " + reason.replace("\n", "\n    "))
        if entry.pack:
            pack = self.catalog.get(entry.pack)
            pack_path = (self.root / pack.file).resolve()
            lines.append(f"  it comes inside {pack.file}; download that from:")
            lines += [f"    {url}" for s in pack.sources for url in s.urls]
            lines.append(f"  and save it as {pack_path} (it is verified and unpacked at the next start)")
        else:
            lines.append("  download it from one of:")
            lines += [f"    {url}   [{s.name}: {s.size:,} bytes, sha256 {s.sha256}]"
                      for s in entry.sources for url in s.urls]
            lines.append(f"  and save it as {path}")
        lines.append(f"  licence: {entry.licence}")
        lines.append(f"  then run `{command_name()} --verify-models` to check it.")
        return "\n".join(lines)


def statuses(store: ModelStore, ids: Iterable[str], *, full: bool = True) -> list[ModelStatus]:
    return [store.verify(mid, full=full) for mid in ids]


__all__ = [
    "Catalog", "CatalogError", "Contract", "ContractError", "ModelEntry", "ModelError",
    "ModelStatus", "ModelStore", "ModelUnavailableError", "Source",
    "load_catalog", "models_dir", "warn_licence",
]
