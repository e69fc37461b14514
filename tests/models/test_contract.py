"""Contract checks for user-supplied ONNX files, on real and tiny built models."""

from __future__ import annotations

import pytest

from livefusion.models.contract import (
    ContractError, ModelSignature, TensorInfo, check_file, check_signature, read_signature,
)
from tests.face.onnx_builders import arcface_standin, identity_enhancer, identity_inswapper


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("contracts")
    return {
        "swapper": identity_inswapper(d / "swapper.onnx"),
        "swapper_fp16": identity_inswapper(d / "swapper16.onnx", fp16=True),
        "swapper_256": identity_inswapper(d / "swapper256.onnx", target=(1, 3, 256, 256)),
        "swapper_no_emap": identity_inswapper(d / "swapper_no_emap.onnx", with_emap=False),
        "embedder": arcface_standin(d / "embedder.onnx"),
        "embedder_128": arcface_standin(d / "embedder128.onnx", size=128),
        "enhancer": identity_enhancer(d / "enhancer.onnx", size=64),
        "enhancer_resizing": identity_enhancer(d / "enhancer2.onnx", size=64, out_size=128),
    }


def test_signature_of_a_real_scrfd(shared_model):
    sig = read_signature(shared_model("det_500m.onnx"))
    assert [t.name for t in sig.inputs] == ["input.1"]
    assert sig.inputs[0].shape[:2] == (1, 3) and isinstance(sig.inputs[0].shape[2], str)
    assert [t.shape[-1] for t in sig.outputs] == [1, 1, 1, 4, 4, 4, 10, 10, 10]


@pytest.mark.parametrize("name", ["det_500m.onnx", "det_2.5g.onnx", "scrfd_500m_bnkps.onnx",
                                  "hpc203_scrfd_500m_kps.onnx"])
def test_real_scrfd_exports_fit_the_detector_contract(shared_model, name):
    """With or without a batch dim, renamed outputs: matched by order and shape."""
    check_file("scrfd", shared_model(name))


def test_yunet_fits_yunet_and_not_scrfd(shared_model):
    path = shared_model("face_detection_yunet_2023mar.onnx")
    check_file("yunet", path)
    with pytest.raises(ContractError, match="9 outputs.*found 12"):
        check_file("scrfd", path)


@pytest.mark.parametrize("kind, key", [
    ("inswapper", "swapper"), ("inswapper", "swapper_fp16"), ("arcface", "embedder"),
    ("enhancer", "enhancer"),
])
def test_built_models_fit(built, kind, key):
    check_file(kind, built[key])


@pytest.mark.parametrize("kind, key, expected, found", [
    ("inswapper", "swapper_256", "target [1,3,128,128]", "target [1,3,256,256]"),
    ("inswapper", "swapper_no_emap", "512x512 `emap`", "source [1,512]"),
    ("inswapper", "embedder", "two inputs", "683 [1,512]"),
    ("arcface", "embedder_128", "[1,3,112,112]", "input.1 [1,3,128,128]"),
    ("arcface", "swapper", "one input [1,3,112,112]", "target [1,3,128,128]"),
    ("enhancer", "enhancer_resizing", "output of the input's shape [1,3,64,64]", "output [1,3,128,128]"),
    ("scrfd", "embedder", "9 outputs", "found 1"),
])
def test_wrong_models_name_the_mismatch(built, kind, key, expected, found):
    with pytest.raises(ContractError) as err:
        check_file(kind, built[key], label="--model x")
    message = str(err.value)
    assert message.startswith(f"--model x does not fit the {kind} contract")
    assert expected in message and found in message


def _scrfd_sig(side, n8, n16, n32, batch=False) -> ModelSignature:
    outs = []
    for last in (1, 4, 10):
        for n in (n8, n16, n32):
            shape = (1, n, last) if batch else (n, last)
            outs.append(TensorInfo("", shape, "float32"))
    return ModelSignature((TensorInfo("in", (1, 3, side, side), "float32"),), tuple(outs))


@pytest.mark.parametrize("sig, problem", [
    (_scrfd_sig(640, 12800, 3200, 800), None),
    (_scrfd_sig(640, 12800, 3200, 800, batch=True), None),
    (_scrfd_sig("H", "a", "b", "c"), None),
    (_scrfd_sig(600, 11250, 2812, 703), "not a multiple of 32"),
    (_scrfd_sig(640, 12800, 3200, 900), "do not follow strides"),
])
def test_scrfd_shape_rules(sig, problem):
    if problem is None:
        check_signature("scrfd", sig)
    else:
        with pytest.raises(ContractError, match=problem):
            check_signature("scrfd", sig)


def test_integer_input_is_refused():
    sig = ModelSignature((TensorInfo("x", (1, 3, 112, 112), "uint8"),),
                         (TensorInfo("y", (1, 512), "float32"),))
    with pytest.raises(ContractError, match="uint8, expected float32 or float16"):
        check_signature("arcface", sig)


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x08\x07 definitely not protobuf \xff\xff")
    with pytest.raises(ContractError, match="not a readable ONNX file"):
        read_signature(path)
