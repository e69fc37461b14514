"""The disclosure label: on the frames viewers get (a real pyvirtualcam.Camera with the test
backend, the recording, the preview's packets), in the corner asked for, at the size asked
for, after the privacy guard; nothing when it is off."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from livefusion.app import build_app
from livefusion.cli import build_parser, config_from_args
from livefusion.media.label import DisclosureLabel, LabelPosition, LabelStyle
from tests.conftest import RECORDER_BACKEND

W, H = 320, 240
GREY = 128


@pytest.fixture
def still(tmp_path) -> Path:
    path = tmp_path / "grey.png"  # lossless: every unlabelled pixel stays exactly GREY
    cv2.imwrite(str(path), np.full((H, W, 3), GREY, np.uint8))
    return path


def corners(frame: np.ndarray) -> dict[str, np.ndarray]:
    h, w = frame.shape[:2]
    return {"top-left": frame[: h // 3, : w // 2], "top-right": frame[: h // 3, w // 2:],
            "bottom-left": frame[2 * h // 3:, : w // 2],
            "bottom-right": frame[2 * h // 3:, w // 2:]}


def labelled_corners(frame: np.ndarray) -> list[str]:
    """Corners holding a label: a dark box (well below GREY) with light text on it."""
    found = []
    for name, region in corners(frame).items():
        grey = region.mean(axis=2)
        if (grey < GREY * 0.6).sum() > 200 and (grey > 200).sum() > 20:
            found.append(name)
    return found


def label_height(frame: np.ndarray) -> int:
    rows = np.nonzero((np.abs(frame.astype(int) - GREY) > 10).any(axis=(1, 2)))[0]
    return int(rows.max() - rows.min() + 1) if len(rows) else 0


def run(still: Path, *flags: str, privacy: str = "off", frames: int = 5,
        record: Path | None = None, backend=RECORDER_BACKEND):
    args = ["--input", str(still), "--no-realtime", "--frames", str(frames),
            "--vcam-backend", backend, "--privacy", privacy, *flags]
    if record is not None:
        args += ["--record", str(record)]
    config = config_from_args(build_parser().parse_args(args))
    preview: list[np.ndarray] = []
    app = build_app(config, on_packet=lambda packet: preview.append(packet.frame))
    with app:
        assert app.pipeline.wait(20)
    assert app.pipeline.join(10)
    return app, preview


def vcam_frames(recording_backend) -> list[np.ndarray]:
    (camera,) = recording_backend
    return [f.reshape(camera.height, camera.width, 3) for f in camera.frames]


@pytest.mark.parametrize("position", [p.value for p in LabelPosition])
def test_the_label_is_on_the_virtual_camera_where_asked(still, recording_backend, position):
    run(still, "--label", "AI face swap", "--label-position", position)
    frames = vcam_frames(recording_backend)
    assert len(frames) == 5
    for frame in frames:
        assert labelled_corners(frame) == [position]
        untouched = corners(frame)[{"top-left": "bottom-right", "top-right": "bottom-left",
                                    "bottom-left": "top-right",
                                    "bottom-right": "top-left"}[position]]
        assert (untouched == GREY).all()  # the rest of the picture is left alone


def test_no_label_by_default(still, recording_backend):
    _, preview = run(still)
    for frame in vcam_frames(recording_backend) + preview:
        assert (frame == GREY).all()


def test_the_size_is_settable(still, recording_backend):
    run(still, "--label", "AI", "--label-size", "0.04")
    small = label_height(vcam_frames(recording_backend)[0])
    recording_backend.clear()
    run(still, "--label", "AI", "--label-size", "0.12")
    large = label_height(vcam_frames(recording_backend)[0])
    assert 0.04 * H <= small < 0.12 * H <= large < 0.25 * H


def test_the_label_is_on_the_recording_and_the_preview_too(still, recording_backend, tmp_path):
    out = tmp_path / "rec.mkv"
    _, preview = run(still, "--label", "generated face", "--label-position", "top-left",
                     record=out)
    assert preview and all(labelled_corners(f) == ["top-left"] for f in preview)
    with av.open(str(out)) as container:
        recorded = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(recorded) == 5
    assert all(labelled_corners(f) == ["top-left"] for f in recorded)


def test_the_label_is_drawn_after_the_privacy_guard(still, recording_backend):
    """With the guard on and no source face, the guard replaces every frame with a neutral
    one (start-up); the label must be on what it sends, not on the frame it threw away."""
    run(still, privacy="hide")
    neutral = vcam_frames(recording_backend)[-1]
    assert (neutral == GREY).mean() < 0.5  # the guard's frame, not the picture
    recording_backend.clear()
    app, _ = run(still, "--label", "AI face swap", privacy="hide")
    assert app.meters.snapshot().privacy.get("hidden") == {"startup": 5}
    for frame in vcam_frames(recording_backend):
        changed = np.abs(frame.astype(int) - neutral).max(axis=2) > 0
        ys, xs = np.nonzero(changed)
        assert len(ys) > 200, "no label on the guard's frame"
        assert ys.min() > H // 2 and xs.min() > W // 2  # only in the bottom-right corner


def test_the_label_never_writes_into_the_frame_it_is_given():
    frame = np.full((H, W, 3), GREY, np.uint8)
    out = DisclosureLabel(LabelStyle("AI", LabelPosition.TOP_RIGHT)).apply(frame)
    assert (frame == GREY).all() and labelled_corners(out) == ["top-right"]
