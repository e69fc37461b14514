"""The `--faces-out` lines and the preview's debug overlay show the same faces: the same
packets go through the real FacesOutSink and the real PreviewWidget (rendered offscreen),
and every face of a line is found painted where its box says, in the colour of its
`detected` flag, with the label its fields give."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PySide6.QtGui import QImage

from livefusion.config import TrackingConfig
from livefusion.media.faces_out import FacesOutSink
from livefusion.packet import FramePacket
from livefusion.settings import LiveSettings
from tests.conftest import SHARED_MODELS, SHARED_VIDEOS

FRAMES = 10


def label_from_line(face: dict) -> str:
    """What the overlay's label must read for a faces-out face (independent of face_label)."""
    track = f"#{face['track']}" if face["track"] >= 0 else "#-"
    origin = "detect" if face["detected"] else "track"
    return f"{track} {origin} {face['score']:.2f}" + (" hidden" if face["hidden"] else "")


def _close(pixel, colour, tolerance: int = 40) -> bool:
    return (abs(pixel.red() - colour.red()) < tolerance
            and abs(pixel.green() - colour.green()) < tolerance
            and abs(pixel.blue() - colour.blue()) < tolerance)


@pytest.fixture(scope="module")
def packets():
    from livefusion.face.detect import ScrfdDetector
    from livefusion.face.track import TrackingLocator
    from tests.face.onnx_builders import cpu_session

    model, video = SHARED_MODELS / "det_500m.onnx", SHARED_VIDEOS / "dfl_Twitch1.mp4"
    if not (model.exists() and video.exists()):
        pytest.skip("the real detector and clip come from ../shared")
    locator = TrackingLocator(ScrfdDetector(cpu_session(model), input_size=0),
                              TrackingConfig())
    capture = cv2.VideoCapture(str(video))
    out = []
    for seq in range(FRAMES):
        ok, frame = capture.read()
        assert ok
        packet = FramePacket(seq=seq, t_capture_ns=seq * 33_000_000, frame=frame,
                             settings=LiveSettings(detect_every=4, show_debug=True))
        packet.faces = locator.locate(packet)
        if seq == 6 and packet.faces:
            packet.faces[0].hidden = True  # as the guard marks a covered face
        out.append(packet)
    capture.release()
    return out


@pytest.mark.shared
def test_faces_out_lines_agree_with_the_debug_overlay(qapp, packets, tmp_path):
    from livefusion_ui.preview import DETECT_COLOUR, TRACK_COLOUR, PreviewWidget, face_label

    path = tmp_path / "faces.jsonl"
    sink = FacesOutSink(path)
    for packet in packets:
        sink.send(packet.frame, packet)
    sink.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == len(packets) and [r["seq"] for r in lines] == list(range(FRAMES))
    assert {f["detected"] for r in lines for f in r["faces"]} == {True, False}

    widget = PreviewWidget()
    h, w = packets[0].frame.shape[:2]
    widget.resize(w, h)
    try:
        for packet, line in zip(packets, lines):
            assert len(line["faces"]) == len(packet.faces) + len(packet.unswappable) >= 1
            widget.show_packet(packet)
            image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
            target = widget.image_rect()
            scale = target.width() / w
            for face, drawn in zip(line["faces"], packet.faces):
                assert face_label(drawn) == label_from_line(face)
                colour = DETECT_COLOUR if face["detected"] else TRACK_COLOUR
                x0, _, x1, y1 = face["box"]
                y = round(target.y() + y1 * scale)
                xs = np.linspace(x0 + 0.25 * (x1 - x0), x1 - 0.25 * (x1 - x0), 20)
                hits = sum(any(_close(image.pixelColor(round(target.x() + x * scale), y + d),
                                      colour) for d in (-1, 0, 1)) for x in xs)
                assert hits >= 16, (line["seq"], face, hits)
    finally:
        widget.deleteLater()
