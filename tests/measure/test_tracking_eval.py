"""The tracking evaluation: its metrics on known sequences, and a smoke run of the command on
a short ground-truth clip and a short real clip (real SCRFD det_500m)."""

from __future__ import annotations

import argparse
import io
import math

import cv2
import numpy as np
import pytest

from livefusion.measure import tracking_eval as te

BASE = np.array([[10.0, 10.0], [30.0, 10.0], [20.0, 20.0], [12.0, 30.0], [28.0, 30.0]])


def test_second_difference_of_a_steady_motion_is_zero_and_of_a_step_is_known():
    steady = np.stack([BASE + 2.0 * t for t in range(10)])
    assert te.second_difference_rms(steady, np.arange(10)) == pytest.approx(0.0, abs=1e-12)
    step = np.stack([BASE + (3.0 if t >= 5 else 0.0) * np.array([1.0, 0.0]) for t in range(10)])
    # Frames 4 and 5 see +3 and -3; the other six frames 0.
    assert te.second_difference_rms(step, np.arange(1, 9)) == pytest.approx(math.sqrt(18 / 8))


def test_frames_without_a_face_are_left_out():
    track = np.stack([BASE + t for t in range(6)])
    track[2] = np.nan
    assert te.second_difference_rms(track, np.arange(6)) == pytest.approx(0.0)


@pytest.mark.parametrize("delay, expected", [(0, 0.0), (1, -1.0), (2, -2.0)])
def test_lag_is_measured_in_frames_of_motion(delay, expected):
    truth = np.stack([BASE + np.array([4.0 * t, 0.0]) for t in range(20)])
    late = np.concatenate([np.repeat(truth[:1], delay, axis=0), truth[:20 - delay]])
    assert te.lag_in_frames(late[delay + 1:], truth[delay + 1:]) == pytest.approx(expected)


def test_error_is_normalised_by_the_inter_ocular_distance():
    truth = np.stack([BASE] * 3)
    est = truth + np.array([2.0, 0.0])
    np.testing.assert_allclose(te.normalised_error(est, truth), 2.0 / 20.0)


@pytest.mark.parametrize("text, values", [("1..4", (1, 2, 3, 4)), ("2,5", (2, 5)), ("7", (7,))])
def test_parse_n(text, values):
    assert te.parse_n(text) == values


@pytest.mark.parametrize("text", ["0..3", "a", "", "5..2"])
def test_parse_n_refuses_nonsense(text):
    with pytest.raises(argparse.ArgumentTypeError):
        te.parse_n(text)


def test_tracking_overrides_are_validated():
    assert te.tracking_config(["flow_noise=0.2", "tracking.filter=none"]).flow_noise == 0.2
    with pytest.raises(Exception, match="filter"):
        te.tracking_config(["filter=median"])


@pytest.fixture(scope="module")
def smoke_output():
    from tests.conftest import SHARED_MODELS, SHARED_IMAGES, SHARED_VIDEOS

    model, photo = SHARED_MODELS / "det_500m.onnx", SHARED_IMAGES / "fr_obama.jpg"
    video = SHARED_VIDEOS / "dfl_Obama_speaking.mp4"
    for path in (model, photo, video):
        if not path.exists():
            pytest.skip(f"{path} is missing: the real models and clips come from ../shared")
    out = io.StringIO()
    code = te.main(["--resolution", "480x270", "--frames", "40", "--n", "1,4", "--d-n", "4",
                    "--model", str(model), "--photo", str(photo), "--clip", str(video),
                    "--set", "flow_noise=0.05"], out=out)
    assert code == 0
    return out.getvalue()


def _table(text: str, marker: str) -> dict[str, list[str]]:
    lines = text[text.index(marker):].splitlines()
    header_at = next(i for i, line in enumerate(lines) if line.startswith("method"))
    header = lines[header_at].split()
    rows = {}
    for line in lines[header_at + 1:]:
        cells = line.split()
        if not cells or cells[0] not in ("a", "b", "c", "d"):
            break
        rows[f"{cells[0]}{cells[1]}"] = dict(zip(header, cells))
    return rows


