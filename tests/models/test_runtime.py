"""Provider choice as logic over given provider lists; real sessions on real ONNX files."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from livefusion.config import RuntimeConfig
from livefusion.models.runtime import (
    ModelLoadError, ModelSession, SessionFactory, choose_providers, create_session, cuda_options,
    warmup_shape,
)
from tests.face.onnx_builders import identity_inswapper

TRT, CUDA, DML, COREML, CPU = ("TensorrtExecutionProvider", "CUDAExecutionProvider",
                               "DmlExecutionProvider", "CoreMLExecutionProvider",
                               "CPUExecutionProvider")
NVIDIA = [TRT, CUDA, CPU]


@pytest.mark.parametrize("requested, available, chosen, missing", [
    (["auto"], NVIDIA, [CUDA, CPU], []),  # TensorRT only when asked for
    (["auto"], [CPU], [CPU], []),
    (["auto"], [DML, CPU], [DML, CPU], []),
    (["auto"], [COREML, CPU], [COREML, CPU], []),
    (["auto"], [COREML, CUDA, DML, CPU], [CUDA, DML, COREML, CPU], []),
    ([], NVIDIA, [CUDA, CPU], []),
    (["tensorrt"], NVIDIA, [TRT, CUDA, CPU], []),
    (["tensorrt"], [CPU], [CPU], ["tensorrt"]),
    (["tensorrt", "cpu"], [TRT, CPU], [TRT, CPU], []),
    (["cuda"], [CPU], [CPU], ["cuda"]),
    (["cuda"], NVIDIA, [CUDA, CPU], []),
    (["cpu"], NVIDIA, [CPU], []),
    (["directml", "cuda"], NVIDIA, [CUDA, CPU], ["directml"]),
    (["coreml", "auto"], [DML, CPU], [DML, CPU], ["coreml"]),
    (["CUDA", "cuda", "auto"], NVIDIA, [CUDA, CPU], []),
])
def test_provider_choice(requested, available, chosen, missing):
    plan = choose_providers(requested, available)
    assert list(plan.names) == chosen
    assert list(plan.missing) == missing


def test_provider_options(tmp_path):
    plan = choose_providers(["tensorrt"], NVIDIA, device_id=2, trt_fp16=False,
                            trt_cache_dir=tmp_path)
    options = dict(plan.providers)
    assert options[TRT]["trt_engine_cache_path"] == str(tmp_path)
    assert options[TRT]["trt_timing_cache_path"] == str(tmp_path)
    assert options[TRT]["trt_fp16_enable"] is False and options[TRT]["device_id"] == 2
    assert options[CUDA] == cuda_options(2)
    assert options[CUDA]["cudnn_conv_algo_search"] == "EXHAUSTIVE"
    assert options[CUDA]["arena_extend_strategy"] == "kSameAsRequested"
    assert options[CPU] == {}


def test_unknown_provider_is_refused():
    with pytest.raises(ValueError, match="unknown provider 'vulkan'"):
        choose_providers(["vulkan"], NVIDIA)


@pytest.mark.parametrize("shape, size, expected", [
    ((1, 3, "?", "?"), 640, (1, 3, 640, 640)),
    (("batch", 3, 112, 112), 640, (1, 3, 112, 112)),
    ((1, "c", 128, 128), 640, (1, 3, 128, 128)),
    (("N", 512), 640, (1, 512)),
    ((1, 3, None, None), 320, (1, 3, 320, 320)),
])
def test_warmup_shape(shape, size, expected):
    assert warmup_shape(shape, size) == expected


@pytest.fixture(scope="module")
def swapper_path(tmp_path_factory):
    return identity_inswapper(tmp_path_factory.mktemp("rt") / "swapper.onnx")


def _cpu_only() -> RuntimeConfig:
    return RuntimeConfig(providers=["cpu"])


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU machine may get CUDA")
def test_real_session_reports_cpu_on_this_machine(shared_model, caplog):
    caplog.set_level(logging.INFO, logger="livefusion.models.runtime")
    session = create_session(shared_model("det_500m.onnx"), RuntimeConfig(), label="detector")
    assert session.provider == CPU == session.session.get_providers()[0]
    assert "detector: running on CPUExecutionProvider" in caplog.text


def test_detector_session_shape_and_run(shared_model):
    session = create_session(shared_model("det_500m.onnx"), _cpu_only(), label="det")
    assert session.input_names == ["input.1"]
    assert session.input_shapes[0][:2] == (1, 3)
    assert session.input_types == ["tensor(float)"]
    assert len(session.output_names) == 9 and len(session.output_shapes) == 9
    outputs = session.run({"input.1": np.zeros((1, 3, 320, 320), np.float32)})
    assert [o.shape for o in outputs[:3]] == [(3200, 1), (800, 1), (200, 1)]
    assert not session.uses_io_binding


def test_missing_provider_warns_once_naming_the_package(shared_model, caplog):
    factory = SessionFactory(RuntimeConfig(providers=["directml", "cuda"], warmup=False),
                             available=[CPU])
    caplog.set_level(logging.WARNING, logger="livefusion.models.runtime")
    for _ in range(3):
        session = factory.create(shared_model("det_500m.onnx"))
        assert session.provider == CPU
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert "pip install onnxruntime-directml" in warnings[0]
    assert "pip install onnxruntime-gpu[cuda,cudnn]" in warnings[1] and "CUDA 13" in warnings[1]


@pytest.mark.skipif(CUDA not in ort.get_available_providers(), reason="no CUDA in this build")
def test_cuda_listed_but_failing_warns_once_and_is_not_retried(shared_model, caplog):
    """onnxruntime-gpu without the CUDA libraries lists CUDA, then silently runs on CPU."""
    factory = SessionFactory(RuntimeConfig(providers=["cuda"], warmup=False))
    caplog.set_level(logging.WARNING, logger="livefusion.models.runtime")
    first = factory.create(shared_model("det_500m.onnx"))
    if first.provider == CUDA:
        pytest.skip("CUDA works on this machine")
    second = factory.create(shared_model("det_500m.onnx"))
    assert first.provider == second.provider == CPU
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "failed to start" in warnings[0]
    assert "onnxruntime-gpu[cuda,cudnn]" in warnings[0]
    assert CUDA not in factory.plan(Path("x.onnx")).names


def test_session_options_come_from_config(swapper_path):
    config = RuntimeConfig(providers=["cpu"], intra_threads=1, inter_threads=1,
                           graph_optimization="basic")
    session = create_session(swapper_path, config)
    options = session.session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_spinning_can_be_allowed():
    from livefusion.models.runtime import session_options

    options = session_options(RuntimeConfig(allow_spinning=True))
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"


@pytest.fixture
def warmup_runs(monkeypatch):
    """Records the input shapes of every ModelSession.run (the real run still happens)."""
    runs = []
    original = ModelSession.run
    monkeypatch.setattr(ModelSession, "run", lambda self, feeds: runs.append(
        {k: v.shape for k, v in feeds.items()}) or original(self, feeds))
    return runs


def test_warm_up_runs_at_load(swapper_path, warmup_runs):
    create_session(swapper_path, _cpu_only())
    assert warmup_runs == [{"target": (1, 3, 128, 128), "source": (1, 512)}]
    warmup_runs.clear()
    create_session(swapper_path, RuntimeConfig(providers=["cpu"], warmup=False))
    assert warmup_runs == []


def test_warm_up_of_a_dynamic_detector_uses_the_given_size(shared_model, warmup_runs):
    create_session(shared_model("det_500m.onnx"), _cpu_only())
    create_session(shared_model("det_500m.onnx"), _cpu_only(), warmup_size=320)
    assert warmup_runs == [{"input.1": (1, 3, 640, 640)}, {"input.1": (1, 3, 320, 320)}]


def test_io_binding_path_gives_the_same_outputs(swapper_path):
    """The IO-binding code used on CUDA, exercised here with the CPU device."""
    plain = create_session(swapper_path, _cpu_only())
    bound = ModelSession(plain.session, binding_device="cpu")
    rng = np.random.default_rng(3)
    feeds = {"target": rng.random((1, 3, 128, 128), dtype=np.float32),
             "source": rng.random((1, 512), dtype=np.float32)}
    expected = plain.run(feeds)
    np.testing.assert_array_equal(expected[0], feeds["target"])  # identity swapper
    np.testing.assert_array_equal(bound.run(feeds)[0], expected[0])
    device_values = bound.run_on_device(feeds)
    assert isinstance(device_values[0], ort.OrtValue)
    np.testing.assert_array_equal(device_values[0].numpy(), expected[0])
    chained = bound.run({"target": device_values[0], "source": feeds["source"]})
    np.testing.assert_array_equal(chained[0], expected[0])


@pytest.mark.parametrize("name", ["model.onnx.part", "model.onnx.abc123.part", "model.pth",
                                  "model.pt", "missing.onnx"])
def test_only_finished_onnx_files_are_loaded(tmp_path, swapper_path, name):
    path = tmp_path / name
    if name != "missing.onnx":
        path.write_bytes(swapper_path.read_bytes())
    with pytest.raises(ModelLoadError, match="refusing to load|does not exist"):
        create_session(path, _cpu_only())


def test_corrupt_onnx_gives_a_clear_error(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="cannot load .*verify-models"):
        create_session(path, _cpu_only())


def test_a_model_onnxruntime_rejects_is_a_clear_error_and_does_not_blame_the_gpu(tmp_path):
    """A parseable model that onnxruntime refuses: the GPU attempt fails, the CPU retry fails
    too, so the model is at fault: ModelLoadError with the fix, and CUDA is not written off."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("NoSuchOp", ["x"], ["y"], domain="")], "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "bad.onnx"
    path.write_bytes(model.SerializeToString())
    factory = SessionFactory(RuntimeConfig(providers=["cuda"], warmup=False),
                             available=[CUDA, CPU], library_error=lambda name: None)
    with pytest.raises(ModelLoadError, match="(?s)cannot load .*NoSuchOp.*verify-models"):
        factory.create(path)
    assert CUDA in factory.plan(path).names  # still offered to the next model


