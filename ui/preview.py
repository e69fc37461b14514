"""The live preview: the newest frame, aspect kept, scaled to the widget, plus overlays.

Overlays follow the settings the frame was processed with (`packet.settings`): the debug view
(meters, boxes, five landmarks, track ids), the blend mask tinted over the picture, and a
before/after split (captured frame left, result right). The help overlay is the window's.

Two privacy signs are drawn on top, never into the frame (the outputs get `packet.frame` as the
guard left it): a red banner across the top while the swap is off (the window says so, or the
shown frame was made with it off), and a small marker in the top-right corner when the privacy
guard changed the shown frame (`packet.privacy.acted`), with the reason in words.

The widget wraps the frame's pixels in a QImage without copying or converting (Qt reads BGR
directly) and lets QPainter scale it into the target rectangle, so the UI thread's work per
frame is small; `UiFrameTimer` measures it (wrap + paint), and the window shows that figure.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor, QFont, QFontDatabase, QFontMetrics, QImage, QPainter, QPaintEvent, QPen,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from livefusion.meters import StageStats, summarize
from livefusion.packet import Face, FramePacket, HideReason
from livefusion_ui.status import LOW_OPACITY_WARNING, SWAP_OFF_WARNING, guard_marker_text

MASK_TINT = (255, 60, 200)  # RGB of the mask overlay
MASK_ALPHA = 110
DETECT_COLOUR = QColor(80, 230, 120)
TRACK_COLOUR = QColor(250, 210, 70)
GUARD_ONLY_COLOUR = QColor(170, 170, 170)  # seen only at the guard's limits: never swapped
PANEL_BG = QColor(0, 0, 0, 170)
BANNER_BG = QColor(200, 16, 16)  # swap off: viewers see the real face
BANNER_FG = QColor(255, 255, 255)
MARKER_BG = QColor(255, 176, 0)  # the privacy guard changed this frame
MARKER_FG = QColor(0, 0, 0)
BANNER_PX = (22, 12)  # the banner font's preferred and smallest pixel size


class UiFrameTimer:
    """Rolling milliseconds the Qt thread spends per shown frame (image wrap + paint)."""

    def __init__(self, window: int = 300) -> None:
        self._values: deque[float] = deque(maxlen=window)

    def record(self, ms: float) -> None:
        self._values.append(ms)

    def stats(self) -> StageStats:
        return summarize(self._values)


def bgr_image(frame: np.ndarray) -> tuple[QImage, np.ndarray]:
    """A QImage over a BGR uint8 HxWx3 frame's pixels, with no conversion, and the array it
    reads (the frame itself unless it had to be made contiguous): keep both alive together."""
    pixels = np.ascontiguousarray(frame)
    h, w = pixels.shape[:2]
    image = QImage(pixels.data, w, h, int(pixels.strides[0]), QImage.Format.Format_BGR888)
    return image, pixels


def mask_caption(packet: FramePacket) -> str:
    """What the mask view shows: the mask mode the blender used on this frame."""
    mode = packet.debug.get("mask_mode", "")
    if not mode:
        return "mask: none (no face pasted)"
    wanted = packet.settings.mask_mode
    note = f" ({wanted} needs the landmarker)" if mode != wanted else ""
    return f"mask: {mode}{note}"


def mask_image(mask: np.ndarray) -> QImage:
    """A tinted, semi-transparent RGBA image of a float mask in [0, 1] (owns its pixels)."""
    h, w = mask.shape[:2]
    rgba = np.empty((h, w, 4), np.uint8)
    rgba[..., :3] = MASK_TINT
    rgba[..., 3] = (np.clip(mask, 0.0, 1.0) * MASK_ALPHA).astype(np.uint8)
    return QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()


def fit_rect(frame_w: int, frame_h: int, area: QRectF) -> QRectF:
    """The largest rectangle of the frame's aspect inside `area`, centred."""
    if frame_w <= 0 or frame_h <= 0 or area.width() <= 0 or area.height() <= 0:
        return QRectF()
    scale = min(area.width() / frame_w, area.height() / frame_h)
    w, h = frame_w * scale, frame_h * scale
    return QRectF(area.x() + (area.width() - w) / 2, area.y() + (area.height() - h) / 2, w, h)


def face_label(face: Face, guard_only: bool = False) -> str:
    """The debug overlay's label: track id, where the position came from, score, and whether
    the guard covered the face (the same facts as a --faces-out line)."""
    tid = f"#{face.track_id}" if face.track_id >= 0 and not guard_only else "#-"
    return f"{tid} {face.origin} {face.score:.2f}" + (" hidden" if face.hidden else "")


