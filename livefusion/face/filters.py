"""Per-track smoothing of the five face keypoints: a small interface, a Kalman filter and a
no-filter baseline, so both can be measured against each other.

One filter belongs to one track. Each frame the tracker calls `predict(motion)` once, where
`motion` is the (5, 2) displacement optical flow measured for the points since the previous
frame (None when there was no flow), then `update(kps)` when the detector measured the
points on this frame.

Kalman model (`KalmanKeypointFilter`): constant velocity, each of the ten keypoint coordinates
has its own position and velocity (state = 20 numbers). Per-point state rather than a compact
pose (similarity) state, because the five points do not move rigidly (mouth corners, yaw):
a pose state would smooth those away or need a second, non-rigid part. The coordinates share
one motion model and measurement noise, so the filter is exactly ten independent 2-state
filters; filterpy runs it as one 20-state filter, which costs tens of microseconds per frame.

The two measurements enter where they carry information:
- flow measures motion between frames, precisely but relative to the last estimate. It is
  fused in the prediction step as a control input (position += motion, velocity = motion),
  adding its own variance `flow_noise` to the positions each frame. Treating it as an absolute
  position measurement instead would let the filter grow overconfident (its error is the last
  estimate's error) and either lag behind accelerations or stop listening to the detector.
- the detector measures absolute positions with variance `detect_noise`: a standard update.
- without flow (detection every frame, or flow lost) the constant-velocity model predicts,
  with white-noise acceleration of variance `process_noise`.
So with flow the detector's gain settles where flow drift (flow_noise per frame, N frames)
balances detector noise: low enough to halve the jitter, high enough to remove drift.

Units: the variances of `TrackingConfig` are in px^2 for a face whose inter-ocular distance is
`REFERENCE_IOD` px, and are scaled with the square of the actual inter-ocular distance. The
detector's keypoint noise and a head's accelerations both grow with the face's size in the
picture, so one set of values serves small and large faces, 720p and 1080p alike.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import KalmanFilter
from scipy.linalg import block_diag

from livefusion.config import TrackingConfig

# Inter-ocular distance (px) at which the TrackingConfig variances apply unscaled.
REFERENCE_IOD = 100.0
# Squared Mahalanobis distance (10 degrees of freedom) above which a detection is taken as a
# jump the motion model cannot explain (fast start, wrong match): the filter restarts there
# instead of dragging behind. chi2(10) has its 99.99th percentile at 35.6.
DEFAULT_GATE = 36.0
# Velocity standard deviation (px/frame at REFERENCE_IOD) assumed for a brand-new track.
INITIAL_SPEED_STD = 10.0


def inter_ocular(kps: np.ndarray) -> float:
    """Distance between the two eye keypoints (rows 0 and 1)."""
    return float(np.hypot(*(kps[1] - kps[0])))


def check_keypoints(kps: np.ndarray) -> np.ndarray:
    """Return kps as float64 (5, 2); raise ValueError for another shape or non-finite values."""
    arr = np.asarray(kps, dtype=np.float64)
    if arr.shape != (5, 2):
        raise ValueError(f"keypoints must have shape (5, 2), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("keypoints contain NaN or inf; drop such a face before filtering it")
    return arr


@runtime_checkable
class KeypointFilter(Protocol):
    """Smooths one track's keypoints over time."""

    def predict(self, motion: np.ndarray | None = None) -> np.ndarray:
        """Advance one frame, by the (5, 2) flow `motion` of each point when given, else by
        the filter's own motion model; returns the predicted (5, 2) keypoints."""

    def update(self, kps: np.ndarray) -> np.ndarray:
        """Fuse a (5, 2) detector measurement of the current frame; returns the estimate."""

    @property
    def kps(self) -> np.ndarray:
        """The current (5, 2) estimate."""


class PassthroughFilter:
    """The no-filter baseline: the estimate is the latest measurement, unchanged."""

    def __init__(self, kps: np.ndarray) -> None:
        self._kps = check_keypoints(kps).copy()

    def predict(self, motion: np.ndarray | None = None) -> np.ndarray:
        if motion is not None:
            self._kps = self._kps + _check_motion(motion)
        return self._kps.copy()

    def update(self, kps: np.ndarray) -> np.ndarray:
        self._kps = check_keypoints(kps).copy()
        return self._kps.copy()

    @property
    def kps(self) -> np.ndarray:
        return self._kps.copy()


