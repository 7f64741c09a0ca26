"""``oots.threads.run_in_thread``: the light thread hop of the web endpoints."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from oots.threads import THREADS, run_in_thread, set_threads

_request: contextvars.ContextVar[str] = contextvars.ContextVar("test_request", default="none")


def test_the_call_runs_in_another_thread_and_its_result_comes_back() -> None:
    async def scenario() -> tuple[int, int]:
        return await run_in_thread(threading.get_ident), threading.get_ident()

    theirs, ours = asyncio.run(scenario())
    assert theirs != ours


def test_arguments_go_in_and_an_exception_comes_back() -> None:
    def divide(a: int, *, by: int) -> float:
        return a / by

    async def scenario() -> float:
        assert await run_in_thread(divide, 6, by=3) == 2
        return await run_in_thread(divide, 1, by=0)

    with pytest.raises(ZeroDivisionError):
        asyncio.run(scenario())


def test_the_thread_sees_the_callers_context_variables() -> None:
    # (the correlation id of the request: the thread's log records carry it)
    async def scenario() -> str:
        _request.set("req-42")
        return await run_in_thread(_request.get)

    assert asyncio.run(scenario()) == "req-42"


def _most_at_once(calls: int) -> int:
    """Run ``calls`` calls of 10 ms through the pool at once: how many ran side by side at most."""
    running = 0
    most = 0
    lock = threading.Lock()

    def work(n: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01)
        with lock:
            running -= 1
        return n

    async def scenario() -> list[int]:
        return await asyncio.gather(*(run_in_thread(work, n) for n in range(calls)))

    assert asyncio.run(scenario()) == list(range(calls))
    return most


def test_more_calls_than_threads_wait_their_turn_and_all_finish() -> None:
    assert THREADS >= 4
    assert 1 < _most_at_once(3 * THREADS) <= THREADS


def test_a_smaller_pool_holds_even_with_more_threads_started() -> None:
    _most_at_once(3 * THREADS)  # every thread of the default size started and idle
    try:
        set_threads(2)
        assert _most_at_once(20) == 2
        set_threads(THREADS + 2)
        assert 2 < _most_at_once(3 * THREADS) <= THREADS + 2
    finally:
        set_threads(0)
    assert _most_at_once(3 * THREADS) <= THREADS


def test_a_pool_size_below_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="size of 0"):
        set_threads(-1)


def test_a_cancelled_caller_stops_waiting_and_the_pool_goes_on() -> None:
    started = threading.Event()
    finished = threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(0.2)
        finished.set()

    async def scenario() -> int:
        task = asyncio.ensure_future(run_in_thread(slow))
        await asyncio.to_thread(started.wait, 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await run_in_thread(lambda: 7)

    assert asyncio.run(scenario()) == 7
    assert finished.wait(60)  # the call itself ran to its end


def test_a_stop_iteration_comes_back_as_a_runtime_error_and_the_caller_does_not_hang() -> None:
    # asyncio refuses to set StopIteration on a future; before, the caller waited for ever.
    def first_of_nothing() -> int:
        return next(iter([]))

    async def scenario() -> int:
        return await asyncio.wait_for(run_in_thread(first_of_nothing), timeout=5)

    with pytest.raises(RuntimeError, match="StopIteration") as caught:
        asyncio.run(scenario())
    assert isinstance(caught.value.__cause__, StopIteration)
