"""The network under load: exchanges/s, p50/p99 per exchange, peak memory per process.

Starts a requester node (BE) and a provider node (FR) as ``oots demo`` does (SQLite, one process per
node with its worker), drives ``OOTS_BENCH_NETWORK_EXCHANGES`` exchanges without preview (1,000) through
the portal API, ``OOTS_BENCH_NETWORK_CONCURRENCY`` at a time (50), checks that the requester's AS4
records and the provider's audit journal agree, and prints the figures. Targets: >= 20 exchanges/s,
p99 <= 1 s, <= 300 MB resident per node process.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from oots.network.load import (
    journal_agreement,
    peak_memory_mb,
    requester_provider_pair,
    run_exchanges,
    sample_person,
)
from oots.network.local import free_base_port
from oots.settings import load_settings
from oots.store import open_database

API_KEY = "bench-network-key-0123456789"


def _base_port() -> int:
    return free_base_port((0, 1, 10, 11))


def run() -> None:
    # read, then removed: OOTS_ variables are settings to load_settings (which the agreement check uses)
    count = int(os.environ.pop("OOTS_BENCH_NETWORK_EXCHANGES", "1000"))
    concurrency = int(os.environ.pop("OOTS_BENCH_NETWORK_CONCURRENCY", "50"))
    with tempfile.TemporaryDirectory(prefix="oots-bench-network-") as tmp:
        supervisor, network = requester_provider_pair(Path(tmp), base_port=_base_port(), api_key=API_KEY)
        try:
            url = network.nodes["BE"][1].url
            result = run_exchanges(
                url,
                API_KEY,
                count=count,
                concurrency=concurrency,
                procedure="R1",
                country="FR",
                person=sample_person("FR"),
            )
            memory = {name: peak_memory_mb(proc.pid) for name, proc in supervisor.procs.items()}
        finally:
            supervisor.stop()
        requester = open_database(load_settings(network.directory / "be-node.toml"))
        provider = open_database(load_settings(network.directory / "fr-node.toml"))
        try:
            agreement = journal_agreement(requester, provider)
        finally:
            requester.dispose()
            provider.dispose()
    print(f"   exchanges: {result.completed}/{count} completed, {len(result.failures)} failed, {concurrency} at a time")
    print(f"   throughput: {result.rate:.1f} exchanges/s over {result.seconds:.1f} s (target >= 20)")
    print(f"   per exchange: p50 {result.percentile(50):.3f} s, p99 {result.percentile(99):.3f} s (target p99 <= 1 s)")
    for name, mb in memory.items():
        print(f"   peak resident memory {name}: {mb:.0f} MB (target <= 300 MB per node process)")
    print(f"   journals agree: {agreement.ok} ({agreement.requests_journaled} requests journaled by the provider)")
