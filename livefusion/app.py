"""Wiring: turn an `AppConfig` into a running pipeline with its engine and outputs.

The CLI (headless and benchmark) and the Qt window both build a `LiveApp` here, so the
pipeline is assembled in one place and the UI holds no pipeline code. Runtime toggles that
need work on a stage's thread (virtual camera, recording, source faces) are methods here that
go through the pipeline's command path.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from livefusion.config import AppConfig, parse_resolution
from livefusion.media.faces_out import FacesOutSink
from livefusion.media.label import label_from_config
from livefusion.meters import Meters
from livefusion.packet import FramePacket
from livefusion.pipeline import Pipeline, PipelineOptions, RunEnd
from livefusion.privacy import PrivacyGuard
from livefusion.media.recording import RecordClock
from livefusion.settings import LiveSettings, SettingsBox
from livefusion.media.sinks import (
    BackgroundSink,
    RecorderSink,
    SinkError,
    VirtualCameraSink,
    VirtualCameraUnavailable,
)
from livefusion.media.input import open_source
from livefusion.stages import PassthroughBlend, PassthroughInference

log = logging.getLogger(__name__)

VCAM_SINK = "virtualcam"
RECORD_SINK = "recorder"


def settings_from_config(config: AppConfig) -> LiveSettings:
    face = config.face
    return LiveSettings(
        swap_enabled=True,  # every launch starts swapping: swap off is a reveal made live
        enhancer_enabled=face.enhancer != "none",
        color_transfer=face.color_transfer,
        opacity=face.opacity,
        detect_every=face.detect_every,
        swap_faces=face.swap_faces,
        mask_mode="face" if face.mask == "auto" else face.mask,
        mask_blur=face.mask_blur,
        mask_erode=face.mask_erode,
        face_padding=face.mask_padding,
        face_feather=face.mask_feather,
        mouth_padding=face.mouth_padding,
        mouth_feather=face.mouth_feather,
    ).validated()


def load_landmarker(config: AppConfig, store: Any, factory: Any) -> Any | None:
    """The 106-point landmarker the face masks need, or None for the box mask.

    `face.mask = auto` loads it only when it is already there (a `--model landmarker=` file, or
    2d106det in the store, e.g. extracted from an already downloaded buffalo_l): the box is
    used otherwise, and the log says so. `face` / `face+mouth` ask for it like any model (it
    downloads when allowed); a missing file is then an error with the fix."""
    from livefusion.face.landmarks import Landmarker106, LandmarkTracker
    from livefusion.models.roles import UNCONFIGURED_ROLE_IDS, resolve_role
    from livefusion.models.store import ModelUnavailableError

    mode = config.face.mask
    if mode == "box":
        return None
    if mode == "auto" and not config.models.overrides.get("landmarker"):
        try:
            path = store.ensure(UNCONFIGURED_ROLE_IDS["landmarker"], download=False)
        except ModelUnavailableError as exc:
            log.info("face mask: no landmarker on disk (%s); blending with the box mask. "
                     "Run --download-models 2d106det or --mask face to fetch it", exc)
            return None
    else:
        path = resolve_role(config, "landmarker", store=store).path
    return LandmarkTracker(Landmarker106(factory.create(path, label="landmarker")))


class EngineHolder:
    """The pipeline's inference and blend stage; delegates to the current face engine or
    passes frames through while there is none (no source face yet, models not loaded)."""

    def __init__(self, engine: Any | None = None) -> None:
        self._lock = threading.Lock()
        self._engine = engine
        self._passthrough_in = PassthroughInference()
        self._passthrough_out = PassthroughBlend()

    @property
    def engine(self) -> Any | None:
        with self._lock:
            return self._engine

    def set(self, engine: Any | None) -> None:
        with self._lock:
            self._engine = engine

    def process(self, packet: FramePacket) -> None:
        engine = self.engine
        (engine or self._passthrough_in).process(packet)

    def blend(self, packet: FramePacket) -> None:
        engine = self.engine
        if engine is None or not packet.faces:
            self._passthrough_out.blend(packet)
        else:
            engine.blend(packet)


def build_face_engine(config: AppConfig, *, store: Any = None, factory: Any = None) -> Any:
    """Load the configured models (downloading them if allowed) and build a FaceEngine.

    Raises the model store's errors (with the fix in the message) when a model is missing or
    bad, and SourceFaceError when a source photo has no face."""
    from livefusion.face.detect import ScrfdDetector, YunetDetector
    from livefusion.face.embed import Recognizer
    from livefusion.face.engine import FaceEngine
    from livefusion.face.enhance import FaceEnhancer
    from livefusion.face.scene import CutDetector
    from livefusion.face.swap import InswapperSwapper, load_emap
    from livefusion.face.track import TrackingLocator
    from livefusion.models.roles import needed_ids, resolve_role
    from livefusion.models.store import ModelStore
    from livefusion.models.runtime import SessionFactory

    store = store or ModelStore.from_config(config)
    # Every missing model at once: one error that names them all, not the first only.
    store.ensure_all(needed_ids(config, store.catalog), download=config.models.auto_download)
    factory = factory or SessionFactory(config.runtime)
    face = config.face
    guarded = config.privacy.policy != "off"
    # The guard hides faces the swap leaves alone (a lower score, smaller, more of them): one
    # detector run serves both, and the locator keeps those faces apart (never swapped,
    # always hidden).
    det_score = min(face.det_score, config.privacy.guard_score) if guarded else face.det_score
    min_face = min(face.min_face, config.privacy.guard_min_face) if guarded else face.min_face
    max_faces = max(face.max_faces, config.privacy.guard_max_faces) if guarded else face.max_faces
    det_path = resolve_role(config, "detector", store=store).path
    if face.detector == "yunet":
        detector: Any = YunetDetector(det_path, input_size=face.det_size,
                                      max_side=face.det_max_side, score=det_score,
                                      nms=face.det_nms, max_faces=max_faces,
                                      min_face=min_face)
    else:
        detector = ScrfdDetector(factory.create(det_path, label="detector", warmup_size=face.det_size),
                                 input_size=face.det_size, max_side=face.det_max_side,
                                 score=det_score, nms=face.det_nms,
                                 max_faces=max_faces, min_face=min_face)
    emb_path = resolve_role(config, "embedder", store=store).path
    recognizer = Recognizer(factory.create(emb_path, label="embedder"))
    swap_path = resolve_role(config, "swapper", store=store).path
    swapper = InswapperSwapper(factory.create(swap_path, label="swapper"), load_emap(swap_path))
    enhancer = None
    if face.enhancer != "none":
        enh_path = resolve_role(config, "enhancer", store=store).path
        enhancer = FaceEnhancer(factory.create(enh_path, label="enhancer"), face.enhancer,
                                blend=face.enhancer_blend, every=face.enhance_every)
    locator = TrackingLocator(detector, config.tracking,
                              cut_detector=CutDetector(
                                  config.privacy.cut_threshold,
                                  edge_threshold=config.privacy.edge_threshold or None),
                              swap_score=face.det_score if guarded else None,
                              swap_min_face=face.min_face if guarded else 0.0,
                              swap_max_faces=face.max_faces if guarded else None,
                              idle_detect_every=config.tracking.idle_detect_every)
    engine = FaceEngine(locator, detector=detector,
                        recognizer=recognizer, swapper=swapper, enhancer=enhancer,
                        reference_threshold=face.reference_threshold,
                        landmarks=load_landmarker(config, store, factory))
    if face.sources:
        engine.set_sources([list(face.sources)])
    if face.reference:
        engine.set_reference(face.reference)
    return engine


def offline(config: AppConfig) -> bool:
    """A file read as fast as possible is an offline job: keep every frame (back-pressure)
    instead of dropping stale ones as a live stream must."""
    return bool(config.input.file) and not config.input.realtime


def make_recorder(config: AppConfig, path: str | Path, fps: float) -> BackgroundSink:
    """The recorder, encoding on its own thread so the live outputs never wait for it. Frames
    keep their capture times, except in offline runs (a file read as fast as it decodes),
    where frame k is at k / fps, as in the file."""
    clock = RecordClock.FRAMES if offline(config) else RecordClock.CAPTURE
    return BackgroundSink(RecorderSink(path, fps=fps, codec=config.output.record_codec,
                                       name=RECORD_SINK, clock=clock), lossless=offline(config))


def needs_engine(config: AppConfig) -> bool:
    """A swap needs models; without a source face the stream passes through untouched."""
    return bool(config.face.sources)


@dataclass
class OutputStatus:
    virtual_cam: str = "off"  # off | on | unavailable | failed
    virtual_cam_message: str = ""
    recording: str = ""  # path while recording


@dataclass
class LiveApp:
    """A configured pipeline plus the controls a user reaches for while it runs."""

    config: AppConfig
    pipeline: Pipeline
    settings: SettingsBox
    holder: EngineHolder
    outputs: OutputStatus = field(default_factory=OutputStatus)
    _vcam_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _vcam_wanted: bool = False
    _vcam_request: int = 0
    _engine_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _engine_loading: Future | None = field(default=None, repr=False)

    @property
    def meters(self) -> Meters:
        return self.pipeline.meters

    @property
    def frame_size(self) -> tuple[int, int]:
        return tuple(self.pipeline.source.size)  # type: ignore[attr-defined]

    @property
    def fps(self) -> float:
        return float(getattr(self.pipeline.source, "fps", 0.0) or self.config.input.fps)

    def start(self) -> "LiveApp":
        self.pipeline.start(open_source=False)
        return self

    def stop(self) -> None:
        self.pipeline.stop()

    def __enter__(self) -> "LiveApp":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- outputs -------------------------------------------------------------------------

    def make_virtual_cam(self) -> VirtualCameraSink | None:
        """Open the virtual camera; on failure record the one-sentence fix and return None."""
        out = self.config.output
        w, h = parse_resolution(out.virtual_cam_size) if out.virtual_cam_size else self.frame_size
        sink = VirtualCameraSink(w, h, out.virtual_cam_fps or self.fps,
                                 backend=out.virtual_cam_backend or None,
                                 device=out.virtual_cam_device or None, name=VCAM_SINK)
        try:
            sink.open()
        except Exception as exc:  # any driver failure: recorded for the user, the app goes on
            message = str(exc) if isinstance(exc, (VirtualCameraUnavailable, SinkError)) else (
                f"The virtual camera could not start ({type(exc).__name__}: {exc}); run with "
                "--no-virtual-cam or reinstall the virtual camera driver.")
            self.outputs.virtual_cam = "unavailable"
            self.outputs.virtual_cam_message = message
            self.meters.set_extra("vcam", "unavailable")
            log.warning("%s The preview and other outputs keep running.", message)
            return None
        self.outputs.virtual_cam_message = f"{sink.camera.device} ({sink.camera.backend})"
        return sink

    @property
    def virtual_cam_wanted(self) -> bool:
        """The user's latest wish (the camera may still be opening)."""
        with self._vcam_lock:
            return self._vcam_wanted

    def set_virtual_cam(self, enabled: bool) -> Future:
        """Turn the virtual camera on or off; the future says whether it ends up on.

        Opening a driver can take a moment (OBS on Windows), so it happens on a short-lived
        thread, never the caller's (the UI's). Quick on/off/on presses are resolved by the
        latest wish: a camera that finishes opening after "off" is closed again."""
        result: Future = Future()
        with self._vcam_lock:
            self._vcam_wanted = enabled
            self._vcam_request += 1
            request = self._vcam_request
        if not enabled:
            self.outputs.virtual_cam = "off"
            self.meters.set_extra("vcam", "off")
            removed = self.pipeline.remove_sink(VCAM_SINK)
            removed.add_done_callback(lambda f: result.set_result(False))
            return result

        def still_wanted() -> bool:  # checked on the output thread, just before adding
            with self._vcam_lock:
                current = self._vcam_wanted and request == self._vcam_request
            return current and VCAM_SINK not in self.pipeline.sink_names

        def attached(future: Future) -> None:
            on = future.exception() is None and future.result()
            if on:
                self.outputs.virtual_cam = "on"
                self.meters.set_extra("vcam", "on")
            result.set_result(on or VCAM_SINK in self.pipeline.sink_names)

        def _open() -> None:
            try:
                sink = self.make_virtual_cam()
                if sink is None:
                    result.set_result(False)
                    return
                self.pipeline.add_sink(sink, when=still_wanted).add_done_callback(attached)
            except Exception as exc:  # handed to the caller
                result.set_exception(exc)

        threading.Thread(target=_open, name="lf-vcam-open", daemon=True).start()
        return result

    def start_recording(self, path: str | Path) -> Future:
        """Add the recorder; SinkError (with what to do) when the run has ended, since there
        are no frames left to record. A recorder the pipeline does not take leaves the status
        at "not recording"."""
        if self.pipeline.finished:
            raise SinkError(self.ended_message() + " There is nothing left to record; start "
                            "again (with --loop to play a file again and again) to record it.")
        sink = make_recorder(self.config, path, self.fps)
        self.outputs.recording = str(path)
        self.meters.set_extra("rec", Path(path).name)
        added = self.pipeline.add_sink(sink)

        def taken(future: Future) -> None:
            if (future.exception() is not None or not future.result()) \
                    and self.outputs.recording == str(path):
                self.outputs.recording = ""
                self.meters.set_extra("rec", "off")

        added.add_done_callback(taken)
        return added

    @property
    def ended(self) -> RunEnd | None:
        """Why the run ended by itself (frame limit, end of the file), or None while it runs
        or when it was stopped."""
        return self.pipeline.ended if self.pipeline.finished else None

    def ended_message(self) -> str:
        if self.pipeline.ended is RunEnd.SOURCE_ENDED:
            return f"The video {Path(self.config.input.file).name} has ended."
        if self.pipeline.ended is RunEnd.FRAME_LIMIT:
            return f"The run ended after {self.pipeline.frames_out} frames (--frames)."
        return "The run has ended."

    def outputs_closed(self) -> str:
        """After the run ended (the output thread closed every output): mark the outputs off;
        returns the path of the recording that was finalised, or ""."""
        path, self.outputs.recording = self.outputs.recording, ""
        if self.outputs.virtual_cam == "on":
            self.outputs.virtual_cam = "off"
        self.meters.set_extra("rec", "off")
        return path

    def stop_recording(self) -> Future:
        self.outputs.recording = ""
        self.meters.set_extra("rec", "off")
        return self.pipeline.remove_sink(RECORD_SINK)

    # --- engine --------------------------------------------------------------------------

    @property
    def engine(self) -> Any | None:
        return self.holder.engine

    def load_engine(self) -> Future:
        """Build the face engine (models load, may download: seconds, or minutes for a first
        TensorRT build) on a worker thread, so the stream keeps flowing and `stop()` is not held
        up; the engine enters the pipeline when it is ready. One load at a time."""
        with self._engine_lock:
            if self._engine_loading is not None:
                return self._engine_loading
            loading: Future = Future()
            self._engine_loading = loading

        def _load() -> None:
            try:
                engine = build_face_engine(self.config)
            except Exception as exc:  # handed to the caller; a later call may try again
                with self._engine_lock:
                    self._engine_loading = None
                loading.set_exception(exc)
                return
            self.holder.set(engine)
            loading.set_result(engine)

        threading.Thread(target=_load, name="lf-engine-load", daemon=True).start()
        return loading

    def add_source(self, paths: list[str | Path]) -> Future:
        """Read a source face on the inference thread (between frames), loading the models
        first if needed. The future gives the new source's index, or raises SourceFaceError
        (named file, what to do) for a photo without a face, or the model store's error."""
        engine = self.holder.engine
        if engine is not None:
            return self.pipeline.call_in_inference(lambda: engine.add_source(paths))
        result: Future = Future()

        def loaded(f: Future) -> None:
            if f.exception() is not None:
                result.set_exception(f.exception())
                return
            added = self.pipeline.call_in_inference(lambda: f.result().add_source(paths))
            added.add_done_callback(lambda g: result.set_exception(g.exception())
                                    if g.exception() else result.set_result(g.result()))

        self.load_engine().add_done_callback(loaded)
        return result


