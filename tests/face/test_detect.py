"""Detection: real SCRFD exports and YuNet on real photos, and the SCRFD decoder on its own."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from livefusion.face.detect import (
    auto_input_hw,
    Detections,
    ScrfdDetector,
    YunetDetector,
    decode_scrfd,
    nms_and_limit,
    split_scrfd_outputs,
)
from livefusion.face.types import Detector
from tests.conftest import SHARED_IMAGES, SHARED_MODELS
from tests.face.onnx_builders import cpu_session, shared_path

EXPECTED_FACES = {"fr_obama.jpg": 1, "fr_two_people.jpg": 2, "insightface_t1.jpg": 6}
SCRFD_MODELS = ("det_500m.onnx", "det_2.5g.onnx", "hpc203_scrfd_500m_kps.onnx", "scrfd_500m_bnkps.onnx")


@pytest.fixture(scope="module")
def detectors():
    made = {name: ScrfdDetector(cpu_session(shared_path(SHARED_MODELS, name))) for name in SCRFD_MODELS}
    made["yunet"] = YunetDetector(shared_path(SHARED_MODELS, "face_detection_yunet_2023mar.onnx"))
    return made


@pytest.fixture(scope="module")
def images():
    return {name: cv2.imread(str(shared_path(SHARED_IMAGES, name))) for name in
            (*EXPECTED_FACES, "fr_obama_partial_face.jpg")}


def _check_faces(faces, frame_shape):
    scores = [f.score for f in faces]
    assert scores == sorted(scores, reverse=True)
    for face in faces:
        assert face.bbox.dtype == np.float32 and face.bbox.shape == (4,)
        assert face.kps.dtype == np.float32 and face.kps.shape == (5, 2)
        x1, y1, x2, y2 = face.bbox
        assert x1 < x2 and y1 < y2
        assert ((face.kps[:, 0] >= x1) & (face.kps[:, 0] <= x2)).all()
        assert ((face.kps[:, 1] >= y1) & (face.kps[:, 1] <= y2)).all()
        assert face.kps[0, 0] < face.kps[1, 0], "left eye (image-left) comes first"
        assert face.kps[3, 0] < face.kps[4, 0], "left mouth corner comes first"
        assert face.kps[2, 1] < face.kps[3:, 1].mean(), "nose above the mouth"


@pytest.mark.shared
@pytest.mark.parametrize("model", ["det_500m.onnx", "det_2.5g.onnx", "yunet"])
@pytest.mark.parametrize("image, count", sorted(EXPECTED_FACES.items()))
def test_real_models_find_the_faces(detectors, images, model, image, count):
    detector = detectors[model]
    assert isinstance(detector, Detector)
    faces = detector.detect(images[image])
    assert len(faces) == count
    _check_faces(faces, images[image].shape)


@pytest.mark.shared
@pytest.mark.parametrize("export", ["hpc203_scrfd_500m_kps.onnx", "scrfd_500m_bnkps.onnx"])
@pytest.mark.parametrize("image", sorted(EXPECTED_FACES))
def test_batched_reexports_match_det_500m_within_a_pixel(detectors, images, export, image):
    reference = detectors["det_500m.onnx"].detect(images[image])
    other = detectors[export].detect(images[image])
    assert len(other) == len(reference) == EXPECTED_FACES[image]
    np.testing.assert_allclose([f.bbox for f in other], [f.bbox for f in reference], atol=1.0)
    np.testing.assert_allclose([f.kps for f in other], [f.kps for f in reference], atol=1.0)


@pytest.mark.shared
def test_fixed_size_export_is_fed_its_own_size():
    detector = ScrfdDetector(cpu_session(shared_path(SHARED_MODELS, "scrfd_500m_bnkps.onnx")), input_size=320)
    assert detector.input_hw == (640, 640)


@pytest.mark.shared
@pytest.mark.parametrize("size", [320, 480, (640, 384), 960])
def test_dynamic_export_runs_at_any_multiple_of_32(images, size):
    detector = ScrfdDetector(cpu_session(shared_path(SHARED_MODELS, "det_500m.onnx")), input_size=size)
    faces = detector.detect(images["fr_two_people.jpg"])
    assert len(faces) == 2
    _check_faces(faces, images["fr_two_people.jpg"].shape)


@pytest.mark.parametrize("size", [100, (640, 300), (0, 64), -32])
def test_input_size_must_be_a_multiple_of_32(size):
    session = cpu_session(shared_path(SHARED_MODELS, "det_500m.onnx"))
    with pytest.raises(ValueError, match="multiples of 32"):
        ScrfdDetector(session, input_size=size)


@pytest.mark.shared
def test_max_faces_and_min_face(detectors, images):
    session = detectors["det_500m.onnx"].session
    frame = images["insightface_t1.jpg"]
    assert len(ScrfdDetector(session, max_faces=3).detect(frame)) == 3
    all_faces = detectors["det_500m.onnx"].detect(frame)
    side = sorted(min(f.width, f.height) for f in all_faces)[3]
    bigger = ScrfdDetector(session, min_face=side).detect(frame)
    assert 1 <= len(bigger) < 6
    assert all(min(f.width, f.height) >= side - 1 for f in bigger)


@pytest.mark.shared
@pytest.mark.parametrize("model", ["det_500m.onnx", "yunet"])
@pytest.mark.parametrize(
    "frame",
    [np.zeros((480, 640, 3), np.uint8), np.full((4, 4, 3), 128, np.uint8),
     np.random.default_rng(3).integers(0, 255, (64, 48, 3), np.uint8)],
    ids=["black", "tiny", "noise"],
)
def test_frames_without_faces_give_no_faces(detectors, model, frame):
    assert detectors[model].detect(frame) == []


@pytest.mark.shared
@pytest.mark.parametrize("model", ["det_500m.onnx", "yunet"])
def test_face_cut_by_the_border(detectors, images, model):
    frame = images["fr_obama.jpg"]
    face = detectors["det_500m.onnx"].detect(frame)[0]
    cut = np.ascontiguousarray(frame[:, int(face.kps[2, 0]) - 40:])  # left edge cuts near the nose
    faces = detectors[model].detect(cut)
    assert len(faces) <= 1
    for found in faces:
        assert np.isfinite(found.kps).all() and np.isfinite(found.bbox).all()


@pytest.mark.shared
def test_detector_rejects_non_bgr_frames_clearly(detectors):
    with pytest.raises(ValueError, match="BGR frame"):
        detectors["det_500m.onnx"].detect(np.zeros((100, 100), np.uint8))


def test_yunet_missing_model_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        YunetDetector(tmp_path / "nope.onnx")


# --- the decoder on its own -------------------------------------------------------------------


def _empty_levels(height, width, anchors=2, strides=(8, 16, 32)):
    levels = [((height // s) * (width // s) * anchors) for s in strides]
    return ([np.zeros((n, 1), np.float32) for n in levels], [np.zeros((n, 4), np.float32) for n in levels],
            [np.zeros((n, 10), np.float32) for n in levels])


def test_decode_places_one_anchor():
    scores, boxes, kps = _empty_levels(64, 96)
    # stride 16: 4 rows x 6 cols x 2 anchors; cell (row 2, col 3), second anchor -> index (2*6+3)*2+1
    index = (2 * 6 + 3) * 2 + 1
    scores[1][index] = 0.9
    boxes[1][index] = [1, 2, 3, 4]
    kps[1][index] = np.arange(10) / 10
    dets = decode_scrfd(scores, boxes, kps, (64, 96), 0.5)
    centre = np.array([3 * 16, 2 * 16], np.float32)
    np.testing.assert_allclose(dets.boxes, [[centre[0] - 16, centre[1] - 32, centre[0] + 48, centre[1] + 64]])
    np.testing.assert_allclose(dets.kps[0], centre + (np.arange(10) / 10).reshape(5, 2) * 16, rtol=1e-6)
    np.testing.assert_allclose(dets.scores, [0.9])


def test_decode_rejects_outputs_that_do_not_fit_the_input():
    scores, boxes, kps = _empty_levels(64, 64)
    with pytest.raises(ValueError, match="do not fit a 96x64 input"):
        decode_scrfd(scores, boxes, kps, (64, 96), 0.5)


def test_split_outputs_by_shape_not_name_or_order():
    scores, boxes, kps = _empty_levels(64, 64)
    shuffled = [kps[2], scores[0][None], boxes[1], kps[0], scores[2], boxes[0][None], scores[1], kps[1], boxes[2]]
    got = split_scrfd_outputs(shuffled)
    assert [a.shape for a in got[0]] == [a.shape for a in scores]
    assert [a.shape for a in got[1]] == [a.shape for a in boxes]
    assert [a.shape for a in got[2]] == [a.shape for a in kps]
    with pytest.raises(ValueError, match="unexpected SCRFD output shape"):
        split_scrfd_outputs([np.zeros((10, 3))])


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 100, 100], [5, 5, 105, 105], [300, 300, 400, 400]], np.float32)
    dets = Detections(boxes, np.array([0.6, 0.9, 0.7], np.float32), np.zeros((3, 5, 2), np.float32))
    kept = nms_and_limit(dets, score_threshold=0.5, nms_threshold=0.4, max_faces=10, min_face=0)
    np.testing.assert_array_equal(kept.scores, np.array([0.9, 0.7], np.float32))


_floats = st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 6), cols=st.integers(1, 6), anchors=st.integers(1, 2),
    data=st.data(), threshold=st.floats(0.0, 1.0),
)
def test_decode_never_crashes_and_returns_only_finite_boxes(rows, cols, anchors, data, threshold):
    height, width = rows * 32, cols * 32
    scores, boxes, kps = [], [], []
    for stride in (8, 16, 32):
        n = (height // stride) * (width // stride) * anchors
        scores.append(data.draw(hnp.arrays(np.float32, (n, 1), elements=_floats)))
        boxes.append(data.draw(hnp.arrays(np.float32, (n, 4), elements=_floats)))
        kps.append(data.draw(hnp.arrays(np.float32, (n, 10), elements=_floats)))
    dets = decode_scrfd(scores, boxes, kps, (height, width), threshold)
    assert dets.boxes.shape == (len(dets), 4) and dets.kps.shape == (len(dets), 5, 2)
    assert np.isfinite(dets.boxes).all() and np.isfinite(dets.kps).all() and np.isfinite(dets.scores).all()
    assert (dets.scores >= threshold).all()
    kept = nms_and_limit(dets, score_threshold=threshold, nms_threshold=0.4, max_faces=5, min_face=0)
    assert len(kept) <= 5 and np.isfinite(kept.boxes).all()


@pytest.mark.parametrize("frame_hw, max_side, expected", [
    ((720, 1280), 1920, (736, 1280)), ((1080, 1920), 1920, (1088, 1920)),
    ((1080, 1920), 1280, (736, 1280)), ((2160, 3840), 1920, (1088, 1920)), ((10, 10), 1920, (32, 32)),
])
def test_auto_input_is_the_frame_size_rounded_up_to_32_under_the_cap(frame_hw, max_side, expected):
    assert auto_input_hw(frame_hw, max_side) == expected


@pytest.fixture(scope="module")
def small_face_scenes():
    """A 720p frame with a 40 px wide face at three sub-pixel positions, and its true
    keypoints: the photo's keypoints (SCRFD det_2.5g on the whole photo) carried by the
    known warp."""
    photo = cv2.imread(str(shared_path(SHARED_IMAGES, "fr_obama.jpg")))
    ref = max(ScrfdDetector(cpu_session(shared_path(SHARED_MODELS, "det_2.5g.onnx")),
                            input_size=0).detect(photo), key=lambda f: f.area)
    k = 40.0 / float(ref.bbox[2] - ref.bbox[0])
    scenes = []
    for shift in (0.0, 2.3, 4.6):
        m = np.array([[k, 0, 400 + shift], [0, k, 250 + 0.7 * shift]])
        frame = np.full((720, 1280, 3), 110, np.uint8)
        cv2.warpAffine(cv2.GaussianBlur(photo, (0, 0), 0.5 / k), m, (1280, 720), dst=frame,
                       borderMode=cv2.BORDER_TRANSPARENT)
        scenes.append((frame, ref.kps @ m[:, :2].T + m[:, 2]))
    return scenes


@pytest.mark.shared
@pytest.mark.parametrize("model", ["det_2.5g.onnx", "yunet"])
def test_the_frames_own_size_keeps_a_small_face_accurate(small_face_scenes, model):
    """A 40 px face at 720p: fed at 640 (a 640x360 letterbox, or YuNet's 640 cap) its
    keypoints are about 1.7x further off than at the frame's own size (the default)."""
    def make(size):
        if model == "yunet":
            return YunetDetector(shared_path(SHARED_MODELS, "face_detection_yunet_2023mar.onnx"),
                                 input_size=size)
        return ScrfdDetector(cpu_session(shared_path(SHARED_MODELS, model)), input_size=size)

    def error(detector):
        errs = []
        for frame, truth in small_face_scenes:
            faces = detector.detect(frame)
            assert len(faces) == 1
            iod = np.linalg.norm(truth[1] - truth[0])
            errs.append(np.linalg.norm(faces[0].kps - truth, axis=1).mean() / iod)
        return float(np.mean(errs))

    full, capped = make(0), make(640)
    if model != "yunet":
        assert full.input_hw_for((720, 1280)) == (736, 1280)
    assert error(full) < 0.8 * error(capped)


@pytest.mark.parametrize("frames, input_size", [
    ([(1080, 1920), (720, 1280)], 0),     # own size, then a smaller frame of another input size
    ([(480, 640), (300, 200)], 640),      # a fixed input: the second frame leaves wide margins
    ([(300, 200), (480, 640)], 640),
])
def test_letterbox_matches_opencvs_blob_and_reused_buffers_leave_no_trace(shared_model, frames,
                                                                          input_size):
    """The detector's input equals cv2.dnn.blobFromImage of the letterboxed frame (an
    independent reference), also when its buffers were filled by a different frame before."""
    from livefusion.face.detect import ScrfdDetector

    detector = ScrfdDetector(cpu_session(shared_model("det_500m.onnx")), input_size=input_size)
    rng = np.random.default_rng(5)
    for h, w in frames:
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        blob, scale = detector.letterbox(frame)
        in_h, in_w = detector.input_hw_for((h, w))
        canvas = np.zeros((in_h, in_w, 3), np.uint8)
        new_w, new_h = max(1, min(in_w, round(w * scale))), max(1, min(in_h, round(h * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        canvas[:new_h, :new_w] = cv2.resize(frame, (new_w, new_h), interpolation=interp)
        expected = cv2.dnn.blobFromImage(canvas, 1.0 / 128.0, (in_w, in_h), (127.5, 127.5, 127.5),
                                         swapRB=True)
        assert blob.shape == expected.shape
        assert np.allclose(blob, expected, atol=1e-5)
