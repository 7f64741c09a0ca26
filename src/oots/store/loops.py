"""Background loops in threads, sharing one stop signal with a queue worker.

The access point's sender, Domibus mode's polling sweep and the node's worker are the same shape: a
*tick* that does a little work, run again at once while it finds work and after ``poll_seconds`` when
it found none; a failed tick is reported and the loop goes on after the same pause; ``stop`` asks every
loop and the queue worker to finish what they hold and waits for them. :class:`Loops` is that shape,
written once.

A loop may be given a wake-up (:func:`oots.store.wake.topic`): then it sleeps until the topic fires
or ``poll_seconds`` pass, so work submitted elsewhere starts at once and polling only paces retries;
and several threads may run the same tick side by side (``threads``). Of those, one at a time waits
for the wake-up (the watcher) and the others for a peer: a watcher that wakes hands the watch to a
waiting peer and goes to work, and a tick that took a full ``batch`` calls one more peer to work. So
one submitted message wakes one thread, not all of them, and a burst still spreads over every thread.

A tick returns something true when it did work (for example the number of messages sent). The
errors it may raise without ending the loop are named per loop (``errors``, by default every
``Exception``); ``failed`` says what to log about them. A database that cannot be reached never ends
a loop: it is logged as a plain warning and tried again after 0.5 s, doubling up to 5 s
(:class:`oots.store.database.Reconnect`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from oots.store.database import Reconnect, unreachable
from oots.store.queue import Worker
from oots.store.wake import Topic

__all__ = ["Loops"]

log = logging.getLogger(__name__)


class _Watch:
    """The threads of one loop with a wake-up: who waits for the topic, and what the others are owed."""

    def __init__(self, threads: int) -> None:
        self.cond = threading.Condition()
        self.threads = threads
        self.watched = False  # a thread waits for the topic
        self.since = 0  # the generation the last watcher woke at: its successor waits past it
        self.calls = 0  # peers asked to come and work (a full batch may have left more)


@dataclass(frozen=True)
class _Loop:
    name: str
    tick: Callable[[], object]
    poll_seconds: float
    errors: tuple[type[Exception], ...]
    failed: Callable[[str, Exception], None]
    wake: Topic | None = None
    watch: _Watch | None = None
    batch: int | None = None


def _log_failure(name: str, exc: Exception) -> None:
    log.error("%s loop: an attempt failed; going on", name, exc_info=exc)


def _count(result: object) -> int:
    return result if isinstance(result, int) and not isinstance(result, bool) else 1


class Loops:
    """Ticking loops (and optionally a queue worker) started, run and stopped together."""

    def __init__(self, worker: Worker | None = None, *, worker_name: str = "queue-worker") -> None:
        self.worker = worker
        self.worker_name = worker_name
        self._loops: list[_Loop] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._on_stop: list[Callable[[], object]] = []

    def every(
        self,
        name: str,
        tick: Callable[[], object],
        *,
        poll_seconds: float,
        errors: tuple[type[Exception], ...] = (Exception,),
        failed: Callable[[str, Exception], None] = _log_failure,
        wake: Topic | None = None,
        threads: int = 1,
        batch: int | None = None,
    ) -> None:
        """Add a loop that calls ``tick`` until stopped, pausing ``poll_seconds`` when it did nothing.

        With ``wake`` the pause ends early when that topic fires; ``threads`` run the loop side by side
        (named ``name-1``, ``name-2``, ... when more than one). ``batch``: a tick that returns a number
        at least this large took all it may take at once, and calls a waiting peer to work.
        """
        if threads < 1:
            raise ValueError("a loop needs at least one thread")
        watch = _Watch(threads) if wake is not None and threads > 1 else None
        for i in range(threads):
            label = name if threads == 1 else f"{name}-{i + 1}"
            self._loops.append(_Loop(label, tick, poll_seconds, errors, failed, wake, watch, batch))

    def on_stop(self, action: Callable[[], object]) -> None:
        """Run ``action`` as soon as :meth:`stop` is called, while the threads finish (giving back work
        claimed and not started, say). An action that fails is logged."""
        self._on_stop.append(action)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def alive(self) -> bool:
        """Whether every thread started is still running (False once one has died; True before a start)."""
        return all(thread.is_alive() for thread in self._threads)

    def _run(self, loop: _Loop) -> None:
        reconnect = Reconnect(f"{loop.name} loop")
        while not self._stop.is_set():
            generation = loop.wake.generation if loop.wake is not None else 0
            try:
                busy = loop.tick()
            except Exception as exc:  # the loop must outlive a bad moment of the database or network
                if unreachable(exc):  # whatever the loop's errors: wait for the database, a little longer each time
                    self._stop.wait(reconnect.failed(exc))
                    continue
                if not isinstance(exc, loop.errors):
                    raise
                loop.failed(loop.name, exc)
                busy = False
            else:
                reconnect.succeeded()
            if busy:
                if loop.watch is not None and loop.batch is not None and _count(busy) >= loop.batch:
                    self._call_peer(loop.watch)
                continue
            if loop.wake is None:
                self._stop.wait(loop.poll_seconds)
            elif loop.watch is None:  # stop() fires the topic, so this wait ends on stop too
                loop.wake.wait(generation, loop.poll_seconds)
            else:
                self._idle(loop.wake, loop.watch, generation, loop.poll_seconds)

    @staticmethod
    def _call_peer(watch: _Watch) -> None:
        with watch.cond:
            watch.calls = min(watch.calls + 1, watch.threads)
            watch.cond.notify()

    def _idle(self, wake: Topic, watch: _Watch, since: int, poll_seconds: float) -> None:
        """Pause one of several threads of a loop: as its watcher when nobody watches, else until called.

        ``since`` is the generation read before this thread's last look for work. A peer called in
        takes the free watch (from the generation its predecessor woke at) or, when asked to, works.
        """
        with watch.cond:
            while watch.watched:
                if self._stop.is_set() or not watch.cond.wait(poll_seconds):
                    return  # stopping, or the poll is due: look for work
                if watch.calls and watch.watched:
                    watch.calls -= 1
                    return
                since = watch.since
            if self._stop.is_set():
                return
            watch.watched = True
        try:
            wake.wait(since, poll_seconds)  # stop() fires the topic, so this wait ends on stop too
        finally:
            with watch.cond:
                watch.watched = False
                watch.since = wake.generation
                watch.cond.notify()  # a peer watches while this thread works

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _work(self) -> None:
        assert self.worker is not None
        try:
            self.worker.run_forever(install_signal_handlers=False)
        except Exception:
            log.exception("%s: the queue worker ended on an unexpected error; restart the process", self.worker_name)

    def start(self, *, worker: bool = True) -> None:
        """Start every loop in its own thread and, when ``worker``, the queue worker in one more."""
        for loop in self._loops:
            self._spawn(loop.name, partial(self._run, loop))
        if worker and self.worker is not None:
            self._spawn(self.worker_name, self._work)

    def run_forever(self, *, join_seconds: float = 10.0) -> None:
        """The loops in threads, the queue worker in the foreground until SIGTERM or SIGINT; then stop all."""
        if self.worker is None:
            raise ValueError("run_forever needs a queue worker")
        self.start(worker=False)
        try:
            self.worker.run_forever(install_signal_handlers=True)
        finally:
            self.stop(join_seconds)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask every loop and the worker to stop after what they hold; wait up to ``timeout`` for them all.

        Idle threads wake at once; a tick in progress (an AS4 message being sent) has until ``timeout``
        to end. A thread still busy then is left behind (daemon threads end with the process): what it
        held waits for its lease to run out.
        """
        self._stop.set()
        for topic in {id(loop.wake): loop.wake for loop in self._loops if loop.wake is not None}.values():
            topic.fire()
        for watch in {id(loop.watch): loop.watch for loop in self._loops if loop.watch is not None}.values():
            with watch.cond:
                watch.cond.notify_all()
        if self.worker is not None:
            self.worker.stop()
        for action in self._on_stop:
            try:
                action()
            except Exception as exc:  # what it would have released waits for its lease instead
                log.warning("stopping: giving back claimed work failed (%s); its leases run out", type(exc).__name__)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        behind = [thread.name for thread in self._threads if thread.is_alive()]
        if behind:
            log.warning("stopped without waiting longer for %s (busy after %g s)", ", ".join(behind), timeout)