def build_app(config: AppConfig, *, benchmark: bool = False,
              extra_sinks: list[Any] | None = None,
              on_packet: Callable[[FramePacket], None] | None = None) -> LiveApp:
    """Open the source, load the engine if a source face is given, open the outputs.

    Raises SourceError / model errors / SourceFaceError with their fixes; a missing virtual
    camera driver does not raise (the app runs on with the other outputs)."""
    source = open_source(config)
    source.open()
    try:
        settings = SettingsBox(settings_from_config(config))
        if not config.face.swap_enabled:
            log.warning("face.swap_enabled = false is ignored: every launch starts with the swap "
                        "on; turn it off while running (Space in the window) to show your face")
        holder = EngineHolder(build_face_engine(config) if needs_engine(config) else None)
        if holder.engine is None:
            log.info("no source face given (--source FACE.jpg): the picture passes through "
                     "unchanged until one is added")
        window = max(config.pipeline.meter_window, config.pipeline.frames if benchmark else 0)
        pipeline = Pipeline(
            source, holder, holder, sinks=list(extra_sinks or []), settings=settings,
            guard=PrivacyGuard(config.privacy),
            label=label_from_config(config.label.text, config.label.position,
                                    config.label.size),
            options=PipelineOptions(frames=config.pipeline.frames, 
                                    lossless=offline(config),
                                    fps=float(getattr(source, "fps", 0) or config.input.fps),
                                    meter_window=window),
        )
        app = LiveApp(config, pipeline, settings, holder)
        if on_packet is not None:
            pipeline.subscribe(on_packet)
        if config.output.virtual_cam:
            app._vcam_wanted = True
            sink = app.make_virtual_cam()
            if sink is not None:
                pipeline.add_sink(sink)  # not started yet: added at once
                app.outputs.virtual_cam = "on"
                app.meters.set_extra("vcam", "on")
        else:
            app.meters.set_extra("vcam", "off")
        if config.output.record:
            pipeline.add_sink(make_recorder(config, config.output.record, app.fps))
            app.outputs.recording = config.output.record
        if config.output.faces_out:
            pipeline.add_sink(FacesOutSink(config.output.faces_out))
        return app
    except BaseException:
        source.close()
        raise
