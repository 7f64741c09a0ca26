"""The network under load: exchanges/s, p50/p99 per exchange, peak memory and CPU per process.

Starts a requester node (BE) and a provider node (FR) as ``oots demo`` does (SQLite, one process per
node with its worker), drives ``OOTS_BENCH_NETWORK_EXCHANGES`` exchanges without preview (1,000) through
the portal API, ``OOTS_BENCH_NETWORK_CONCURRENCY`` at a time (50), checks that the requester's AS4
records and the provider's audit journal agree, and prints the figures, with each stage's share of an
exchange's time (``exchange_stages``: where the exchanges waited). Targets: >= 20 exchanges/s,
p99 <= 1 s, <= 300 MB resident per node process. CPU per exchange (and of it the system time, and the
context switches of each process's threads) is read around the measured load (after a warm-up), so
start-up is not in it. Before and after the load, a fixed piece of Python work is timed ("machine
speed"): this machine's speed changes from run to run, and figures of two runs compare once divided
by it (when the two timings of a run differ much, the machine changed speed during it).

With 50 exchanges always in flight, Little's law ties the two targets together: the mean time of an
exchange is 50 / throughput, so a p99 of 1 s needs more than 50 exchanges/s. The bench therefore also
runs an open load, ``OOTS_BENCH_NETWORK_OPEN_RATE`` exchanges arriving per second (20, the throughput
target; 0 skips it) for 20 s, and prints the latency users see at that rate, counted from when each
exchange was due.

The load then runs once more with the requester node (the busier one) as an ``oots serve`` web process
and an ``oots worker`` process on its one SQLite file, as a node can be deployed on one machine without
PostgreSQL: the two wake each other after commits and queue their writers on the file's lock.

``OOTS_BENCH_NETWORK_KILL=1`` runs the load again with the provider node SIGKILLed after a quarter of
the exchanges and restarted. With ``OOTS_BENCH_POSTGRES_URL`` (or ``OOTS_TEST_POSTGRES_URL``) naming a
server, the load runs once more with every node scaled out: two web processes and two workers on a
scratch PostgreSQL database per node (dropped afterwards).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from contextlib import ExitStack
from functools import partial
from pathlib import Path

from bench.postgres import answering, configured
from oots.network.load import (
    STAGES,
    Pair,
    ProcessTimes,
    ScaleOut,
    command_cpu_seconds,
    cpu_seconds,
    exchange_stages,
    journal_agreement,
    machine_cpu_seconds,
    peak_memory_mb,
    process_times,
    requester_provider_pair,
    run_exchanges,
    sample_person,
)
from oots.network.local import free_base_port
from oots.settings import Settings, load_settings
from oots.store import open_database
from oots.store.scratch import scratch_database

API_KEY = "bench-network-key-0123456789"
#: Exchanges run before the measured load, so that the CPU figures leave out start-up and first use.
WARM_UP = 20
#: How long the open load (exchanges arriving at a fixed rate) runs after the measured one.
OPEN_SECONDS = 20


def _base_port() -> int:
    return free_base_port((0, 1, 10, 11))


def _settings(config: Path) -> Settings:
    """A node's settings from its file alone (this process's OOTS_ variables are the benchmark's)."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("OOTS_")}
    try:
        return load_settings(config)
    finally:
        os.environ.update(saved)


def _fault(pair: Pair, quarter: threading.Event) -> None:
    quarter.wait(3600)
    pair.supervisor.kill("fr-node")
    time.sleep(1.0)
    pair.supervisor.restart("fr-node", timeout=120)


def _times_by_pid(pair: Pair) -> dict[str, tuple[int, ProcessTimes]]:
    return {name: (proc.pid, process_times(proc.pid)) for name, proc in pair.supervisor.procs.items()}


def _machine_ms() -> float:
    """CPU milliseconds a fixed piece of Python work takes here now (JSON, hashing, sorting: the kind of
    work the nodes do). This machine's speed flips between two, one about 1.7 times the other, within
    seconds to minutes; figures of two runs compare once divided by this."""
    import hashlib
    import json

    document = {"id": "x" * 24, "items": [{"n": n, "name": f"item {n}", "ok": n % 3 == 0} for n in range(200)]}
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for n in range(60):
            text = json.dumps(document, sort_keys=True)
            hashlib.sha256(text.encode()).hexdigest()
            sorted(json.loads(text)["items"], key=lambda item: (item["ok"], -item["n"]))
            document["id"] = str(n)
        best = min(best, time.process_time() - started)
    return 1000 * best