def test_a_model_that_loads_but_cannot_run_fails_at_warm_up(tmp_path):
    from onnx import TensorProto, helper

    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [7, 7])
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])], "unrunnable",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "unrunnable.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelLoadError, match="fails on a test run"):
        create_session(path, RuntimeConfig(providers=["cpu"], warmup=True))


def test_a_gpu_provider_whose_libraries_do_not_load_is_never_asked_for(caplog):
    factory = SessionFactory(RuntimeConfig(providers=["tensorrt", "cuda"], warmup=False),
                             available=[TRT, CUDA, CPU],
                             library_error=lambda name: f"{name}: libcublasLt.so.13 missing")
    caplog.set_level(logging.WARNING, logger="livefusion.models.runtime")
    for _ in range(2):
        assert factory.plan(Path("x.onnx")).names == (CPU,)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2  # once per provider, not per model
    assert all("libcublasLt.so.13 missing" in w and "install" in w for w in warnings)


def test_library_probe_on_this_machine_matches_what_onnxruntime_can_do():
    """The real probe: on a machine without CUDA libraries it names the missing one."""
    from livefusion.models.runtime import provider_library_error

    assert provider_library_error(CPU) is None
    if CUDA in ort.get_available_providers():
        reason = provider_library_error(CUDA)
        session = ort.InferenceSession(_tiny_model_bytes(), providers=[CUDA, CPU]) \
            if reason is None else None
        assert reason is not None or CUDA in session.get_providers()


def _tiny_model_bytes() -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


STDERR_DRIVER = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout)
from livefusion.models.runtime import create_session
print(create_session(sys.argv[1], label="detector").provider)
"""


@pytest.mark.shared
def test_creating_a_session_prints_no_onnxruntime_error(shared_model):
    """A CPU-only machine (onnxruntime-gpu without CUDA, as here) gets our one log line about
    the fallback, not onnxruntime's red 'Failed to load library' on stderr."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", STDERR_DRIVER,
                           str(shared_model("det_500m.onnx"))], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "onnxruntime" not in done.stderr, done.stderr  # no [E:onnxruntime...], no [W:...]
    if done.stdout.strip().endswith(CPU) and CUDA in ort.get_available_providers():
        assert "cuda is in onnxruntime but failed to start" in done.stdout
