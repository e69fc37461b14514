"""The stand-in models in livefusion.measure.standins keep the upstream contracts and run in onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from livefusion.face.swap import InswapperSwapper, load_emap
from livefusion.measure.standins import arcface_standin, identity_inswapper, paint_inswapper
from tests.face.onnx_builders import cpu_session


def _io(path):
    model = onnx.load(str(path))
    dims = lambda v: [d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    return ({i.name: (dims(i), i.type.tensor_type.elem_type) for i in model.graph.input},
            {o.name: (dims(o), o.type.tensor_type.elem_type) for o in model.graph.output},
            [init.name for init in model.graph.initializer])


@pytest.mark.parametrize("rgb", [(1.0, 0.0, 1.0), (0.0, 0.5, 0.25)])
def test_paint_inswapper_has_the_inswapper_contract_and_paints_one_colour(tmp_path, rgb):
    path = paint_inswapper(tmp_path / "paint.onnx", rgb)
    inputs, outputs, inits = _io(path)
    f32 = onnx.TensorProto.FLOAT
    assert inputs == {"target": ([1, 3, 128, 128], f32), "source": ([1, 512], f32)}
    assert outputs == {"output": ([1, 3, 128, 128], f32)}
    assert inits[-1] == "emap" and load_emap(path).shape == (512, 512)

    session = cpu_session(path)
    rng = np.random.default_rng(0)
    out = session.run(None, {"target": rng.random((1, 3, 128, 128), np.float32),
                             "source": rng.standard_normal((1, 512)).astype(np.float32)})[0]
    assert out.shape == (1, 3, 128, 128) and out.dtype == np.float32
    np.testing.assert_allclose(out[0].reshape(3, -1).T, np.tile(rgb, (128 * 128, 1)), atol=1e-6)
    # both inputs are consumed: a session refuses to run without either
    with pytest.raises(Exception):
        session.run(None, {"target": np.zeros((1, 3, 128, 128), np.float32)})


def test_paint_inswapper_through_the_apps_swapper_gives_a_magenta_crop(tmp_path):
    path = paint_inswapper(tmp_path / "paint.onnx")  # the default colour
    swapper = InswapperSwapper(cpu_session(path), load_emap(path))
    crop = np.random.default_rng(1).integers(0, 256, (128, 128, 3), np.uint8)
    out = swapper.swap_crop(crop, swapper.latent(np.ones(512, np.float32)))
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    assert (out == (255, 0, 255)).all()  # BGR magenta


@pytest.mark.parametrize("rgb", [(1.0, 0.0), (1.2, 0.0, 0.0), (float("nan"), 0.0, 0.0)])
def test_paint_inswapper_refuses_a_colour_outside_rgb(tmp_path, rgb):
    with pytest.raises(ValueError, match="rgb"):
        paint_inswapper(tmp_path / "bad.onnx", rgb)


def test_identity_and_arcface_standins_keep_their_contracts(tmp_path):
    swap = identity_inswapper(tmp_path / "identity.onnx")
    target = np.random.default_rng(2).random((1, 3, 128, 128), np.float32)
    out = cpu_session(swap).run(None, {"target": target, "source": np.ones((1, 512), np.float32)})[0]
    np.testing.assert_array_equal(out, target)
    assert _io(swap)[2][-1] == "emap"

    emb = arcface_standin(tmp_path / "r50.onnx")
    inputs, outputs, _ = _io(emb)
    assert inputs == {"input.1": ([1, 3, 112, 112], onnx.TensorProto.FLOAT)}
    assert list(outputs.values())[0][0] == [1, 512]
    vec = cpu_session(emb).run(None, {"input.1": np.ones((1, 3, 112, 112), np.float32)})[0]
    assert vec.shape == (1, 512) and np.isfinite(vec).all()


def test_the_test_builders_reexport_the_package_standins():
    from tests.face import onnx_builders

    assert onnx_builders.identity_inswapper is identity_inswapper
    assert onnx_builders.arcface_standin is arcface_standin
    assert onnx_builders.paint_inswapper is paint_inswapper
