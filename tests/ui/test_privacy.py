"""The window's side of the privacy guard (issue 10): swap off is a visible, deliberate reveal
that no launch restores; the preview marks frames the guard changed; the status area shows the
guard's counts. Pictures are checked by rendering the real widgets offscreen (grab) and reading
pixels; screenshots go to tmp_path and tests/ui/artifacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtTest import QTest

from livefusion.meters import Meters
from livefusion.packet import FramePacket, GuardAction, HideReason, PrivacyVerdict
from livefusion.settings import LiveSettings, SettingsBox
from tests.ui.conftest import video_config
from tests.ui.helpers import wait_for, wait_frames
from livefusion_ui.settings_store import SettingsStore
from livefusion_ui.status import SWAP_OFF_WARNING, guard_marker_text, status_view

SIZE = (160, 120)
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
FRAME_BGR = (200, 90, 30)  # a blue frame: neither the banner's red nor the marker's amber


# --- helpers ---

def packet(*, swap_enabled: bool = True, verdict: PrivacyVerdict | None = None,
           size: tuple[int, int] = (640, 360)) -> FramePacket:
    frame = np.empty((size[1], size[0], 3), np.uint8)
    frame[:] = FRAME_BGR
    return FramePacket(seq=1, t_capture_ns=0, frame=frame,
                       settings=LiveSettings(swap_enabled=swap_enabled), privacy=verdict)


def render(widget) -> QImage:
    return widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)


def is_banner_red(colour: QColor) -> bool:
    return colour.red() > 170 and colour.green() < 60 and colour.blue() < 60


def is_marker_amber(colour: QColor) -> bool:
    return colour.red() > 220 and 140 < colour.green() < 210 and colour.blue() < 50


def count(image: QImage, x0: int, y0: int, x1: int, y1: int, test) -> int:
    return sum(test(image.pixelColor(x, y)) for y in range(y0, y1, 2) for x in range(x0, x1, 2))


def save(image: QImage, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    assert image.save(str(path))
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(path, ARTIFACTS / name)
    return path


@pytest.fixture
def preview(qapp):
    from livefusion_ui.preview import PreviewWidget

    widget = PreviewWidget()
    widget.resize(640, 360)
    yield widget
    widget.deleteLater()


# --- swap off is never remembered ---

def test_every_launch_starts_with_the_swap_on(make_window, small_video, tmp_path):
    first = make_window(video_config(small_video, SIZE))
    assert first.app.settings.snapshot().swap_enabled
    QTest.keyClick(first.window, Qt.Key.Key_Space)
    assert not first.app.settings.snapshot().swap_enabled
    first.window.close()  # saves
    # What an older version left behind: the swap remembered as off.
    qsettings = first.store.qsettings
    qsettings.setValue("toggles/swap_enabled", False)
    qsettings.sync()
    ini = Path(qsettings.fileName()).read_text()
    assert "swap_enabled=false" in ini
    second = make_window(video_config(small_video, SIZE), store=first.store)
    assert second.app.settings.snapshot().swap_enabled is True
    assert second.window.controls.checks["swap_enabled"].isChecked()
    assert not second.window.preview.swap_off_shown
    second.window.close()
    assert "swap_enabled" not in Path(qsettings.fileName()).read_text(), "the stale key is removed"


def test_a_stored_swap_off_is_ignored_by_the_store(tmp_path):
    qs = QSettings(str(tmp_path / "old.ini"), QSettings.Format.IniFormat)
    qs.setValue("toggles/swap_enabled", "false")
    qs.setValue("toggles/detect_every", "5")
    qs.sync()
    loaded = SettingsStore(qs).load()
    assert "swap_enabled" not in loaded.toggles
    box = SettingsBox()
    loaded.apply_toggles(box)
    assert box.snapshot().swap_enabled is True and box.snapshot().detect_every == 5


# --- the swap-off banner ---

def test_banner_is_red_across_the_top_while_swap_is_off(preview, tmp_path):
    preview.show_packet(packet(swap_enabled=False))
    image = render(preview)
    banner = preview.banner_rect()
    assert banner.top() == 0 and banner.width() == preview.width() and banner.height() >= 16
    y = int(banner.center().y())
    for x in (2, preview.width() // 2 - 200, preview.width() - 3):  # left end, centre, right end
        assert is_banner_red(image.pixelColor(x, y)), f"no red banner at ({x}, {y})"
    below = image.pixelColor(preview.width() // 2, int(banner.bottom()) + 20)
    assert not is_banner_red(below), "the banner covers only the top"
    path = save(image, tmp_path, "preview_swap_off_banner.png")
    print(f"\nswap-off banner screenshot: {path}")


def test_no_banner_while_swap_is_on(preview):
    preview.show_packet(packet(swap_enabled=True))
    image = render(preview)
    assert preview.banner_rect().isEmpty()
    assert count(image, 0, 0, preview.width(), 40, is_banner_red) == 0


def test_banner_follows_the_setting_before_the_next_frame(preview):
    preview.show_packet(packet(swap_enabled=True))
    preview.set_swap_off(True)  # Space pressed; no frame made with it off has arrived yet
    assert is_banner_red(render(preview).pixelColor(2, 4))
    preview.set_swap_off(False)
    preview.show_packet(packet(swap_enabled=False))  # turned on again, an older frame shown
    assert is_banner_red(render(preview).pixelColor(2, 4)), "stays until swapped frames arrive"


def test_banner_stays_readable_in_the_smallest_window(preview):
    from PySide6.QtGui import QFontMetrics

    preview.resize(preview.minimumSize())
    preview.show_packet(packet(swap_enabled=False))
    image = render(preview)
    font = preview._banner_font()
    assert font.pixelSize() >= 12 and font.bold()
    assert QFontMetrics(font).horizontalAdvance(SWAP_OFF_WARNING) <= preview.width() - 16
    assert is_banner_red(image.pixelColor(2, int(preview.banner_rect().center().y())))


def test_space_shows_the_banner_and_the_status_says_so(make_window, small_video, tmp_path):
    running = make_window(video_config(small_video, SIZE))
    window = running.window
    wait_frames(window, 2)
    assert SWAP_OFF_WARNING not in window.status_label.text()
    QTest.keyClick(window, Qt.Key.Key_Space)
    assert window.preview.swap_off_shown, "the banner shows at once, before the next frame"
    assert window.status_label.text().startswith(SWAP_OFF_WARNING)
    wait_for(lambda: not window.preview.packet.settings.swap_enabled, "a frame made with swap off")
    image = render(window.preview)
    y = int(window.preview.banner_rect().center().y())
    assert is_banner_red(image.pixelColor(2, y))
    assert is_banner_red(image.pixelColor(window.preview.width() - 3, y))
    save(render(window), tmp_path, "window_swap_off.png")
    QTest.keyClick(window, Qt.Key.Key_Space)
    assert SWAP_OFF_WARNING not in window.status_label.text()
    wait_for(lambda: not window.preview.swap_off_shown, "swapped frames again")
    assert not is_banner_red(render(window.preview).pixelColor(2, y))


def test_the_swap_checkbox_shows_the_banner_too(make_window, small_video):
    window = make_window(video_config(small_video, SIZE)).window
    window.controls.checks["swap_enabled"].click()
    assert window.preview.swap_off_shown
    assert is_banner_red(render(window.preview).pixelColor(2, 4))


# --- the guard marker ---

@pytest.mark.parametrize("verdict,text", [
    (PrivacyVerdict(GuardAction.HIDE, (HideReason.NO_SWAP,), ((10, 10, 50, 50),)),
     "GUARD: face hidden (face not swappable)"),
    (PrivacyVerdict(GuardAction.HIDE, (HideReason.TRACK_LOST, HideReason.ERROR)),
     "GUARD: face hidden (face lost, error)"),
    (PrivacyVerdict(GuardAction.HOLD, (HideReason.TRACK_LOST,)),
     "GUARD: holding last frame (face lost)"),
    (PrivacyVerdict(GuardAction.START, (HideReason.STARTUP,)), "GUARD: starting"),
    (PrivacyVerdict(GuardAction.HIDE, (HideReason.SWAP_OFF,)), "GUARD: face hidden (swap off)"),
    (PrivacyVerdict(GuardAction.PASS), ""),
    (PrivacyVerdict(GuardAction.REVEAL, (HideReason.SWAP_OFF,)), ""),
    (None, ""),
], ids=["hide", "hide-two", "hold", "start", "hide-swap-off", "pass", "reveal", "no-guard"])
def test_guard_marker_says_what_and_why_in_words(verdict, text):
    assert guard_marker_text(verdict) == text


def _marker_pixels(widget, image: QImage) -> int:
    target = widget.image_rect()
    return count(image, int(target.center().x()), int(target.top()), int(target.right()),
                 int(target.top()) + 60, is_marker_amber)


def test_guard_marker_is_painted_over_a_hidden_frame_never_into_it(preview, tmp_path):
    shown = packet(verdict=PrivacyVerdict(GuardAction.HIDE, (HideReason.NO_SWAP,),
                                          ((100, 100, 200, 200),)))
    before = shown.frame.copy()
    preview.show_packet(shown)
    image = render(preview)
    assert preview.guard_marker == "GUARD: face hidden (face not swappable)"
    assert _marker_pixels(preview, image) > 50, "the marker is in the top-right corner"
    assert np.array_equal(shown.frame, before), "the outputs' frame is not drawn on"
    path = save(image, tmp_path, "preview_guard_marker.png")
    print(f"\nguard marker screenshot: {path}")


def test_no_guard_marker_when_the_frame_passed(preview):
    preview.show_packet(packet(verdict=PrivacyVerdict(GuardAction.PASS)))
    image = render(preview)
    assert preview.guard_marker == ""
    assert _marker_pixels(preview, image) == 0


def test_marker_sits_below_the_banner(preview, tmp_path):
    preview.show_packet(packet(swap_enabled=False, verdict=PrivacyVerdict(
        GuardAction.HOLD, (HideReason.TRACK_LOST,))))
    image = render(preview)
    banner = preview.banner_rect()
    assert count(image, 0, 0, preview.width(), int(banner.bottom()), is_marker_amber) == 0
    assert _marker_pixels(preview, image) > 50
    save(image, tmp_path, "preview_banner_and_marker.png")


# --- the guard's counts in the status area ---

def _counted() -> Meters:
    meters = Meters()
    for verdict in (PrivacyVerdict(GuardAction.START, (HideReason.STARTUP,)),
                    PrivacyVerdict(GuardAction.HIDE, (HideReason.NO_SWAP,)),
                    PrivacyVerdict(GuardAction.HOLD, (HideReason.TRACK_LOST,)),
                    PrivacyVerdict(GuardAction.PASS)):
        meters.count_privacy(verdict)
    return meters


def test_status_shows_the_guards_counts():
    view = status_view(_counted().snapshot(), provider="CPU", vcam="off", recording="")
    expected = "guard hidden 2 (no_swap 1, startup 1) held 1 (track_lost 1) revealed 0"
    assert expected in view.line()
    assert expected in view.overlay_lines()


def test_status_without_a_guard_has_no_counts():
    view = status_view(Meters().snapshot(), provider="CPU", vcam="off", recording="")
    assert "guard" not in view.line() and "hidden" not in view.line()
    assert SWAP_OFF_WARNING not in view.line()


def test_window_status_area_shows_the_guards_counts(running_window):
    window = running_window
    for _ in range(3):
        window.app.meters.count_privacy(PrivacyVerdict(GuardAction.HIDE, (HideReason.ERROR,)))
    window.refresh_status()
    text = window.status_label.text()
    assert "guard hidden" in text and "error" in text, text


@pytest.fixture
def running_window(make_window, small_video):
    return make_window(video_config(small_video, SIZE)).window


def test_debug_overlay_labels_say_which_faces_the_guard_covered():
    import numpy as np

    from livefusion.packet import Face
    from livefusion_ui.preview import face_label

    face = Face(bbox=np.zeros(4, np.float32), kps=np.zeros((5, 2), np.float32), score=0.87,
                track_id=3, origin="track")
    assert face_label(face) == "#3 track 0.87"
    face.hidden = True
    assert face_label(face) == "#3 track 0.87 hidden"
    assert face_label(face, guard_only=True) == "#- track 0.87 hidden"


def test_a_faint_swap_is_announced_like_swap_off():
    from livefusion_ui.status import LOW_OPACITY_WARNING, reveal_warning

    assert reveal_warning(True, 1.0, 0.9) == ""
    assert reveal_warning(True, 0.9, 0.9) == ""
    assert reveal_warning(True, 0.5, 0.9) == LOW_OPACITY_WARNING.format(percent=50)
    assert reveal_warning(False, 0.5, 0.9) == SWAP_OFF_WARNING


def test_the_opacity_slider_below_the_limit_shows_the_banner(make_window, small_video):
    running = make_window(video_config(small_video, SIZE))
    window = running.window
    window._apply_setting("opacity", 0.5)
    assert window.preview.banner_text == "OPACITY 50% — viewers see part of your real face"
    window.refresh_status()
    assert window.status_label.text().startswith("OPACITY 50%")
    window._apply_setting("opacity", 1.0)
    window.refresh_status()
    assert window.preview.banner_text == ""  # (no face here, so no frame carries the reveal)
    assert not window.status_label.text().startswith("OPACITY")
