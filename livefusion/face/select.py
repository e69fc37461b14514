"""Which faces to swap: all of them, the largest, or those that match a reference identity."""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from livefusion.packet import Face
from livefusion.settings import SWAP_FACES_CHOICES

log = logging.getLogger(__name__)

EmbedFn = Callable[[np.ndarray, Face], np.ndarray]


class FaceSelector:
    """Picks faces per frame by mode ("all", "largest", "reference").

    In "reference" mode each face is embedded and kept when its cosine similarity to the
    reference embedding is at least `threshold`. Decisions are remembered per track id, so a
    tracked face is embedded once, not on every frame; untracked faces (id -1) are embedded
    each time.
    """

    def __init__(
        self,
        *,
        embed: EmbedFn | None = None,
        reference: np.ndarray | None = None,
        threshold: float = 0.35,
    ) -> None:
        self.embed = embed
        self.threshold = float(threshold)
        # (reference, decisions per track id), replaced as a whole so that another thread
        # can change the reference while a frame is being selected.
        self._state: tuple[np.ndarray | None, dict[int, bool]] = (None, {})
        self.set_reference(reference)

    @property
    def reference(self) -> np.ndarray | None:
        return self._state[0]

    def set_reference(self, reference: np.ndarray | None) -> None:
        self._state = (None if reference is None else np.asarray(reference, np.float32), {})

    def reset(self) -> None:
        self._state = (self._state[0], {})

    def select(self, frame: np.ndarray, faces: list[Face], mode: str) -> list[Face]:
        if mode not in SWAP_FACES_CHOICES:
            raise ValueError(f"swap_faces must be one of {', '.join(SWAP_FACES_CHOICES)}, got {mode!r}")
        if not faces:
            return []
        if mode == "all":
            return list(faces)
        if mode == "largest":
            return [max(faces, key=lambda f: f.area)]
        return self._matching(frame, faces)

    def _matching(self, frame: np.ndarray, faces: list[Face]) -> list[Face]:
        reference, decisions = self._state
        if reference is None or self.embed is None:
            log.debug("swap_faces=reference but no reference face is set: swapping none")
            return []
        live_ids = {f.track_id for f in faces if f.track_id >= 0}
        for stale in set(decisions) - live_ids:
            del decisions[stale]
        chosen = []
        for face in faces:
            decision = decisions.get(face.track_id) if face.track_id >= 0 else None
            if decision is None:
                similarity = float(np.dot(self.embed(frame, face), reference))
                decision = similarity >= self.threshold
                if face.track_id >= 0:
                    decisions[face.track_id] = decision
            if decision:
                chosen.append(face)
        return chosen
