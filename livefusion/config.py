"""Application configuration: TOML files in `configs/`, every key overridable from the CLI.

The schema is a set of dataclasses; each field may carry `choices` or `min`/`max` metadata.
`load_config` reads one or more TOML files (later ones override earlier ones), applies
`section.key=value` overrides, and validates, raising `ConfigError` with the key and the
allowed values when something is wrong.
"""

from __future__ import annotations

import sys
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping

from livefusion.errors import LiveFusionError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class ConfigError(LiveFusionError, ValueError):
    """A configuration value is wrong; the message names the key and what is allowed."""


def _opt(default: Any, *, choices: Iterable[Any] | None = None, min: float | None = None,
         max: float | None = None, help: str = "") -> Any:
    meta: dict[str, Any] = {"help": help}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if min is not None:
        meta["min"] = min
    if max is not None:
        meta["max"] = max
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class InputConfig:
    camera: str = _opt("0", help="camera index or device path")
    file: str = _opt("", help="video or still image used instead of the camera")
    resolution: str = _opt(
        "", help="WxH asked of the camera (empty: 1280x720) / files fitted into, letterboxed "
                 "(empty: a file keeps its own size)")
    fps: float = _opt(30.0, min=1, max=240,
                      help="requested camera fps; pace of a still image (videos keep their own)")
    realtime: bool = _opt(True, help="pace file input like a camera (else as fast as possible)")
    loop: bool = _opt(False, help="restart a video file at its end")
    camera_backend: str = _opt(
        "auto", choices=("auto", "dshow", "msmf", "v4l2", "avfoundation", "any"),
        help="OpenCV capture backend")
    mjpg: bool = _opt(True, help="ask the camera for MJPG (needed for 1080p30 on most USB cams)")


@dataclass
class PipelineConfig:
    frames: int = _opt(0, min=0, help="stop after N output frames (0 = run until stopped)")
    status_interval_s: float = _opt(1.0, min=0, max=60, help="headless status line period")
    meter_window: int = _opt(300, min=10, max=100000, help="frames kept for rolling percentiles")
    reconnect_max_s: float = _opt(5.0, min=0.1, max=60, help="longest wait between camera retries")


@dataclass
class FaceConfig:
    swap_enabled: bool = _opt(
        True, help="kept for old configs and ignored: every launch starts with the swap on")
    sources: list = _opt([], help="source face image paths")
    detector: str = _opt("scrfd", choices=("scrfd", "yunet"))
    det_size: int = _opt(
        640, min=0, max=1920,
        help="detector input side, multiple of 32; 0: the frame's own size up to det_max_side "
             "(small and mid faces keep their keypoint accuracy, but SCRFD then misses large "
             "faces cut by the frame edge, which the privacy guard needs to see)")
    det_max_side: int = _opt(
        1920, min=128, max=4096,
        help="with det_size 0: longest side the detector sees (larger frames are scaled down)")
    det_score: float = _opt(0.5, min=0.01, max=1.0)
    det_nms: float = _opt(0.4, min=0.05, max=0.95)
    max_faces: int = _opt(4, min=1, max=64)
    min_face: int = _opt(32, min=0, max=4096, help="smallest face side in pixels")
    detect_every: int = _opt(5, min=1, max=120, help="full detection every N frames")
    swap_faces: str = _opt("all", choices=("all", "largest", "reference"))
    reference: str = _opt("", help="image of the face to swap when swap_faces=reference")
    reference_threshold: float = _opt(0.35, min=-1.0, max=1.0)
    enhancer: str = _opt("none", choices=("none", "gfpgan_1.4", "gpen_bfr_256", "gpen_bfr_512"))
    enhancer_blend: float = _opt(0.8, min=0.0, max=1.0)
    enhance_every: int = _opt(1, min=1, max=30, help="run the enhancer on every k-th frame")
    color_transfer: bool = _opt(True)
    opacity: float = _opt(1.0, min=0.0, max=1.0)
    mask: str = _opt(
        "auto", choices=("auto", "box", "face", "face+mouth"),
        help="blend mask: face follows the face outline from 106 landmarks (2d106det, in "
             "buffalo_l), face+mouth keeps your own mouth, box is the crop square; auto = face "
             "when the landmarker is on disk, else box")
    mask_blur: float = _opt(0.05, min=0.0, max=0.5, help="box mask: feather, fraction of the crop side")
    mask_erode: float = _opt(0.03, min=0.0, max=0.4,
                             help="box mask: margin left out, fraction of the crop side")
    mask_padding: float = _opt(0.04, min=0.0, max=0.3,
                               help="face masks: outline grown by this fraction of the face width")
    mask_feather: float = _opt(0.08, min=0.0, max=0.5,
                               help="face masks: feather band, fraction of the face width")
    mouth_padding: float = _opt(0.02, min=0.0, max=0.3,
                                help="face+mouth: lips grown by this fraction of the face width")
    mouth_feather: float = _opt(0.06, min=0.0, max=0.5,
                                help="face+mouth: feather band at the lips, fraction of the face width")


