import threading

import pytest

from livefusion.commands import CommandQueue


def test_commands_run_in_order_on_the_draining_thread():
    commands = CommandQueue()
    seen: list[tuple[int, str]] = []
    futures = [commands.put(lambda i=i: seen.append((i, threading.current_thread().name)) or i)
               for i in range(3)]
    worker = threading.Thread(target=commands.drain, name="owner")
    worker.start()
    worker.join(2)
    assert [f.result(0) for f in futures] == [0, 1, 2]
    assert seen == [(0, "owner"), (1, "owner"), (2, "owner")]


def test_an_exception_reaches_the_caller_through_the_future():
    commands = CommandQueue()
    future = commands.put(lambda: 1 / 0)
    commands.drain()
    with pytest.raises(ZeroDivisionError):
        future.result(0)


def test_commands_that_will_never_run_fail_with_the_reason():
    commands = CommandQueue()
    future = commands.put(lambda: "never")
    commands.fail_pending("the thread has ended")
    with pytest.raises(RuntimeError, match="the thread has ended"):
        future.result(0)
    commands.drain()  # nothing left to run
