"""Keypoint filters: the no-filter baseline passes measurements through; the Kalman filter
removes noise from a still face, follows steady motion without lag, and moves with flow."""

from __future__ import annotations

import numpy as np
import pytest

from livefusion.config import TrackingConfig
from livefusion.face.filters import (KalmanKeypointFilter, KeypointFilter, PassthroughFilter,
                                     inter_ocular, make_filter)

BASE = np.array([[140.0, 200.0], [240.0, 200.0], [190.0, 250.0], [150.0, 300.0],
                 [230.0, 300.0]])  # inter-ocular distance 100 px = the reference size


def kalman(**kw) -> KalmanKeypointFilter:
    params = dict(process_noise=1.0, detect_noise=4.0, flow_noise=0.05)
    params.update(kw)
    return KalmanKeypointFilter(BASE, **params)


def second_difference_rms(track: np.ndarray) -> float:
    acc = track[2:] - 2 * track[1:-1] + track[:-2]
    return float(np.sqrt((acc ** 2).sum(axis=2).mean()))


@pytest.mark.parametrize("config, kind", [
    (TrackingConfig(filter="kalman"), KalmanKeypointFilter),
    (TrackingConfig(filter="none"), PassthroughFilter),
])
def test_make_filter_builds_the_configured_filter(config, kind):
    f = make_filter(config, BASE)
    assert isinstance(f, kind)
    assert isinstance(f, KeypointFilter)
    np.testing.assert_allclose(f.kps, BASE)


def test_passthrough_returns_each_measurement_and_adds_flow_motion():
    f = PassthroughFilter(BASE)
    rng = np.random.default_rng(0)
    for _ in range(5):
        z = BASE + rng.normal(0, 3, BASE.shape)
        f.predict()
        np.testing.assert_array_equal(f.update(z), z)
        np.testing.assert_array_equal(f.kps, z)
    before = f.kps
    motion = np.full((5, 2), 1.5)
    np.testing.assert_allclose(f.predict(motion), before + motion)


def test_kalman_halves_the_jitter_of_a_noisy_still_face():
    rng = np.random.default_rng(1)
    f = kalman()
    raw, out = [], []
    for _ in range(300):
        z = BASE + rng.normal(0, 2.0, BASE.shape)
        f.predict()
        raw.append(z)
        out.append(f.update(z))
    raw, out = np.array(raw)[50:], np.array(out)[50:]
    assert second_difference_rms(out) < 0.5 * second_difference_rms(raw)
    err_raw = np.linalg.norm(raw - BASE, axis=2).mean()
    err_out = np.linalg.norm(out - BASE, axis=2).mean()
    assert err_out < err_raw


@pytest.mark.parametrize("velocity", [(3.0, 0.0), (-2.0, 1.5), (0.5, -4.0)])
def test_kalman_follows_constant_velocity_without_steady_lag(velocity):
    rng = np.random.default_rng(2)
    v = np.array(velocity)
    f = kalman()
    along = []
    for t in range(1, 200):
        truth = BASE + v * t
        f.predict()
        est = f.update(truth + rng.normal(0, 1.0, BASE.shape))
        if t > 60:
            along.append(((est - truth) @ v / np.linalg.norm(v)).mean())
    # Mean signed error along the motion: no steady lag (well under a tenth of a frame's motion).
    assert abs(np.mean(along)) < 0.1 * np.linalg.norm(v)
    np.testing.assert_allclose(f.velocity.mean(axis=0), v, atol=0.3)


def test_kalman_moves_exactly_with_flow_and_detections_pull_it_gently():
    f = kalman()
    motion = np.tile([4.0, -1.0], (5, 1))
    np.testing.assert_allclose(f.predict(motion), BASE + motion)
    np.testing.assert_allclose(f.velocity, motion)
    # A detection 1 px off moves the estimate only part of the way (it trusts the flow).
    after = f.update(BASE + motion + 1.0)
    shift = after - (BASE + motion)
    assert np.all(shift > 0.0) and np.all(shift < 1.0)


def test_kalman_restarts_at_a_detection_far_outside_its_gate():
    f = kalman()
    f.predict()
    jumped = BASE + 80.0
    np.testing.assert_allclose(f.update(jumped), jumped)
    assert f.restarts == 1


def test_noise_scales_with_face_size():
    """The same relative noise on a face twice as big is smoothed the same way."""
    rng = np.random.default_rng(3)
    small, big = KalmanKeypointFilter(BASE, process_noise=1, detect_noise=4, flow_noise=0.05), \
        KalmanKeypointFilter(BASE * 2, process_noise=1, detect_noise=4, flow_noise=0.05)
    assert inter_ocular(BASE * 2) == 2 * inter_ocular(BASE)
    for _ in range(30):
        n = rng.normal(0, 1.0, BASE.shape)
        small.predict(), big.predict()
        a, b = small.update(BASE + n), big.update(BASE * 2 + 2 * n)
    np.testing.assert_allclose(b, 2 * a, atol=1e-6)


@pytest.mark.parametrize("bad", [
    np.full((5, 2), np.nan), np.full((5, 2), np.inf), np.zeros((4, 2)), np.zeros(10),
])
@pytest.mark.parametrize("make", [lambda: kalman(), lambda: PassthroughFilter(BASE)])
def test_bad_measurements_are_refused_with_a_message(make, bad):
    f = make()
    with pytest.raises(ValueError, match="keypoints"):
        f.update(bad)
    np.testing.assert_allclose(f.kps, BASE)  # state untouched


def test_bad_noise_is_refused():
    with pytest.raises(ValueError, match="detect_noise"):
        KalmanKeypointFilter(BASE, process_noise=1, detect_noise=0, flow_noise=1)


def test_after_a_fast_move_stops_the_filter_settles_instead_of_restarting_every_frame():
    """Detection on every frame, no flow: 30 px/frame for 15 frames, then still. A restart
    that kept the old velocity flew off again at once and restarted on every frame."""
    from livefusion.face.filters import KalmanKeypointFilter

    base = np.array([[300, 200], [360, 200], [330, 235], [305, 265], [355, 265]], np.float64)
    rng = np.random.default_rng(0)
    truth = [base + [30.0 * min(t, 15), 0.0] for t in range(45)]
    kf = KalmanKeypointFilter(truth[0], process_noise=1.0, detect_noise=4.0, flow_noise=0.05)
    estimates, restarts_at = [], []
    for t in range(1, 45):
        kf.predict()
        before = kf.restarts
        estimates.append(kf.update(truth[t] + rng.normal(0, 0.5, (5, 2))))
        if kf.restarts > before:
            restarts_at.append(t)
    assert restarts_at[0] == 1  # the fast start: restarted moving at the jump's speed...
    assert len([t for t in restarts_at if 1 < t <= 15]) == 0  # ...so it then keeps up
    assert len([t for t in restarts_at if t > 15]) <= 1  # one restart at the stop, at rest
    still = np.array(estimates[25:])  # from 10 frames after the stop
    assert np.abs(still - truth[-1]).max() < 2.0
    assert np.abs(kf.velocity).max() < 1.0
