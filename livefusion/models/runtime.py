"""The one place that creates onnxruntime sessions: providers, options, IO binding, warm-up.

Provider choice is a pure function over the provider list onnxruntime offers
(`choose_providers`): "auto" means CUDA > DirectML > CoreML > CPU; TensorRT is used only when
asked for by name (its engine builds take minutes on first run). CPU is always last, so a
provider that is missing or fails to start falls back to CPU. onnxruntime does that fallback
silently (onnxruntime-gpu lists CUDA even without the CUDA libraries), so after creating a
session we compare `get_providers()` with the plan and warn once, naming what to install.

Use one `SessionFactory` per process (the engine builds it from `AppConfig.runtime`) so each
missing provider is warned about and probed once; `create_session()` is the short form.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import onnxruntime as ort

from livefusion.errors import LiveFusionError
from livefusion.config import RuntimeConfig
from livefusion.resources import command_name

log = logging.getLogger(__name__)

ORT_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
SHORT_NAMES = {v: k for k, v in ORT_NAMES.items()}
# onnxruntime-gpu lists these providers whether or not their CUDA / TensorRT libraries are
# installed; asking for one whose library cannot load prints onnxruntime's own red error.
PROVIDER_LIBRARIES = {
    "CUDAExecutionProvider": "onnxruntime_providers_cuda",
    "TensorrtExecutionProvider": "onnxruntime_providers_tensorrt",
}
# What the dynamic loader says when a library or one of its dependencies is not installed.
MISSING_LIBRARY_SIGNS = ("cannot open shared object file", "could not be found", "error 126",
                         "image not found", "no such file")
AUTO_ORDER = ("cuda", "directml", "coreml", "cpu")

INSTALL_HINTS = {
    "tensorrt": "TensorRT 10 for CUDA 13 (NVIDIA's tensorrt package or SDK, its libraries on the "
                "library path) together with onnxruntime-gpu",
    "cuda": "an NVIDIA driver and `pip install onnxruntime-gpu[cuda,cudnn]` (onnxruntime-gpu 1.31 "
            "needs CUDA 13 and cuDNN 9)",
    "directml": "`pip install onnxruntime-directml` (Windows only; uninstall onnxruntime and "
                "onnxruntime-gpu first)",
    "coreml": "the standard `pip install onnxruntime` on macOS (it includes CoreML)",
    "cpu": "onnxruntime",
}

GRAPH_LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}

NUMPY_TYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8, "tensor(bool)": np.bool_,
}


class ModelLoadError(LiveFusionError, RuntimeError):
    """A model cannot be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class ProviderPlan:
    """Providers to ask onnxruntime for, in order (CPU last), and requested ones not present."""

    providers: tuple[tuple[str, Mapping[str, Any]], ...]
    missing: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.providers)


def cuda_options(device_id: int, conv_algo_search: str = "EXHAUSTIVE") -> dict[str, Any]:
    """CUDA provider options.

    cudnn_conv_algo_search EXHAUSTIVE: every model here runs at fixed input shapes (detector
    640x640, swapper 128, embedder 112, enhancer 512) and is warmed up at load, so the one-time
    benchmark of each convolution happens before the first live frame and picks the fastest
    kernels; HEURISTIC would start faster but can leave per-frame time on the table.
    arena_extend_strategy kSameAsRequested: several models share one GPU; growing the memory
    arena by powers of two would reserve far more VRAM than they use.
    """
    return {
        "device_id": device_id,
        "cudnn_conv_algo_search": conv_algo_search,
        "arena_extend_strategy": "kSameAsRequested",
    }


def tensorrt_options(device_id: int, cache_dir: Path, fp16: bool) -> dict[str, Any]:
    """TensorRT options: engines and timing caches on disk so only the first run builds them."""
    return {
        "device_id": device_id,
        "trt_fp16_enable": fp16,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache_dir),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(cache_dir),
    }


def _expand(requested: Sequence[str]) -> list[str]:
    """Short names in preference order: 'auto' expands to AUTO_ORDER, TensorRT pulls CUDA in
    after it (nodes TensorRT cannot take run on CUDA, not CPU), CPU always ends the list."""
    order: list[str] = []
    for name in requested:
        name = name.lower()
        if name not in ORT_NAMES and name != "auto":
            raise ValueError(f"unknown provider {name!r}; choose from auto, {', '.join(ORT_NAMES)}")
        additions = list(AUTO_ORDER) if name == "auto" else [name]
        if name == "tensorrt":
            additions.append("cuda")
        order += [a for a in additions if a not in order]
    if "cpu" not in order:
        order.append("cpu")
    return order


