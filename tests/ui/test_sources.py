"""Source faces through the window with real models: the real SCRFD det_500m detector and
exact-contract stand-ins for ArcFace and inswapper (tests/face/onnx_builders.py), loaded through
the app's own model wiring (`models.overrides`). Also saves the screenshot of the running window
with the meters overlay (tmp_path, tests/ui/artifacts/ and /work/screens/ when it exists)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QUrl, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from tests.conftest import SHARED_IMAGES, SHARED_MODELS, SHARED_VIDEOS
from tests.face.onnx_builders import arcface_standin, identity_inswapper, shared_path
from tests.ui.conftest import video_config
from tests.ui.helpers import wait_for, wait_frames

pytestmark = pytest.mark.shared

SIZE = (160, 120)
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SCREENS = Path("/work/screens")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ui-models")
    return {
        "detector": str(shared_path(SHARED_MODELS, "det_500m.onnx")),
        "embedder": str(arcface_standin(folder / "w600k_r50.onnx")),
        "swapper": str(identity_inswapper(folder / "inswapper_128.onnx")),
    }


def model_config(video: Path, size, models, **extra):
    return video_config(video, size, **{"models.overrides": models, "face.det_size": 320,
                                        "runtime.warmup": False, **extra})


def photo(name: str) -> str:
    return str(shared_path(SHARED_IMAGES, name))


def drop_files(widget, paths: list[str]) -> bool:
    """Drag `paths` over `widget` and drop them, as a file manager would; returns whether the
    drag was accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(p) for p in paths])
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)
    return drop.isAccepted()


def source_count(app) -> int:
    return len(app.engine.sources) if app.engine is not None else 0


def test_dropping_a_photo_adds_a_source_face(make_window, small_video, models):
    running = make_window(model_config(small_video, SIZE, models))
    window, app = running.window, running.app
    assert app.engine is None  # passthrough until a face is given
    assert drop_files(window.sources, [photo("fr_obama.jpg")])
    wait_for(lambda: source_count(app) == 1, "the source face read on the inference thread")
    wait_for(lambda: window.sources.count() == 1, "the thumbnail")
    assert window.sources.entries[0].paths == (photo("fr_obama.jpg"),)
    assert app.settings.snapshot().active_source == 0
    window.refresh_status()
    assert "EP CPU" in window.status_label.text()
    wait_frames(window, 2)  # frames go on with the engine in place


def test_a_dragged_text_file_is_refused(make_window, small_video, models, tmp_path):
    running = make_window(model_config(small_video, SIZE, models))
    note = tmp_path / "notes.txt"
    note.write_text("not a photo")
    assert not drop_files(running.window.sources, [str(note)])
    assert running.app.engine is None


def test_digits_pick_the_active_source_face(make_window, small_video, models):
    running = make_window(model_config(small_video, SIZE, models))
    window, app = running.window, running.app
    drop_files(window.sources, [photo("fr_obama.jpg"), photo("fr_biden.jpg")])
    wait_for(lambda: source_count(app) == 2 and app.settings.snapshot().active_source == 1,
             "two faces, the last one dropped active")
    for key, expected in ((Qt.Key.Key_1, 0), (Qt.Key.Key_2, 1), (Qt.Key.Key_5, 1)):
        QTest.keyClick(window, key)
        assert app.settings.snapshot().active_source == expected
    wait_for(lambda: window.sources.list.currentRow() == 1, "the panel showing face 2 active")
    window.sources.list.setCurrentRow(0)  # clicking a thumbnail picks it too
    assert app.settings.snapshot().active_source == 0


def test_photo_without_a_face_shows_the_dialog(make_window, small_video, models, tmp_path):
    running = make_window(model_config(small_video, SIZE, models))
    window, app = running.window, running.app
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((240, 240, 3), 128, np.uint8))
    drop_files(window.sources, [str(blank)])
    wait_for(lambda: window.last_dialog is not None and window.last_dialog.isVisible(),
             "the no-face dialog")
    assert "wall.png" in window.last_dialog.informativeText()
    assert source_count(app) == 0
    wait_frames(window, 2)


