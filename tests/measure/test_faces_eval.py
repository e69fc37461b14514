"""faces_eval's counts on hand-made reference boxes and faces-out lines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from livefusion.measure import faces_eval as fe

A = [100.0, 100.0, 200.0, 220.0]
B = [400.0, 120.0, 490.0, 230.0]


def face(track: int, box) -> dict:
    return {"track": track, "box": list(box), "kps": [[0, 0]] * 5, "score": 0.9,
            "detected": True, "swapped": True, "hidden": False}


def test_missed_ghost_loss_and_switch_are_counted():
    # frame: 0     1      2       3       4       5
    # ref:   A     A      A,B     A,B     A,B     -      (the face at A goes at 5)
    # app:   A#0   -      A#0     A#0,B#1 A#2,B#1 A#2    (miss at 1, B late, switch at 4,
    #                                                      ghost at 5)
    reference = [np.array([A]), np.array([A]), np.array([A, B]), np.array([A, B]),
                 np.array([A, B]), np.zeros((0, 4))]
    tracked = {0: [face(0, A)], 1: [], 2: [face(0, A)], 3: [face(0, A), face(1, B)],
               4: [face(2, A), face(1, B)], 5: [face(2, A)]}
    counts = fe.compare(reference, tracked)
    assert counts.ref == 8
    assert counts.missed == 2  # A at 1, B at 2
    assert counts.ghost == 1  # #2 at 5
    assert counts.switches == 2  # A: #0 -> no track at 1, #0 -> #2 at 4
    assert counts.losses == 1  # #0 ended at 3 with A still seen at 4 (#1 ended with B gone)
    assert counts.ids == 3


def test_guard_only_faces_are_not_tracks(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps({"seq": 0, "t_capture_ms": 0.0,
                                "faces": [face(-1, A), face(3, B)]}) + "\n")
    assert [f["track"] for f in fe.read_faces(path)[0]] == [3]


def test_a_file_that_is_not_json_lines_says_what_to_pass(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text("not json\n")
    with pytest.raises(ValueError, match="written by --faces-out"):
        fe.read_faces(path)