def choose_providers(requested: Sequence[str], available: Sequence[str], *, device_id: int = 0,
                     trt_fp16: bool = True, trt_cache_dir: Path | None = None,
                     conv_algo_search: str = "EXHAUSTIVE") -> ProviderPlan:
    """Pure provider choice: which of `available` (onnxruntime names) to use, in what order.

    `requested` holds short names (auto, tensorrt, cuda, directml, coreml, cpu). Requested
    names that onnxruntime does not offer are listed in `missing` (auto never counts as a
    request for any one provider)."""
    explicit = {n.lower() for n in requested} - {"auto"}
    chosen: list[tuple[str, Mapping[str, Any]]] = []
    missing: list[str] = []
    for short in _expand(requested or ["auto"]):
        ort_name = ORT_NAMES[short]
        if ort_name not in available and short != "cpu":
            if short in explicit:
                missing.append(short)
            continue
        if short == "tensorrt":
            cache = trt_cache_dir or Path("trt_cache")
            chosen.append((ort_name, tensorrt_options(device_id, cache, trt_fp16)))
        elif short == "cuda":
            chosen.append((ort_name, cuda_options(device_id, conv_algo_search)))
        elif short == "directml":
            chosen.append((ort_name, {"device_id": device_id}))
        else:
            chosen.append((ort_name, {}))
    return ProviderPlan(tuple(chosen), tuple(missing))


def provider_library_error(ort_name: str) -> str | None:
    """Why the shared library behind a GPU provider cannot load here (a CUDA, cuDNN or
    TensorRT library it needs is not installed), or None when it loads or there is none to
    check. Only a missing library counts; any other loader complaint is left to onnxruntime."""
    stem = PROVIDER_LIBRARIES.get(ort_name)
    if stem is None:
        return None
    filename = f"{stem}.dll" if sys.platform == "win32" else f"lib{stem}.so"
    path = Path(ort.__file__).resolve().parent / "capi" / filename
    if not path.is_file():
        return f"{filename} is not part of this onnxruntime"
    try:
        ctypes.CDLL(str(path), mode=getattr(os, "RTLD_LAZY", 0) | getattr(os, "RTLD_LOCAL", 0))
    except OSError as exc:
        text = str(exc)
        return text if any(sign in text.lower() for sign in MISSING_LIBRARY_SIGNS) else None
    return None


def session_options(config: RuntimeConfig) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = GRAPH_LEVELS[config.graph_optimization]
    options.intra_op_num_threads = config.intra_threads
    options.inter_op_num_threads = config.inter_threads
    options.log_severity_level = 3  # onnxruntime's own chatter: errors only
    # Spinning worker threads burn a core between runs; in a three-thread pipeline that core
    # is the one tracking and blending need (measured: 56 -> 78 fps on 2 cores with it off).
    options.add_session_config_entry("session.intra_op.allow_spinning",
                                     "1" if config.allow_spinning else "0")
    return options


def warmup_shape(shape: Sequence[Any], size: int = 640) -> tuple[int, ...]:
    """A concrete shape for a warm-up run: fixed dims kept; dynamic batch -> 1, channels -> 3,
    spatial dims of an NCHW image -> `size` (640 suits detectors), anything else -> 1."""
    concrete = []
    for axis, dim in enumerate(shape):
        if isinstance(dim, int) and dim > 0:
            concrete.append(dim)
        elif len(shape) == 4 and axis >= 2:
            concrete.append(size)
        elif len(shape) == 4 and axis == 1:
            concrete.append(3)
        else:
            concrete.append(1)
    return tuple(concrete)


