"""Load and faults across real processes: a requester node and a provider node, as ``oots demo`` runs them.

Exchanges without preview go through the requester's portal API, 50 at a time; afterwards every one
has completed, none is duplicated, and the requester's AS4 records agree message by message with the
provider's audit journal. The same holds when the provider node is SIGKILLed mid-run and restarted,
when every node is scaled out as docs/deploy.md describes (two web processes and two workers on one
PostgreSQL database), and when every node is web processes and workers on its one SQLite file.
(CI runs 200 exchanges; ``bench/bench_network.py`` runs 1,000 and prints the figures.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oots.network import Supervisor
from oots.network.load import (
    STAGES,
    ScaleOut,
    exchange_stages,
    journal_agreement,
    requester_provider_pair,
    run_exchanges,
    sample_person,
)
from oots.network.local import free_base_port as _free_base_port
from oots.settings import load_settings
from oots.store import open_database

pytestmark = pytest.mark.slow

API_KEY = "load-test-key-0123456789abcdef"
COUNT = 200
CONCURRENCY = 50


def free_base_port() -> int:
    """A base port whose services' ports (base, base + 1, base + 10, base + 11) are free right now."""
    return _free_base_port((0, 1, 10, 11))


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[Supervisor, str, Path]]:
    pair = requester_provider_pair(tmp_path, base_port=free_base_port(), api_key=API_KEY)
    try:
        yield pair.supervisor, pair.network.nodes["BE"][1].url, pair.network.directory
    finally:
        pair.stop()


def check_agreement(directory: Path, count: int) -> None:
    requester = open_database(load_settings(directory / "be-node.toml"))
    provider = open_database(load_settings(directory / "fr-node.toml"))
    try:
        agreement = journal_agreement(requester, provider)
    finally:
        requester.dispose()
        provider.dispose()
    assert agreement.exchanges == count
    assert agreement.states == {"completed": count}
    assert agreement.requests_sent == count  # one request per exchange, none sent twice
    assert agreement.ok, agreement


def run_all(url: str, directory: Path) -> None:
    """Run the load through the requester node at ``url``: every exchange completes, the journals agree."""
    result = run_exchanges(
        url, API_KEY, count=COUNT, concurrency=CONCURRENCY, procedure="R1", country="FR", person=sample_person("FR")
    )
    assert result.failures == []
    assert result.completed == COUNT
    check_agreement(directory, COUNT)


def test_200_exchanges_50_at_a_time(network: tuple[Supervisor, str, Path]) -> None:
    run_all(*network[1:])
    # every exchange's time splits into its stages, each from one recorded moment to a later one
    requester = open_database(load_settings(network[2] / "be-node.toml"))
    provider = open_database(load_settings(network[2] / "fr-node.toml"))
    try:
        stages = exchange_stages(requester, provider)
    finally:
        requester.dispose()
        provider.dispose()
    assert stages.incomplete == 0
    assert {name: len(values) for name, values in stages.seconds.items()} == {name: COUNT for name, _ in STAGES}
    assert min(min(values) for values in stages.seconds.values()) >= 0


def test_the_provider_node_killed_and_restarted_mid_run(network: tuple[Supervisor, str, Path]) -> None:
    supervisor, url, directory = network
    quarter = threading.Event()

    def progress(done: int) -> None:
        if done >= COUNT // 4:
            quarter.set()

    def fault() -> None:
        quarter.wait(600)
        supervisor.kill("fr-node")
        time.sleep(1.0)
        supervisor.restart("fr-node", timeout=120)

    killer = threading.Thread(target=fault)
    killer.start()
    result = run_exchanges(
        url,
        API_KEY,
        count=COUNT,
        concurrency=CONCURRENCY,
        procedure="R1",
        country="FR",
        person=sample_person("FR"),
        on_progress=progress,
    )
    killer.join(300)
    assert not killer.is_alive()
    assert result.failures == []
    assert result.completed == COUNT
    check_agreement(directory, COUNT)


@pytest.mark.postgres
def test_200_exchanges_through_nodes_of_two_web_processes_and_two_worker_pidson_postgresql(
    tmp_path: Path, postgres_database: Callable[[], str]
) -> None:
    scale = ScaleOut({"BE": postgres_database(), "FR": postgres_database()}, web=2, workers=2)
    pair = requester_provider_pair(tmp_path, base_port=free_base_port(), api_key=API_KEY, scale_out=scale)
    try:
        running = pair.supervisor.running()
        for node in ("be-node", "fr-node"):
            assert {f"{node}-web1", f"{node}-web2", f"{node}-worker1", f"{node}-worker2"} <= set(running)
        run_all(pair.network.nodes["BE"][1].url, pair.network.directory)
        served = _served_by_every_worker(scale.databases["FR"])
    finally:
        pair.stop()
    assert len(served) == 2  # both of the provider's workers answered requests


@pytest.mark.parametrize(("web", "workers"), [(1, 1), (2, 2)])
def test_200_exchanges_through_nodes_of_web_processes_and_worker_pidson_one_sqlite_file(
    tmp_path: Path, web: int, workers: int
) -> None:
    scale = ScaleOut(web=web, workers=workers)
    pair = requester_provider_pair(tmp_path, base_port=free_base_port(), api_key=API_KEY, scale_out=scale)
    try:
        procs = pair.supervisor.procs
        for node in ("be-node", "fr-node"):
            assert {f"{node}-web{i}" for i in range(1, web + 1)} <= set(procs)
            assert {f"{node}-worker{i}" for i in range(1, workers + 1)} <= set(procs)
        run_all(pair.network.nodes["BE"][1].url, pair.network.directory)
        worker_pids = {str(p.pid) for name, p in procs.items() if "-worker" in name}
    finally:
        pair.stop()
    for node in ("be-node", "fr-node"):  # the jobs ran in the worker process, not in the web one
        database = pair.network.directory / node / "oots.db"
        ran = {worker.rsplit(":", 1)[-1] for worker in _served_by_every_worker(f"sqlite:///{database}")}
        assert ran
        assert ran <= worker_pids


def _served_by_every_worker(url: str) -> set[str]:
    """The workers that ran jobs (``locked_by`` is ``host:pid:random``; a job cancelled unrun has none)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT DISTINCT locked_by FROM queue_jobs WHERE status = 'done' AND locked_by IS NOT NULL")
            ).scalars()
            return {str(r).rsplit(":", 1)[0] for r in rows}
    finally:
        engine.dispose()