@dataclass
class TrackingConfig:
    filter: str = _opt("kalman", choices=("kalman", "none"))
    process_noise: float = _opt(1.0, min=1e-6, max=1e6, help="Kalman process noise (velocity change)")
    detect_noise: float = _opt(
        4.0, min=1e-6, max=1e6, help="detector keypoint variance, px^2 at a 100 px eye distance")
    flow_noise: float = _opt(
        0.05, min=1e-6, max=1e6, help="flow motion variance per frame, px^2 at a 100 px eye distance")
    max_fb_error: float = _opt(1.5, min=0.1, max=50, help="forward-backward flow error, px")
    min_inliers: int = _opt(8, min=3, max=500)
    idle_detect_every: int = _opt(
        1, min=1, max=120,
        help="detection interval while no face is tracked (1: a face entering is found at once)")


PRIVACY_POLICIES = ("hide", "hold", "off")


@dataclass
class PrivacyConfig:
    policy: str = _opt(
        "hide", choices=PRIVACY_POLICIES,
        help="what viewers get where a face is not swapped well: hide it, hold the last good "
             "frame (then hide), or off (the real face shows)")
    style: str = _opt("pixelate", choices=("pixelate", "fill"),
                      help="how a hidden face is covered")
    blocks: int = _opt(6, min=2, max=32, help="pixelation blocks across a covered region")
    pad: float = _opt(0.3, min=0.0, max=2.0,
                      help="margin around a face box that is covered, fraction of its size")
    hold_ms: float = _opt(300.0, min=0.0, max=5000.0,
                          help="policy hold: longest time the last good frame is repeated")
    guard_score: float = _opt(
        0.25, min=0.01, max=1.0,
        help="detector score from which a face is hidden (faces below face.det_score are "
             "never swapped)")
    guard_min_face: int = _opt(
        8, min=0, max=4096,
        help="smallest face side (px) that is hidden (faces under face.min_face are never swapped)")
    guard_max_faces: int = _opt(
        32, min=1, max=256, help="most faces hidden per frame (face.max_faces are swapped)")
    min_score: float = _opt(0.5, min=0.0, max=1.0,
                            help="a tracked face whose last detection scored less is hidden")
    max_yaw: float = _opt(0.75, min=0.0, max=100.0,
                          help="turned face: nose offset from the eyes' centre / half eye "
                               "distance above this is hidden")
    max_pitch: float = _opt(0.4, min=0.0, max=100.0,
                            help="tilted face: nose height off its frontal place, "
                                 "fraction of the eye-to-mouth distance, above this is hidden")
    max_fit_error: float = _opt(
        0.18, min=0.0, max=10.0,
        help="alignment: 5-point fit residual / eye distance above this is hidden")
    min_opacity: float = _opt(
        0.9, min=0.0, max=1.0,
        help="a swap opacity below this shows part of the real face: counted and shown as a "
             "deliberate reveal, like swap off")
    min_mask_weight: float = _opt(
        0.3, min=0.0, max=1.0,
        help="faces are hidden when the blend mask (face.mask and its settings) gives the eyes, "
             "nose or mouth less weight than this")
    min_eye_distance: float = _opt(
        12.0, min=0.0, max=1000.0, help="faces with eyes closer than this (px) are hidden")
    hide_unselected: bool = _opt(
        True, help="with swap_faces largest/reference, hide the faces not chosen for the swap")
    forget_after: int = _opt(
        2, min=1, max=30,
        help="a remembered face region is dropped after this many detections that miss it")
    forget_ms: float = _opt(
        500.0, min=0.0, max=10000.0,
        help="... and no sooner than this long (camera time) after a face was last seen there")
    cut_threshold: float = _opt(
        28.0, min=1.0, max=255.0,
        help="mean grey-level change of a small thumbnail that counts as a scene cut")
    edge_threshold: float = _opt(
        12.0, min=0.0, max=255.0,
        help="grey-level change in the frame's outer band, away from tracked faces, that makes "
             "the next detection run at once (something is coming in); 0 = off")


