"""The face engine: the pipeline's inference stage (locate, select, align, landmarks, swap,
enhance) and its blend stage (paste back into the frame, under a box or face-shaped mask).

Everything is given to the constructor (locator, detector for source photos, recogniser,
swapper, enhancer, landmarker); building them from the config and the model store is the
wiring's job. Without a landmarker the face mask modes blend with the box.
Source identities can be added, replaced and removed from any thread while frames run:
the inference thread reads one immutable snapshot per frame.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from livefusion.face.align import AlignmentError
from livefusion.face.blend import BlendOptions, FaceBlender
from livefusion.face.embed import Recognizer, SourceIdentity, build_identity
from livefusion.face.enhance import FaceEnhancer
from livefusion.face.landmarks import LandmarkTracker
from livefusion.face.mask import MaskMode
from livefusion.face.select import FaceSelector
from livefusion.face.swap import InswapperSwapper
from livefusion.face.types import Detector, FaceLocator
from livefusion.packet import FramePacket
from livefusion.settings import LiveSettings
from livefusion.stages import StageFailure

log = logging.getLogger(__name__)


@contextmanager
def _step(name: str) -> Iterator[None]:
    """Name the step that failed, so a failure is counted and logged per cause."""
    try:
        yield
    except StageFailure:
        raise
    except Exception as exc:
        raise StageFailure(name, exc) from exc

PathList = Iterable[str | Path] | str | Path


@dataclass(frozen=True)
class _Source:
    identity: SourceIdentity
    latent: np.ndarray  # (1, D) swapper latent, computed once when the source is added


class FaceEngine:
    """Implements InferenceStage.process and BlendStage.blend for face swapping."""

    def __init__(
        self,
        locator: FaceLocator,
        *,
        detector: Detector,
        recognizer: Recognizer | None,
        swapper: InswapperSwapper | None,
        enhancer: FaceEnhancer | None = None,
        blender: FaceBlender | None = None,
        reference_threshold: float = 0.35,
        landmarks: LandmarkTracker | None = None,
    ) -> None:
        self.locator = locator
        self.detector = detector
        self.recognizer = recognizer
        self.swapper = swapper
        self.enhancer = enhancer
        self.landmarks = landmarks
        self.blender = blender or FaceBlender()
        self.selector = FaceSelector(
            embed=recognizer.embed if recognizer is not None else None, threshold=reference_threshold)
        self._lock = threading.Lock()
        self._sources: tuple[_Source, ...] = ()
        if swapper is not None and recognizer is not None and recognizer.dim != swapper.embedding_size:
            raise ValueError(
                f"the recogniser gives {recognizer.dim}-d embeddings but the swapper expects "
                f"{swapper.embedding_size}-d: use the recogniser the swapper was trained with (w600k_r50)"
            )

    # --- source identities (any thread) ---------------------------------------------------

    @property
    def sources(self) -> tuple[SourceIdentity, ...]:
        with self._lock:
            return tuple(s.identity for s in self._sources)

    def _make_source(self, paths: PathList) -> _Source:
        if self.recognizer is None:
            raise RuntimeError("no recogniser model is loaded, so source faces cannot be read")
        identity = build_identity(paths, self.detector, self.recognizer)
        for note in identity.notes:
            log.warning("source face: %s", note)
        latent = self.swapper.latent(identity.embedding) if self.swapper is not None else identity.embedding[None]
        return _Source(identity, latent)

    def add_source(self, paths: PathList) -> int:
        """Add one identity from one or more photos of one person; returns its index."""
        source = self._make_source(paths)
        with self._lock:
            self._sources = self._sources + (source,)
            return len(self._sources) - 1

    def set_sources(self, path_lists: Sequence[PathList]) -> None:
        """Replace all identities (one entry per person); nothing changes if one photo fails."""
        built = tuple(self._make_source(paths) for paths in path_lists)
        with self._lock:
            self._sources = built

    def remove_source(self, index: int) -> None:
        with self._lock:
            if not 0 <= index < len(self._sources):
                raise IndexError(f"no source face {index}; there are {len(self._sources)}")
            self._sources = self._sources[:index] + self._sources[index + 1:]

    def active_source_index(self, settings: LiveSettings, count: int | None = None) -> int | None:
        """settings.active_source clamped to the identities there are; None when there are none."""
        if count is None:
            with self._lock:
                count = len(self._sources)
        if count == 0:
            return None
        return min(max(settings.active_source, 0), count - 1)

    def set_reference(self, paths: PathList | None) -> None:
        """The face to swap when swap_faces=reference (None clears it)."""
        if paths is None:
            self.selector.set_reference(None)
            return
        if self.recognizer is None:
            raise RuntimeError("no recogniser model is loaded, so a reference face cannot be read")
        identity = build_identity(paths, self.detector, self.recognizer)
        self.selector.set_reference(identity.embedding)

    def reset(self) -> None:
        """Forget per-track state (e.g. when the input changes)."""
        self.locator.reset()
        self.selector.reset()
        if self.enhancer is not None:
            self.enhancer.reset()
        if self.landmarks is not None:
            self.landmarks.reset()

    def mask_mode(self, settings: LiveSettings) -> MaskMode:
        """The mask mode frames are blended with: the setting, or the box without a landmarker."""
        mode = MaskMode(settings.mask_mode)
        return mode if self.landmarks is not None else MaskMode.BOX

    # --- inference thread ---------------------------------------------------------------------

    def process(self, packet: FramePacket) -> None:
        """Locate, select, align, swap and enhance. A failing step raises StageFailure naming
        it; `packet.located` tells the guard whether `packet.faces` is this frame's full list."""
        settings = packet.settings
        with _step("locate"):
            faces = self.locator.locate(packet)
        packet.faces = faces
        packet.located = True
        if not settings.swap_enabled or self.swapper is None or not faces:
            return
        with self._lock:
            sources = self._sources
        index = self.active_source_index(settings, len(sources))
        if index is None:
            packet.debug["swap"] = "no source face set"
            return
        source = sources[index]
        frame = packet.frame
        with packet.timed("select"), _step("select"):
            targets = self.selector.select(frame, faces, settings.swap_faces)
        chosen = {id(face) for face in targets}
        for face in faces:
            face.unselected = id(face) not in chosen
        aligned = []
        with packet.timed("align"), _step("align"):
            for face in targets:
                try:
                    aligned.append((face, self.swapper.align(frame, face)))
                except AlignmentError as exc:
                    log.debug("face skipped: %s", exc)
        if self.mask_mode(settings) is not MaskMode.BOX and aligned:
            with packet.timed("landmarks"), _step("landmarks"):
                for face, _ in aligned:
                    face.landmarks = self.landmarks.landmarks(frame, face)
                self.landmarks.forget_except({f.track_id for f in faces if f.track_id >= 0})
        with packet.timed("swap"), _step("swap"):
            for face, crop in aligned:
                face.swapped_crop = self.swapper.swap_crop(crop.image, source.latent)
                face.crop_matrix = crop.matrix
                face.target_crop = crop.image  # the colour transfer's target: no second warp
        if settings.enhancer_enabled and self.enhancer is not None and aligned:
            with packet.timed("enhance"), _step("enhance"):
                for face, crop in aligned:
                    self.enhancer.enhance(frame, face)
                    if face.crop_matrix is not crop.matrix:
                        face.target_crop = None  # a new crop frame: the blender warps its own
                self.enhancer.forget_except({f.track_id for f in faces if f.track_id >= 0})

    # --- output thread ------------------------------------------------------------------------

    def blend(self, packet: FramePacket) -> None:
        with packet.timed("blend"):
            faces = [f for f in packet.faces if f.swapped_crop is not None and f.crop_matrix is not None]
            if not faces:
                return
            frame = packet.frame
            if frame is packet.original or not frame.flags.writeable:
                frame = frame.copy()  # keep the captured picture for before/after views
            debug_mask = None
            if packet.settings.show_mask:
                debug_mask = np.zeros(frame.shape[:2], np.float32)
            options = BlendOptions.from_settings(packet.settings)
            mode = self.mask_mode(packet.settings)
            if mode is not options.mask.mode:
                options = replace(options, mask=replace(options.mask, mode=mode))
            self.blender.paste_faces(frame, faces, options, debug_mask=debug_mask)
            packet.debug["mask_mode"] = mode.value
            packet.frame = frame
            if debug_mask is not None:
                packet.debug["mask"] = debug_mask
