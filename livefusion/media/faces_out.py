"""Every output frame's faces as JSON lines (`--faces-out FILE`), for users debugging a setup
and for external tools.

One object per frame the outputs got, in output order:

    {"seq": int, "t_capture_ms": float, "faces": [{"track": int, "box": [x0, y0, x1, y1],
     "kps": [[x, y] x 5], "score": float, "detected": bool, "swapped": bool, "hidden": bool}]}

in the frame's own pixel coordinates. `t_capture_ms` is the capture time on the process's
monotonic clock (`time.perf_counter_ns()` / 1e6): differences between lines are real time.
`detected`: the position came from the detector on this frame (else from tracking);
`swapped`: a swapped face was pasted; `hidden`: the privacy guard covered it. Faces the guard
alone saw (below the swap's limits) are listed with track -1. The file is written line by line
and flushed about once a second, so a crash loses at most that much.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO, Any

import numpy as np

from livefusion.packet import Face, FramePacket
from livefusion.media.sinks import SinkError

FLUSH_PERIOD_S = 1.0


def face_record(face: Face, *, tracked: bool = True) -> dict[str, Any]:
    return {
        "track": int(face.track_id) if tracked else -1,
        "box": [round(float(v), 2) for v in np.asarray(face.bbox, np.float64).reshape(4)],
        "kps": [[round(float(x), 2), round(float(y), 2)]
                for x, y in np.asarray(face.kps, np.float64).reshape(-1, 2)],
        "score": round(float(face.score), 4),
        "detected": face.origin == "detect",
        "swapped": face.swapped_crop is not None and not face.hidden,
        "hidden": bool(face.hidden),
    }


def frame_record(packet: FramePacket) -> dict[str, Any]:
    faces = [face_record(f) for f in packet.faces]
    faces += [face_record(f, tracked=False) for f in packet.unswappable]
    return {"seq": int(packet.seq), "t_capture_ms": round(packet.t_capture_ns / 1e6, 3),
            "faces": faces}


class FacesOutSink:
    """A pipeline output that writes `frame_record(packet)` as one JSON line per frame."""

    def __init__(self, path: str | Path, *, name: str = "faces-out") -> None:
        self.name = name
        self.path = Path(path)
        try:
            self._file: IO[str] | None = self.path.open("w", encoding="utf-8")
        except OSError as exc:
            raise SinkError(f"cannot write the faces file {self.path} ({exc.strerror}); "
                            "pass --faces-out a path in a folder you can write to") from None
        self._last_flush = time.monotonic()

    def send(self, frame: np.ndarray, packet: FramePacket) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(frame_record(packet), separators=(",", ":")) + "\n")
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_PERIOD_S:
            self._file.flush()
            self._last_flush = now

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