def test_o_then_picking_a_file_adds_it(make_window, small_video, models):
    running = make_window(model_config(small_video, SIZE, models))
    window, app = running.window, running.app
    QTest.keyClick(window, Qt.Key.Key_O)
    dialog = window.file_dialog
    dialog.selectFile(photo("fr_obama.jpg"))
    dialog.accept()
    wait_for(lambda: source_count(app) == 1, "the picked photo added")


def test_remove_and_remembered_sources(make_window, small_video, models):
    first = make_window(model_config(small_video, SIZE, models))
    drop_files(first.window.sources, [photo("fr_obama.jpg"), photo("fr_biden.jpg")])
    wait_for(lambda: source_count(first.app) == 2
             and first.app.settings.snapshot().active_source == 1, "two faces, the second active")
    first.window.remove_source(0)
    # The active index follows its face down to 0 once the window hears of the removal.
    wait_for(lambda: source_count(first.app) == 1
             and first.app.settings.snapshot().active_source == 0, "one removed, index moved")
    wait_for(lambda: first.window.sources.count() == 1, "the panel showing one face")
    assert first.app.engine.sources[0].paths[0] == Path(photo("fr_biden.jpg"))
    first.window.close()
    second = make_window(model_config(small_video, SIZE, models), store=first.store)
    wait_for(lambda: source_count(second.app) == 1, "the remembered face re-added at start")
    assert second.app.engine.sources[0].paths[0] == Path(photo("fr_biden.jpg"))


def test_screenshot_of_the_running_window_with_meters(make_window, models, tmp_path):
    video = shared_path(SHARED_VIDEOS, "dfl_Twitch1.mp4")
    running = make_window(model_config(video, (640, 488), models))
    window, app = running.window, running.app
    drop_files(window.sources, [photo("fr_obama.jpg")])
    wait_for(lambda: source_count(app) == 1, "the source face")
    QTest.keyClick(window, Qt.Key.Key_D)

    def swapped_frame_shown() -> bool:
        packet = window.preview.packet
        return (packet is not None and packet.settings.show_debug
                and any(f.swapped_crop is not None for f in packet.faces))

    wait_for(swapped_frame_shown, "a swapped frame with the debug overlay")
    wait_for(lambda: "swap" in app.meters.snapshot().stages, "swap timings in the meters")
    wait_frames(window, 5)
    window.refresh_status()
    window.preview.repaint()
    image = window.grab().toImage()
    path = tmp_path / "window_meters.png"
    assert image.save(str(path))
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(path, ARTIFACTS / path.name)
    if SCREENS.is_dir():
        shutil.copy(path, SCREENS / path.name)
    stats = window.ui_stats()
    print(f"\nscreenshot {path} ({image.width()}x{image.height()}); UI thread per 640x488 frame "
          f"over {stats.count}: p50 {stats.p50_ms:.2f} ms, p95 {stats.p95_ms:.2f} ms\n"
          f"status: {window.status_label.text()}")
    # The overlay is really drawn: the meters panel's corner is the dark panel colour.
    grabbed = window.preview.grab().toImage()
    corner = grabbed.pixelColor(14, 14)
    assert max(corner.red(), corner.green(), corner.blue()) < 60
    assert "swap" in window.status_label.text() and "EP CPU" in window.status_label.text()

    # The other overlays: the blend mask tinted over the face, and the before/after split.
    QTest.keyClick(window, Qt.Key.Key_M)
    QTest.keyClick(window, Qt.Key.Key_B)
    wait_for(lambda: window.preview.packet.settings.before_after
             and "mask" in window.preview.packet.debug, "a frame with the mask and the split")
    window.preview.repaint()
    split = tmp_path / "window_mask_split.png"
    assert window.grab().save(str(split))
    shutil.copy(split, ARTIFACTS / split.name)
    if SCREENS.is_dir():
        shutil.copy(split, SCREENS / split.name)
