"""The hotkey table: the keys the product promises, no key bound twice, every action known to
the window, and the same rows in the help overlay and the README table."""

from __future__ import annotations

import pytest

from ui.hotkeys import HOTKEYS, Binding, Hotkey, bindings, help_lines, markdown_table

PROMISED = {
    "Space": "swap", "E": "enhancer", "V": "virtual_cam", "R": "record", "D": "debug",
    "M": "mask", "B": "before_after", "+": "interval_up", "-": "interval_down",
    **{str(n): "source" for n in range(1, 10)}, "O": "open_source", "F": "fullscreen",
    "F1": "help", "H": "help", "Q": "quit", "Esc": "quit",
}


def test_every_promised_key_is_bound_to_its_action():
    bound = {b.key: b.action for b in bindings()}
    for key, action in PROMISED.items():
        assert bound.get(key) == action, f"{key} should run {action}"


def test_digits_pass_the_source_index():
    digits = [b for b in bindings() if b.action == "source"]
    assert [(b.key, b.arg) for b in digits] == [(str(n), n - 1) for n in range(1, 10)]


def test_a_key_bound_twice_is_refused():
    table = (Hotkey(("X",), "a", "", "X"), Hotkey(("X",), "b", "", "X"))
    with pytest.raises(ValueError, match="'X' is bound to both a and b"):
        bindings(table)


def test_the_window_handles_every_action(make_window, small_video, no_thread_leak):
    from tests.ui.conftest import video_config

    running = make_window(video_config(small_video, (160, 120)), start=False)
    window = running.window
    handled = []
    for row in HOTKEYS:
        if row.action in ("quit", "open_source", "virtual_cam"):  # side effects tested elsewhere
            continue
        window.run_action(row.action, 0 if row.indexed else None)
        handled.append(row.action)
    assert len(handled) == len(HOTKEYS) - 3
    with pytest.raises(ValueError, match="unknown window action"):
        window.run_action("launch_rockets")
    window.close()  # never started: the recorder R added must still be closed


def test_help_and_readme_show_every_row():
    table = markdown_table()
    assert len(help_lines()) == len(HOTKEYS)
    for row in HOTKEYS:
        assert f"| `{row.shown}` | {row.description} |" in table
    assert isinstance(bindings()[0], Binding)


def test_readme_lists_the_same_hotkeys_as_the_window():
    from pathlib import Path

    from ui.hotkeys import markdown_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert markdown_table() in readme
