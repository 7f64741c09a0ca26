"""Background loops in threads, sharing one stop signal with a queue worker.

The access point's sender, Domibus mode's polling sweep and the node's worker are the same shape: a
*tick* that does a little work, run again at once while it finds work and after ``poll_seconds`` when
it found none; a failed tick is reported and the loop goes on after the same pause; ``stop`` asks every
loop and the queue worker to finish what they hold and waits for them. :class:`Loops` is that shape,
written once.

A loop may be given a wake-up (:func:`oots.store.wake.topic`): then it sleeps until the topic fires
or ``poll_seconds`` pass, so work submitted elsewhere starts at once and polling only paces retries;
and several threads may run the same tick side by side (``threads``).

A tick returns something true when it did work (for example the number of messages sent). The
errors it may raise without ending the loop are named per loop (``errors``, by default every
``Exception``); ``failed`` says what to log about them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from oots.store.queue import Worker
from oots.store.wake import Topic

__all__ = ["Loops"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Loop:
    name: str
    tick: Callable[[], object]
    poll_seconds: float
    errors: tuple[type[Exception], ...]
    failed: Callable[[str, Exception], None]
    wake: Topic | None = None


def _log_failure(name: str, exc: Exception) -> None:
    log.error("%s loop: an attempt failed; going on", name, exc_info=exc)


class Loops:
    """Ticking loops (and optionally a queue worker) started, run and stopped together."""

    def __init__(self, worker: Worker | None = None, *, worker_name: str = "queue-worker") -> None:
        self.worker = worker
        self.worker_name = worker_name
        self._loops: list[_Loop] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

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
    ) -> None:
        """Add a loop that calls ``tick`` until stopped, pausing ``poll_seconds`` when it did nothing.

        With ``wake`` the pause ends early when that topic fires; ``threads`` run the loop side by side
        (named ``name-1``, ``name-2``, ... when more than one).
        """
        if threads < 1:
            raise ValueError("a loop needs at least one thread")
        for i in range(threads):
            label = name if threads == 1 else f"{name}-{i + 1}"
            self._loops.append(_Loop(label, tick, poll_seconds, errors, failed, wake))

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _run(self, loop: _Loop) -> None:
        while not self._stop.is_set():
            generation = loop.wake.generation if loop.wake is not None else 0
            try:
                busy = loop.tick()
            except loop.errors as exc:  # the loop must outlive a bad moment of the database or network
                loop.failed(loop.name, exc)
                busy = False
            if busy:
                continue
            if loop.wake is None:
                self._stop.wait(loop.poll_seconds)
            else:  # stop() fires the topic, so this wait ends on stop too
                loop.wake.wait(generation, loop.poll_seconds)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _work(self) -> None:
        assert self.worker is not None
        self.worker.run_forever(install_signal_handlers=False)

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
        """Ask every loop and the worker to stop after what they hold; wait up to ``timeout`` for each."""
        self._stop.set()
        for topic in {id(loop.wake): loop.wake for loop in self._loops if loop.wake is not None}.values():
            topic.fire()
        if self.worker is not None:
            self.worker.stop()
        for thread in self._threads:
            thread.join(timeout)
