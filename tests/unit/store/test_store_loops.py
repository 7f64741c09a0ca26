"""The loop helper behind the access point's sender, Domibus mode's sweep and the node's worker."""

from __future__ import annotations

import threading
import time

import pytest

from oots.errors import OotsError, TransportError
from oots.settings import QueueSettings
from oots.store import Database
from oots.store.loops import Loops
from oots.store.queue import Worker
from oots.store.wake import Topic

WAIT = 10.0  # generous bound for threads to reach a point; never a timing assertion


class Ticks:
    """A tick that is busy ``busy`` times, fails once when told, and then reports idle rounds."""

    def __init__(self, busy: int = 0, fail_first: Exception | None = None) -> None:
        self.busy = busy
        self.fail_first = fail_first
        self.calls = 0
        self.idle = threading.Event()

    def __call__(self) -> int:
        self.calls += 1
        if self.fail_first is not None:
            exc, self.fail_first = self.fail_first, None
            raise exc
        if self.busy:
            self.busy -= 1
            return 1
        self.idle.set()
        return 0


def test_a_busy_tick_runs_again_until_idle_then_stop_ends_the_thread() -> None:
    ticks = Ticks(busy=5)
    loops = Loops()
    loops.every("ticker", ticks, poll_seconds=3600)
    loops.start()
    assert ticks.idle.wait(WAIT)
    # Five busy rounds and the idle one ran without the hour-long pause between them.
    assert ticks.calls == 6
    loops.stop(WAIT)
    assert loops.stopping
    assert not any(t.name == "ticker" and t.is_alive() for t in threading.enumerate())


def test_a_failed_tick_is_reported_and_the_loop_goes_on() -> None:
    failures: list[tuple[str, Exception]] = []
    ticks = Ticks(fail_first=TransportError("the partner is away"))
    loops = Loops()
    loops.every("ticker", ticks, poll_seconds=0.01, errors=(OotsError,), failed=lambda n, e: failures.append((n, e)))
    loops.start()
    assert ticks.idle.wait(WAIT)
    loops.stop(WAIT)
    assert [(name, type(exc)) for name, exc in failures] == [("ticker", TransportError)]
    assert ticks.calls >= 2


def test_the_default_report_logs_the_loop_name(caplog: pytest.LogCaptureFixture) -> None:
    ticks = Ticks(fail_first=RuntimeError("database went away"))
    loops = Loops()
    loops.every("as4-sender", ticks, poll_seconds=0.01)
    loops.start()
    assert ticks.idle.wait(WAIT)
    loops.stop(WAIT)
    assert "as4-sender loop: an attempt failed; going on" in caplog.text


def test_stop_stops_the_queue_worker_too(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.migrate()
    worker = Worker(db, QueueSettings(poll_interval_seconds=0.01))
    loops = Loops(worker, worker_name="test-worker")
    loops.start()
    assert any(t.name == "test-worker" for t in threading.enumerate())
    loops.stop(WAIT)
    assert worker.stopping
    assert not any(t.name == "test-worker" and t.is_alive() for t in threading.enumerate())
    db.dispose()


def test_run_forever_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="queue worker"):
        Loops().run_forever()


def test_a_wake_up_ends_the_pause_and_stop_ends_a_waiting_loop() -> None:
    wake = Topic("test-loops-wake")
    second = threading.Event()
    calls: list[str] = []

    def tick() -> int:
        calls.append(threading.current_thread().name)
        if len(calls) >= 2:
            second.set()
        return 0

    loops = Loops()
    loops.every("waker", tick, poll_seconds=3600.0, wake=wake)
    loops.start(worker=False)
    try:
        deadline = threading.Event()
        while not calls and not deadline.wait(0.01):
            pass
        wake.fire()  # an hour-long pause ends at once
        assert second.wait(WAIT)
    finally:
        loops.stop(WAIT)
    assert not any(thread.is_alive() for thread in threading.enumerate() if thread.name == "waker")


def test_several_threads_run_one_loop_side_by_side() -> None:
    seen: set[str] = set()
    all_started = threading.Event()
    lock = threading.Lock()

    def tick() -> int:
        with lock:
            seen.add(threading.current_thread().name)
            if len(seen) == 3:
                all_started.set()
        return 0

    loops = Loops()
    loops.every("sender", tick, poll_seconds=0.01, threads=3)
    loops.start(worker=False)
    try:
        assert all_started.wait(WAIT)
    finally:
        loops.stop(WAIT)
    assert seen == {"sender-1", "sender-2", "sender-3"}
    with pytest.raises(ValueError):
        Loops().every("none", tick, poll_seconds=1.0, threads=0)


