"""`run(config)`: the desktop app. High-DPI aware QApplication, first-run model download,
the no-camera dialog, the main window, the event loop; returns the process exit code."""

from __future__ import annotations

import logging
import sys
from copy import deepcopy
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QFileDialog, QWidget

from livefusion.app import LiveApp, build_app
from livefusion.config import AppConfig
from livefusion.errors import LiveFusionError
from livefusion.media.sources import SourceError
from livefusion_ui import dialogs
from livefusion_ui.qt_platform import QtPlatformError, xcb_problem
from livefusion_ui.settings_store import CAMERA_FLAG_KEYS, SettingsStore, StoredState
from livefusion_ui.window import MainWindow

log = logging.getLogger(__name__)

FINALISE_TIMEOUT_S = 10.0  # how long an exit waits for a recording to be finalised
VIDEO_FILTER = "Videos and images (*.mp4 *.mov *.mkv *.avi *.webm *.jpg *.jpeg *.png)"


def application(argv: list[str] | None = None) -> QApplication:
    """The one QApplication, created high-DPI aware (fractional scale factors kept as they are,
    so 125 % and 150 % displays get a sharp preview rather than a rounded, blurry one)."""
    existing = QApplication.instance()
    if existing is not None:
        return existing  # type: ignore[return-value]
    problem = xcb_problem()
    if problem:  # Qt would abort with a misleading hint; say what to install instead
        raise QtPlatformError(problem)
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("LiveFusion")
    app.setOrganizationName("LiveFusion")
    return app


def with_remembered_camera(config: AppConfig, state: StoredState,
                           given: frozenset[str] = frozenset()) -> AppConfig:
    """Use the input (camera or file) last chosen in the window, unless the command line
    named one (`given`: the config keys the flags set)."""
    if not state.camera or set(CAMERA_FLAG_KEYS) & given:
        return config
    config = deepcopy(config)
    if Path(state.camera).is_file() and not state.camera.isdigit():
        config.input.file = state.camera
    else:
        config.input.file, config.input.camera = "", state.camera
    return config


def remembered_under_flags(config: AppConfig, state: StoredState,
                           given: frozenset[str]) -> tuple[AppConfig, StoredState]:
    """Precedence: defaults < config files < profile < remembered window settings <
    command-line flags. `config` holds all but the remembered layer; the result is the
    configuration and the remembered state that the window applies over it."""
    state = state.under_flags(given, config.face.sources)
    return with_remembered_camera(config, state, given), state


def open_app(config: AppConfig, parent: QWidget | None = None) -> LiveApp | None:
    """build_app with the no-camera dialog: try again, use a video file, or quit (None)."""

    while True:
        try:
            return build_app(config)
        except SourceError as exc:
            box = dialogs.no_camera_box(parent, str(exc))
            box.exec()
            choice = box.property("choice")
            if choice == dialogs.NoCameraChoice.OPEN_FILE:
                path, _ = QFileDialog.getOpenFileName(parent, "Use a video file", "", VIDEO_FILTER)
                if path:
                    config = deepcopy(config)
                    config.input.file = path
            elif choice != dialogs.NoCameraChoice.RETRY:
                return None
        except LiveFusionError as exc:  # a model or a source photo: the message has the fix
            dialogs.error_box(parent, "LiveFusion cannot start", str(exc)).exec()
            return None


def run(config: AppConfig, argv: list[str] | None = None, *,
        given: frozenset[str] = frozenset()) -> int:
    """`given`: the config keys the command line set; they win over remembered settings."""
    qapp = application(argv)
    store = SettingsStore()
    config, state = remembered_under_flags(config, store.load(), given)
    if config.face.sources or state.existing_sources():
        ready, message = dialogs.ensure_models(None, config)
        if not ready:
            if config.face.sources:  # the user asked for a swap on the command line
                dialogs.error_box(None, "models are missing", message).exec()
                return 2
            log.warning("remembered source faces not restored: %s", message)
            state.sources = []
    app = open_app(config)
    if app is None:
        return 1
    window = MainWindow(app, store=store, state=state)
    window.show()
    window.start()
    code = qapp.exec()
    window.shutdown()
    # stop() returns within about a second; a recording may still be finalising on the output
    # thread, and the process must not exit (killing it) before the file is complete.
    if not window.join(FINALISE_TIMEOUT_S):
        log.warning("threads still running %.0f s after closing; a recording may be incomplete",
                    FINALISE_TIMEOUT_S)
    return code
