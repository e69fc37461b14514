"""The side panel's controls: camera choice, toggles, detection interval, opacity, views.

Widgets only: each user change is emitted as a signal and the window applies it to the engine.
`show_state` puts the engine's real state back into the widgets without re-emitting, so the
panel always shows what the engine does, whichever way (hotkey, click, remembered setting) a
value changed. None of the controls takes keyboard focus, so every key reaches the hotkeys.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QPushButton, QSlider, QSpinBox,
    QVBoxLayout, QWidget,
)

from livefusion.settings import LiveSettings

# checkbox label, LiveSettings field (or an output: "virtual_cam"), hotkey shown in the label
TOGGLES = (
    ("Face swap", "swap_enabled", "Space"),
    ("Enhancer", "enhancer_enabled", "E"),
    ("Colour transfer", "color_transfer", ""),
    ("Virtual camera", "virtual_cam", "V"),
)
VIEWS = (
    ("Meters and faces", "show_debug", "D"),
    ("Blend mask", "show_mask", "M"),
    ("Before / after", "before_after", "B"),
)


@dataclass(frozen=True)
class OutputsView:
    virtual_cam: bool
    recording: bool
    enhancer_loaded: bool = True  # without an enhancer model the Enhancer box is never ticked


def _label(text: str, key: str) -> str:
    return f"{text}  ({key})" if key else text


class ControlsPanel(QWidget):
    setting_changed = Signal(str, object)  # LiveSettings field, value
    virtual_cam_toggled = Signal(bool)
    record_toggled = Signal(bool)
    camera_chosen = Signal(str)  # camera index / device, or a file path
    scan_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._input_group())
        layout.addWidget(self._toggle_group())
        layout.addWidget(self._view_group())
        for widget in self.findChildren(QWidget):
            widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    def _input_group(self) -> QGroupBox:
        group = QGroupBox("Camera")
        row = QHBoxLayout(group)
        self.camera = QComboBox()
        self.camera.setMinimumContentsLength(14)
        self.camera.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.camera.activated.connect(self._camera_activated)
        self.scan = QPushButton("Scan")
        self.scan.setToolTip("Look for cameras (takes a few seconds)")
        self.scan.clicked.connect(self.scan_requested)
        row.addWidget(self.camera, 1)
        row.addWidget(self.scan)
        return group

    def _toggle_group(self) -> QGroupBox:
        group = QGroupBox("Swap and outputs")
        form = QFormLayout(group)
        self.checks: dict[str, QCheckBox] = {}
        for text, name, key in TOGGLES:
            box = QCheckBox(_label(text, key))
            box.toggled.connect(lambda on, name=name: self._toggled(name, on))
            self.checks[name] = box
            form.addRow(box)
        self.record = QPushButton(_label("Record", "R"))
        self.record.setCheckable(True)
        self.record.toggled.connect(self.record_toggled)
        form.addRow(self.record)
        self.interval = QSpinBox()
        self.interval.setRange(1, 120)
        self.interval.setSuffix(" frames")
        self.interval.setToolTip("Full face detection every N frames, tracking in between (+ / -)")
        self.interval.valueChanged.connect(lambda v: self.setting_changed.emit("detect_every", v))
        form.addRow("Detect every", self.interval)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.valueChanged.connect(lambda v: self.setting_changed.emit("opacity", v / 100.0))
        form.addRow("Opacity", self.opacity)
        return group

    def _view_group(self) -> QGroupBox:
        group = QGroupBox("Preview overlay")
        form = QFormLayout(group)
        for text, name, key in VIEWS:
            box = QCheckBox(_label(text, key))
            box.toggled.connect(lambda on, name=name: self._toggled(name, on))
            self.checks[name] = box
            form.addRow(box)
        return group

    # --- user input --------------------------------------------------------------------------

    def _toggled(self, name: str, on: bool) -> None:
        if name == "virtual_cam":
            self.virtual_cam_toggled.emit(on)
        else:
            self.setting_changed.emit(name, on)

    def _camera_activated(self, index: int) -> None:
        value = self.camera.itemData(index)
        if value is not None:
            self.camera_chosen.emit(str(value))

    # --- engine state in -----------------------------------------------------------------------

    def set_cameras(self, choices: list[tuple[str, str]], current: str) -> None:
        """(label, value) pairs; `current` is selected (added if missing)."""
        self.camera.blockSignals(True)
        self.camera.clear()
        values = [value for _, value in choices]
        if current not in values:
            choices = [(current, current)] + choices
        for label, value in choices:
            self.camera.addItem(label, value)
        self.camera.setCurrentIndex([v for _, v in choices].index(current))
        self.camera.blockSignals(False)

    def show_state(self, settings: LiveSettings, outputs: OutputsView) -> None:
        values = {name: getattr(settings, name) for _, name, _ in TOGGLES + VIEWS
                  if name != "virtual_cam"}
        values["virtual_cam"] = outputs.virtual_cam
        values["enhancer_enabled"] = values["enhancer_enabled"] and outputs.enhancer_loaded
        for name, box in self.checks.items():
            if box.isChecked() != bool(values[name]):
                box.blockSignals(True)
                box.setChecked(bool(values[name]))
                box.blockSignals(False)
        for widget, value in ((self.interval, settings.detect_every),
                              (self.opacity, round(settings.opacity * 100))):
            if widget.value() != value:
                widget.blockSignals(True)
                widget.setValue(value)
                widget.blockSignals(False)
        if self.record.isChecked() != outputs.recording:
            self.record.blockSignals(True)
            self.record.setChecked(outputs.recording)
            self.record.blockSignals(False)
        self.record.setText(_label("Stop recording" if outputs.recording else "Record", "R"))
