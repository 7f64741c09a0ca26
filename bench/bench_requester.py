"""End-to-end time of an exchange without preview: API call to evidence available, through two nodes.

``blue`` (the requester role, its portal API) and ``red`` (the provider role with Belgium's sample data
services) run as node applications with their workers and their own SQLite databases, with a local
Common Services server, all on loopback. Both sides journal every step (``oots.audit``).
One exchange = POST /api/v1/exchanges, wait for awaiting_explicit_request, POST explicit-request, wait
for completed (the client waits for each change with ``GET …?version_after=n``, long polling). Prints
p50 and p99 at 1 and at 20 concurrent exchanges, the throughput, and the CPU time per exchange.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from oots.cs.datafile import parse_catalogue
from oots.cs.keys import generate_pki, write_pki
from oots.cs.server import create_app as create_cs_app
from oots.network.local import ServerThread, free_port
from oots.network.pair import write_node_configs
from oots.node import build_context, create_app
from oots.provider.samples import load_people
from oots.settings import load_settings

KEY = "bench-portal-key-0123456789"
DEMO = Path(__file__).resolve().parents[1] / "src" / "oots" / "cs" / "data" / "demo-catalogue.toml"


def _exchange(client: httpx.Client, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    created = client.post("/api/v1/exchanges", json=body).json()
    ex_id, version = created["id"], created["version"]
    explicit = False
    while True:
        # wait for the next change (long polling) rather than asking again and again
        view = client.get(f"/api/v1/exchanges/{ex_id}", params={"version_after": version, "wait": 30}).json()
        state, version = view["state"], view["version"]
        if state == "awaiting_explicit_request" and not explicit:
            version = client.post(f"/api/v1/exchanges/{ex_id}/explicit-request").json()["version"]
            explicit = True
        elif state == "completed":
            return time.perf_counter() - started
        elif state in ("failed", "expired"):
            raise RuntimeError(f"exchange {ex_id} {state}")


def _figures(label: str, times: list[float], wall: float, cpu: float) -> None:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print(
        f"   {label}: p50 {statistics.median(ordered) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"{len(times) / wall:.1f} exchanges/s ({len(times)} exchanges; {cpu * 1000 / len(times):.0f} ms CPU "
        f"each, both nodes, the CS and the client; load average {os.getloadavg()[0]:.1f})",
        flush=True,
    )


def run(single: int = 20, concurrent: int = 20, rounds: int = 3) -> None:
    with tempfile.TemporaryDirectory(prefix="oots-bench-requester-") as tmp:
        directory = Path(tmp)
        ports = {"blue": free_port(), "red": free_port(), "cs": free_port()}
        cs_pki = generate_pki()
        trust = next(p for p in write_pki(cs_pki, directory / "cs").values() if p.name == "cs-trust.pem")
        requester = f"""[common_services]
environment = "local"
eb_url = "http://127.0.0.1:{ports["cs"]}"
dsd_url = "http://127.0.0.1:{ports["cs"]}/dsd"
trust_roots = ["{trust.as_posix()}"]

[requester]
identifier = "NL12345678"
name = "Bench portal"
possibility_for_preview = false

[[requester.clients]]
id = "portal"
api_key_sha256 = "{hashlib.sha256(KEY.encode()).hexdigest()}"
"""
        node = {name: f'country = "BE"\nbase_url = "http://127.0.0.1:{ports[name]}"' for name in ("blue", "red")}
        node["blue"] += '\nroles = ["requester"]'
        node["red"] += '\nroles = ["provider"]'
        configs = write_node_configs(
            directory,
            {name: f"http://127.0.0.1:{ports[name]}/as4" for name in ("blue", "red")},
            node=node,
            queue="poll_interval_seconds = 0.005\ngroup_commit_seconds = 0.005",
            tables={"blue": requester, "red": "[provider]\nsamples = true"},
        )
        blue_ctx = build_context(load_settings(configs["blue"]))
        red_ctx = build_context(load_settings(configs["red"]))
        catalogue = parse_catalogue(
            tomllib.loads(DEMO.read_text(encoding="utf-8").replace('id = "AP_BE_01"', 'id = "red_gw"'))
        )
        person = next(p for p in load_people() if p.family_name == "Peeters")
        body = {
            "procedure": "R1",
            "country": "BE",
            "person": {
                "natural_person": {
                    "level_of_assurance": "High",
                    "identifier": {"value": person.identifier, "scheme_id": "eidas"},
                    "family_name": person.family_name,
                    "given_name": person.given_name,
                    "date_of_birth": person.date_of_birth.isoformat(),
                }
            },
        }
        with (
            ServerThread(create_cs_app(catalogue, cs_pki.signer()), ports["cs"], log_level="error"),
            ServerThread(create_app(red_ctx, with_worker=True), ports["red"], log_level="error"),
            ServerThread(create_app(blue_ctx, with_worker=True), ports["blue"], log_level="error"),
            httpx.Client(
                base_url=f"http://127.0.0.1:{ports['blue']}",
                headers={"Authorization": f"Bearer {KEY}"},
                timeout=60,
                limits=httpx.Limits(max_connections=concurrent + 4),
            ) as client,
        ):
            _exchange(client, body)  # warm up (caches, connections)
            started, cpu = time.perf_counter(), time.process_time()
            times = [_exchange(client, body) for _ in range(single)]
            _figures("1 at a time", times, time.perf_counter() - started, time.process_time() - cpu)
            with ThreadPoolExecutor(concurrent) as pool:
                started, cpu = time.perf_counter(), time.process_time()
                times = list(pool.map(lambda _: _exchange(client, body), range(concurrent * rounds)))
                _figures(f"{concurrent} concurrent", times, time.perf_counter() - started, time.process_time() - cpu)


if __name__ == "__main__":
    run()
