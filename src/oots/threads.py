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

The pool grows to :data:`THREADS` threads, four per core (a node's own setting, ``node.threads``, may
change that with :func:`set_threads`); calls beyond that wait in order for a free thread. The calls are
database and crypto work, which hold the interpreter lock most of the time: more threads than that only
make them take the lock from one another (every SQLite statement lets it go and takes it back), which
costs CPU in thread switches and gains no throughput. Under load, with anyio's default of 40 threads
the requester node made twice as many context switches and spent about 1 ms more system time per
exchange (5-15 % more CPU in all, from run to run). Threads are daemons that stay for the life of the
process.

A ``StopIteration`` raised by the call comes back as a ``RuntimeError`` (its ``__cause__``): asyncio
cannot set one on a future, and the caller would wait for ever.

One difference from anyio: a coroutine cancelled while its call runs stops waiting at once; the call
itself runs to its end in its thread (a transaction commits or rolls back as it would have).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import threading
from collections import deque
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, ParamSpec, TypeVar

__all__ = ["THREADS", "run_in_thread", "set_threads"]

#: The most threads the process's pool starts by default: four per core, at least four.
THREADS = max(4, 4 * (os.cpu_count() or 1))

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
    """Threads that each wait on their own queue; idle ones are handed work last-in, first-out.

    At most ``size`` calls run at once; a smaller size takes effect as running calls finish.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._idle: list[SimpleQueue[_Call]] = []
        self._waiting: deque[_Call] = deque()
        self._started = 0
        self._busy = 0

    def resize(self, size: int) -> None:
        """Run at most ``size`` calls at once from now on (calls waiting for a thread get the new room)."""
        with self._lock:
            self.size = size
            handed = []
            while self._waiting and self._busy < self.size:
                handed.append((self._take_thread(), self._waiting.popleft()))
        for inbox, call in handed:
            inbox.put(call)

    def _take_thread(self) -> SimpleQueue[_Call]:
        """An idle thread's inbox, or a new thread's (under the lock, with room for one more call)."""
        self._busy += 1
        if self._idle:
            return self._idle.pop()
        self._started += 1
        inbox: SimpleQueue[_Call] = SimpleQueue()
        name = f"oots-thread-{self._started}"
        threading.Thread(target=self._serve, args=(inbox,), name=name, daemon=True).start()
        return inbox

    def submit(self, call: _Call) -> None:
        with self._lock:
            if self._busy >= self.size:
                self._waiting.append(call)
                return
            inbox = self._take_thread()
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
            except StopIteration as exc:
                # A future cannot be given a StopIteration (asyncio refuses it, and the caller would
                # wait for ever): it comes back as a RuntimeError that carries it, like a generator's.
                error = RuntimeError(f"the function raised StopIteration ({exc!r})")
                error.__cause__ = exc
            except BaseException as exc:  # handed to the waiting coroutine
                error = exc
            with contextlib.suppress(RuntimeError):  # the caller's loop has closed: nobody waits for the answer
                loop.call_soon_threadsafe(_settle, future, result, error)
            del loop, future, context, function, result, error
            with self._lock:
                call = self._waiting.popleft() if self._waiting and self._busy <= self.size else None
                if call is None:
                    self._busy -= 1
                    self._idle.append(inbox)
            if call is None:
                call = inbox.get()


_pool = _Pool(THREADS)


def set_threads(size: int | None) -> None:
    """Let the process's pool grow to ``size`` threads (None or 0: :data:`THREADS`)."""
    if size is not None and size < 0:
        raise ValueError("a thread pool needs a size of 0 (the default) or more")
    _pool.resize(size or THREADS)


async def run_in_thread(function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``function(*args, **kwargs)`` in a thread of the pool, with the caller's context; its result or exception."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()
    _pool.submit((loop, future, contextvars.copy_context(), lambda: function(*args, **kwargs)))
    return await future
