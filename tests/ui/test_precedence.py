"""Precedence, for every layer: defaults < config files < profile < remembered window settings <
command-line flags. The command line is parsed by the real parser, the remembered layer is a
real StoredState (and, at the end, a real window writing a real settings file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from livefusion.app import settings_from_config
from livefusion.cli import build_parser, config_from_args, flag_keys
from livefusion.settings import SettingsBox
from tests.ui.conftest import moving_video
from tests.ui.test_main import settings_dir  # noqa: F401 - fixture
from livefusion_ui.main import remembered_under_flags, run
from livefusion_ui.settings_store import StoredState
from livefusion_ui.window import MainWindow

LAYERS = ("defaults", "config", "profile", "remembered", "flags")
# Each layer's value for a sample of keys; None: the layer does not set it (the window never
# remembers opacity: a faint swap shows the real face, so every launch takes the configured one).
VALUES = {
    "defaults": {"color_transfer": True, "detect_every": 5, "opacity": 1.0, "source": None},
    "config": {"color_transfer": False, "detect_every": 7, "opacity": 0.9, "source": "a.jpg"},
    "profile": {"color_transfer": True, "detect_every": 9, "opacity": 0.8, "source": "b.jpg"},
    "remembered": {"color_transfer": False, "detect_every": 11, "opacity": None,
                   "source": "c.jpg"},
    "flags": {"color_transfer": True, "detect_every": 2, "opacity": 0.3, "source": "d.jpg"},
}


def toml(values: dict, folder: Path) -> str:
    return (f"[face]\ncolor_transfer = {str(values['color_transfer']).lower()}\n"
            f"detect_every = {values['detect_every']}\nopacity = {values['opacity']}\n"
            f"sources = [\"{folder / values['source']}\"]\n")


def effective(layers: tuple[str, ...], folder: Path) -> dict:
    """What the window runs with when `layers` are present (defaults always are)."""
    argv: list[str] = []
    if "config" in layers:
        (folder / "mine.toml").write_text(toml(VALUES["config"], folder))
        argv += ["--config", str(folder / "mine.toml")]
    if "profile" in layers:
        (folder / "prof.toml").write_text(toml(VALUES["profile"], folder))
        argv += ["--profile", str(folder / "prof.toml")]
    if "flags" in layers:
        flags = VALUES["flags"]
        argv += ["--color-transfer", "--detect-every", str(flags["detect_every"]),
                 "--opacity", str(flags["opacity"]), "--source", str(folder / flags["source"])]
    state = StoredState()
    if "remembered" in layers:
        remembered = VALUES["remembered"]
        state = StoredState(sources=[[str(folder / remembered["source"])]], toggles={
            "color_transfer": remembered["color_transfer"],
            "detect_every": remembered["detect_every"], "active_source": 1})
    args = build_parser().parse_args(argv)
    config, state = remembered_under_flags(config_from_args(args), state, flag_keys(args))
    box = SettingsBox(settings_from_config(config))
    state.apply_toggles(box)
    settings = box.snapshot()
    # The faces as the window holds them: the configuration's (face 1), then the remembered.
    faces = ([config.face.sources] if config.face.sources else []) + state.sources
    source = Path(faces[settings.active_source][0]).name if faces else None
    return {"color_transfer": settings.color_transfer, "detect_every": settings.detect_every,
            "opacity": settings.opacity, "source": source}


def expected(layers: tuple[str, ...]) -> dict:
    result = {}
    for key in VALUES["defaults"]:
        for layer in reversed(("defaults",) + layers):
            if VALUES[layer][key] is not None or layer == "defaults":
                result[key] = VALUES[layer][key]
                break
    return result


@pytest.mark.parametrize("top", range(len(LAYERS)))
@pytest.mark.parametrize("skip", [None] + list(LAYERS[1:]))
def test_each_layer_wins_over_the_ones_below(top, skip, tmp_path):
    layers = tuple(layer for layer in LAYERS[1:top + 1] if layer != skip)
    assert effective(layers, tmp_path) == expected(layers), layers


def test_the_same_photo_is_never_added_twice(tmp_path, monkeypatch):
    photo = tmp_path / "me.jpg"
    photo.write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["--source", "me.jpg", "--source", str(photo),
                                      "--source", "./sub/../me.jpg"])
    config = config_from_args(args)
    assert config.face.sources == ["me.jpg"]  # given three times, one photo
    remembered = StoredState(sources=[[str(photo)], [str(tmp_path / "other.jpg")],
                                      ["other.jpg"]])
    _, state = remembered_under_flags(config, remembered, flag_keys(args))
    assert state.sources == [[str(tmp_path / "other.jpg")]]  # remembered me.jpg: not again


def test_a_remembered_camera_yields_to_an_input_flag(tmp_path):
    clip = tmp_path / "clip.avi"
    for argv, camera, file in [([], "2", ""), (["--camera", "1"], "1", ""),
                               (["--input", str(clip)], "0", str(clip))]:
        args = build_parser().parse_args(argv)
        config, _ = remembered_under_flags(config_from_args(args), StoredState(camera="2"),
                                           flag_keys(args))
        assert (config.input.camera, config.input.file) == (camera, file), argv


def launch(clip: Path, flags: list[str], change=None) -> dict:
    """livefusion_ui.main.run as the command line starts it; `change(window)` once frames show, then the
    window closes. Returns the settings the window ran with."""
    args = build_parser().parse_args(
        ["--input", str(clip), "--loop", "--no-virtual-cam", "--resolution", "160x120",
         "--provider", "cpu"] + flags)
    seen: dict = {}

    def drive() -> None:
        windows = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, MainWindow) and w.isVisible()]
        if windows and windows[0].preview.frames_shown >= 3:
            window = windows[0]
            if change is not None:
                change(window)
            seen["settings"] = window.app.settings.snapshot()
            window.close()
            return
        QTimer.singleShot(20, drive)

    QTimer.singleShot(0, drive)
    assert run(config_from_args(args), given=flag_keys(args)) == 0
    return seen["settings"]


def test_a_second_launch_keeps_window_changes_but_flags_win(qapp, tmp_path, settings_dir):  # noqa: F811
    clip = moving_video(tmp_path / "clip.avi", frames=30)

    def change(window: MainWindow) -> None:  # as a user would: click, then hotkeys
        window.controls.checks["color_transfer"].click()
        window.run_action("interval_up")
        window.run_action("interval_up")
        window.run_action("debug")

    first = launch(clip, [], change)
    assert (first.color_transfer, first.detect_every, first.show_debug) == (False, 7, True)
    remembered = launch(clip, [])  # no flags: the window's choices come back
    assert (remembered.color_transfer, remembered.detect_every, remembered.show_debug) == \
        (False, 7, True)
    flagged = launch(clip, ["--color-transfer", "--detect-every", "2", "--opacity", "0.3"])
    assert (flagged.color_transfer, flagged.detect_every, flagged.opacity) == (True, 2, 0.3)
    assert flagged.show_debug  # a key no flag named stays as remembered