def _measure(
    label: str, count: int, concurrency: int, *, kill: bool = False, scale: ScaleOut | None = None, open_rate: float = 0
) -> None:
    with tempfile.TemporaryDirectory(prefix="oots-bench-network-") as tmp:
        person = sample_person("FR")
        pair = requester_provider_pair(Path(tmp), base_port=_base_port(), api_key=API_KEY, scale_out=scale)
        supervisor, network = pair.supervisor, pair.network
        quarter = threading.Event()
        killer = threading.Thread(target=_fault, args=(pair, quarter), daemon=True) if kill else None
        drive = partial(run_exchanges, network.nodes["BE"][1].url, API_KEY, procedure="R1", country="FR", person=person)
        opened = None
        try:
            # warm up (imports on first use, caches, connections) so the CPU figures are the load's own
            drive(count=WARM_UP, concurrency=10)
            machine = [_machine_ms()]
            before = _times_by_pid(pair)
            driver_before = cpu_seconds(os.getpid())
            machine_before, server_before = machine_cpu_seconds(), command_cpu_seconds("postgres")
            if killer is not None:
                killer.start()
            loaded_from = time.time()
            result = drive(
                count=count,
                concurrency=concurrency,
                on_progress=lambda done: quarter.set() if done >= count // 4 else None,
            )
            if killer is not None:
                killer.join(300)
            loaded_until = time.time()
            after = _times_by_pid(pair)
            driver = cpu_seconds(os.getpid()) - driver_before
            busy, elapsed = (a - b for a, b in zip(machine_cpu_seconds(), machine_before, strict=True))
            server = command_cpu_seconds("postgres") - server_before
            machine.append(_machine_ms())
            if open_rate:
                opened = drive(count=round(open_rate * OPEN_SECONDS), concurrency=concurrency, rate=open_rate)
            memory = {name: peak_memory_mb(proc.pid) for name, proc in supervisor.procs.items()}
            load_average = os.getloadavg()
        finally:
            pair.stop()
        requester = open_database(_settings(network.directory / "be-node.toml"))
        provider = open_database(_settings(network.directory / "fr-node.toml"))
        try:
            agreement = journal_agreement(requester, provider)
            stages = exchange_stages(requester, provider, created_within=(loaded_from, loaded_until))
        finally:
            requester.dispose()
            provider.dispose()
    print(f"   [{label}]")
    print(f"   exchanges: {result.completed}/{count} completed, {len(result.failures)} failed, {concurrency} at a time")
    print(f"   throughput: {result.rate:.1f} exchanges/s over {result.seconds:.1f} s (target >= 20)")
    print(f"   per exchange: p50 {result.percentile(50):.3f} s, p99 {result.percentile(99):.3f} s (target p99 <= 1 s)")
    done = max(1, result.completed)
    for name, mb in memory.items():
        pid, times = after[name]
        # a process restarted during the load (the kill test) is counted whole, start-up included
        spent = times - before[name][1] if before[name][0] == pid else times
        print(
            f"   {name}: peak resident {mb:.0f} MB (target <= 300 MB per node process), "
            f"CPU {1000 * spent.cpu / done:.0f} ms/exchange (system {1000 * spent.system / done:.1f}), "
            f"{spent.switches / done:.0f} context switches/exchange"
        )
    # the load driver (and the balancers of a scaled-out run) share the machine with the nodes
    through = " and the balancers" if pair.balancers else ""
    print(f"   load driver{through} (this process): CPU {1000 * driver / done:.0f} ms/exchange")
    if scale is not None and scale.databases:
        print(f"   PostgreSQL server (all its processes): CPU {1000 * server / done:.0f} ms/exchange")
    cores = os.cpu_count() or 1
    print(
        f"   machine: {cores * busy / elapsed if elapsed else 0:.1f} of {cores} cores busy during the load "
        f"(every process on it, the benchmark's and any other)"
    )
    print(
        f"   machine speed: a fixed piece of Python work took {machine[0]:.1f} ms of CPU before the load "
        f"and {machine[1]:.1f} ms after it"
    )
    if opened is not None:
        print(
            f"   open load, {open_rate:g} exchanges/s arriving for {OPEN_SECONDS} s (latency from when each was due): "
            f"{opened.completed}/{opened.completed + len(opened.failures)} completed, "
            f"p50 {opened.percentile(50):.3f} s, p99 {opened.percentile(99):.3f} s"
        )
    print(
        "   where the time went (p50 / p99 ms per stage, the measured load): "
        + ", ".join(
            f"{name} {1000 * stages.percentile(name, 50):.0f} / {1000 * stages.percentile(name, 99):.0f}"
            for name, _ in STAGES
        )
    )
    print(f"   journals agree: {agreement.ok} ({agreement.requests_journaled} requests journaled by the provider)")
    p99 = result.percentile(99)
    verdicts = [
        f">= 20 exchanges/s {_met(result.rate >= 20)}",
        f"p99 <= 1 s with {concurrency} in flight {_met(p99 <= 1)}",
    ]
    if opened is not None:
        verdicts.append(f"p99 <= 1 s at {open_rate:g} exchanges/s {_met(opened.percentile(99) <= 1)}")
    verdicts.append(f"<= 300 MB per process {_met(max(memory.values(), default=0) <= 300)}")
    print(f"   targets: {', '.join(verdicts)}")
    print(f"   load average at the end: {load_average[0]:.1f} {load_average[1]:.1f} {load_average[2]:.1f}")


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def run() -> None:
    count = int(os.environ.get("OOTS_BENCH_NETWORK_EXCHANGES", "1000"))
    concurrency = int(os.environ.get("OOTS_BENCH_NETWORK_CONCURRENCY", "50"))
    kill = os.environ.get("OOTS_BENCH_NETWORK_KILL", "") not in ("", "0")
    open_rate = float(os.environ.get("OOTS_BENCH_NETWORK_OPEN_RATE", "20"))
    _measure("SQLite, one process per node", count, concurrency, open_rate=open_rate)
    split = ScaleOut(web=1, workers=1, countries=frozenset({"BE"}))
    _measure("SQLite, requester node as a web process + a worker", count, concurrency, scale=split, open_rate=open_rate)
    if kill:
        _measure("SQLite, provider node SIGKILLed and restarted", count, concurrency, kill=True)
    server = answering(configured(), "scale-out")
    if not server:
        return
    with ExitStack() as stack:
        urls = {cc: stack.enter_context(scratch_database(server, prefix="oots_bench")) for cc in ("BE", "FR")}
        _measure("PostgreSQL, 2 web processes + 2 workers per node", count, concurrency, scale=ScaleOut(urls))
