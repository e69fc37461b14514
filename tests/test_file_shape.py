"""Files keep their shape: a portrait photo and a portrait clip as --input keep the face in the
picture at the default size (the file's own) and fitted (letterboxed) into --resolution.

Judged on the frames the outputs get, by OpenCV's YuNet (cv2.FaceDetectorYN on the shared model),
not by the code under test. The privacy guard is off here so the judge sees the picture itself
(no source face is given, so nothing is swapped)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from livefusion.app import build_app
from livefusion.config import load_config

pytestmark = pytest.mark.shared

FRAMES = 8


class FrameGrab:
    """A sink keeping a copy of every frame it is sent."""

    name = "grab"

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def send(self, frame: np.ndarray, packet: object) -> None:
        self.frames.append(frame.copy())

    def close(self) -> None:
        pass


class Yunet:
    """The judge: OpenCV's YuNet, one detector (model load) for the whole test."""

    def __init__(self, model: Path) -> None:
        self.detector = cv2.FaceDetectorYN.create(str(model), "", (320, 320), 0.6, 0.3)


def yunet_faces(judge: Yunet, frame: np.ndarray) -> np.ndarray:
    """(N, 4) x, y, w, h of the faces YuNet finds at score >= 0.6."""
    h, w = frame.shape[:2]
    judge.detector.setInputSize((w, h))
    _, faces = judge.detector.detect(frame)
    return np.zeros((0, 4)) if faces is None else faces[:, :4]


def run_file(path: Path, resolution: str | None) -> list[np.ndarray]:
    pairs = [("input.file", str(path)), ("input.realtime", False), ("input.fps", 30.0),
             ("output.virtual_cam", False), ("privacy.policy", "off"),
             ("pipeline.frames", FRAMES)]
    if resolution:
        pairs.append(("input.resolution", resolution))
    grab = FrameGrab()
    app = build_app(load_config(overrides=pairs), extra_sinks=[grab])
    with app:
        assert app.pipeline.wait(30), "the run did not finish"
    assert app.pipeline.join(10)
    return grab.frames


def fitted_box(box: np.ndarray, src: tuple[int, int], dst: tuple[int, int]) -> np.ndarray:
    """Where `box` (x, y, w, h in the source) lands when src is letterboxed into dst."""
    scale = min(dst[0] / src[0], dst[1] / src[1])
    x0 = (dst[0] - src[0] * scale) / 2
    y0 = (dst[1] - src[1] * scale) / 2
    return np.array([box[0] * scale + x0, box[1] * scale + y0, box[2] * scale, box[3] * scale])


def assert_face_kept(model: Yunet, judged: list[tuple[np.ndarray, np.ndarray]],
                     file_size: tuple[int, int], out_size: tuple[int, int]) -> None:
    """Each (output frame, face box in the file's frame) pair: the judge finds that face where
    the letterbox puts it, with its proportions (a crop or a stretch would move or bend it)."""
    assert len(judged) == FRAMES
    for frame, face_in_file in judged:
        assert (frame.shape[1], frame.shape[0]) == out_size
        expected = fitted_box(face_in_file, file_size, out_size)
        faces = yunet_faces(model, frame)
        assert len(faces) == 1, "the judge must find the face in every output frame"
        found = faces[0]
        centre_error = found[:2] + found[2:] / 2 - (expected[:2] + expected[2:] / 2)
        assert np.abs(centre_error).max() < 0.1 * expected[2]
        assert found[2] == pytest.approx(expected[2], rel=0.15)
        assert found[2] / found[3] == pytest.approx(expected[2] / expected[3], rel=0.15)


@pytest.fixture
def yunet(shared_model) -> Yunet:
    return Yunet(shared_model("face_detection_yunet_2023mar.onnx"))


@pytest.fixture
def portrait_clip(shared_video, tmp_path) -> Path:
    """dfl_Obama_speaking (512x388) cut to a 220x388 portrait around the speaker."""
    cap = cv2.VideoCapture(str(shared_video("dfl_Obama_speaking.mp4")))
    path = tmp_path / "portrait.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (220, 388))
    for _ in range(FRAMES + 4):
        ok, frame = cap.read()
        assert ok, "test setup: the shared clip ended early"
        writer.write(np.ascontiguousarray(frame[:, 140:360]))
    writer.release()
    cap.release()
    return path


@pytest.mark.parametrize("resolution, out_size", [(None, (910, 1137)),
                                                  ("1280x720", (1280, 720))])
def test_a_portrait_photo_keeps_its_face(yunet, shared_image, resolution, out_size):
    photo = shared_image("fr_obama.jpg")  # 910x1137, the face in the upper half
    face = yunet_faces(yunet, cv2.imread(str(photo)))[0]
    frames = run_file(photo, resolution)
    assert_face_kept(yunet, [(frame, face) for frame in frames], (910, 1137), out_size)


@pytest.mark.parametrize("resolution, out_size", [(None, (220, 388)),
                                                  ("1280x720", (1280, 720))])
def test_a_portrait_video_keeps_its_face(yunet, portrait_clip, resolution, out_size):
    frames = run_file(portrait_clip, resolution)
    cap = cv2.VideoCapture(str(portrait_clip))  # every frame is judged against its own original
    originals = [cap.read()[1] for _ in frames]
    cap.release()
    assert_face_kept(yunet, [(frame, yunet_faces(yunet, original)[0])
                             for frame, original in zip(frames, originals)], (220, 388), out_size)
