import threading

import pytest

from livefusion.mailbox import LatestSlot, SlotClosed


def test_put_replaces_unread_item_and_counts_drop():
    slot: LatestSlot[int] = LatestSlot("t")
    assert slot.put(1) is None
    assert slot.put(2) == 1
    assert slot.put(3) == 2
    assert slot.get(0) == 3
    assert slot.dropped == 2
    assert slot.delivered == 1


def test_get_times_out_with_none():
    assert LatestSlot("t").get(timeout=0.01) is None


def test_close_wakes_a_waiting_consumer_and_keeps_the_last_item():
    slot: LatestSlot[int] = LatestSlot("t")
    slot.put(5)
    slot.close()
    assert slot.get(1) == 5
    with pytest.raises(SlotClosed):
        slot.get(1)
    with pytest.raises(SlotClosed):
        slot.put(6)


def test_blocked_get_returns_when_producer_puts():
    slot: LatestSlot[str] = LatestSlot("t")
    got = []
    t = threading.Thread(target=lambda: got.append(slot.get(5)))
    t.start()
    slot.put("x")
    t.join(5)
    assert got == ["x"]


def test_consumer_side_drop_moves_an_item_from_delivered_to_dropped():
    slot: LatestSlot[int] = LatestSlot("t")
    slot.put(1)
    slot.get(0)
    slot.count_drop()
    assert (slot.delivered, slot.dropped) == (0, 1)


def test_waiting_put_blocks_until_the_consumer_takes_the_item():
    slot: LatestSlot[int] = LatestSlot("t")
    slot.put(1)
    done = threading.Event()

    def producer():
        slot.put(2, wait=True)
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    assert not done.wait(0.05)
    assert slot.get(1) == 1
    assert done.wait(2)
    assert slot.get(1) == 2 and slot.dropped == 0
    t.join()


def test_waiting_put_is_released_by_close():
    slot: LatestSlot[int] = LatestSlot("t")
    slot.put(1)
    errors = []

    def producer():
        try:
            slot.put(2, wait=True)
        except SlotClosed as exc:
            errors.append(exc)

    t = threading.Thread(target=producer)
    t.start()
    slot.close()
    t.join(2)
    assert len(errors) == 1
