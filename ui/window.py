"""The main window: live preview, source faces, controls, status area, hotkeys.

The Qt thread does no pipeline work. Frames arrive through `FrameBridge` (newest only); user
changes go to the engine as `app.settings.update(...)` (applied between frames) or through the
app's control methods, whose work runs on the pipeline's own threads; their results come back
through a `Relay`. A 4 Hz timer reads the meters for the status area and the meters overlay.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QSize, QStandardPaths, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog, QLabel, QMainWindow, QMessageBox, QScrollArea, QSizePolicy, QSplitter, QVBoxLayout,
    QWidget,
)

from livefusion.app import LiveApp
from livefusion.config import AppConfig, same_file_key, unique_paths
from livefusion.face.embed import SourceFaceError
from livefusion.meters import StageStats
from livefusion.packet import FramePacket
from livefusion.pipeline import RunEnd
from livefusion.settings import LiveSettings
from livefusion.media.recording import record_extension
from livefusion.media.sinks import SinkError
from livefusion_ui import dialogs
from livefusion_ui.bridge import FrameBridge, Relay
from livefusion_ui.controls import ControlsPanel, OutputsView
from livefusion_ui.hotkeys import bindings, help_lines
from livefusion_ui.input_switch import InputSwitcher
from livefusion_ui.preview import PreviewWidget
from livefusion_ui.screen_fit import fit_to_screen
from livefusion_ui.settings_store import SettingsStore, StoredState
from livefusion_ui.sources_panel import IMAGE_FILTER, SourceEntry, SourcesPanel
from livefusion_ui.status import engine_provider, reveal_warning, status_view

log = logging.getLogger(__name__)

STATUS_PERIOD_MS = 250
PREFERRED_SIZE = QSize(1280, 760)  # smaller screens get what fits (ui/screen_fit.py)
MESSAGE_MS = 5000  # the shortest a status-bar message stays up
IMPORTANT_MS = 10000  # where a recording went, and other things a user must be able to read
SWAP_OFF_STYLE = "QLabel { color: white; background: #c81010; font-weight: bold; }"
EnsureModels = Callable[[QWidget, AppConfig], "tuple[bool, str]"]


def default_recordings_dir() -> Path:
    movies = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.MoviesLocation)
    return Path(movies or Path.home()) / "LiveFusion"


class MainWindow(QMainWindow):
    def __init__(self, app: LiveApp, *, store: SettingsStore | None = None,
                 state: StoredState | None = None, recordings_dir: Path | None = None,
                 ensure_models: EnsureModels | None = None) -> None:
        super().__init__()
        self.app = app
        self.store = store
        self.state = state or StoredState()
        self.recordings_dir = recordings_dir or default_recordings_dir()
        self._ensure_models = ensure_models or dialogs.ensure_models
        self.last_dialog: QMessageBox | None = None
        self.file_dialog: QFileDialog | None = None
        self.stop_seconds: float | None = None
        self.message_until = 0.0  # time.monotonic() at which the status message goes
        self.recording_finalised: Future | None = None
        self._started = False
        self._stopped = False
        self._quit_decided = False  # a close that must not ask (Quit answered, Ctrl+Q, --frames)
        self._end_seen: LiveApp | None = None  # the app whose end was already shown
        self._cameras: list[tuple[str, str]] = []
        self.bridge = FrameBridge(self)
        self.bridge.connect_to(self._on_frame)
        self._relay = Relay(self._run_in_ui, self)
        self.inputs = InputSwitcher(self._relay)
        self._build()
        self._subscribe(app)
        self.shortcuts = self._bind_hotkeys()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.refresh_status)
        self.state.apply_toggles(app.settings)
        if self.state.geometry:
            self.restoreGeometry(self.state.geometry)
        self.refresh_status()

    # --- layout --------------------------------------------------------------------------------

    def _build(self) -> None:
        self.setWindowTitle(f"LiveFusion — {self._input_description()}")
        self.setAcceptDrops(False)
        self.preview = PreviewWidget()
        self.sources = SourcesPanel()
        self.controls = ControlsPanel()
        side = QWidget()
        column = QVBoxLayout(side)
        column.addWidget(self.sources, 1)
        column.addWidget(self.controls)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        # wide enough for the panel and its vertical scroll bar: no sideways scrolling
        scroll.setMinimumWidth(max(300, side.minimumSizeHint().width()
                                   + scroll.verticalScrollBar().sizeHint().width() + 4))
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        splitter = QSplitter()
        splitter.addWidget(self.preview)
        splitter.addWidget(scroll)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([960, 300])
        self.setCentralWidget(splitter)
        self.status_label = QLabel()
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # A long status line must not set the window's minimum width; it is cut, and the
        # whole line is in the tooltip.
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.statusBar().addPermanentWidget(self.status_label, 1)
        # A message gets the whole bar while it is up: the 4 Hz status line steps aside rather
        # than squeezing it to a few letters.
        self.statusBar().messageChanged.connect(
            lambda text: self.status_label.setVisible(not text))
        self.sources.add_requested.connect(self.add_source_files)
        self.sources.browse_requested.connect(self.open_source_dialog)
        self.sources.remove_requested.connect(self.remove_source)
        self.sources.active_requested.connect(lambda i: self.app.settings.update(active_source=i))
        self.controls.setting_changed.connect(self._apply_setting)
        self.controls.virtual_cam_toggled.connect(self.set_virtual_cam)
        self.controls.record_toggled.connect(self.set_recording)
        self.controls.camera_chosen.connect(self.switch_input)
        self.controls.scan_requested.connect(self.scan_cameras)
        self._show_input_choice()
        fit_to_screen(self, PREFERRED_SIZE)

    def _bind_hotkeys(self) -> list[QShortcut]:
        shortcuts = []
        for binding in bindings():
            shortcut = QShortcut(QKeySequence(binding.key), self)
            # Window context: inactive while a dialog is up, so Esc closes the dialog, not the app.
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(
                lambda b=binding: self.run_action(b.action, b.arg))
            shortcuts.append(shortcut)
        return shortcuts

    def _subscribe(self, app: LiveApp) -> None:
        app.pipeline.subscribe(self.bridge.submit)

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the pipeline and re-add the remembered source faces."""
        self.app.start()
        self._started = True
        self._timer.start(STATUS_PERIOD_MS)
        remembered = self.state.existing_sources()
        if remembered and self._models_ready():
            for paths in remembered:
                self._add_identity(paths, make_active=False)

    def shutdown(self) -> None:
        """Stop the pipeline (within about a second; a recording is finalised) and save state."""
        if self._stopped:
            return
        started = time.perf_counter()
        self.inputs.close()  # waits while a switch is stopping the old pipeline
        self._stopped = True
        self._timer.stop()
        self.bridge.close()
        self._relay.close()  # results still on their way have no window left to update
        self.app.stop()
        if not self._started:  # no output thread ran, so close what it would have closed
            for name in list(self.app.pipeline.sink_names):
                self.app.pipeline.remove_sink(name)
            self.app.pipeline.source.close()  # type: ignore[attr-defined]
        self.inputs.wind_down()  # an input a switch opened but the window never took up
        self.stop_seconds = time.perf_counter() - started
        log.info("pipeline stopped in %.2f s", self.stop_seconds)
        self.save_state()

    def join(self, timeout: float) -> bool:
        """After `shutdown()`: wait up to `timeout` s for the threads still finishing (an output
        thread finalising a recording, an input switch). Call before the process exits; True
        when none is left."""
        deadline = time.monotonic() + timeout
        inputs_done = self.inputs.join(timeout)
        own_done = self.app.pipeline.join(max(deadline - time.monotonic(), 0.0))
        return inputs_done and own_done

    @property
    def switching(self) -> bool:
        """True from `switch_input` until the new input is shown or has failed to open."""
        return self.inputs.switching

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        """Any close (the title bar's X, Alt+F4, the window manager) ends the viewers' stream
        while the virtual camera is live, so it asks first, like Q/Esc."""
        if self._asks_before_closing():
            event.ignore()
            self._confirm_quit()
            return
        self.shutdown()
        event.accept()

    def _asks_before_closing(self) -> bool:
        return (not self._quit_decided and not self._stopped
                and self.app.outputs.virtual_cam == "on")

    def quit_now(self) -> None:
        """Close without asking (Ctrl+Q, the end of a --frames run, Quit in the question)."""
        self._quit_decided = True
        self.close()

    def save_state(self) -> None:
        if self.store is None:
            return
        engine = self.app.engine
        sources = ([[str(p) for p in s.paths] for s in engine.sources] if engine is not None
                   else self.state.existing_sources())
        self.state = StoredState.capture(self.app.settings.snapshot(), camera=self.state.camera,
                                         sources=sources, geometry=bytes(self.saveGeometry().data()))
        self.store.save(self.state)

    # --- frames and status ---------------------------------------------------------------------

    def _on_frame(self) -> None:
        packet: FramePacket | None = self.bridge.take()
        if packet is not None:
            self.preview.show_packet(packet)

    def ui_stats(self) -> StageStats:
        """Milliseconds of Qt-thread work per shown frame (wrap + paint), p50/p95 over 300."""
        return self.preview.timer.stats()

    def refresh_status(self) -> None:
        if self._check_end():
            return
        outputs = self.app.outputs
        vcam = outputs.virtual_cam
        if vcam == "on" and outputs.virtual_cam_message:
            vcam = f"on: {outputs.virtual_cam_message}"
        settings = self.app.settings.snapshot()
        view = status_view(self.app.meters.snapshot(), provider=engine_provider(self.app.engine),
                           vcam=vcam, recording=Path(outputs.recording).name if outputs.recording
                           else "", ui=self.ui_stats(), swap_enabled=settings.swap_enabled,
                           reveal=self._reveal_text(settings))
        self._show_swap_state(settings)
        self.status_label.setText(view.line())
        self.status_label.setToolTip(view.line().replace("  |  ", "\n"))
        self.preview.set_meter_lines(view.overlay_lines())
        self.controls.show_state(settings,
                                 self._outputs_view())
        self._show_sources()

    def _outputs_view(self) -> OutputsView:
        outputs, engine = self.app.outputs, self.app.engine
        return OutputsView(outputs.virtual_cam == "on", bool(outputs.recording),
                           enhancer_loaded=engine is not None and engine.enhancer is not None)

    def _check_end(self) -> bool:
        """The run ended by itself: after --frames N the window closes (the app exits 0);
        at the end of a video file it stays, and the picture and the status say so. True when
        the window was closed."""
        ended = self.app.ended
        if ended is None or self._end_seen is self.app or self._stopped:
            return False
        self._end_seen = self.app
        if ended is RunEnd.FRAME_LIMIT:
            log.info("%s Closing the window.", self.app.ended_message())
            self.quit_now()
            return True
        saved = self.app.outputs_closed()
        notice = (f"{self.app.ended_message()}\nStart it with --loop to play it again and "
                  "again, or choose another input.")
        self.preview.set_notice(notice)
        self._message(notice.replace("\n", " ") + (f" Recording saved: {saved}" if saved
                                                   else ""), 0)
        return False

    def _reveal_text(self, settings: LiveSettings) -> str:
        return reveal_warning(settings.swap_enabled, settings.opacity,
                              self.app.config.privacy.min_opacity)

    def _show_swap_state(self, settings: LiveSettings) -> None:
        """Swap off (or a faint swap) reveals the real face: the preview's banner and a red
        status line say so."""
        text = self._reveal_text(settings)
        self.preview.set_reveal(text)
        style = SWAP_OFF_STYLE if text else ""
        if self.status_label.styleSheet() != style:
            self.status_label.setStyleSheet(style)

    def _show_sources(self) -> None:
        engine = self.app.engine
        identities = engine.sources if engine is not None else ()
        entries = [SourceEntry(s.name, tuple(str(p) for p in s.paths)) for s in identities]
        self.sources.set_sources(entries, self.app.settings.snapshot().active_source)

    def _message(self, text: str, ms: int = MESSAGE_MS) -> None:
        """Show `text` for `ms` (at least MESSAGE_MS; 0 = until the next message)."""
        ms = max(ms, MESSAGE_MS) if ms else 0
        self.message_until = time.monotonic() + ms / 1000.0 if ms else float("inf")
        self.statusBar().showMessage(text, ms)

    def _show_box(self, box: QMessageBox) -> None:
        """Open `box`; `last_dialog` holds it only while it is open (it deletes itself when
        closed, and a wrapper of a deleted box raises on any use)."""
        self.last_dialog = dialogs.show_box(box)
        box.finished.connect(lambda _result: self._forget_box(box))
        box.destroyed.connect(lambda *_: self._forget_box(box))

    def _forget_box(self, box: QMessageBox) -> None:
        if self.last_dialog is box:
            self.last_dialog = None

    # --- actions (hotkeys and controls) --------------------------------------------------------

    def run_action(self, action: str, arg: int | None = None) -> None:
        settings = self.app.settings
        handlers: dict[str, Callable[[], Any]] = {
            "swap": lambda: settings.toggle("swap_enabled"),
            "enhancer": self._toggle_enhancer,
            "virtual_cam": lambda: self.set_virtual_cam(not self._virtual_cam_on_or_opening()),
            "record": lambda: self.set_recording(not self.app.outputs.recording),
            "debug": lambda: settings.toggle("show_debug"),
            "mask": lambda: settings.toggle("show_mask"),
            "before_after": lambda: settings.toggle("before_after"),
            "interval_up": lambda: self._step_interval(+1),
            "interval_down": lambda: self._step_interval(-1),
            "source": lambda: self.pick_source(arg or 0),
            "open_source": self.open_source_dialog,
            "fullscreen": self.toggle_fullscreen,
            "help": self.toggle_help,
            "quit": self.quit_or_close_help,
            "quit_now": self.quit_now,
        }
        if action not in handlers:
            raise ValueError(f"unknown window action {action!r}; see ui/hotkeys.py")
        handlers[action]()
        if not self._stopped:
            self.refresh_status()

    def _apply_setting(self, name: str, value: Any) -> None:
        snapshot = self.app.settings.update(**{name: value})
        if name in ("swap_enabled", "opacity"):
            self._show_swap_state(snapshot)

    def _toggle_enhancer(self) -> None:
        """E: the enhancer on / off. Without an enhancer model nothing is ticked (a ticked box
        that enhances nothing misleads); the message says how to load one."""
        engine = self.app.engine
        settings = self.app.settings.snapshot()
        if not settings.enhancer_enabled and (engine is None or engine.enhancer is None):
            self._message("No enhancer model is loaded: start with --enhancer gfpgan_1.4 "
                          "(or gpen_bfr_256) to use it.")
            self.controls.show_state(settings, self._outputs_view())
            return
        self.app.settings.toggle("enhancer_enabled")

    def _step_interval(self, step: int) -> None:
        current = self.app.settings.snapshot().detect_every
        value = min(max(current + step, 1), 120)
        self.app.settings.update(detect_every=value)
        self._message(f"Full detection every {value} frame{'s' if value > 1 else ''}")

    def pick_source(self, index: int) -> None:
        engine = self.app.engine
        count = len(engine.sources) if engine is not None else 0
        if index >= count:
            self._message(f"There is no source face {index + 1} (there are {count}); "
                          "press O to add one.")
            return
        self.app.settings.update(active_source=index)

    def toggle_fullscreen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()

    def toggle_help(self) -> None:
        self.preview.set_help(None if self.preview.help_visible else help_lines())

    def quit_or_close_help(self) -> None:
        """Q / Esc: close the help overlay if it is up (what a user pressing Esc there means),
        else quit."""
        if self.preview.help_visible:
            self.preview.set_help(None)
            return
        self.close()  # asks first while the virtual camera is live (closeEvent)

    def _confirm_quit(self) -> None:
        if self.last_dialog is not None and self.last_dialog.property("quit") is not None:
            return  # already asking
        box = dialogs.quit_live_box(self)
        box.finished.connect(lambda _result: self.quit_now() if box.property("quit") else None)
        self._show_box(box)

    def _virtual_cam_on_or_opening(self) -> bool:
        """What V turns off. A camera that could not open (no driver at start) is neither, so
        the first V tries again instead of turning off a wish nobody sees."""
        return (self.app.virtual_cam_wanted
                and self.app.outputs.virtual_cam not in ("unavailable", "failed"))

    def set_virtual_cam(self, on: bool) -> None:
        """The driver opens off the Qt thread; the outcome comes back through the relay."""
        future = self.app.set_virtual_cam(on)
        if on:
            self._when_done(future, self._virtual_cam_opened)

    def _virtual_cam_opened(self, future: Future) -> None:
        if future.exception() is None and future.result() is False:
            self._show_box(dialogs.virtual_camera_box(self, self.app.outputs.virtual_cam_message))
            self._message("No virtual camera driver; the preview keeps running.", 10000)

    def set_recording(self, on: bool) -> None:
        if on and self.app.ended is not None:
            self._message(f"{self.app.ended_message()} There is nothing left to record; start "
                          "again (with --loop to play a file again and again) to record it.",
                          10000)
            return
        if not on:
            if self.app.outputs.recording:
                path = self.app.outputs.recording
                # Done once the file is finalised (the sink leaves the list a moment earlier).
                self.recording_finalised = self.app.stop_recording()
                self._when_done(self.recording_finalised,
                                lambda f: self._message(
                                    f"Recording saved: {path}  (recordings go to "
                                    f"{self.recordings_dir})", IMPORTANT_MS))
            return
        if self.app.outputs.recording:
            return
        ext = record_extension(self.app.config.output.record_codec)
        path = self.recordings_dir / f"livefusion-{datetime.now():%Y%m%d-%H%M%S}{ext}"
        try:
            self.recordings_dir.mkdir(parents=True, exist_ok=True)
            started = self.app.start_recording(path)
        except (OSError, SinkError) as exc:  # a folder or codec the user has to change
            log.warning("recording to %s could not start: %s", path, exc)
            self._show_box(dialogs.error_box(
                self, "Recording could not start",
                f"{exc}\n\nRecordings go to {self.recordings_dir}; make sure that folder can "
                "be created and written, or choose another codec (output.record_codec)."))
            return
        self._when_done(started, lambda f: self._check(f, "Recording"))
        self._message(f"Recording to {path}", IMPORTANT_MS)

    # --- source faces ----------------------------------------------------------------------------

    def open_source_dialog(self) -> None:
        """Ask for source photos without blocking the preview (O)."""
        if self.file_dialog is not None and self.file_dialog.isVisible():
            return
        dialog = QFileDialog(self, "Add a source face (one photo per face)")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFiles)
        dialog.setNameFilter(IMAGE_FILTER)
        dialog.filesSelected.connect(self.add_source_files)
        self.file_dialog = dialog
        dialog.open()

    def add_source_files(self, paths: list[str]) -> None:
        """Each photo becomes one source face; the last one added becomes active."""
        if not paths or not self._models_ready():
            return
        paths = self._new_photos(paths)
        for number, path in enumerate(paths, start=1):
            self._add_identity([path], make_active=number == len(paths))

    def _new_photos(self, paths: list[str]) -> list[str]:
        """`paths` less the photos already a source face (the same photo is never added twice)."""
        engine = self.app.engine
        known = {same_file_key(p) for s in (engine.sources if engine else ()) for p in s.paths}
        fresh = [p for p in unique_paths(paths) if same_file_key(p) not in known]
        if len(fresh) < len(paths):
            self._message("That photo is already a source face.", IMPORTANT_MS)
        return fresh

    def _add_identity(self, paths: list[str], *, make_active: bool) -> None:
        self._message(f"Reading the face in {Path(paths[0]).name}…")
        future = self.app.add_source(paths)
        self._when_done(future, lambda f: self._source_added(paths, f, make_active))

    def _source_added(self, paths: list[str], future: Future, make_active: bool) -> None:
        error = future.exception()
        if isinstance(error, SourceFaceError):
            self._show_box(dialogs.source_face_box(self, str(error)))
        elif error is not None:
            self._show_box(dialogs.error_box(self, "the source face could not be added", str(error)))
        else:
            if make_active:
                self.app.settings.update(active_source=int(future.result()))
            self._message(f"Source face added: {Path(paths[0]).name}")
        if not self._stopped:
            self.refresh_status()

    def remove_source(self, index: int) -> None:
        engine = self.app.engine
        if engine is None:
            return

        def removed(future: Future) -> None:
            if future.exception() is None:
                count = len(engine.sources)
                active = self.app.settings.snapshot().active_source
                if active >= count or active > index:
                    self.app.settings.update(active_source=max(min(active - 1, count - 1), 0))
            self._check(future, "Removing the source face")

        self._when_done(self.app.pipeline.call_in_inference(lambda: engine.remove_source(index)),
                        removed)

    def _models_ready(self) -> bool:
        if self.app.engine is not None:
            return True
        ready, message = self._ensure_models(self, self.app.config)
        if not ready and message:
            self._show_box(dialogs.error_box(self, "models are missing", message))
        return ready

    # --- camera ------------------------------------------------------------------------------

    def _input_description(self) -> str:
        source = self.app.pipeline.source
        return str(getattr(source, "description", "") or self.app.config.input.file
                   or f"camera {self.app.config.input.camera}")

    def _current_input(self) -> str:
        cfg = self.app.config.input
        return cfg.file or cfg.camera

    def _show_input_choice(self) -> None:
        self.controls.set_cameras(self._cameras, self._current_input())

    def scan_cameras(self) -> None:
        """List cameras on a worker thread (opening each index takes a moment)."""
        self._message("Looking for cameras…")
        self.inputs.scan_cameras(self.app.config.input.camera_backend, self._cameras_found,
                                 self._message)

    def _cameras_found(self, cameras: list[Any]) -> None:
        self._cameras = [(f"Camera {c.index} ({c.width}x{c.height})", str(c.index)) for c in cameras]
        self._show_input_choice()
        if not cameras:
            self._show_box(dialogs.no_camera_box(self, "No camera answered. Check the cable and "
                                                 "close other apps that use the camera."))
        else:
            self._message(f"{len(cameras)} camera(s) found")

    def switch_input(self, camera: str) -> None:
        """Restart the pipeline on another camera (or a file path), keeping the engine, the
        source faces, the settings and the virtual camera.

        Opening the new input (seconds for some cameras) and stopping the old pipeline run on a
        worker thread; the preview shows the old input meanwhile and further switches are
        ignored until this one is done."""
        if camera == self._current_input() or self._stopped:
            return
        if self.switching:
            self._message("Still switching input…")
            self._show_input_choice()
            return
        self._message("Switching input…", 0)
        self.inputs.switch(self.app, camera,
                           lambda old, new: self._input_switched(old, new, camera),
                           self._switch_failed)

    def _input_switched(self, old: LiveApp, new: LiveApp, camera: str) -> None:
        """`new` has the engine and settings of `old` (stopped): show it."""
        self.app = new
        self.preview.set_notice("")
        self._subscribe(new)
        if old.virtual_cam_wanted:
            self.set_virtual_cam(True)
        new.start()
        self.state.camera = camera
        self.setWindowTitle(f"LiveFusion — {self._input_description()}")
        self._show_input_choice()
        if old.outputs.recording:
            self._message("The recording was finalised when the camera changed.")
        else:
            self._message(f"Showing {self._input_description()}")
        self.refresh_status()

    def _switch_failed(self, message: str) -> None:
        self.statusBar().clearMessage()
        self._show_box(dialogs.no_camera_box(self, message))
        self._show_input_choice()

    # --- plumbing ----------------------------------------------------------------------------------

    def _when_done(self, future: Future, slot: Callable[[Future], Any]) -> None:
        """Run `slot(future)` on the Qt thread once the future (from a pipeline thread) is done."""
        future.add_done_callback(lambda f: self._relay.send(lambda: slot(f)))

    def _run_in_ui(self, fn: Callable[[], Any]) -> None:
        if not self._stopped:  # a result that arrives after the window shut down is dropped
            fn()

    def _check(self, future: Future, what: str) -> None:
        error = future.exception()
        if error is not None:
            self._show_box(dialogs.error_box(self, f"{what} failed", str(error)))

