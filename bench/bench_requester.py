"""End-to-end time of an exchange without preview: API call to evidence available, through two nodes.

``blue`` (the requester role, its portal API) and ``red`` (the provider role with Belgium's sample data
services) run as node applications with their workers and their own SQLite databases, with a local
Common Services server, all on loopback. Both sides journal every step (``oots.audit``).
One exchange = POST /api/v1/exchanges, wait for awaiting_explicit_request, POST explicit-request, wait
for completed (the client waits for each change with ``GET …?version_after=n``, long polling). Prints
p50 and p99 at 1 and at 20 concurrent exchanges, the throughput, and the CPU time per exchange.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import statistics
import tempfile
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from oots.as4.keys import init_dev_pki
from oots.cs.datafile import parse_catalogue
from oots.cs.keys import generate_pki, write_pki
from oots.cs.server import create_app as create_cs_app
from oots.node import build_context, create_app
from oots.provider.samples import load_people
from oots.settings import load_settings

KEY = "bench-portal-key-0123456789"
DEMO = Path(__file__).resolve().parents[1] / "src" / "oots" / "cs" / "data" / "demo-catalogue.toml"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    def __init__(self, app: Any, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)


def _config(directory: Path, own: str, other: str, ports: dict[str, int], pki: Any, extra: str) -> Path:
    mine, theirs = pki.access_points[own], pki.access_points[other]
    path = directory / f"{own}.toml"
    path.write_text(
        f"""
[node]
name = "{own}"
country = "BE"
data_dir = "{(directory / own).as_posix()}"
base_url = "http://127.0.0.1:{ports[own]}"
{extra}
[queue]
poll_interval_seconds = 0.005
group_commit_seconds = 0.005

[as4]
party_id = "{own}_gw"
signing_key = "{mine["sign_key"].as_posix()}"
signing_certificate = "{mine["sign_cert"].as_posix()}"
decryption_key = "{mine["encrypt_key"].as_posix()}"
decryption_certificate = "{mine["encrypt_cert"].as_posix()}"

[[as4.partners]]
name = "{other}"
party_id = "{other}_gw"
endpoint = "http://127.0.0.1:{ports[other]}/as4"
signing_certificate = "{theirs["sign_cert"].as_posix()}"
encryption_certificate = "{theirs["encrypt_cert"].as_posix()}"
trust_anchors = ["{pki.ca_certificate.as_posix()}"]
""",
        encoding="utf-8",
    )
    return path


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
        ports = {"blue": _port(), "red": _port(), "cs": _port()}
        pki = init_dev_pki(directory / "pki", ["blue", "red"], now=dt.datetime.now(dt.UTC))
        cs_pki = generate_pki()
        trust = next(p for p in write_pki(cs_pki, directory / "cs").values() if p.name == "cs-trust.pem")
        requester = f"""roles = ["requester"]

[common_services]
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
        blue_ctx = build_context(load_settings(_config(directory, "blue", "red", ports, pki, requester)))
        provider = 'roles = ["provider"]\n\n[provider]\nsamples = true\n'
        red_ctx = build_context(load_settings(_config(directory, "red", "blue", ports, pki, provider)))
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
            _Server(create_cs_app(catalogue, cs_pki.signer()), ports["cs"]),
            _Server(create_app(red_ctx, with_worker=True), ports["red"]),
            _Server(create_app(blue_ctx, with_worker=True), ports["blue"]),
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