@pytest.mark.shared
def test_command_prints_the_ground_truth_table(smoke_output):
    rows = _table(smoke_output, "== ground truth 480x270")
    assert list(rows) == ["a1", "b1", "c1", "c4", "d4"]
    assert set(rows["a1"]) == set(te.GT_HEADER)
    assert float(rows["b1"]["jit_px"]) < float(rows["a1"]["jit_px"])
    assert float(rows["a1"]["det/fr"]) == 1.0
    # Every 4th frame, plus at once where flow lost the face (this short clip moves fast).
    assert 0.25 <= float(rows["c4"]["det/fr"]) < 0.6
    for row in rows.values():
        assert float(row["miss%"]) == 0.0
        assert 0.0 < float(row["err"]) < 0.2


@pytest.mark.shared
def test_command_prints_the_real_clip_table(smoke_output):
    rows = _table(smoke_output, "== clip dfl_Obama_speaking.mp4")
    assert list(rows) == ["a1", "b1", "c1", "c4", "d4"]
    assert set(rows["a1"]) == set(te.REAL_HEADER)
    assert float(rows["a1"]["dev_raw"]) == 0.0
    assert float(rows["b1"]["jit_all_px"]) < float(rows["a1"]["jit_all_px"])


def test_motion_floor_is_the_jitter_of_the_followed_motion_and_halves_give_its_noise():
    rng = np.random.default_rng(3)
    motion = np.zeros((50, 5, 2))
    motion[1:] = rng.normal(0, 0.5, (49, 5, 2))  # jerky real motion, same for both halves
    halves = np.stack([motion, motion], axis=1)
    still = np.arange(50)
    floor, noise = te.motion_floor(motion, halves, still)
    acc = motion[2:] - motion[1:-1]
    assert floor == pytest.approx(np.sqrt((acc ** 2).sum(axis=2).mean()))
    assert noise == 0.0
    halves[:, 1] += rng.normal(0, 0.2, (50, 5, 2))  # one half measures with noise
    assert te.motion_floor(motion, halves, still)[1] > 0.1


def test_reference_motion_recovers_a_known_shift():
    rng = np.random.default_rng(4)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (200, 260)).astype(np.float32), (0, 0), 1.5)
    shift = np.float32([[1, 0, 1.5], [0, 1, -0.75]])
    frames = [cv2.cvtColor(np.clip(im, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
              for im in (base, cv2.warpAffine(base, shift, (260, 200), borderMode=cv2.BORDER_REFLECT))]
    boxes = np.array([[60, 40, 180, 170], [60, 40, 180, 170]], np.float64)
    kps = np.tile(np.array([[90, 80], [150, 80], [120, 110], [95, 140], [145, 140]], np.float64),
                  (2, 1, 1))
    motion, halves = te.reference_motion(frames, boxes, kps)
    assert np.all(np.isnan(motion[0]))
    np.testing.assert_allclose(motion[1], np.tile([1.5, -0.75], (5, 1)), atol=0.1)
    np.testing.assert_allclose(halves[1, 0], halves[1, 1], atol=0.1)


@pytest.mark.shared
def test_default_cadence_matches_detection_on_every_frame_on_the_snap_path():
    """A short version of the ground-truth table (the full one: 720p and 1080p, SCRFD and
    YuNet, `python -m livefusion.measure.tracking_eval --path snap ...`): SCRFD det_2.5g at the
    frame's own size, the still / slow / fast-with-abrupt-stops path, every keyframe phase of
    detect-every-5. Default cadence error at most 1.02x detection on every frame, on the fast
    frames at most 1.10x, still jitter at most 0.16 px, no step over 1 px on still frames
    (3 settling frames after a stop allowed)."""
    from livefusion.measure.synthclip import PATHS, SynthClip, load_photo, prepare_face
    from tests.conftest import SHARED_IMAGES, SHARED_MODELS

    model, photo = SHARED_MODELS / "det_2.5g.onnx", SHARED_IMAGES / "fr_obama.jpg"
    for path in (model, photo):
        if not path.exists():
            pytest.skip(f"{path} is missing: the real models and photos come from ../shared")
    detector_for = te.make_detector_factory(model)
    clip = SynthClip(prepare_face(load_photo(photo), detector_for, augmentations=5),
                     (640, 360), 120, path=PATHS["snap"])
    methods = [te.Method("a", 1, "none", False), te.Method("c", 5, "kalman", True)]
    figures = te.evaluate_gt(clip, te.FrameCachedDetector(detector_for(0)), methods,
                             te.tracking_config([]), io.StringIO())
    c5 = figures["c5"]
    assert c5["err_vs_a"] <= 1.02
    assert c5["err_fast_vs_a"] <= 1.10
    assert c5["jitter_px"] <= 0.16
    assert c5["step_max_px"] <= 1.0