class ModelSession:
    """An onnxruntime session plus what callers need: names, shapes, types, the provider it
    really got, and `run()` that uses IO binding on CUDA."""

    def __init__(self, session: ort.InferenceSession, *, label: str = "",
                 binding_device: str | None = None, device_id: int = 0) -> None:
        self.session = session
        self.label = label
        self.provider = session.get_providers()[0]
        inputs, outputs = session.get_inputs(), session.get_outputs()
        self.input_names = [i.name for i in inputs]
        self.input_shapes = [tuple(i.shape) for i in inputs]
        self.input_types = [i.type for i in inputs]
        self.output_names = [o.name for o in outputs]
        self.output_shapes = [tuple(o.shape) for o in outputs]
        self._binding_device = binding_device
        self._device_id = device_id

    @property
    def uses_io_binding(self) -> bool:
        return self._binding_device is not None

    def input_dtype(self, index: int = 0) -> np.dtype:
        return np.dtype(NUMPY_TYPES.get(self.input_types[index], np.float32))

    def run(self, feeds: Mapping[str, Any]) -> list[np.ndarray]:
        """Run on `feeds` (numpy arrays, or OrtValues already on the device) -> numpy outputs."""
        if self._binding_device is None:
            return self.session.run(None, dict(feeds))
        binding = self._bind(feeds)
        return binding.copy_outputs_to_cpu()

    def run_on_device(self, feeds: Mapping[str, Any]) -> list[ort.OrtValue]:
        """Like run() but leaves outputs where they were computed (GPU memory on CUDA), for
        feeding the next model without a round trip through host memory."""
        if self._binding_device is None:
            return [ort.OrtValue.ortvalue_from_numpy(a) for a in self.session.run(None, dict(feeds))]
        return self._bind(feeds).get_outputs()

    def _bind(self, feeds: Mapping[str, Any]) -> Any:
        binding = self.session.io_binding()
        for name, value in feeds.items():
            if isinstance(value, ort.OrtValue):
                binding.bind_ortvalue_input(name, value)
            else:
                binding.bind_cpu_input(name, np.ascontiguousarray(value))
        for name in self.output_names:
            binding.bind_output(name, self._binding_device, self._device_id)
        self.session.run_with_iobinding(binding)
        return binding

    def warm_up(self, size: int = 640) -> None:
        """One run on zeros so kernels, arenas and (TensorRT) engines are ready before the first
        live frame."""
        feeds = {
            name: np.zeros(warmup_shape(shape, size), NUMPY_TYPES.get(kind, np.float32))
            for name, shape, kind in zip(self.input_names, self.input_shapes, self.input_types)
        }
        self.run(feeds)


