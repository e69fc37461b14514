"""Identity: real MobileFaceNet on real photos (alignment + point order + normalisation),
source identities from one or several photos, and clear errors for unusable photos."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from livefusion.face.detect import ScrfdDetector
from livefusion.face.embed import Recognizer, SourceFaceError, build_identity, cosine, unit
from tests.conftest import SHARED_IMAGES, SHARED_MODELS
from tests.face.onnx_builders import arcface_standin, cpu_session, shared_path

SAME = [("fr_obama.jpg", "fr_obama2.jpg"), ("insightface_Rob_Lowe_0001.jpg", "insightface_Rob_Lowe_0002.jpg")]
PEOPLE = ["fr_obama.jpg", "insightface_Rob_Lowe_0001.jpg", "fr_biden.jpg", "insightface_Nathalie_Baye_0002.jpg"]


@pytest.fixture(scope="module")
def detector():
    return ScrfdDetector(cpu_session(shared_path(SHARED_MODELS, "det_500m.onnx")))


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer(cpu_session(shared_path(SHARED_MODELS, "pixamatch_mobilefacenet.onnx")))


@pytest.fixture(scope="module")
def embeddings(detector, recognizer):
    names = {n for pair in SAME for n in pair} | set(PEOPLE)
    return {n: build_identity(shared_path(SHARED_IMAGES, n), detector, recognizer).embedding for n in names}


def test_recognizer_reads_its_sizes_from_the_model(recognizer, tmp_path):
    assert (recognizer.size, recognizer.dim) == (112, 128)
    standin = Recognizer(cpu_session(arcface_standin(tmp_path / "r50.onnx", dim=512)))
    assert (standin.size, standin.dim) == (112, 512)
    vector = standin.embed_crop(np.full((112, 112, 3), 90, np.uint8))
    assert vector.shape == (512,) and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.shared
@pytest.mark.parametrize("a, b", SAME)
def test_same_person_is_similar(embeddings, a, b):
    assert cosine(embeddings[a], embeddings[b]) > 0.5


@pytest.mark.shared
@pytest.mark.parametrize("a, b", list(itertools.combinations(PEOPLE, 2)))
def test_different_people_are_not(embeddings, a, b):
    assert cosine(embeddings[a], embeddings[b]) < 0.3


@pytest.mark.shared
def test_wrong_point_order_breaks_identity(detector, recognizer, embeddings):
    """The thresholds above are meaningful: swapping the eyes in the alignment ruins them."""
    frame = cv2.imread(str(shared_path(SHARED_IMAGES, "fr_obama2.jpg")))
    face = detector.detect(frame)[0]
    face.kps = face.kps[[1, 0, 2, 4, 3]]
    assert cosine(recognizer.embed(frame, face), embeddings["fr_obama.jpg"]) < 0.5


@pytest.mark.shared
def test_several_photos_average_to_a_unit_embedding(detector, recognizer, embeddings):
    paths = [shared_path(SHARED_IMAGES, n) for n in SAME[0]]
    identity = build_identity(paths, detector, recognizer)
    assert identity.paths == tuple(paths) and identity.notes == ()
    assert np.linalg.norm(identity.embedding) == pytest.approx(1.0, abs=1e-5)
    expected = unit(embeddings[SAME[0][0]] + embeddings[SAME[0][1]])
    np.testing.assert_allclose(identity.embedding, expected, atol=1e-5)


@pytest.mark.shared
def test_several_faces_use_the_largest_and_say_so(detector, recognizer, caplog):
    path = shared_path(SHARED_IMAGES, "fr_two_people.jpg")
    frame = cv2.imread(str(path))
    faces = detector.detect(frame)
    largest = max(faces, key=lambda f: f.area)
    with caplog.at_level("WARNING"):
        identity = build_identity(path, detector, recognizer)
    assert len(identity.notes) == 1 and "2 faces found, using the largest" in identity.notes[0]
    assert str(path) in identity.notes[0] and "using the largest" in caplog.text
    np.testing.assert_allclose(identity.embedding, recognizer.embed(frame, largest), atol=1e-6)


@pytest.mark.shared
def test_photo_without_a_face_names_the_file(detector, recognizer, tmp_path):
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((300, 400, 3), 180, np.uint8))
    with pytest.raises(SourceFaceError, match=r"no face found in .*wall.png \(400x300 pixels\)"):
        build_identity([blank], detector, recognizer)


@pytest.mark.shared
def test_tiny_photo_is_a_clear_error(detector, recognizer, tmp_path):
    tiny = tmp_path / "tiny.jpg"
    cv2.imwrite(str(tiny), cv2.resize(cv2.imread(str(shared_path(SHARED_IMAGES, "fr_obama.jpg"))), (9, 11)))
    with pytest.raises(SourceFaceError, match="tiny.jpg"):
        build_identity(tiny, detector, recognizer)


@pytest.mark.shared
def test_tightly_cropped_face_is_found_with_a_margin(detector, recognizer):
    identity = build_identity(shared_path(SHARED_IMAGES, "insightface_Tom_Hanks_54745.png"), detector, recognizer)
    assert np.linalg.norm(identity.embedding) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.shared
@pytest.mark.parametrize(
    "convert",
    [lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2GRAY),
     lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2BGRA),
     lambda im: im.astype(np.uint16) * 257],
    ids=["grayscale", "rgba", "16-bit"],
)
def test_source_photo_formats(detector, recognizer, embeddings, tmp_path, convert):
    frame = cv2.imread(str(shared_path(SHARED_IMAGES, "fr_obama2.jpg")))
    path = tmp_path / "source.png"
    cv2.imwrite(str(path), convert(frame))
    identity = build_identity(path, detector, recognizer)
    assert cosine(identity.embedding, embeddings["fr_obama.jpg"]) > 0.5


def test_no_paths_and_bad_vectors_are_errors(detector, recognizer):
    with pytest.raises(SourceFaceError, match="no source image"):
        build_identity([], detector, recognizer)
    with pytest.raises(ValueError, match="zero or not finite"):
        unit(np.zeros(4))
