"""The swapper through the real code path, on stand-ins with the exact inswapper contract."""

from __future__ import annotations

import numpy as np
import pytest

from livefusion.face.align import template_points
from livefusion.face.swap import InswapperSwapper, latent_from_embedding, load_emap
from livefusion.packet import Face
from tests.face.onnx_builders import arcface_standin, cpu_session, identity_inswapper


@pytest.fixture(scope="module", params=[False, True], ids=["fp32", "fp16"])
def model(request, tmp_path_factory):
    emap = np.random.default_rng(5).standard_normal((512, 512)).astype(np.float32)
    path = identity_inswapper(tmp_path_factory.mktemp("swap") / "inswapper.onnx", fp16=request.param, emap=emap)
    return path, emap, request.param


def test_emap_is_the_last_initializer(model):
    path, emap, fp16 = model
    loaded = load_emap(path)
    assert loaded.dtype == np.float32 and loaded.shape == (512, 512)
    np.testing.assert_allclose(loaded, emap.astype(np.float16) if fp16 else emap, rtol=1e-3)


def test_emap_matches_what_onnx_load_reads(model):
    import onnx
    from onnx import numpy_helper

    path, _, _ = model
    last = onnx.load(str(path)).graph.initializer[-1]
    assert last.name == "emap"
    np.testing.assert_array_equal(load_emap(path), numpy_helper.to_array(last).astype(np.float32))


def test_input_types_come_from_the_session(model):
    path, _, fp16 = model
    swapper = InswapperSwapper(cpu_session(path), load_emap(path))
    expected = np.float16 if fp16 else np.float32
    assert swapper.target_type is expected and swapper.source_type is expected
    assert (swapper.target_name, swapper.source_name, swapper.size) == ("target", "source", 128)


def test_identity_swapper_returns_the_crop(model):
    path, _, _ = model
    swapper = InswapperSwapper(cpu_session(path), load_emap(path))
    crop = np.random.default_rng(2).integers(0, 256, (128, 128, 3), np.uint8)
    latent = swapper.latent(np.random.default_rng(3).standard_normal(512))
    np.testing.assert_array_equal(swapper.swap_crop(crop, latent), crop)


def test_swap_stores_crop_and_matrix_on_the_face(model):
    path, _, _ = model
    swapper = InswapperSwapper(cpu_session(path), load_emap(path))
    frame = np.random.default_rng(4).integers(0, 256, (240, 320, 3), np.uint8)
    kps = template_points("arcface_128", 128) + [90.0, 50.0]  # the crop is frame[50:178, 90:218]
    face = Face(bbox=np.array([90, 50, 218, 178], np.float32), kps=kps.astype(np.float32), score=0.9)
    swapper.swap(frame, face, swapper.latent(np.ones(512)))
    assert face.crop_matrix.shape == (2, 3)
    np.testing.assert_allclose(face.crop_matrix, [[1, 0, -90], [0, 1, -50]], atol=1e-4)
    np.testing.assert_array_equal(face.swapped_crop, frame[50:178, 90:218])
    np.testing.assert_array_equal(face.target_crop, frame[50:178, 90:218])  # the swap's input


def test_latent_is_normalised_embedding_times_emap_normalised():
    rng = np.random.default_rng(6)
    emap = rng.standard_normal((512, 512)).astype(np.float32)
    embedding = rng.standard_normal(512).astype(np.float32) * 7
    expected = embedding / np.linalg.norm(embedding) @ emap
    expected /= np.linalg.norm(expected)
    latent = latent_from_embedding(embedding, emap)
    assert latent.shape == (1, 512)
    np.testing.assert_allclose(latent[0], expected, rtol=1e-4, atol=1e-6)


def test_embedding_size_mismatch_names_the_right_recogniser():
    with pytest.raises(ValueError, match="w600k_r50"):
        latent_from_embedding(np.ones(128), np.eye(512, dtype=np.float32))


def test_emap_that_does_not_fit_is_refused(model):
    path, _, _ = model
    with pytest.raises(ValueError, match="does not fit"):
        InswapperSwapper(cpu_session(path), np.eye(128, dtype=np.float32))


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: d / "missing.onnx", "does not exist"),
        (lambda d: _bytes(d / "cut.onnx", b"\x08\x07\x12\xff\xff"), "download it again"),
        (lambda d: _bytes(d / "empty.onnx", b""), "download it again"),
        (lambda d: _bytes(d / "half.onnx", identity_inswapper(d / "full.onnx").read_bytes()[:600_000]),
         "download it again"),
        (lambda d: arcface_standin(d / "r50.onnx", dim=16), "not a square emap"),
    ],
    ids=["missing", "truncated", "empty", "half", "not-inswapper"],
)
def test_bad_swapper_files_are_clear_errors(tmp_path, make, words):
    with pytest.raises((ValueError, FileNotFoundError), match=words):
        load_emap(make(tmp_path))


def _bytes(path, data):
    path.write_bytes(data)
    return path
