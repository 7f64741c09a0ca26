"""End-to-end time of an exchange without preview: API call to evidence available, through two nodes.

Runs the network as ``oots demo`` and ``bench network`` do, every part an OS process of its own: a
requester node (BE) and a provider node (FR), each ``oots serve CONFIG --with-worker`` on its own SQLite
database, the Common Services and the eID test provider (``oots.network.load.requester_provider_pair``);
this process is only the portal. Both nodes journal every step (``oots.audit``).

One exchange = POST /api/v1/exchanges, then POST …/explicit-request once the exchange waits for it,
until it is completed; each call goes with ``Prefer: wait=30``, so the node answers it when the exchange
needs the portal again (and a read with ``until=actionable`` follows a wait that ran out). Prints p50 and
p99 at 1 and at 20 concurrent exchanges, the throughput, and the CPU time per exchange of each process
(the nodes, the Common Services, this client) — the figure that means something on a loaded machine.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from oots.network.load import cpu_seconds, requester_provider_pair, sample_person
from oots.network.local import free_base_port

KEY = "bench-portal-key-0123456789"
PREFER = {"Prefer": "wait=30"}


def _exchange(client: httpx.Client, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    view = client.post("/api/v1/exchanges", json=body, headers=PREFER).json()
    explicit = False
    while True:
        state = view["state"]
        if state == "awaiting_explicit_request" and not explicit:
            view = client.post(f"/api/v1/exchanges/{view['id']}/explicit-request", headers=PREFER).json()
            explicit = True
        elif state == "completed":
            return time.perf_counter() - started
        elif state in ("failed", "expired"):
            raise RuntimeError(f"exchange {view['id']} {state}: {view.get('reason')}")
        else:  # the wait ran out: wait on for the next state the portal acts on
            params = {"version_after": view["version"], "until": "actionable", "wait": 30}
            view = client.get(f"/api/v1/exchanges/{view['id']}", params=params).json()


def _figures(label: str, times: list[float], wall: float, cpu: dict[str, float]) -> None:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    each = ", ".join(f"{name} {seconds * 1000 / len(times):.0f}" for name, seconds in cpu.items())
    print(
        f"   {label}: p50 {statistics.median(ordered) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"{len(times) / wall:.1f} exchanges/s ({len(times)} exchanges; CPU ms per exchange: {each}; "
        f"load average {os.getloadavg()[0]:.1f})",
        flush=True,
    )


def run(single: int = 20, concurrent: int = 20, rounds: int = 3) -> None:
    with tempfile.TemporaryDirectory(prefix="oots-bench-requester-") as tmp:
        pair = requester_provider_pair(Path(tmp), base_port=free_base_port((0, 1, 10, 11)), api_key=KEY)
        try:
            pids = {name: proc.pid for name, proc in pair.supervisor.procs.items() if name != "eid"}

            def cpu() -> dict[str, float]:
                return {**{name: cpu_seconds(pid) for name, pid in pids.items()}, "client": time.process_time()}

            body = {"procedure": "R1", "country": "FR", "person": sample_person("FR"), "preview": False}
            with httpx.Client(
                base_url=pair.network.nodes["BE"][1].url,
                headers={"Authorization": f"Bearer {KEY}"},
                timeout=60,
                limits=httpx.Limits(max_connections=concurrent + 4),
            ) as client:
                _exchange(client, body)  # warm up (caches, connections)
                for label, count, threads in (
                    ("1 at a time", single, 1),
                    (f"{concurrent} concurrent", concurrent * rounds, concurrent),
                ):
                    before, started = cpu(), time.perf_counter()
                    with ThreadPoolExecutor(threads) as pool:
                        times = list(pool.map(lambda _: _exchange(client, body), range(count)))
                    wall, after = time.perf_counter() - started, cpu()
                    _figures(label, times, wall, {name: after[name] - before[name] for name in after})
        finally:
            pair.stop()


if __name__ == "__main__":
    run()
