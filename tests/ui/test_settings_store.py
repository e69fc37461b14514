"""Remembered settings in a temporary INI file: round trip, and bad or stale values skipped."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from livefusion.settings import LiveSettings, SettingsBox
from livefusion_ui.settings_store import SettingsStore, StoredState


def store(tmp_path) -> SettingsStore:
    return SettingsStore(QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat))


def test_round_trip(tmp_path):
    photo = tmp_path / "me.jpg"
    photo.write_bytes(b"x")
    settings = LiveSettings(swap_enabled=False, detect_every=7, opacity=0.25, active_source=1,
                            show_debug=True, color_transfer=False)
    state = StoredState.capture(settings, camera="2", sources=[[str(photo)], [str(photo)]],
                                geometry=b"\x01\x02geometry")
    store(tmp_path).save(state)
    loaded = store(tmp_path).load()  # a fresh QSettings reads the file back
    assert loaded == state
    box = SettingsBox()
    loaded.apply_toggles(box)
    snap = box.snapshot()
    # Swap off and a faint swap are never remembered: every launch starts fully swapped.
    assert "swap_enabled" not in loaded.toggles and "opacity" not in loaded.toggles
    assert (snap.swap_enabled, snap.detect_every, snap.opacity, snap.active_source,
            snap.show_debug, snap.color_transfer) == (True, 7, 1.0, 1, True, False)


def test_bad_values_and_missing_photos_are_skipped(tmp_path):
    qs = QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)
    qs.setValue("toggles/detect_every", "9999")  # out of range for the engine
    qs.setValue("toggles/opacity", "not a number")
    qs.setValue("toggles/show_mask", "true")  # views are not remembered
    qs.setValue("sources/identities", '[["/nowhere/gone.jpg"]]')
    qs.sync()
    loaded = SettingsStore(qs).load()
    assert "opacity" not in loaded.toggles and "show_mask" not in loaded.toggles
    box = SettingsBox()
    loaded.apply_toggles(box)
    assert box.snapshot() == LiveSettings()
    assert loaded.existing_sources() == []


def test_empty_store_gives_defaults(tmp_path):
    assert store(tmp_path).load() == StoredState()
