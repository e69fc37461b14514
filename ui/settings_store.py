"""What the window remembers between runs, in QSettings: camera, source faces, toggles, geometry.

`SettingsStore()` uses the platform's usual place (registry, plist, ~/.config); tests pass
`QSettings(path, QSettings.Format.IniFormat)`. Values are read back defensively: a stored value
that no longer fits (a deleted photo, an out-of-range number) is skipped with a log line, never
an error at start-up.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from livefusion.config import same_file_key
from livefusion.settings import LiveSettings, SettingsBox

log = logging.getLogger(__name__)

ORGANISATION = "LiveFusion"
APPLICATION = "LiveFusion"
# Run-time settings worth remembering (views like the mask or before/after start off).
# Never the swap switch nor its opacity: swap off and a faint swap reveal the user's real face,
# so every launch starts with the swap on at the configured opacity, whatever the last run did.
REMEMBERED = ("enhancer_enabled", "color_transfer", "detect_every", "active_source",
              "show_debug")
# The config key whose command-line flag overrides each remembered setting (precedence:
# defaults < config files < profile < remembered window settings < command-line flags).
# A flag naming the source faces also chooses the active one (the flags' face is face 1).
FLAG_KEYS: dict[str, tuple[str, ...]] = {
    "enhancer_enabled": ("face.enhancer",),
    "color_transfer": ("face.color_transfer",),
    "detect_every": ("face.detect_every",),
    "active_source": ("face.sources",),
    "show_debug": (),
}
CAMERA_FLAG_KEYS = ("input.camera", "input.file")
# Keys older versions stored that must not be read back (and are removed at the next save).
RETIRED = ("toggles/swap_enabled", "toggles/opacity")


@dataclass
class StoredState:
    camera: str = ""  # the camera chosen in the window; "" = the configuration's
    sources: list[list[str]] = field(default_factory=list)  # one list of photos per identity
    toggles: dict[str, Any] = field(default_factory=dict)  # LiveSettings names in REMEMBERED
    geometry: bytes = b""

    @classmethod
    def capture(cls, settings: LiveSettings, *, camera: str, sources: list[list[str]],
                geometry: bytes) -> "StoredState":
        toggles = {name: getattr(settings, name) for name in REMEMBERED}
        return cls(camera=camera, sources=sources, toggles=toggles, geometry=geometry)

    def apply_toggles(self, box: SettingsBox) -> None:
        """Put the remembered toggles into `box`, skipping any the engine rejects."""
        for name, value in self.toggles.items():
            if name not in REMEMBERED:
                continue
            try:
                box.update(**{name: value})
            except (ValueError, TypeError) as exc:
                log.warning("remembered setting %s=%r ignored: %s", name, value, exc)

    def under_flags(self, given: frozenset[str], flag_sources: list[str]) -> "StoredState":
        """This state without what the command line decided: the toggles and camera whose
        flags were given (`given`: config keys the flags set), and the remembered source faces
        that repeat a photo already among `flag_sources` or an earlier remembered face."""
        toggles = {name: value for name, value in self.toggles.items()
                   if not set(FLAG_KEYS.get(name, ())) & given}
        camera = "" if set(CAMERA_FLAG_KEYS) & given else self.camera
        seen = {same_file_key(p) for p in flag_sources}
        sources = []
        for paths in self.sources:
            keys = {same_file_key(p) for p in paths}
            if keys & seen:
                log.info("remembered source face %s is already a source; not added twice",
                         paths[0])
                continue
            seen |= keys
            sources.append(list(paths))
        return replace(self, camera=camera, toggles=toggles, sources=sources)

    def existing_sources(self) -> list[list[str]]:
        """Remembered source faces whose photos all still exist."""
        kept = []
        for paths in self.sources:
            missing = [p for p in paths if not Path(p).is_file()]
            if missing:
                log.warning("remembered source face %s is gone; add it again", missing[0])
                continue
            kept.append(paths)
        return kept


def _coerce(name: str, raw: Any) -> Any:
    """QSettings (INI) gives strings back; turn them into the LiveSettings field's type."""
    default = getattr(LiveSettings(), name)
    if isinstance(default, bool):
        if isinstance(raw, str):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        return bool(raw)
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


class SettingsStore:
    def __init__(self, settings: QSettings | None = None) -> None:
        self.qsettings = settings or QSettings(ORGANISATION, APPLICATION)

    def load(self) -> StoredState:
        s = self.qsettings
        state = StoredState(camera=str(s.value("input/camera", "") or ""))
        raw_sources = s.value("sources/identities", "")
        if raw_sources:
            try:
                decoded = json.loads(str(raw_sources))
                state.sources = [[str(p) for p in paths] for paths in decoded
                                 if isinstance(paths, list) and paths]
            except (ValueError, TypeError) as exc:
                log.warning("remembered source faces unreadable (%s); starting without them", exc)
        s.beginGroup("toggles")
        try:
            for name in s.childKeys():
                if name not in REMEMBERED:
                    continue
                try:
                    state.toggles[name] = _coerce(name, s.value(name))
                except (ValueError, TypeError) as exc:
                    log.warning("remembered setting %s unreadable: %s", name, exc)
        finally:
            s.endGroup()
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray):
            state.geometry = bytes(geometry.data())
        return state

    def save(self, state: StoredState) -> None:
        s = self.qsettings
        s.setValue("input/camera", state.camera)
        s.setValue("sources/identities", json.dumps(state.sources))
        for name, value in state.toggles.items():
            if name in REMEMBERED:
                s.setValue(f"toggles/{name}", value)
        for key in RETIRED:
            s.remove(key)
        if state.geometry:
            s.setValue("window/geometry", QByteArray(state.geometry))
        s.sync()
        if s.status() != QSettings.Status.NoError:
            log.warning("settings could not be saved to %s (%s)", s.fileName(), s.status())