def _until(predicate, timeout: float = WAIT) -> bool:  # type: ignore[no-untyped-def]
    done = threading.Event()
    while not predicate():
        if done.wait(0.01) or timeout <= 0:
            return False
        timeout -= 0.01
    return True


def test_one_wake_up_wakes_one_thread_of_a_loop_and_stop_ends_them_all() -> None:
    wake = Topic("test-loops-one-wake")
    calls: list[str] = []
    lock = threading.Lock()

    def tick() -> int:
        with lock:
            calls.append(threading.current_thread().name)
        return 0

    loops = Loops()
    loops.every("sender", tick, poll_seconds=3600.0, wake=wake, threads=3)
    loops.start(worker=False)
    try:
        assert _until(lambda: len(calls) == 3)  # each thread looks once at start, then waits
        threading.Event().wait(0.2)  # let them settle: one watches the topic, two wait for it
        for expected in (4, 5, 6):
            wake.fire()
            assert _until(lambda n=expected: len(calls) == n)  # type: ignore[misc]
            threading.Event().wait(0.2)
            assert len(calls) == expected  # one thread woke, not three
    finally:
        loops.stop(WAIT)
    assert not any(t.is_alive() for t in threading.enumerate() if t.name.startswith("sender-"))


def test_a_full_batch_calls_a_peer_to_work() -> None:
    wake = Topic("test-loops-batch")
    work = [0]
    lock = threading.Lock()
    first: list[str] = []
    second_came = threading.Event()

    def tick() -> int:
        me = threading.current_thread().name
        if first and me == first[0]:
            second_came.wait(WAIT)  # the first worker's next look waits until a peer has come to help
        with lock:
            if first and me != first[0]:
                second_came.set()
            taken = min(2, work[0])
            work[0] -= taken
            if taken and not first:
                first.append(me)
        return taken

    loops = Loops()
    loops.every("sender", tick, poll_seconds=3600.0, wake=wake, threads=3, batch=2)
    loops.start(worker=False)
    try:
        threading.Event().wait(0.2)
        with lock:
            work[0] = 6
        wake.fire()
        assert second_came.wait(WAIT)
        assert _until(lambda: work[0] == 0)
    finally:
        loops.stop(WAIT)


def test_a_thread_at_work_hands_the_watch_to_a_peer() -> None:
    wake = Topic("test-loops-handoff")
    working = threading.Event()
    release = threading.Event()
    helped = threading.Event()
    lock = threading.Lock()
    busy_thread: list[str] = []
    fired = [0]

    def tick() -> int:
        me = threading.current_thread().name
        with lock:
            if not fired[0]:
                return 0
            if not busy_thread:
                busy_thread.append(me)
                first = True
            else:
                first = False
                if me != busy_thread[0]:
                    helped.set()
        if first:
            working.set()
            release.wait(WAIT)  # a long send: the next wake-up must not wait for it
            return 1
        return 0

    loops = Loops()
    loops.every("sender", tick, poll_seconds=3600.0, wake=wake, threads=2)
    loops.start(worker=False)
    try:
        threading.Event().wait(0.2)
        with lock:
            fired[0] = 1
        wake.fire()
        assert working.wait(WAIT)
        wake.fire()  # while the first thread works, its peer watches
        assert helped.wait(WAIT)
    finally:
        release.set()
        loops.stop(WAIT)


def test_stop_waits_for_busy_threads_together_and_runs_its_actions_first() -> None:
    """Four threads in a tick that outlasts the stop (sends to a partner that never answers): ``stop``
    waits ``timeout`` for them all, not for each in turn, and runs its actions before waiting."""
    release = threading.Event()
    inside = threading.Semaphore(0)
    order: list[str] = []

    def stuck() -> int:
        inside.release()
        release.wait(WAIT)
        order.append("tick ended")
        return 0

    loops = Loops()
    loops.every("stuck", stuck, poll_seconds=3600, threads=4)
    loops.on_stop(lambda: order.append("given back"))
    loops.start()
    try:
        for _ in range(4):
            assert inside.acquire(timeout=WAIT)
        started = time.monotonic()
        loops.stop(1.0)
        took = time.monotonic() - started
        assert took < 3.0, f"stop took {took:.1f} s: it waited for each thread in turn"
        assert order == ["given back"]
    finally:
        release.set()
    loops.stop(WAIT)
    assert not any(t.name.startswith("stuck") and t.is_alive() for t in threading.enumerate())
