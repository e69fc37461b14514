"""First-run download dialog against a real HTTP server on 127.0.0.1 (licence question,
progress, fallback to a second copy, decline, cancel), and the message boxes' contents."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from livefusion.config import AppConfig, load_config
from tests.helpers_http import LocalServer
from tests.store_env import ALT, PLAIN, serve_test_catalog
from tests.ui.helpers import wait_for
from livefusion_ui import dialogs
from livefusion_ui.main import open_app


@pytest.fixture
def env(tmp_path, no_thread_leak):
    with LocalServer() as server:
        yield serve_test_catalog(server, tmp_path)


def download(env, ids):
    dialog = dialogs.ModelDownloadDialog(env.store(), ids)
    dialog.show()
    dialog.start()
    return dialog


def test_download_asks_the_licence_then_fetches_with_progress(qapp, env):
    dialog = download(env, ["plain", "multi"])
    wait_for(lambda: dialog.asking_licence, "the licence question for the research-only model")
    assert "multi: research only" in dialog.licence.toPlainText()
    assert (env.root / "plain.onnx").read_bytes() == PLAIN  # the free one came first, unasked
    dialog.accept_button.click()
    wait_for(lambda: not dialog.isVisible(), "the dialog closing when done")
    assert dialog.succeeded and not dialog.error
    assert (env.root / "multi.onnx").read_bytes() == ALT  # second accepted copy, first URL 404
    assert dialog.bar.value() == dialog.bar.maximum()
    assert env.store().verify("multi").ok


def test_declining_the_licence_downloads_nothing(qapp, env):
    dialog = download(env, ["multi"])
    wait_for(lambda: dialog.asking_licence, "the licence question")
    dialog.decline_button.click()
    wait_for(lambda: bool(dialog.error), "the failure message")
    assert "declined" in dialog.error and not dialog.succeeded
    assert dialog.isVisible()  # it stays up to show the manual fix
    assert "declined" in dialog.licence.toPlainText()
    assert not (env.root / "multi.onnx").exists()
    dialog.cancel_button.click()
    assert not dialog.isVisible()


def test_cancel_while_asking_stops_the_worker(qapp, env):
    dialog = download(env, ["multi"])
    wait_for(lambda: dialog.asking_licence, "the licence question")
    dialog.reject()
    wait_for(lambda: not dialog.isVisible(), "the dialog closing after the worker stopped")
    assert dialog.cancelled and not dialog.succeeded


def test_offline_config_gets_the_manual_fix(qapp, env):
    config = AppConfig()
    config.models.dir = str(env.root)
    config.models.detector, config.models.embedder, config.models.swapper = "a", "b", "plain"
    config.models.auto_download = False
    store = env.store()
    assert dialogs.missing_models(config, store) == ["a", "b", "plain"]
    ready, message = dialogs.ensure_models(None, config, store=store)
    assert not ready
    assert "downloads are turned off" in message and str(env.root.resolve()) in message


@pytest.mark.parametrize("system,needle", [("Linux", "v4l2loopback"), ("Windows", "OBS"),
                                           ("Darwin", "System Settings")])
def test_virtual_camera_box_names_the_fix_for_the_os(qapp, system, needle):
    box = dialogs.virtual_camera_box(None, "pyvirtualcam said: nothing", system)
    assert needle in box.informativeText()
    assert box.detailedText() == "pyvirtualcam said: nothing"


def test_source_face_box_keeps_the_engine_message(qapp):
    box = dialogs.source_face_box(None, "no face found in /photos/wall.png")
    assert "/photos/wall.png" in box.informativeText()


def _click_when_shown(texts: list[str], clicked: list[str]) -> None:
    """Click the button labelled texts[0] on the next modal box, then texts[1] on the one
    after, and so on."""
    def poll() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and box.isVisible():
            text = texts[len(clicked)]
            button = next(b for b in box.buttons() if b.text() == text)
            clicked.append(text)
            button.click()
            if len(clicked) == len(texts):
                return
        QTimer.singleShot(10, poll)

    QTimer.singleShot(0, poll)


def test_no_input_dialog_try_again_then_quit(qapp, tmp_path):
    config = load_config(overrides=[("input.file", str(tmp_path / "missing.mp4")),
                                    ("output.virtual_cam", False)])
    clicked: list[str] = []
    _click_when_shown(["Try again", "Quit"], clicked)
    assert open_app(config) is None
    assert clicked == ["Try again", "Quit"]


def test_offline_download_dialog_names_every_missing_model(qapp, env):
    env.server.stop()  # connections refused, as offline
    dialog = download(env, ["plain", "multi"])
    wait_for(lambda: dialog.asking_licence or bool(dialog.error), "the licence question")
    if dialog.asking_licence:
        dialog.accept_button.click()
    wait_for(lambda: bool(dialog.error), "the failure message")
    assert "2 of 2 models are not available: plain, multi" in dialog.error
    shown = dialog.licence.toPlainText()
    assert str((env.root / "plain.onnx").resolve()) in shown
    assert str((env.root / "multi.onnx").resolve()) in shown
    dialog.cancel_button.click()
