"""Windows and dialogs sized to the screen they open on: never larger than its free area
(the task bar excluded), so nothing is cut off on a 1024x600 netbook or a scaled laptop."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

FRAME_ALLOWANCE = QSize(16, 48)  # window-manager border and title bar, not in the widget's size


def available_area(widget: QWidget) -> QRect:
    screen = widget.screen() or QGuiApplication.primaryScreen()
    return screen.availableGeometry() if screen is not None else QRect(0, 0, 1024, 600)


def fitted_size(preferred: QSize, area: QRect, minimum: QSize = QSize(0, 0)) -> QSize:
    """`preferred`, shrunk to what fits in `area` with its frame; never below `minimum`."""
    room = area.size() - FRAME_ALLOWANCE
    return QSize(max(min(preferred.width(), room.width()), minimum.width()),
                 max(min(preferred.height(), room.height()), minimum.height()))


def fit_to_screen(widget: QWidget, preferred: QSize, area: QRect | None = None) -> None:
    """Resize `widget` to `preferred` or less, and keep it inside the screen's free area."""
    area = area or available_area(widget)
    size = fitted_size(preferred, area, widget.minimumSizeHint().boundedTo(area.size()))
    widget.resize(size)
    if not widget.isVisible():
        return  # the window manager places it (centred, cascaded) when it is shown
    x = min(max(widget.x(), area.left()), max(area.right() - size.width(), area.left()))
    y = min(max(widget.y(), area.top()), max(area.bottom() - size.height(), area.top()))
    widget.move(x, y)
