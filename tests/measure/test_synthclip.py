"""The ground-truth clip: poses follow the path, keypoints follow the pictures exactly, and a
real detector on a rendered frame agrees with the constructed keypoints."""

from __future__ import annotations

import numpy as np
import pytest

from livefusion.measure.synthclip import (DEFAULT_PATH, Keyframe, Pose, SynthClip, load_photo,
                                  pose_at, prepare_face)
from tests.face.test_track import face_source


def test_path_has_pauses_and_moves_smoothly():
    poses = [pose_at(DEFAULT_PATH, t / 299) for t in range(300)]
    assert poses[0] == DEFAULT_PATH[0].pose and poses[-1] == DEFAULT_PATH[-1].pose
    cx = np.array([p.cx for p in poses])
    # Eased: no step larger than a small fraction of the frame between frames.
    assert np.abs(np.diff(cx)).max() < 0.01
    kinds = {"angle": [p.angle for p in poses], "scale": [p.scale for p in poses]}
    assert np.ptp(kinds["angle"]) > 10 and np.ptp(kinds["scale"]) > 0.2


def test_still_frames_are_the_pauses():
    clip = SynthClip(face_source(), (320, 240), 60, noise=0)
    still = clip.still()
    assert still[1:5].all()  # the opening pause
    assert 10 < still.sum() < 55
    for t in np.flatnonzero(still):
        np.testing.assert_allclose(clip.keypoints(t - 1), clip.keypoints(t + 1))


def test_keypoints_follow_the_rendered_picture_exactly():
    """Dark dots drawn at the source keypoints land on the constructed keypoints."""
    clip = SynthClip(face_source(), (320, 240), 30, noise=0)
    for t in (0, 12, 25):
        frame = clip.frame(t).astype(np.float32).sum(axis=2)
        for x, y in clip.keypoints(t):
            xi, yi = int(round(x)), int(round(y))
            patch = frame[yi - 8: yi + 9, xi - 8: xi + 9]
            ys, xs = np.mgrid[-8:9, -8:9]
            weight = np.clip(patch.max() - patch - 0.5 * np.ptp(patch), 0, None)
            cx = (weight * xs).sum() / weight.sum() + xi
            cy = (weight * ys).sum() / weight.sum() + yi
            assert np.hypot(cx - x, cy - y) < 1.0


def test_frames_are_deterministic_and_noisy():
    still = (Keyframe(0.0, Pose(0.5, 0.5)), Keyframe(1.0, Pose(0.5, 0.5)))
    clip = SynthClip(face_source(), (320, 240), 10, path=still, noise=3.0)
    a, b = clip.frame(3), clip.frame(4)
    np.testing.assert_array_equal(a, clip.frame(3))
    diff = a.astype(np.int16) - b
    assert 2.0 < diff.std() < 6.0  # fresh sensor noise, same scene


def test_out_of_range_frame_and_short_clip_are_refused():
    clip = SynthClip(face_source(), (160, 120), 5)
    with pytest.raises(IndexError):
        clip.frame(5)
    with pytest.raises(ValueError):
        SynthClip(face_source(), (160, 120), 2)


@pytest.mark.shared
def test_constructed_keypoints_match_a_real_detector(shared_model, shared_image):
    import onnxruntime as ort

    from livefusion.face.detect import ScrfdDetector

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(shared_model("det_500m.onnx")), options,
                                   providers=["CPUExecutionProvider"])
    source = prepare_face(load_photo(shared_image("fr_obama.jpg")),
                          lambda size: ScrfdDetector(session, input_size=size), augmentations=3)
    clip = SynthClip(source, (640, 360), 60)
    detector = ScrfdDetector(session, input_size=640)
    for t in (0, 20, 35, 50):
        faces = detector.detect(clip.frame(t))
        assert len(faces) == 1
        err = np.linalg.norm(faces[0].kps - clip.keypoints(t), axis=1)
        assert err.max() < 4.0, (t, err)  # inter-ocular distance is ~30 px here