@dataclass
class ModelsConfig:
    dir: str = _opt("", help="where weights live (default: models/ or $LIVEFUSION_MODELS)")
    detector: str = _opt("det_10g", help="catalog id of the SCRFD detector")
    embedder: str = _opt("w600k_r50", help="catalog id of the ArcFace recogniser")
    swapper: str = _opt("inswapper_128_fp16", help="catalog id of the swapper")
    overrides: dict = _opt({}, help="role -> path of a user's own ONNX file")
    auto_download: bool = _opt(True)


@dataclass
class RuntimeConfig:
    providers: list = _opt(["auto"], help="ordered: auto, tensorrt, cuda, directml, coreml, cpu")
    device_id: int = _opt(0, min=0, max=64)
    trt_fp16: bool = _opt(True)
    trt_cache_dir: str = _opt("", help="TensorRT engine/timing cache (default: <models>/trt)")
    intra_threads: int = _opt(0, min=0, max=256, help="0 = onnxruntime default")
    inter_threads: int = _opt(0, min=0, max=256)
    graph_optimization: str = _opt("all", choices=("disabled", "basic", "extended", "all"))
    allow_spinning: bool = _opt(False, help="let onnxruntime's CPU threads spin between runs")
    io_binding: bool = _opt(True)
    warmup: bool = _opt(True)


@dataclass
class OutputConfig:
    preview: bool = _opt(True)
    virtual_cam: bool = _opt(True)
    virtual_cam_backend: str = _opt("", help="pyvirtualcam backend name, empty = first that works")
    virtual_cam_device: str = _opt("", help="e.g. /dev/video10; empty = backend default")
    virtual_cam_size: str = _opt("", help="WxH sent to the virtual camera; empty = frame size")
    virtual_cam_fps: float = _opt(0.0, min=0, max=240, help="0 = input fps")
    record: str = _opt("", help="record the output to this video file")
    record_codec: str = _opt(
        "h264", choices=("h264", "mp4v", "MJPG", "XVID", "avc1"),
        help="h264 (.mp4 .mkv .mov), mp4v (.mp4 .mov .mkv .avi), MJPG (.avi .mkv .mov), XVID "
             "(.avi); frames keep their capture times (PyAV; without it OpenCV repeats frames)")
    faces_out: str = _opt("", help="write every output frame's faces to this JSON-lines file")


@dataclass
class LabelConfig:
    text: str = _opt("", help="disclosure text drawn on what viewers see (virtual camera, "
                              "recording, preview), e.g. 'AI face swap'; empty = off")
    position: str = _opt("bottom-right",
                         choices=("top-left", "top-right", "bottom-left", "bottom-right"))
    size: float = _opt(0.04, min=0.01, max=0.25, help="text height, fraction of the frame height")


@dataclass
class BenchmarkConfig:
    json: str = _opt("", help="write benchmark results to this JSON file")


@dataclass
class AppConfig:
    input: InputConfig = field(default_factory=InputConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    face: FaceConfig = field(default_factory=FaceConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    label: LabelConfig = field(default_factory=LabelConfig)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sections() -> dict[str, Field]:
    return {f.name: f for f in fields(AppConfig)}


def _field_map(section: Any) -> dict[str, Field]:
    return {f.name: f for f in fields(section)}


def _coerce(key: str, f: Field, value: Any) -> Any:
    """Convert a TOML or CLI value to the field's type, raising ConfigError if impossible."""
    default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
    kind = type(default)
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind is str:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
            if not isinstance(value, str):
                raise ValueError
            return value
        if kind is list:
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list):
                raise ValueError
            return list(value)
        if kind is dict:
            if not isinstance(value, Mapping):
                raise ValueError
            return dict(value)
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"config key {key}: expected {kind.__name__}, got {value!r}")


def _check_range(key: str, f: Field, value: Any) -> None:
    meta = f.metadata
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(
            f"config key {key}: {value!r} is not allowed; choose one of: "
            + ", ".join(str(c) for c in meta["choices"])
        )
    if "min" in meta and value < meta["min"]:
        raise ConfigError(f"config key {key}: {value} is below the minimum {meta['min']}")
    if "max" in meta and value > meta["max"]:
        raise ConfigError(f"config key {key}: {value} is above the maximum {meta['max']}")


