"""The one hotkey table: which key runs which window action.

The window binds its shortcuts from `bindings()`, the help overlay draws `help_lines()` and the
README's table is `markdown_table()`, so the three can never disagree. Keys are written the way
`QKeySequence` reads them ("Space", "F1", "Esc", "+").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hotkey:
    """One row: the keys, the action id the window runs, and what the row says to the user.

    indexed: each key passes its position in `keys` to the action (1-9 pick source 0-8).
    """

    keys: tuple[str, ...]
    action: str
    description: str
    shown: str  # how help and README show the keys
    indexed: bool = False


@dataclass(frozen=True)
class Binding:
    key: str
    action: str
    arg: int | None = None


SOURCE_KEYS = tuple(str(n) for n in range(1, 10))

HOTKEYS: tuple[Hotkey, ...] = (
    Hotkey(("Space",), "swap", "face swap on / off (off = viewers see your real face; "
           "every launch starts with it on)", "Space"),
    Hotkey(("E",), "enhancer", "face enhancer on / off", "E"),
    Hotkey(("V",), "virtual_cam", "virtual camera on / off", "V"),
    Hotkey(("R",), "record", "start / stop recording", "R"),
    Hotkey(("D",), "debug", "debug overlay: meters, boxes, landmarks, track ids", "D"),
    Hotkey(("M",), "mask", "show the blend mask", "M"),
    Hotkey(("B",), "before_after", "before / after split view", "B"),
    # "=" is the unshifted "+" key on US-style layouts; "Shift++" for platforms that report the
    # shift with the plus (the key mapper does not always strip it).
    Hotkey(("+", "Shift++", "="), "interval_up", "detect less often (detection interval + 1)", "+"),
    Hotkey(("-",), "interval_down", "detect more often (detection interval - 1)", "-"),
    Hotkey(SOURCE_KEYS, "source", "use source face 1-9", "1-9", indexed=True),
    Hotkey(("O",), "open_source", "open a source face image", "O"),
    Hotkey(("F",), "fullscreen", "full screen on / off", "F"),
    Hotkey(("F1", "H"), "help", "this help", "F1 / H"),
    Hotkey(("Q", "Esc"), "quit", "quit (asks first while the virtual camera is live; Esc "
           "over this help closes the help)", "Q / Esc"),
    Hotkey(("Ctrl+Q",), "quit_now", "quit at once, even with the virtual camera live",
           "Ctrl+Q"),
)


def bindings(table: tuple[Hotkey, ...] = HOTKEYS) -> list[Binding]:
    """Every (key, action, arg) to bind; raises ValueError if a key is bound twice."""
    out: list[Binding] = []
    seen: dict[str, str] = {}
    for row in table:
        for position, key in enumerate(row.keys):
            if key in seen:
                raise ValueError(f"hotkey {key!r} is bound to both {seen[key]} and {row.action}")
            seen[key] = row.action
            out.append(Binding(key, row.action, position if row.indexed else None))
    return out


def help_lines(table: tuple[Hotkey, ...] = HOTKEYS) -> list[tuple[str, str]]:
    """(keys, description) per row, for the help overlay."""
    return [(row.shown, row.description) for row in table]


def markdown_table(table: tuple[Hotkey, ...] = HOTKEYS) -> str:
    """The README's hotkey table."""
    lines = ["| Key | Action |", "|---|---|"]
    lines += [f"| `{row.shown}` | {row.description} |" for row in table]
    return "\n".join(lines) + "\n"
