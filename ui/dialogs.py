"""Dialogs: first-run model download (licence notice + progress), no camera, no virtual-camera
driver, a source photo without a face, and other errors with their fix.

Message boxes are returned unshown: the window opens them window-modal without blocking
(`open()`), so the preview keeps running behind them; start-up code may `exec()` them.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Any, Callable

from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtWidgets import (
    QDialog, QDialogButtonBox, QFrame, QHBoxLayout, QLabel, QMessageBox, QProgressBar,
    QPushButton, QScrollArea, QTextBrowser, QVBoxLayout, QWidget,
)

from livefusion.config import AppConfig
from livefusion.models.roles import needed_ids
from livefusion.models.store import ModelEntry, ModelError, ModelStore
from livefusion.media.sinks import virtual_camera_fix
from livefusion_ui.screen_fit import available_area, fit_to_screen, fitted_size

log = logging.getLogger(__name__)

DIALOG_WIDTH = 720  # the download dialog's width where the screen has room
DIALOG_MIN_WIDTH = 420


# --- first run: models ------------------------------------------------------------------------

def missing_models(config: AppConfig, store: ModelStore) -> list[str]:
    """Catalog ids the configuration needs whose files are not there yet (cheap: no hashing;
    the engine verifies every file when it loads it)."""
    return [mid for mid in needed_ids(config, store.catalog)
            if not (store.root / store.catalog.get(mid).file).is_file()]


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:,.0f} MB"


class DownloadCancelled(Exception):
    """The user cancelled the first-run download (raised inside the progress callback)."""


class ModelDownloadDialog(QDialog):
    """Downloads `model_ids` into `store` on a worker thread, asking before each model whose
    licence restricts use (the store's licence hook) and showing bytes as they arrive.

    The dialog takes over the store's progress callback and licence hook. After it closes,
    `succeeded` says whether every model is in place and `error` holds the store's message
    (with the manual fix) when not.
    """

    _progress = Signal(object, object)  # bytes done, total or None
    _model_started = Signal(str, int, int)  # id, position, count
    _licence_needed = Signal(object)  # ModelEntry
    _finished = Signal(object)  # None, or the error text

    def __init__(self, store: ModelStore, model_ids: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("LiveFusion: downloading models")
        self.setMinimumWidth(DIALOG_MIN_WIDTH)
        self.store = store
        self.model_ids = list(model_ids)
        self.succeeded = False
        self.cancelled = False
        self.error = ""
        self._cancel = threading.Event()
        self._answer = threading.Event()
        self._licence_ok = False
        self._worker: threading.Thread | None = None
        store.download_options = replace(store.download_options, progress=self._on_bytes,
                                         show_bar=False)
        store.licence_hook = self._ask_licence
        self._build()
        self._progress.connect(self._show_progress, Qt.ConnectionType.QueuedConnection)
        self._model_started.connect(self._show_model, Qt.ConnectionType.QueuedConnection)
        self._licence_needed.connect(self._show_licence, Qt.ConnectionType.QueuedConnection)
        self._finished.connect(self._done, Qt.ConnectionType.QueuedConnection)

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        entries = [self.store.catalog.get(mid) for mid in self.model_ids]
        total = sum(max((s.size for s in e.sources), default=0) for e in entries)
        # The text a user is asked to accept scrolls rather than being cut off: the intro and
        # the model list in a scroll area, the licence in a text browser (scrolls itself).
        self.details = QWidget()
        column = QVBoxLayout(self.details)
        column.setContentsMargins(0, 0, 0, 0)
        intro = QLabel(
            "LiveFusion needs these models before it can swap faces (about "
            f"{_mb(total)} in all, once). They are checked (size and sha256) after downloading "
            f"and saved in {self.store.root}.")
        intro.setWordWrap(True)
        column.addWidget(intro)
        self.listing = QLabel("\n".join(f"•  {e.id}  ({e.role}) — {e.licence or 'see models/README'}"
                                        for e in entries))
        self.listing.setWordWrap(True)
        self.listing.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        column.addWidget(self.listing)
        column.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.details)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout.addWidget(self.scroll, 1)
        self.licence = QTextBrowser()
        self.licence.setVisible(False)
        self.licence.setMinimumHeight(self.fontMetrics().lineSpacing() * 5)
        layout.addWidget(self.licence, 1)
        self.licence_buttons = QDialogButtonBox()
        self.accept_button = self.licence_buttons.addButton(
            "I accept these terms", QDialogButtonBox.ButtonRole.AcceptRole)
        self.decline_button = self.licence_buttons.addButton(
            "Decline", QDialogButtonBox.ButtonRole.RejectRole)
        self.accept_button.clicked.connect(lambda: self._answer_licence(True))
        self.decline_button.clicked.connect(lambda: self._answer_licence(False))
        self.licence_buttons.setVisible(False)
        layout.addWidget(self.licence_buttons)
        self.status = QLabel("Starting…")
        layout.addWidget(self.status)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        layout.addWidget(self.bar)
        row = QHBoxLayout()
        row.addStretch(1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.reject)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)

    # --- worker thread ----------------------------------------------------------------------

    # --- size ---------------------------------------------------------------------------------

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        self.fit_to_screen()
        super().showEvent(event)

    def fit_to_screen(self, area: QRect | None = None) -> None:
        """As large as the model list and licence need, up to the screen's free area; what
        does not fit then scrolls (the list) or scrolls itself (the licence text)."""
        area = area or available_area(self)
        width = fitted_size(QSize(DIALOG_WIDTH, 0), area).width()
        margins = self.layout().contentsMargins()
        inner = width - margins.left() - margins.right()
        self.details.setMinimumWidth(0)
        content = self.details.heightForWidth(inner)
        content = content if content > 0 else self.details.sizeHint().height()
        room = fitted_size(QSize(0, area.height()), area).height()
        # the list gets its full height while the rest of the dialog still fits
        others = self.layout().totalSizeHint().height() - self.scroll.sizeHint().height()
        if self.licence.isVisible():
            others += self.licence.minimumHeight() - self.licence.sizeHint().height()
        self.scroll.setMinimumHeight(max(min(content, room - others), 3 * self.fontMetrics().lineSpacing()))
        height = min(self.layout().totalHeightForWidth(width), room)
        self.setMinimumWidth(min(DIALOG_MIN_WIDTH, width))
        fit_to_screen(self, QSize(width, max(height, self.layout().totalMinimumSize().height())),
                      area)

    def start(self) -> None:
        if self._worker is not None:
            return
        self._worker = threading.Thread(target=self._work, name="lf-model-download", daemon=True)
        self._worker.start()

    def _work(self) -> None:
        error: str | None = None
        try:
            self.store.ensure_all(self.model_ids, download=True, started=self._model_started.emit)
        except DownloadCancelled:
            error = "cancelled"
        except ModelError as exc:
            error = str(exc)
        except Exception as exc:  # shown to the user; the traceback goes to the log
            log.exception("model download failed")
            error = f"{type(exc).__name__}: {exc}"
        self._finished.emit(error)

    def _on_bytes(self, done: int, total: int | None) -> None:
        if self._cancel.is_set():
            raise DownloadCancelled()
        self._progress.emit(done, total)

    def _ask_licence(self, entry: ModelEntry) -> bool:
        if self._cancel.is_set():
            return False
        self._answer.clear()
        self._licence_needed.emit(entry)
        self._answer.wait()
        return self._licence_ok and not self._cancel.is_set()

    # --- Qt thread ----------------------------------------------------------------------------

    def _show_model(self, model_id: str, position: int, count: int) -> None:
        self.status.setText(f"Model {position + 1} of {count}: {model_id}")
        self.bar.setValue(0)

    def _show_progress(self, done: int, total: int | None) -> None:
        if total:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(1000 * done / total))
            self.bar.setFormat(f"{_mb(done)} of {_mb(total)}")
        else:
            self.bar.setRange(0, 0)

    def _show_licence(self, entry: ModelEntry) -> None:
        self.licence.setPlainText(
            f"{entry.id}: {entry.licence}\n\nDownloading it means accepting these terms. "
            "LiveFusion is for consensual, clearly labelled use; do not impersonate people.")
        self.licence.setVisible(True)
        self.licence_buttons.setVisible(True)
        self.accept_button.setFocus()
        self.fit_to_screen()

    def _answer_licence(self, ok: bool) -> None:
        self._licence_ok = ok
        self.licence_buttons.setVisible(False)
        self._answer.set()

    @property
    def asking_licence(self) -> bool:
        return self.licence_buttons.isVisible()

    def _done(self, error: str | None) -> None:
        self._join()
        if error is None:
            self.succeeded = True
            self.bar.setRange(0, 1000)
            self.bar.setValue(1000)
            self.status.setText("All models are ready.")
            self.accept()
            return
        self.cancelled = error == "cancelled" or self._cancel.is_set()
        self.error = "" if self.cancelled else error
        if self.cancelled:
            super().reject()
            return
        self.status.setText("The download failed; see below for how to get the files yourself.")
        self.licence.setPlainText(error)
        self.licence.setVisible(True)
        self.fit_to_screen()
        self.cancel_button.setText("Close")
        self.cancel_button.clicked.disconnect()
        self.cancel_button.clicked.connect(lambda: QDialog.reject(self))

    def reject(self) -> None:
        """Cancel: stop the worker (at its next block of bytes) and close once it has."""
        if self._worker is not None and self._worker.is_alive():
            self._cancel.set()
            self._answer_licence(False)
            self.status.setText("Cancelling…")
            self.cancel_button.setEnabled(False)
            return  # _done closes the dialog
        super().reject()

    def _join(self) -> None:
        if self._worker is not None:
            self._worker.join(timeout=5.0)


def ensure_models(parent: QWidget | None, config: AppConfig, *,
                  store: ModelStore | None = None) -> tuple[bool, str]:
    """Make sure the models the configuration needs are on disk, downloading them with the
    dialog (blocking: a modal first-run step). Returns (ready, message for the user)."""
    store = store or ModelStore.from_config(config)
    try:
        missing = missing_models(config, store)
    except ModelError as exc:
        return False, str(exc)
    if not missing:
        return True, ""
    if not config.models.auto_download:
        return False, "\n\n".join(store.guidance(mid, reason="downloads are turned off "
                                                 "(models.auto_download = false)")
                                  for mid in missing)
    dialog = ModelDownloadDialog(store, missing, parent)
    dialog.start()
    dialog.exec()
    if dialog.succeeded:
        return True, ""
    return False, "Model download cancelled." if dialog.cancelled else dialog.error


# --- message boxes ------------------------------------------------------------------------------

def _box(parent: QWidget | None, icon: QMessageBox.Icon, title: str, text: str,
         informative: str = "", details: str = "") -> QMessageBox:
    box = QMessageBox(icon, title, text, QMessageBox.StandardButton.NoButton, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    if informative:
        box.setInformativeText(informative)
    if details:
        box.setDetailedText(details)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    return box


class NoCameraChoice:
    OPEN_FILE = "open_file"
    RETRY = "retry"
    QUIT = "quit"


def no_camera_box(parent: QWidget | None, message: str) -> QMessageBox:
    """The camera would not open: the source's message (what to check), plus the ways on.
    `box.property("choice")` after exec: one of NoCameraChoice."""
    box = _box(parent, QMessageBox.Icon.Warning, "LiveFusion: no camera",
               "No camera could be opened.", message)
    open_file = box.addButton("Use a video file…", QMessageBox.ButtonRole.ActionRole)
    retry = box.addButton("Try again", QMessageBox.ButtonRole.AcceptRole)
    quit_ = box.addButton("Quit", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(retry)
    choices = {open_file: NoCameraChoice.OPEN_FILE, retry: NoCameraChoice.RETRY,
               quit_: NoCameraChoice.QUIT}
    box.buttonClicked.connect(lambda button: box.setProperty("choice", choices.get(button)))
    return box


def virtual_camera_box(parent: QWidget | None, message: str, system: str | None = None) -> QMessageBox:
    fix = virtual_camera_fix(system)
    box = _box(parent, QMessageBox.Icon.Warning, "LiveFusion: no virtual camera",
               "No virtual-camera driver is installed, so other apps cannot see LiveFusion yet.",
               f"To fix it: {fix}.\n\nThe preview and recording keep running; press V again "
               "once the driver is installed.", details=message)
    box.addButton(QMessageBox.StandardButton.Ok)
    box.setProperty("fix", fix)
    return box


def quit_live_box(parent: QWidget | None) -> QMessageBox:
    """Q / Esc while the virtual camera is live: quitting ends what viewers see, so ask.
    `box.property("quit")` is True once the user chose to quit."""
    box = _box(parent, QMessageBox.Icon.Question, "LiveFusion: quit while live?",
               "The virtual camera is live: quitting ends the stream your viewers see.",
               "Quit anyway? (Ctrl+Q quits without asking.)")
    quit_ = box.addButton("Quit", QMessageBox.ButtonRole.DestructiveRole)
    keep = box.addButton("Keep streaming", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(keep)
    box.setEscapeButton(keep)
    box.setProperty("quit", False)
    box.buttonClicked.connect(lambda button: box.setProperty("quit", button is quit_))
    return box


def source_face_box(parent: QWidget | None, message: str) -> QMessageBox:
    box = _box(parent, QMessageBox.Icon.Warning, "LiveFusion: no face in that photo",
               "That photo cannot be used as a source face.",
               f"{message}\n\nUse a clear, front-facing photo of one person, face not too "
               "small or cut off.")
    box.addButton(QMessageBox.StandardButton.Ok)
    return box


def error_box(parent: QWidget | None, title: str, message: str) -> QMessageBox:
    box = _box(parent, QMessageBox.Icon.Critical, f"LiveFusion: {title}", title, message)
    box.addButton(QMessageBox.StandardButton.Ok)
    return box


def show_box(box: QMessageBox, on_close: Callable[[], Any] | None = None) -> QMessageBox:
    """Open `box` without blocking; it deletes itself when closed."""
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    if on_close is not None:
        box.finished.connect(lambda _result: on_close())
    box.open()
    return box