@dataclass
class SessionFactory:
    """Creates ModelSessions from one RuntimeConfig; remembers which providers failed so each
    is warned about once and not probed again."""

    config: RuntimeConfig = field(default_factory=RuntimeConfig)
    available: Sequence[str] | None = None  # default: ort.get_available_providers()
    trt_cache_dir: Path | None = None  # default: config.runtime.trt_cache_dir or <model dir>/trt
    warmup_size: int = 640
    _warned: set = field(default_factory=set, init=False, repr=False)
    _failed: set = field(default_factory=set, init=False, repr=False)
    # Why a provider's libraries cannot load (None: they load); tests inject their own.
    library_error: Callable[[str], str | None] = provider_library_error
    _dlls_loaded: bool = field(default=False, init=False, repr=False)
    _probed: set = field(default_factory=set, init=False, repr=False)

    def plan(self, model_path: Path) -> ProviderPlan:
        offered = (self.available if self.available is not None
                   else ort.get_available_providers())
        wanted = {ORT_NAMES[short] for short in _expand(self.config.providers or ["auto"])}
        for name in offered:
            if name in wanted:
                self._probe(name)
        available = [p for p in offered if p not in self._failed]
        cache = (Path(self.config.trt_cache_dir) if self.config.trt_cache_dir
                 else self.trt_cache_dir or Path(model_path).parent / "trt")
        return choose_providers(self.config.providers, available, device_id=self.config.device_id,
                                trt_fp16=self.config.trt_fp16, trt_cache_dir=cache)

    def create(self, path: Path, *, label: str = "", warmup_size: int | None = None) -> ModelSession:
        """Load `path` on the best provider, log which one it got, warm it up.

        `warmup_size` replaces the default side for dynamic image inputs: pass the detector's
        live input size so the warm-up runs the shape live frames will use."""
        path = Path(path)
        label = label or path.stem
        _check_loadable(path)
        plan = self.plan(path)
        for short in plan.missing:
            self._warn_once(short, f"{short} was requested but this onnxruntime does not offer it "
                                   f"(it has: {', '.join(_short(p) for p in ort.get_available_providers())}); "
                                   f"running on the next provider. To use it install {INSTALL_HINTS[short]}")
        self._preload_gpu_libraries(plan)
        for name, options in plan.providers:
            if name == ORT_NAMES["tensorrt"]:
                Path(options["trt_engine_cache_path"]).mkdir(parents=True, exist_ok=True)
        session = self._new_session(path, plan, label)
        got = session.get_providers()
        for name in plan.names:
            if name not in got and name != ORT_NAMES["cpu"]:
                self._failed.add(name)
                short = _short(name)
                self._warn_once(short, f"{short} is in onnxruntime but failed to start, so models "
                                       f"run on {_short(got[0])}. Install {INSTALL_HINTS[short]}")
        model = ModelSession(session, label=label, binding_device=self._binding_device(got[0]),
                             device_id=self.config.device_id)
        log.info("%s: running on %s", label, model.provider)
        if self.config.warmup:
            try:
                model.warm_up(warmup_size or self.warmup_size)
            except Exception as exc:  # loads, but cannot run: a broken or mismatched export
                raise ModelLoadError(f"{label}: {path} loads but fails on a test run ({exc}); "
                                     f"re-download it ({command_name()} --verify-models) or use a "
                                     "model that fits its role's contract") from exc
        return model

    def _new_session(self, path: Path, plan: ProviderPlan, label: str) -> ort.InferenceSession:
        options = session_options(self.config)
        try:
            return ort.InferenceSession(str(path), options, providers=list(plan.providers))
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/RuntimeException
            if plan.names == (ORT_NAMES["cpu"],):
                raise ModelLoadError(f"{label}: onnxruntime cannot load {path}: {exc}. Re-download "
                                     f"it ({command_name()} --verify-models) or re-export it") from exc
            try:
                session = ort.InferenceSession(str(path), options, providers=[ORT_NAMES["cpu"]])
            except Exception as cpu_exc:  # the model itself is bad: the GPU is not to blame
                raise ModelLoadError(f"{label}: onnxruntime cannot load {path}: {cpu_exc}. "
                                     f"Re-download it ({command_name()} --verify-models) or re-export "
                                     "it") from cpu_exc
            for name in plan.names[:-1]:
                self._failed.add(name)
            self._warn_once("session:" + label, f"{label}: could not start on "
                            f"{', '.join(_short(n) for n in plan.names[:-1])} ({exc}); using CPU")
            return session

    def _probe(self, name: str) -> None:
        """Leave out a GPU provider whose libraries cannot load, so onnxruntime never tries it
        (and prints no error of its own); say so once, in our words, with the fix."""
        if name in self._probed or name not in PROVIDER_LIBRARIES:
            return
        self._probed.add(name)
        self._preload_nvidia_wheels()
        reason = self.library_error(name)
        if reason is not None:
            self._failed.add(name)
            short = _short(name)
            self._warn_once(short, f"{short} is in onnxruntime but failed to start (its "
                                   f"libraries do not load: {reason}), so models run on the next "
                                   f"provider, in the end the CPU. To use it install "
                                   f"{INSTALL_HINTS[short]}")

    def _binding_device(self, provider: str) -> str | None:
        if self.config.io_binding and provider == ORT_NAMES["cuda"]:
            return "cuda"
        return None

    def _preload_gpu_libraries(self, plan: ProviderPlan) -> None:
        """With CUDA/cuDNN from NVIDIA's pip wheels (`onnxruntime-gpu[cuda,cudnn]`) onnxruntime
        must be told to load them; without those wheels there is nothing to preload."""
        wants_gpu = any(n in plan.names for n in (ORT_NAMES["cuda"], ORT_NAMES["tensorrt"]))
        if wants_gpu:
            self._preload_nvidia_wheels()

    def _preload_nvidia_wheels(self) -> None:
        if not self._dlls_loaded and importlib.util.find_spec("nvidia") is not None:
            self._dlls_loaded = True
            ort.preload_dlls()

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)


def _short(ort_name: str) -> str:
    return SHORT_NAMES.get(ort_name, ort_name)


def _check_loadable(path: Path) -> None:
    """Only finished .onnx files are loaded: never a .part download, never a pickle."""
    if path.name.endswith(".part") or path.suffix.lower() != ".onnx":
        raise ModelLoadError(f"refusing to load {path}: only verified .onnx model files are "
                             "loaded (not partial downloads, not pickled .pth/.pt files)")
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist; run {command_name()} --download-models")


def create_session(path: Path, config: RuntimeConfig | None = None, *, label: str = "",
                   factory: SessionFactory | None = None,
                   warmup_size: int | None = None) -> ModelSession:
    """Create a ModelSession for `path`. Pass the process's SessionFactory as `factory` to get
    each provider warning once; without it a fresh factory is made from `config`."""
    factory = factory or SessionFactory(config or RuntimeConfig())
    return factory.create(path, label=label, warmup_size=warmup_size)
