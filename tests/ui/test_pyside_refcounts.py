"""PySide6 itself must not lose references to Python objects on the paths the window uses.

PySide6 6.12.0's `Signal.emit()` returned True without a reference: every emit cost one
reference to `True`, and the window (which emits once per frame) died with "Fatal Python
error: bool_dealloc" at exit, or mid-stream once the count ran out. pyproject.toml keeps that
release out; this test fails on any release that brings the bug back.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    plain = Signal()
    carrying = Signal(object)


def test_emitting_a_signal_costs_no_reference_to_true_or_false(qapp):
    emitter = _Emitter()
    received: list[object] = []
    emitter.plain.connect(lambda: received.append(1))
    emitter.carrying.connect(received.append)
    before = sys.getrefcount(True), sys.getrefcount(False)
    for k in range(200):
        emitter.plain.emit()
        emitter.carrying.emit(k % 2 == 0)
    assert len(received) == 400
    received.clear()
    after = sys.getrefcount(True), sys.getrefcount(False)
    assert abs(after[0] - before[0]) <= 2 and abs(after[1] - before[1]) <= 2, (before, after)
