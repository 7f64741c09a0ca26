"""What a load run reads of a process: CPU, system time and context switches (Linux /proc)."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from oots.network.load import (
    ProcessTimes,
    command_cpu_seconds,
    cpu_seconds,
    machine_cpu_seconds,
    peak_memory_mb,
    process_times,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="read from Linux's /proc")


def _work_and_waits() -> ProcessTimes:
    """What 50 ms of CPU and a thread's 20 sleeps add to this process's times."""
    before = process_times(os.getpid())
    started = time.process_time()
    while time.process_time() - started < 0.05:  # some CPU
        sum(range(1000))

    slept, end = threading.Event(), threading.Event()

    def wait() -> None:
        for _ in range(20):
            time.sleep(0.001)  # each sleep is a voluntary switch
        slept.set()
        end.wait(60)  # its switches are counted while it lives

    thread = threading.Thread(target=wait)
    thread.start()
    assert slept.wait(60)
    spent = process_times(os.getpid()) - before
    end.set()
    thread.join()
    return spent


@linux_only
def test_work_and_waits_of_this_process_show_in_its_times() -> None:
    # a thread that ends in between (a daemon of an earlier test: a checkpoint thread ends after 30 s
    # without writes) takes its switches out of the second reading: measured again then, three times at most
    for _ in range(3):
        spent = _work_and_waits()
        if spent.voluntary_switches >= 20:
            break
    assert spent.cpu == spent.user + spent.system >= 0.03
    assert spent.voluntary_switches >= 20
    assert spent.switches == spent.voluntary_switches + spent.involuntary_switches
    assert spent.involuntary_switches >= 0
    assert cpu_seconds(os.getpid()) > 0
    assert peak_memory_mb(os.getpid()) > 1


def test_a_process_that_is_gone_reads_as_nothing() -> None:
    gone = 2**22 + 12345  # above Linux's default pid_max
    assert process_times(gone) == ProcessTimes()
    assert cpu_seconds(gone) == 0.0
    assert peak_memory_mb(gone) == 0.0


@linux_only
def test_the_machine_and_processes_by_name_show_their_cpu() -> None:
    busy, total = machine_cpu_seconds()
    started = time.process_time()
    while time.process_time() - started < 0.05:
        sum(range(1000))
    busy_after, total_after = machine_cpu_seconds()
    assert 0 < busy <= total
    assert busy_after - busy >= 0.03  # this process's own work at least
    assert total_after >= total
    with open(f"/proc/{os.getpid()}/comm", encoding="ascii") as comm:
        own = comm.read().strip()
    assert command_cpu_seconds(own) >= cpu_seconds(os.getpid()) - 0.05
    assert command_cpu_seconds("no-such-command-here") == 0.0