class PreviewWidget(QWidget):
    """Shows packets handed to `show_packet` (Qt thread only)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 180)
        self.timer = UiFrameTimer()
        self.frames_shown = 0
        self._packet: FramePacket | None = None
        self._image: QImage | None = None
        self._before: QImage | None = None
        self._pixels: np.ndarray | None = None  # the arrays the QImages read
        self._before_pixels: np.ndarray | None = None
        self._mask: QImage | None = None
        self._wrap_ms: float | None = None  # wrap time of a frame not yet painted
        self._meter_lines: list[str] = []
        self._help: list[tuple[str, str]] | None = None
        self._help_rect = QRectF()
        self._placeholder = "Waiting for the first frame…"
        self._swap_off = False  # the window's current setting (frames may still lag behind)
        self._reveal = ""  # the window's reveal warning (swap off or a faint swap), if any
        self._marker = ""  # the guard marker for the shown packet; "" when the guard passed it
        self._notice = ""  # a message over the picture (e.g. the video has ended), if any
        self._mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)

    def sizeHint(self) -> QSize:
        return QSize(960, 540)

    # --- inputs ------------------------------------------------------------------------------

    def show_packet(self, packet: FramePacket) -> None:
        start = time.perf_counter()
        self._packet = packet
        self._image, self._pixels = bgr_image(packet.frame)
        settings = packet.settings
        original = packet.original if packet.original is not None else packet.frame
        self._before, self._before_pixels = (bgr_image(original) if settings.before_after
                                             else (None, None))
        mask = packet.debug.get("mask") if settings.show_mask else None
        self._mask = mask_image(mask) if mask is not None else None
        self._marker = guard_marker_text(packet.privacy)
        self._wrap_ms = (time.perf_counter() - start) * 1000.0
        self.update()

    def set_meter_lines(self, lines: list[str]) -> None:
        self._meter_lines = lines
        if self._packet is not None and self._packet.settings.show_debug:
            self.update()

    def set_swap_off(self, off: bool) -> None:
        """The window's swap setting: the banner shows at once, before the next frame."""
        if off != self._swap_off:
            self._swap_off = off
            self.update()

    def set_reveal(self, text: str) -> None:
        """The window's reveal warning ("" for none): swap off, or an opacity so low that part
        of the real face shows. The banner shows it at once."""
        self._swap_off = text == SWAP_OFF_WARNING
        if text != self._reveal:
            self._reveal = text
            self.update()

    @property
    def swap_off_shown(self) -> bool:
        """True while the reveal banner is drawn: the setting reveals, or the shown frame was
        made revealing (turning it back, the banner stays until guarded frames arrive)."""
        return bool(self.banner_text)

    @property
    def banner_text(self) -> str:
        if self._reveal:
            return self._reveal
        if self._swap_off:
            return SWAP_OFF_WARNING
        packet = self._packet
        if packet is None:
            return ""
        if not packet.settings.swap_enabled:
            return SWAP_OFF_WARNING
        verdict = packet.privacy
        if verdict is not None and HideReason.LOW_OPACITY in verdict.reasons:
            return LOW_OPACITY_WARNING.format(percent=round(packet.settings.opacity * 100))
        return ""

    @property
    def guard_marker(self) -> str:
        """The guard marker drawn over the shown frame; "" when there is none."""
        return self._marker if self._packet is not None else ""

    def set_notice(self, text: str) -> None:
        """A message drawn over the middle of the picture ("" to remove it)."""
        if text != self._notice:
            self._notice = text
            self.update()

    @property
    def notice(self) -> str:
        return self._notice

    def set_help(self, lines: list[tuple[str, str]] | None) -> None:
        self._help = lines
        self.update()

    @property
    def help_visible(self) -> bool:
        return self._help is not None

    @property
    def packet(self) -> FramePacket | None:
        return self._packet

    def image_rect(self) -> QRectF:
        """Where the frame is drawn, in widget coordinates."""
        if self._image is None:
            return QRectF()
        return fit_rect(self._image.width(), self._image.height(), QRectF(self.rect()))

    # --- painting ----------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        start = time.perf_counter()
        painter = QPainter(self)
        try:
            painter.fillRect(self.rect(), Qt.GlobalColor.black)
            if self._image is None or self._packet is None:
                painter.setPen(Qt.GlobalColor.lightGray)
                painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._placeholder)
            else:
                self._paint_frame(painter)
            if self._notice:
                self._paint_notice(painter)
            if self._help is not None:
                self._paint_help(painter)
            if self.swap_off_shown:
                self._paint_swap_off(painter)
        finally:
            painter.end()
        if self._wrap_ms is not None:
            self.timer.record(self._wrap_ms + (time.perf_counter() - start) * 1000.0)
            self._wrap_ms = None
            self.frames_shown += 1

    def _paint_frame(self, painter: QPainter) -> None:
        packet, image = self._packet, self._image
        assert packet is not None and image is not None
        target = self.image_rect()
        scale = target.width() / max(image.width(), 1)
        # Smooth scaling only when shrinking a lot; nearest is fine (and cheaper) otherwise.
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale < 0.75)
        painter.drawImage(target, image)
        if self._mask is not None:
            painter.drawImage(target, self._mask)
            self._label(painter, QPointF(target.left() + 8, target.bottom() - 52),
                        mask_caption(packet), colour=QColor(*MASK_TINT))
        if self._before is not None:
            self._paint_before_after(painter, target)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if packet.settings.show_debug:
            self._paint_faces(painter, target, scale)
            self._paint_meters(painter, target)
        if packet.errors:
            self._paint_errors(painter, target)
        if self._marker:
            self._paint_guard_marker(painter, target)

    def _paint_notice(self, painter: QPainter) -> None:
        area = QRectF(self.rect()).adjusted(24, 24, -24, -24)
        flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
        metrics = painter.fontMetrics()
        text_rect = QRectF(metrics.boundingRect(area.toRect(), int(flags), self._notice))
        box = text_rect.adjusted(-16, -12, 16, 12)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(PANEL_BG)
        painter.drawRoundedRect(box, 8, 8)
        painter.setPen(Qt.GlobalColor.white)
        painter.drawText(text_rect, int(flags), self._notice)

    def _paint_before_after(self, painter: QPainter, target: QRectF) -> None:
        assert self._before is not None
        half = QRectF(target.x(), target.y(), target.width() / 2, target.height())
        source = QRectF(0, 0, self._before.width() / 2, self._before.height())
        painter.drawImage(half, self._before, source)
        x = target.x() + target.width() / 2
        painter.setPen(QPen(Qt.GlobalColor.white, 2))
        painter.drawLine(QPointF(x, target.top()), QPointF(x, target.bottom()))
        # Labels at the bottom, clear of the meters panel in the top-left corner.
        y = target.bottom() - 8 - painter.fontMetrics().height() - 4
        self._label(painter, QPointF(x - 8, y), "BEFORE", right=True)
        self._label(painter, QPointF(x + 8, y), "AFTER")

    def _paint_faces(self, painter: QPainter, target: QRectF, scale: float) -> None:
        assert self._packet is not None

        def at(x: float, y: float) -> QPointF:
            return QPointF(target.x() + x * scale, target.y() + y * scale)

        # The same faces and flags as --faces-out: tracked ones, then those only the guard saw.
        guard_only = [(face, True) for face in self._packet.unswappable]
        for face, untracked in [(face, False) for face in self._packet.faces] + guard_only:
            colour = (GUARD_ONLY_COLOUR if untracked else
                      DETECT_COLOUR if face.origin == "detect" else TRACK_COLOUR)
            painter.setPen(QPen(colour, 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            x1, y1, x2, y2 = (float(v) for v in face.bbox)
            painter.drawRect(QRectF(at(x1, y1), at(x2, y2)))
            painter.setBrush(colour)
            for x, y in np.asarray(face.kps, np.float32).reshape(-1, 2):
                painter.drawEllipse(at(float(x), float(y)), 3, 3)
            self._label(painter, at(x1, y1) + QPointF(0, -22), face_label(face, untracked),
                        colour=colour)

    def _paint_meters(self, painter: QPainter, target: QRectF) -> None:
        lines = [line for line in self._meter_lines if line]
        if not lines:
            return
        painter.setFont(self._mono)
        metrics = painter.fontMetrics()
        width = max(metrics.horizontalAdvance(line) for line in lines) + 16
        height = metrics.lineSpacing() * len(lines) + 12
        top = max(target.top(), self._banner_bottom()) + 8
        box = QRectF(target.left() + 8, top, min(width, target.width() - 16), height)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(PANEL_BG)
        painter.drawRoundedRect(box, 6, 6)
        painter.setPen(Qt.GlobalColor.white)
        y = box.top() + 6 + metrics.ascent()
        for line in lines:
            painter.drawText(QPointF(box.left() + 8, y), line)
            y += metrics.lineSpacing()

    def _paint_errors(self, painter: QPainter, target: QRectF) -> None:
        assert self._packet is not None
        text = "; ".join(f"{stage}: {msg}" for stage, msg in self._packet.errors.items())
        self._label(painter, QPointF(target.left() + 8, target.bottom() - 30), text[:160],
                    colour=QColor(255, 120, 120))

    def _banner_font(self) -> QFont:
        """Bold, as large as fits the widget's width (down to a still readable size)."""
        font = QFont(self.font())
        font.setBold(True)
        preferred, smallest = BANNER_PX
        for px in range(preferred, smallest - 1, -1):
            font.setPixelSize(px)
            if QFontMetrics(font).horizontalAdvance(self.banner_text or SWAP_OFF_WARNING) <= self.width() - 16:
                break
        return font

    def banner_rect(self) -> QRectF:
        """Where the swap-off banner is drawn (across the top); empty while it is not."""
        if not self.swap_off_shown:
            return QRectF()
        height = QFontMetrics(self._banner_font()).height() + 12
        return QRectF(0, 0, self.width(), height)

    def _banner_bottom(self) -> float:
        rect = self.banner_rect()
        return rect.bottom() if not rect.isEmpty() else 0.0

    def _paint_swap_off(self, painter: QPainter) -> None:
        box = self.banner_rect()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(BANNER_BG)
        painter.drawRect(box)
        painter.setFont(self._banner_font())
        painter.setPen(BANNER_FG)
        text = painter.fontMetrics().elidedText(self.banner_text, Qt.TextElideMode.ElideRight,
                                                int(box.width()) - 8)
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_guard_marker(self, painter: QPainter, target: QRectF) -> None:
        font = QFont(self.font())
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        text = metrics.elidedText(self._marker, Qt.TextElideMode.ElideRight,
                                  max(int(target.width()) - 26, 0))
        w, h = metrics.horizontalAdvance(text) + 10, metrics.height() + 4
        top = max(target.top(), self._banner_bottom()) + 8
        box = QRectF(target.right() - 8 - w, top, w, h)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(MARKER_BG)
        painter.drawRoundedRect(box, 4, 4)
        painter.setPen(MARKER_FG)
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_help(self, painter: QPainter) -> None:
        assert self._help is not None
        font = QFont(self._mono)
        painter.setFont(font)
        title = "Hotkeys (F1 / H closes)"
        key_w, width, height = self._help_extent(painter)
        # a small window gets a smaller font, never a box cut off at the edges
        scale = min(1.0, (self.width() - 8) / width, (self.height() - 8) / height)
        if scale < 1.0 and font.pointSizeF() > 0:
            font.setPointSizeF(max(font.pointSizeF() * scale, 5.0))
            painter.setFont(font)
            key_w, width, height = self._help_extent(painter)
        metrics = painter.fontMetrics()
        box = QRectF((self.width() - width) / 2, (self.height() - height) / 2, width, height)
        self._help_rect = box
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 210))
        painter.drawRoundedRect(box, 10, 10)
        y = box.top() + 12 + metrics.ascent()
        painter.setPen(Qt.GlobalColor.white)
        painter.drawText(QPointF(box.left() + 16, y), title)
        y += metrics.lineSpacing() * 2
        for keys, description in self._help:
            painter.setPen(TRACK_COLOUR)
            painter.drawText(QPointF(box.left() + 16, y), keys)
            painter.setPen(Qt.GlobalColor.white)
            painter.drawText(QPointF(box.left() + 16 + key_w, y), description)
            y += metrics.lineSpacing()

    def _help_extent(self, painter: QPainter) -> tuple[float, float, float]:
        """(key column width, box width, box height) of the help at the painter's font."""
        assert self._help is not None
        metrics = painter.fontMetrics()
        key_w = max(metrics.horizontalAdvance(k) for k, _ in self._help) + 24
        text_w = max(metrics.horizontalAdvance(d) for _, d in self._help)
        return (key_w, key_w + text_w + 32,
                metrics.lineSpacing() * (len(self._help) + 2) + 24)

    def help_box(self) -> QRectF:
        """Where the help overlay is drawn (for checks that it fits)."""
        return self._help_rect

    def _label(self, painter: QPainter, at: QPointF, text: str, *, colour: QColor | None = None,
               right: bool = False) -> None:
        font = QFont(self.font())
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        w, h = metrics.horizontalAdvance(text) + 10, metrics.height() + 4
        x = at.x() - w if right else at.x()
        box = QRectF(x, at.y(), w, h)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(PANEL_BG)
        painter.drawRect(box)
        painter.setPen(colour or Qt.GlobalColor.white)
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
