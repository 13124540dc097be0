"""``aiokv._core.chunks``: an async iterator on a portal's loop, iterated from threads in chunks."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

import pytest
from _internals import BlockingChunks, chunks, made, release, take
from anyio.from_thread import BlockingPortal, start_blocking_portal

from aiokv import StoreClosedError


class Numbers:
    """An async iterator of 0 .. n-1 that records what was asked of it, and on which thread."""

    def __init__(self, n: int) -> None:
        self._left = iter(range(n))
        self.closed_on: threading.Thread | None = None

    def __aiter__(self) -> Numbers:
        return self

    async def __anext__(self) -> int:
        try:
            return next(self._left)
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self.closed_on = threading.current_thread()


class Chunked(Numbers):
    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.asked: list[int] = []

    async def next_chunk(self, n: int) -> list[int]:
        self.asked.append(n)
        return list(islice(self._left, n))


@pytest.fixture
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal() as running:
        yield running


def caller(portal: BlockingPortal) -> Callable[..., Any]:
    """What a face's ``_call`` does, less its checks."""

    def call(method: str, func: Callable[..., Any], *args: Any) -> Any:
        return portal.call(func, *args)

    return call


def loop_thread_of(portal: BlockingPortal) -> threading.Thread:
    return portal.call(threading.current_thread)


def chunked(portal: BlockingPortal, iterator: Any, size: int = 4) -> BlockingChunks[int]:
    made_there = portal.call(made, lambda: iterator)
    return BlockingChunks(caller(portal), "keys", made_there, portal, loop_thread_of(portal), size)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "not released"
        gc.collect()
        time.sleep(0.01)


def test_take_asks_for_items_one_by_one_where_no_chunk_is_offered(portal: BlockingPortal) -> None:
    numbers = Numbers(5)
    assert portal.call(take, numbers, 3) == [0, 1, 2]
    assert portal.call(take, numbers, 3) == [3, 4]
    assert portal.call(take, numbers, 3) == []


def test_take_uses_next_chunk_where_offered(portal: BlockingPortal) -> None:
    numbers = Chunked(5)
    assert portal.call(take, numbers, 4) == [0, 1, 2, 3]
    assert numbers.asked == [4]


def test_release_closes_what_can_be_closed(portal: BlockingPortal) -> None:
    numbers = Numbers(1)
    portal.call(release, numbers)
    assert numbers.closed_on is loop_thread_of(portal)

    class Unclosable:
        def __aiter__(self) -> Unclosable:
            return self

        async def __anext__(self) -> int:
            raise StopAsyncIteration

    portal.call(release, Unclosable())  # nothing to close: nothing done


def test_a_blocking_iterator_fetches_a_chunk_per_round_trip(portal: BlockingPortal) -> None:
    numbers = Chunked(10)
    assert list(chunked(portal, numbers)) == list(range(10))
    assert numbers.asked == [4, 4, 4, 4]  # 4, 4, 2, and the empty end


def test_closing_early_closes_the_async_iterator_on_its_loop(portal: BlockingPortal) -> None:
    numbers = Numbers(10)
    with chunked(portal, numbers) as blocking:
        assert next(blocking) == 0
    assert numbers.closed_on is loop_thread_of(portal)
    assert list(blocking) == []
    blocking.close()  # twice: nothing more


def test_dropping_it_closes_the_async_iterator_without_waiting(portal: BlockingPortal) -> None:
    numbers = Numbers(10)
    blocking = chunked(portal, numbers)
    assert next(blocking) == 0
    del blocking
    wait_until(lambda: numbers.closed_on is not None)
    assert numbers.closed_on is loop_thread_of(portal)


def test_an_iterator_run_to_its_end_is_not_closed_again(portal: BlockingPortal) -> None:
    numbers = Numbers(3)
    blocking = chunked(portal, numbers)
    assert list(blocking) == [0, 1, 2]
    del blocking
    gc.collect()
    assert numbers.closed_on is None  # it ended by itself; nothing was handed to the loop


def test_dropped_on_the_loop_thread_it_is_closed_from_another(portal: BlockingPortal) -> None:
    numbers = Numbers(10)
    loop_thread = loop_thread_of(portal)

    async def drop_there() -> None:
        # As a finaliser run by a collection on the loop thread would.
        chunks._release_soon(numbers, portal, loop_thread)

    portal.call(drop_there)
    wait_until(lambda: numbers.closed_on is not None)
    assert numbers.closed_on is loop_thread


def test_dropped_after_the_loop_stopped_it_is_left_alone() -> None:
    with start_blocking_portal() as portal:
        numbers = Numbers(10)
        blocking = chunked(portal, numbers)
        assert next(blocking) == 0
    del blocking  # the portal is gone: nothing to hand over to, and no error
    gc.collect()
    assert numbers.closed_on is None


def test_a_close_refused_as_closed_is_taken_as_done(portal: BlockingPortal) -> None:
    def closed(method: str, func: Callable[..., Any], *args: Any) -> Any:
        raise StoreClosedError("the store is closed")

    numbers = Numbers(3)
    blocking = BlockingChunks(closed, "keys", numbers, portal, loop_thread_of(portal))
    with pytest.raises(StoreClosedError):
        next(blocking)
    blocking.close()  # the store let go of it as it closed
