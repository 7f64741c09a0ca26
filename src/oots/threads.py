"""Blocking work off the event loop, in one light thread hop: :func:`run_in_thread`.

The web endpoints run their database and crypto work in threads so that the event loop keeps
serving. Starlette's and FastAPI's ``run_in_threadpool`` (anyio's ``to_thread.run_sync``) enters a
capacity limiter, a shielded cancel scope and a checkpoint on every call, and wakes its worker through
a ``queue.Queue`` (a condition variable written in Python); ``loop.run_in_executor`` makes a
``concurrent.futures.Future`` (with its own condition variable) and chains it to an asyncio one. Here a
call is handed straight to an idle thread of the process's pool (the one that finished last, whose
memory is still in the caches), and the thread sets the caller's asyncio future through
``call_soon_threadsafe``: one wake-up each way. The call runs with the caller's context variables (the
request's correlation id, so that the thread's log records carry it).

The pool grows to :data:`THREADS` threads (as many as anyio's default limiter allows); calls beyond
that wait in order for a free thread. Threads are daemons that stay for the life of the process.

One difference from anyio: a coroutine cancelled while its call runs stops waiting at once; the call
itself runs to its end in its thread (a transaction commits or rolls back as it would have).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections import deque
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, ParamSpec, TypeVar

__all__ = ["THREADS", "run_in_thread"]

#: The most threads the process's pool starts.
THREADS = 40

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: A call for the pool: the caller's loop and future, and what to run in which context.
_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", contextvars.Context, Callable[[], Any]]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class _Pool:
    """Threads that each wait on their own queue; idle ones are handed work last-in, first-out."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._idle: list[SimpleQueue[_Call]] = []
        self._waiting: deque[_Call] = deque()
        self._started = 0

    def submit(self, call: _Call) -> None:
        with self._lock:
            if self._idle:
                inbox = self._idle.pop()
            elif self._started < self.size:
                self._started += 1
                inbox = SimpleQueue()
                name = f"oots-thread-{self._started}"
                threading.Thread(target=self._serve, args=(inbox,), name=name, daemon=True).start()
            else:
                self._waiting.append(call)
                return
        inbox.put(call)

    def _serve(self, inbox: SimpleQueue[_Call]) -> None:
        call: _Call | None = inbox.get()
        while call is not None:
            loop, future, context, function = call
            del call
            result: Any = None
            error: BaseException | None = None
            try:
                result = context.run(function)
            except BaseException as exc:  # handed to the waiting coroutine
                error = exc
            with contextlib.suppress(RuntimeError):  # the caller's loop has closed: nobody waits for the answer
                loop.call_soon_threadsafe(_settle, future, result, error)
            del loop, future, context, function, result, error
            with self._lock:
                call = self._waiting.popleft() if self._waiting else None
                if call is None:
                    self._idle.append(inbox)
            if call is None:
                call = inbox.get()


_pool = _Pool(THREADS)


async def run_in_thread(function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``function(*args, **kwargs)`` in a thread of the pool, with the caller's context; its result or exception."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()
    _pool.submit((loop, future, contextvars.copy_context(), lambda: function(*args, **kwargs)))
    return await future
