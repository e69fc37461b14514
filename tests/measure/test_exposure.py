"""The independent exposure judge: a viewer's tool that says whether the user's real face shows."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from livefusion.measure.exposure import ExposureJudge, FrameJudgement, JudgingSink
from livefusion.packet import GuardAction, HideReason, PrivacyVerdict
from tests.conftest import SHARED_IMAGES, SHARED_MODELS
from tests.face.onnx_builders import shared_path

pytestmark = pytest.mark.shared

PHOTOS = ("fr_obama.jpg", "dfl_celeba_000002.jpg", "insightface_left_face.jpeg",
          "insightface_Rob_Lowe_0001.jpg")


@pytest.fixture(scope="module")
def judge():
    return ExposureJudge(shared_path(SHARED_MODELS, "face_detection_yunet_2023mar.onnx"),
                         shared_path(SHARED_MODELS, "pixamatch_mobilefacenet.onnx"), threads=1)


def _photo(name: str) -> np.ndarray:
    image = cv2.imread(str(shared_path(SHARED_IMAGES, name)))
    scale = min(1.0, 640 / max(image.shape[:2]))
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _face_region(judge, frame, pad=0.3):
    (face,) = judge.detect(frame)[:1]
    x0, y0, x1, y1 = face.box
    px, py = pad * (x1 - x0), pad * (y1 - y0)
    h, w = frame.shape[:2]
    return (max(0, int(x0 - px)), max(0, int(y0 - py)),
            min(w, int(x1 + px) + 1), min(h, int(y1 + py) + 1))


def same(frame, region):
    return frame.copy()


def pixelated_6(frame, region):
    out = frame.copy()
    x0, y0, x1, y1 = region
    small = cv2.resize(out[y0:y1, x0:x1], (6, 6), interpolation=cv2.INTER_AREA)
    out[y0:y1, x0:x1] = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    return out


def magenta(frame, region):
    out = frame.copy()
    x0, y0, x1, y1 = region
    out[y0:y1, x0:x1] = (255, 0, 255)
    return out


def jpeg_and_noise(frame, region):  # what a stream encoder does to the real face: still exposed
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 60])
    out = cv2.imdecode(data, cv2.IMREAD_COLOR)
    noise = np.random.default_rng(0).normal(0, 3, out.shape)
    return np.clip(out + noise, 0, 255).astype(np.uint8)


def shifted(frame, region):  # the real face at another place (e.g. an older frame repeated)
    m = np.float32([[1, 0, 40], [0, 1, 10]])
    return cv2.warpAffine(frame, m, (frame.shape[1], frame.shape[0]),
                          borderMode=cv2.BORDER_REPLICATE)


def grey(frame, region):  # a neutral "starting" frame
    return np.full_like(frame, 48)


CASES = [(same, True), (jpeg_and_noise, True), (shifted, True),
         (pixelated_6, False), (magenta, False), (grey, False)]


@pytest.mark.parametrize("photo", PHOTOS)
@pytest.mark.parametrize("make_output,exposed", CASES, ids=[c[0].__name__ for c in CASES])
def test_the_judge_says_exposed_only_when_the_identity_shows(judge, photo, make_output, exposed):
    frame = _photo(photo)
    output = make_output(frame, _face_region(judge, frame))
    verdict = judge.judge(frame, output)
    assert verdict.face_count == 1
    assert verdict.exposed is exposed, f"cosines {verdict.cosines}"
    assert verdict.exposed_count == int(exposed)
    (cos,) = verdict.cosines
    assert (cos >= judge.threshold) is exposed
    if make_output is same:
        assert cos == pytest.approx(1.0, abs=1e-4)


def test_a_shifted_face_is_found_only_by_searching_the_output(judge):
    frame = _photo("fr_obama.jpg")
    output = shifted(frame, None)
    assert judge.judge(frame, output).faces[0].cosine < judge.threshold  # wrong place
    assert judge.judge(frame, output).exposed  # found by the output search
    blind = ExposureJudge(SHARED_MODELS / "face_detection_yunet_2023mar.onnx",
                          SHARED_MODELS / "pixamatch_mobilefacenet.onnx", search_output=False)
    assert not blind.judge(frame, output).exposed


def test_another_persons_face_is_not_an_exposure(judge):
    a, b = _photo("insightface_Rob_Lowe_0001.jpg"), _photo("insightface_Nathalie_Baye_0002.jpg")
    assert a.shape == b.shape
    assert not judge.judge(a, b).exposed
    same_person = judge.judge(a, _photo("insightface_Rob_Lowe_0002.jpg"))
    assert same_person.exposed  # another photo of the same person is (cosine ~0.72)


def test_a_face_too_dark_to_recognise_is_found_but_never_judged_exposed(judge):
    frame = _photo("fr_obama.jpg")
    dark = cv2.GaussianBlur((frame * 0.1).astype(np.uint8), (0, 0), 2)
    lit = judge.judge(frame, frame).faces[0]
    assert lit.recognisable and lit.control_cosine < 0.4
    verdict = judge.judge(dark, dark)
    assert verdict.face_count == 1 and verdict.judged_count == 0
    face = verdict.faces[0]
    assert face.cosine > 0.99 and face.control_cosine >= judge.threshold
    assert not face.recognisable and not verdict.exposed


def test_no_face_no_judgement(judge):
    empty = np.full((360, 640, 3), 120, np.uint8)
    assert judge.judge(empty, empty) == FrameJudgement()
    assert not judge.judge(empty, empty).exposed


def test_the_judge_detects_on_big_frames_and_judges_scaled_outputs(judge):
    frame = cv2.resize(_photo("fr_obama.jpg"), None, fx=4, fy=4)  # beyond the 1920 px cap
    assert max(frame.shape[:2]) > judge.max_side
    verdict = judge.judge(frame, cv2.resize(frame, None, fx=0.5, fy=0.5))
    assert verdict.face_count == 1 and verdict.exposed
    x0, y0, x1, y1 = verdict.boxes[0]
    assert x1 - x0 > 200  # in full-resolution pixels


@pytest.mark.parametrize("bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32)])
def test_the_judge_refuses_what_is_not_a_bgr_frame(judge, bad):
    with pytest.raises(ValueError, match="BGR uint8"):
        judge.judge(bad, bad)


def test_missing_models_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="YuNet"):
        ExposureJudge(tmp_path / "nope.onnx", tmp_path / "nope2.onnx")


def test_the_judging_sink_records_every_frame_with_the_apps_verdict(judge):
    frame = _photo("fr_obama.jpg")
    hidden = pixelated_6(frame, _face_region(judge, frame))
    sink = JudgingSink(judge, keep_exposed=1)
    for seq, (out, verdict) in enumerate([
            (frame, None),
            (hidden, PrivacyVerdict(GuardAction.HIDE, (HideReason.NO_SWAP,), ((0, 0, 5, 5),))),
            (frame, PrivacyVerdict(GuardAction.PASS))]):
        packet = SimpleNamespace(seq=seq, original=frame, privacy=verdict, errors={},
                                 timings_ms={"privacy": 0.5} if verdict else {})
        sink.send(out, packet)
    sink.close()
    assert [(r.seq, r.exposed, r.action, r.reasons, r.guard_ms) for r in sink.records] == [
        (0, True, "", (), None), (1, False, "hide", ("no_swap",), 0.5), (2, True, "pass", (), 0.5)]
    assert [seq for seq, _, _ in sink.exposed_frames] == [0] and sink.closed


def _face(box, exposed, recognisable=True):
    from livefusion.measure.exposure import JudgedFace

    return JudgedFace(box, 0.9, ((0.0, 0.0),) * 5, 1.0 if exposed else 0.0, -1.0,
                      exposed and recognisable,
                      0.0 if recognisable else 0.9, recognisable)


@pytest.mark.parametrize("faces,main", [
    ((), False),
    ((_face((0, 0, 100, 100), True), _face((200, 0, 220, 20), False)), True),
    ((_face((0, 0, 100, 100), False), _face((200, 0, 220, 20), True)), False),  # a bystander
    ((_face((0, 0, 100, 100), True, recognisable=False), _face((200, 0, 220, 20), True)), True),
])
def test_the_main_face_is_the_largest_recognisable_one(faces, main):
    from livefusion.measure.exposure import FrameRecord

    record = FrameRecord(0, FrameJudgement(faces))
    assert record.main_exposed is main
    assert record.exposed is any(f.exposed for f in faces)
