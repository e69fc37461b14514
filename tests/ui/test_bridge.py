"""The output-thread -> Qt-thread bridge: never blocks the pipeline, coalesces to the newest
packet, and queues at most one notification however many packets arrive."""

from __future__ import annotations

import threading

import numpy as np

from livefusion.packet import FramePacket
from livefusion_ui.bridge import FrameBridge, Relay


def packet(seq: int) -> FramePacket:
    return FramePacket(seq=seq, t_capture_ns=0, frame=np.zeros((4, 4, 3), np.uint8))


def test_many_packets_while_the_ui_is_busy_give_one_paint_of_the_newest(qapp):
    bridge = FrameBridge()
    shown: list[int] = []
    bridge.connect_to(lambda: shown.append(bridge.take().seq))
    # The "output thread" submits 500 packets while the Qt thread processes no events at all.
    producer = threading.Thread(target=lambda: [bridge.submit(packet(i)) for i in range(500)])
    producer.start()
    producer.join(timeout=5)
    assert not producer.is_alive(), "submit() waited for the UI"
    assert shown == []  # nothing runs on the Qt thread until its event loop turns
    qapp.processEvents()
    assert shown == [499]
    assert (bridge.submitted, bridge.coalesced) == (500, 499)
    qapp.processEvents()
    assert shown == [499], "no stale notifications left queued"


def test_a_taken_packet_lets_the_next_one_notify_again(qapp):
    bridge = FrameBridge()
    shown: list[int] = []
    bridge.connect_to(lambda: shown.append(bridge.take().seq))
    for seq in range(3):
        bridge.submit(packet(seq))
        qapp.processEvents()
    assert shown == [0, 1, 2] and bridge.coalesced == 0


def test_closed_bridge_drops_packets(qapp):
    bridge = FrameBridge()
    bridge.close()
    bridge.submit(packet(1))
    assert bridge.take() is None and bridge.submitted == 0


def test_relay_runs_the_payload_handler_on_the_qt_thread(qapp):
    ran_on: list[threading.Thread] = []
    relay = Relay(lambda payload: ran_on.append((threading.current_thread(), payload)))
    worker = threading.Thread(target=lambda: relay.send("done"))
    worker.start()
    worker.join()
    qapp.processEvents()
    assert ran_on == [(threading.main_thread(), "done")]


def test_sending_on_a_deleted_relay_from_a_worker_thread_does_not_raise(qapp):
    import shiboken6

    delivered: list[object] = []
    relay = Relay(delivered.append)
    shiboken6.delete(relay)  # the window (its parent) went away
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            relay.send("late result")
        except BaseException as exc:  # recorded for the assertion below
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(timeout=5)
    qapp.processEvents()
    assert errors == [] and delivered == []


def test_a_closed_relay_drops_what_is_still_queued_and_what_comes_later(qapp):
    delivered: list[object] = []
    relay = Relay(delivered.append)
    relay.send("queued before close")
    relay.close()
    relay.send("sent after close")
    qapp.processEvents()
    assert delivered == []
