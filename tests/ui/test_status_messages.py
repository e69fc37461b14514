"""Status-bar messages stay readable: the whole bar while up, long enough for a path, and
never overwritten by the 4 Hz status line."""

from __future__ import annotations

import time

from tests.ui.conftest import video_config
from tests.ui.helpers import wait_for, wait_frames
from livefusion_ui.window import IMPORTANT_MS


def test_recording_saved_says_where_and_stays_up(make_window, small_video, tmp_path):
    running = make_window(video_config(small_video, (160, 120)))
    window = running.window
    wait_frames(window)
    window.run_action("record")
    wait_for(lambda: bool(window.app.outputs.recording), "the recording to start")
    path = window.app.outputs.recording
    wait_frames(window)
    window.run_action("record")
    bar = window.statusBar()
    wait_for(lambda: "Recording saved" in bar.currentMessage(), "the saved message")
    message = bar.currentMessage()
    assert path in message and str(tmp_path / "recordings") in message
    assert window.message_until - time.monotonic() > IMPORTANT_MS / 1000.0 - 2.0 >= 7.0
    assert not window.status_label.isVisible()  # the message has the whole bar
    for _ in range(5):  # the per-frame status refresh leaves it alone
        window.refresh_status()
        wait_frames(window, 1)
    assert bar.currentMessage() == message
    bar.clearMessage()
    assert window.status_label.isVisible()  # the status line is back once the message goes
