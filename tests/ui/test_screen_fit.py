"""Nothing is cut off: the first-run licence dialog (model list and licence text), the help
overlay and the main window fit a 1920x1080 screen and a small 1024x600 (or 800x480) one; what
does not fit scrolls. Checked on the widgets' real geometry after layout (offscreen)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QRect, QSize
from PySide6.QtWidgets import QLabel

from livefusion.config import load_config
from livefusion.models.roles import needed_ids
from livefusion.models.store import ModelStore, load_catalog
from tests.ui.conftest import video_config
from tests.ui.helpers import wait_frames
from livefusion_ui import dialogs
from livefusion_ui.screen_fit import FRAME_ALLOWANCE

SCREENS = [QRect(0, 0, 1920, 1080), QRect(0, 0, 1024, 600), QRect(0, 0, 800, 480)]


def settle(qapp) -> None:
    for _ in range(5):
        qapp.processEvents()


def assert_labels_whole(widget) -> None:
    """Every visible word-wrapped label is as tall as its text needs at its width."""
    for label in widget.findChildren(QLabel):
        if label.isVisible() and label.wordWrap() and label.text():
            assert label.height() >= label.heightForWidth(label.width()), label.text()[:60]


@pytest.fixture
def licence_dialog(qapp, tmp_path):
    store = ModelStore(tmp_path / "models", load_catalog())
    ids = needed_ids(load_config(), store.catalog) + ["gfpgan_1.4"]  # the longest licence
    dialog = dialogs.ModelDownloadDialog(store, ids)
    dialog.show()
    dialog._show_licence(store.catalog.get(ids[0]))  # as the worker asks for it
    settle(qapp)
    yield dialog, [store.catalog.get(i) for i in ids]
    dialog.reject()


@pytest.mark.parametrize("area", SCREENS, ids=lambda r: f"{r.width()}x{r.height()}")
def test_the_licence_dialog_fits_and_shows_or_scrolls_to_every_line(qapp, licence_dialog, area):
    dialog, entries = licence_dialog
    dialog.fit_to_screen(area)
    settle(qapp)
    room = area.size() - FRAME_ALLOWANCE
    assert dialog.width() <= room.width() and dialog.height() <= room.height()
    assert_labels_whole(dialog.details)
    # the model list: every model named, and the list shown whole or reachable by scrolling
    for entry in entries:
        assert entry.id in dialog.listing.text() and entry.licence in dialog.listing.text()
    scroll = dialog.scroll
    reach = scroll.viewport().height() + scroll.verticalScrollBar().maximum()
    assert reach >= dialog.details.heightForWidth(scroll.viewport().width()) - 1
    if area.height() >= 600:  # on a normal screen the list is not hidden behind a scroll bar
        assert scroll.verticalScrollBar().maximum() == 0
    # the licence text: at least a few lines tall, the rest reachable by its scroll bar
    browser = dialog.licence
    assert browser.isVisible() and browser.viewport().height() >= 3 * browser.fontMetrics().height()
    doc_h = browser.document().size().height()
    assert browser.viewport().height() + browser.verticalScrollBar().maximum() >= doc_h - 1
    for button in (dialog.accept_button, dialog.decline_button, dialog.cancel_button):
        top_left = button.mapTo(dialog, button.rect().topLeft())
        assert dialog.rect().contains(QRect(top_left, button.size())), button.text()


def test_the_failure_text_fits_too(qapp, licence_dialog):
    dialog, _ = licence_dialog
    dialog._done("model x is not available\n" + "  reason: offline\n" * 40)
    dialog.fit_to_screen(SCREENS[1])
    settle(qapp)
    room = SCREENS[1].size() - FRAME_ALLOWANCE
    assert dialog.height() <= room.height()
    browser = dialog.licence
    assert browser.viewport().height() + browser.verticalScrollBar().maximum() >= \
        browser.document().size().height() - 1


@pytest.mark.parametrize("area", SCREENS[:2], ids=lambda r: f"{r.width()}x{r.height()}")
def test_main_window_and_help_overlay_fit(make_window, small_video, qapp, area):
    from livefusion_ui.screen_fit import fit_to_screen
    from livefusion_ui.window import PREFERRED_SIZE

    window = make_window(video_config(small_video, (160, 120))).window
    fit_to_screen(window, PREFERRED_SIZE, area)
    settle(qapp)
    room = area.size() - FRAME_ALLOWANCE
    assert window.width() <= room.width() and window.height() <= room.height()
    wait_frames(window, 2)
    window.toggle_help()
    window.preview.grab()  # paints, placing the help box
    box = window.preview.help_box()
    assert not box.isEmpty()
    assert window.preview.rect().toRectF().contains(box), (box, window.preview.size())
    side = window.centralWidget().widget(1)  # the side panel's scroll area: no sideways scroll
    assert side.horizontalScrollBar().maximum() == 0
