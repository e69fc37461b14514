"""The source faces: thumbnails numbered like their hotkeys (1-9), add by file dialog or by
dropping image files, pick the active one, remove one.

The panel only shows and asks: it emits `add_requested(paths)`, `remove_requested(index)` and
`active_requested(index)`; the window turns those into engine commands and calls
`set_sources` / `set_active` with what the engine really holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QMimeData, QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QIcon, QImageReader, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
    QVBoxLayout, QWidget,
)

from livefusion.media.sources import is_image_path

THUMB = 88
IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff)"


@dataclass(frozen=True)
class SourceEntry:
    name: str
    paths: tuple[str, ...]


def image_paths(mime: QMimeData) -> list[str]:
    """Local image files among dropped URLs."""
    if not mime.hasUrls():
        return []
    paths = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]
    return [p for p in paths if p and is_image_path(p) and Path(p).is_file()]


def thumbnail(path: str, size: int = THUMB) -> QPixmap:
    """A small picture of `path`, decoded at thumbnail size (cheap for big photos)."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    full = reader.size()
    if full.isValid() and full.width() > 0 and full.height() > 0:
        reader.setScaledSize(full.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.darkGray)
        return pixmap
    return QPixmap.fromImage(image)


class SourcesPanel(QWidget):
    add_requested = Signal(list)  # list[str] of image paths
    remove_requested = Signal(int)
    active_requested = Signal(int)
    browse_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self._entries: list[SourceEntry] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        title = QLabel("Source faces")
        title.setStyleSheet("font-weight: bold")
        layout.addWidget(title)
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setMinimumHeight(THUMB + 40)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.list.setAcceptDrops(False)  # drops land on the panel
        self.list.currentRowChanged.connect(self._row_changed)
        layout.addWidget(self.list, 1)
        self.hint = QLabel("Drop a photo here or press O")
        self.hint.setStyleSheet("color: gray")
        layout.addWidget(self.hint)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add…")
        self.add_button.setToolTip("Add a photo of the face to put on (O)")
        self.add_button.clicked.connect(self.browse_requested)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self._remove_current)
        for button in (self.add_button, self.remove_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            row.addWidget(button)
        layout.addLayout(row)
        self._update_buttons()

    # --- shown state -------------------------------------------------------------------------

    @property
    def entries(self) -> list[SourceEntry]:
        return list(self._entries)

    def count(self) -> int:
        return len(self._entries)

    def set_sources(self, entries: list[SourceEntry], active: int) -> None:
        if entries != self._entries:
            self._entries = list(entries)
            self.list.blockSignals(True)
            self.list.clear()
            for number, entry in enumerate(entries, start=1):
                label = f"{number}  {entry.name}" if number <= 9 else entry.name
                item = QListWidgetItem(QIcon(thumbnail(entry.paths[0])), label)
                item.setToolTip("\n".join(entry.paths))
                self.list.addItem(item)
            self.list.blockSignals(False)
        self.set_active(active)
        self._update_buttons()

    def set_active(self, index: int) -> None:
        if not self._entries:
            return
        index = min(max(index, 0), len(self._entries) - 1)
        if self.list.currentRow() != index:
            self.list.blockSignals(True)
            self.list.setCurrentRow(index)
            self.list.blockSignals(False)

    def _update_buttons(self) -> None:
        self.remove_button.setEnabled(bool(self._entries))
        self.hint.setVisible(not self._entries)

    # --- user input --------------------------------------------------------------------------

    def _row_changed(self, row: int) -> None:
        if row >= 0:
            self.active_requested.emit(row)

    def _remove_current(self) -> None:
        row = self.list.currentRow()
        if row >= 0:
            self.remove_requested.emit(row)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if image_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        if image_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        paths = image_paths(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.add_requested.emit(paths)