def set_value(config: AppConfig, dotted: str, value: Any) -> None:
    """Set `section.key` to `value` (TOML value or CLI string), validating it."""
    if "." not in dotted:
        raise ConfigError(f"config key {dotted!r}: use section.key, e.g. face.det_score")
    section_name, key = dotted.split(".", 1)
    sections = _sections()
    if section_name not in sections:
        raise ConfigError(
            f"config section {section_name!r} is unknown; sections: {', '.join(sections)}"
        )
    section = getattr(config, section_name)
    fmap = _field_map(section)
    if key not in fmap:
        raise ConfigError(
            f"config key {dotted} is unknown; keys in [{section_name}]: {', '.join(fmap)}"
        )
    coerced = _coerce(dotted, fmap[key], value)
    _check_range(dotted, fmap[key], coerced)
    setattr(section, key, coerced)


def apply_mapping(config: AppConfig, data: Mapping[str, Any], origin: str = "") -> None:
    where = f" (in {origin})" if origin else ""
    for section_name, body in data.items():
        if not isinstance(body, Mapping):
            raise ConfigError(f"config entry {section_name!r}{where} must be a [section] table")
        for key, value in body.items():
            try:
                set_value(config, f"{section_name}.{key}", value)
            except ConfigError as exc:
                raise ConfigError(f"{exc}{where}") from None


def parse_override(text: str) -> tuple[str, str]:
    """'section.key=value' -> ('section.key', 'value')."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: use section.key=value, e.g. face.det_score=0.6")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def parse_resolution(text: str) -> tuple[int, int]:
    """'1920x1080' -> (1920, 1080); raises ConfigError otherwise."""
    parts = text.lower().replace(" ", "").split("x")
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        w, h = int(parts[0]), int(parts[1])
        if 16 <= w <= 8192 and 16 <= h <= 8192:
            return w, h
    raise ConfigError(f"resolution {text!r}: use WIDTHxHEIGHT, e.g. 1920x1080 (16..8192 each)")


def read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass an existing .toml file")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def validate(config: AppConfig) -> AppConfig:
    """Cross-field checks that single-key validation cannot do."""
    if config.input.resolution:
        parse_resolution(config.input.resolution)
    if config.output.virtual_cam_size:
        parse_resolution(config.output.virtual_cam_size)
    if config.face.det_size % 32:
        raise ConfigError(
            f"config key face.det_size: {config.face.det_size} must be a multiple of 32"
        )
    if config.face.swap_faces == "reference" and not config.face.reference:
        raise ConfigError(
            "config key face.reference: swap_faces=reference needs a reference image path"
        )
    allowed = ("auto", "tensorrt", "cuda", "directml", "coreml", "cpu")
    for p in config.runtime.providers:
        if p not in allowed:
            raise ConfigError(
                f"config key runtime.providers: {p!r} is not allowed; choose from: "
                + ", ".join(allowed)
            )
    return config


def load_config(paths: Iterable[Path] = (), overrides: Iterable[tuple[str, Any]] = ()) -> AppConfig:
    """Defaults, then each TOML file in order, then `(section.key, value)` overrides."""
    config = AppConfig()
    for path in paths:
        apply_mapping(config, read_toml(Path(path)), origin=str(path))
    for key, value in overrides:
        set_value(config, key, value)
    config.face.sources = unique_paths(config.face.sources)
    return validate(config)


def same_file_key(path: str | Path) -> str:
    """What two spellings of one file have in common (relative, `..`, symlinks)."""
    return str(Path(path).expanduser().resolve())


def unique_paths(paths: Iterable[str]) -> list[str]:
    """`paths` in order without repeats of the same file (the same photo given twice)."""
    seen: set[str] = set()
    kept = []
    for path in paths:
        key = same_file_key(path)
        if key not in seen:
            seen.add(key)
            kept.append(path)
    return kept


def describe_keys() -> list[tuple[str, Any, str]]:
    """(section.key, default, help) for every key, for `--help-config` and the README."""
    rows = []
    for sf in fields(AppConfig):
        section = sf.default_factory()  # type: ignore[misc]
        for f in fields(section):
            rows.append((f"{sf.name}.{f.name}", getattr(section, f.name), f.metadata.get("help", "")))
    return rows