class KalmanKeypointFilter:
    """Constant-velocity Kalman filter over the five keypoints (see the module docstring)."""

    def __init__(self, kps: np.ndarray, *, process_noise: float, detect_noise: float,
                 flow_noise: float, gate: float = DEFAULT_GATE) -> None:
        for name, value in (("process_noise", process_noise), ("detect_noise", detect_noise),
                            ("flow_noise", flow_noise), ("gate", gate)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        first = check_keypoints(kps)
        self._noise = {"detect": float(detect_noise), "flow": float(flow_noise)}
        self._process_noise = float(process_noise)
        self._gate = float(gate)
        self.restarts = 0  # detections that fell outside the gate (filter restarted there)
        self._kf = KalmanFilter(dim_x=20, dim_z=10)
        # State order: x0, vx0, y0, vy0, x1, vx1, ... (coordinate-major pairs).
        self._kf.F = block_diag(*([np.array([[1.0, 1.0], [0.0, 1.0]])] * 10))
        self._kf.H = np.zeros((10, 20))
        self._kf.H[np.arange(10), np.arange(0, 20, 2)] = 1.0
        self._unit_q = block_diag(*([Q_discrete_white_noise(dim=2, dt=1.0, var=1.0)] * 10))
        # Flow step: position += motion, velocity = motion.
        self._flow_f = block_diag(*([np.array([[1.0, 0.0], [0.0, 0.0]])] * 10))
        self._flow_b = np.zeros((20, 10))
        self._flow_b[np.arange(0, 20, 2), np.arange(10)] = 1.0
        self._flow_b[np.arange(1, 20, 2), np.arange(10)] = 1.0
        self._restart(first, velocity=np.zeros(10))
        self._before = first.copy()

    def _scale(self, kps: np.ndarray) -> float:
        """Variance scale for this face size: (inter-ocular / REFERENCE_IOD)^2, kept sane."""
        iod = inter_ocular(kps)
        return max(iod / REFERENCE_IOD, 0.05) ** 2

    def _restart(self, kps: np.ndarray, velocity: np.ndarray) -> None:
        scale = self._scale(kps)
        self._kf.x = np.zeros((20, 1))
        self._kf.x[0::2, 0] = kps.reshape(-1)
        self._kf.x[1::2, 0] = velocity
        p = np.empty(20)
        p[0::2] = self._noise["detect"] * scale
        p[1::2] = (INITIAL_SPEED_STD ** 2) * scale
        self._kf.P = np.diag(p)

    def predict(self, motion: np.ndarray | None = None) -> np.ndarray:
        self._before = self.kps  # the last frame's estimate, for a restart's velocity
        scale = self._scale(self.kps)
        if motion is None:
            self._kf.predict(Q=self._unit_q * (self._process_noise * scale))
        else:
            u = _check_motion(motion).reshape(10, 1)
            self._kf.predict(u=u, B=self._flow_b, F=self._flow_f,
                             Q=np.eye(20) * (self._noise["flow"] * scale))
        return self.kps

    def update(self, kps: np.ndarray) -> np.ndarray:
        z = check_keypoints(kps).reshape(10, 1)
        r = self._noise["detect"] * self._scale(self.kps)
        if self._mahalanobis2(z, r) > self._gate:
            # The motion model failed to explain this detection, so its velocity is what was
            # wrong: restart there, moving as the jump says (from the last frame's estimate to
            # this detection: about 0 after a stop, the real speed after a fast start).
            # Keeping the old velocity after a stop missed every next detection too: a
            # restart on every frame, and "detect every frame + Kalman" became raw detection.
            self.restarts += 1
            self._restart(z.reshape(5, 2), velocity=z[:, 0] - self._before.reshape(-1))
            return self.kps
        self._kf.update(z, R=np.eye(10) * r)
        return self.kps

    def _mahalanobis2(self, z: np.ndarray, r: float) -> float:
        innovation = z - self._kf.H @ self._kf.x
        s = self._kf.H @ self._kf.P @ self._kf.H.T + np.eye(10) * r
        return float((innovation.T @ np.linalg.solve(s, innovation))[0, 0])

    @property
    def kps(self) -> np.ndarray:
        return self._kf.x[0::2, 0].reshape(5, 2).copy()

    @property
    def velocity(self) -> np.ndarray:
        """Estimated (5, 2) motion in px per frame."""
        return self._kf.x[1::2, 0].reshape(5, 2).copy()


def _check_motion(motion: np.ndarray) -> np.ndarray:
    arr = np.asarray(motion, dtype=np.float64)
    if arr.shape != (5, 2) or not np.all(np.isfinite(arr)):
        raise ValueError(f"flow motion must be a finite (5, 2) array, got shape {arr.shape}")
    return arr


def make_filter(config: TrackingConfig, kps: np.ndarray) -> KeypointFilter:
    """The filter `config.filter` names ("kalman" or "none"), started at `kps`."""
    if config.filter == "none":
        return PassthroughFilter(kps)
    if config.filter == "kalman":
        return KalmanKeypointFilter(kps, process_noise=config.process_noise,
                                    detect_noise=config.detect_noise, flow_noise=config.flow_noise)
    raise ValueError(f"tracking.filter must be 'kalman' or 'none', got {config.filter!r}")
