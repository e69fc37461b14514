"""The generated privacy clips: written as videos, with a ground truth the judge agrees with."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livefusion.measure.privacy_clips import CLIP_NAMES, make_clip, yunet_face_finder
from tests.conftest import SHARED_IMAGES, SHARED_MODELS
from tests.face.onnx_builders import shared_path
from tests.media_helpers import read_frames

pytestmark = pytest.mark.shared

YUNET = "face_detection_yunet_2023mar.onnx"


@pytest.fixture(scope="module")
def clips(privacy_clips):
    shared_path(SHARED_IMAGES, "fr_biden.jpg")
    return privacy_clips


@pytest.fixture(scope="module")
def judge(exposure_judge):
    return exposure_judge


def _frames(path):
    return read_frames(path)


def test_every_clip_is_written_with_a_truth_per_frame(clips):
    assert sorted(clips) == sorted(CLIP_NAMES)
    for truth in clips.values():
        frames = _frames(truth.path)
        assert truth.path.suffix == ".mp4" and 40 <= len(frames) <= 90
        assert len(frames) == truth.n_frames == len(truth.visible) == len(truth.people)
        assert frames[0].shape == (truth.size[1], truth.size[0], 3) == (360, 640, 3)


def _entering(truth):
    """Per frame, (box, visible fraction) of person 0 (the face that slides in), or None."""
    out = []
    for boxes, vis, people in zip(truth.boxes, truth.visible, truth.people):
        out.append(next(((b, v) for b, v, p in zip(boxes, vis, people) if p == 0), None))
    return out


@pytest.mark.parametrize("edge", ["left", "right", "top", "bottom"])
def test_a_face_slides_in_from_each_edge_and_stops_inside(clips, edge):
    truth = clips[f"slide_{edge}"]
    entering = _entering(truth)
    visible = [0.0 if e is None else e[1] for e in entering]
    assert visible[:6] == [0.0] * 6  # not there at first
    partial = [v for v in visible if 0 < v < 0.99]
    assert len(partial) >= 3  # crosses the edge over several frames
    assert all(a <= b + 1e-9 for a, b in zip(visible, visible[1:]))  # only ever comes in
    assert min(visible[-10:]) >= 0.99  # and stays inside
    first = next(e[0] for e in entering if e is not None and e[1] > 0)
    x0, y0, x1, y1 = first
    side = {"left": x0 < 0, "right": x1 > 640, "top": y0 < 0, "bottom": y1 > 360}[edge]
    assert side, first
    # the other face sits inside the frame all along, clear of the one coming in
    seated = [[b for b, p in zip(boxes, people) if p == 1] for boxes, people in
              zip(truth.boxes, truth.people)]
    assert all(len(s) == 1 for s in seated)
    sx0, _, sx1, _ = seated[-1][0]
    ex0, _, ex1, _ = entering[-1][0]
    assert sx1 < ex0 or ex1 < sx0


def test_the_cuts_alternate_between_two_people_at_different_places(clips):
    truth = clips["cuts"]
    people = [p[0] for p in truth.people]
    cuts = [t for t in range(1, len(people)) if people[t] != people[t - 1]]
    assert len(cuts) >= 5 and set(people) == {0, 1}
    for t in cuts:
        (a,), (b,) = truth.boxes[t - 1], truth.boxes[t]
        assert abs((a[0] + a[2]) / 2 - (b[0] + b[2]) / 2) > 40  # the face jumps


def test_the_gap_clip_has_empty_frames_between_two_faces(clips):
    truth = clips["gap"]
    empty = truth.empty()
    assert empty[24:52].all() and not empty[:24].any() and not empty[52:].any()
    assert {p[0] for p in truth.people[:24]} == {0} and {p[0] for p in truth.people[52:]} == {1}


def _centre(box):
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


@pytest.mark.parametrize("name", CLIP_NAMES)
def test_the_judge_finds_the_faces_the_truth_says_and_none_elsewhere(clips, judge, name):
    truth = clips[name]
    checked = 0
    for t, frame in enumerate(_frames(truth.path)):
        if t % 2 and not truth.empty()[t]:
            continue  # every other frame is enough, but every empty one is checked
        found = judge.judge(frame, frame)
        whole = [b for b, v in zip(truth.boxes[t], truth.visible[t]) if v >= 0.99]
        for box in whole:  # every face wholly in the frame is found, where it is
            near = [np.linalg.norm(_centre(f) - _centre(box)) for f in found.boxes]
            assert near and min(near) < 0.3 * (box[3] - box[1]), (name, t, box, found.boxes)
        for f in found.boxes:  # and nothing but faces (a part of a face counts)
            near = [np.linalg.norm(_centre(f) - _centre(b)) / (b[3] - b[1])
                    for b, v in zip(truth.boxes[t], truth.visible[t]) if v > 0]
            assert near and min(near) < 0.6, f"{name} frame {t}: a face where none is: {f}"
        assert found.judged_count == found.face_count  # lit, sharp faces: all recognisable
        assert found.exposed == bool(found.face_count)  # output == input
        checked += bool(whole)
    assert checked >= 10


def test_a_photo_without_a_face_is_refused_with_its_name(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "wall.png"), np.full((200, 200, 3), 90, np.uint8))
    finder = yunet_face_finder(shared_path(SHARED_MODELS, YUNET))
    with pytest.raises(ValueError, match="wall.png"):
        make_clip("gap", photos, tmp_path, finder, photos=("wall.png", "wall.png"))
    with pytest.raises(ValueError, match="unknown clip"):
        make_clip("nope", photos, tmp_path, finder)
