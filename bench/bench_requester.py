"""End-to-end time of an exchange without preview: API call to evidence available, through two nodes.

``blue`` (the requester role, its portal API) and ``red`` (a provider stand-in: the provider's sample
data service answering over AS4 — the provider role is not on main yet) run as node applications with
their workers and their own SQLite databases, with a local Common Services server, all on loopback.
One exchange = POST /api/v1/exchanges, wait for awaiting_explicit_request, POST explicit-request, wait
for completed (the client polls every 10 ms). Prints p50 and p99 at 1 and at 20 concurrent exchanges
and the throughput at 20.
"""

from __future__ import annotations

import hashlib
import statistics
import tempfile
import time
import tomllib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.orm import Session
from starlette.routing import BaseRoute

from oots import edm
from oots.as4 import msh, profile
from oots.as4.model import PartyId, Payload
from oots.cs.datafile import parse_catalogue
from oots.cs.keys import generate_pki, write_pki
from oots.cs.server import create_app as create_cs_app
from oots.network.local import ServerThread, free_port
from oots.network.pair import write_node_configs
from oots.node import NodeContext, build_context, create_app
from oots.provider.samples import load_people, sample_data_service
from oots.settings import load_settings
from oots.store.queue import Handler

KEY = "bench-portal-key-0123456789"
DEMO = Path(__file__).resolve().parents[1] / "src" / "oots" / "cs" / "data" / "demo-catalogue.toml"


class _ProviderStandIn:
    name = "provider-stand-in"

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.service = sample_data_service("BE", "births")
        self.agent = edm.Agent(
            identifier=edm.Identifier(self.service.authority.identifier, self.service.authority.scheme_id),
            names=(edm.Text(self.service.authority.name, "EN"),),
        )

    def routes(self) -> Sequence[BaseRoute]:
        return []

    def job_handlers(self) -> Mapping[str, Handler]:
        return {}

    def as4_handlers(self) -> Mapping[str, Any]:
        return {profile.ACTION_EXECUTE_QUERY_REQUEST: self.on_request}

    def on_request(self, session: Session, message: msh.VerifiedMessage) -> None:
        request = edm.parse(message.payloads[0].data)
        assert isinstance(request, edm.QueryRequest)
        assert request.natural_person is not None
        provision = self.service.provide(request.natural_person, request.evidence_request.distributed_as)
        payloads, evidences = [], []
        for i, provided in enumerate(provision.evidences):
            cid = f"ev{i}@red.oots"
            payloads.append(Payload(cid, provided.document.media_type, provided.document.content))
            evidences.append(edm.response_evidence(provided.metadata, f"cid:{cid}"))
        answer = edm.evidence_response(request, provider=self.agent, evidences=evidences)
        um = message.user_message
        props = {p.name: p for p in um.message_properties}
        gateway = self.ctx.services["as4"]
        reply = gateway.user_message(
            to_party=um.party_info.from_party.party_id,
            action=profile.ACTION_EXECUTE_QUERY_RESPONSE,
            conversation_id=um.collaboration_info.conversation_id,
            original_sender=PartyId(props["finalRecipient"].value, props["finalRecipient"].type),
            final_recipient=PartyId(props["originalSender"].value, props["originalSender"].type),
            ref_to_message_id=message.message_id,
        )
        regrep = Payload("regrep@red.oots", profile.REGREP_MIME_TYPE, edm.to_xml(answer))
        gateway.submit(session, reply, [regrep, *payloads])


def _exchange(client: httpx.Client, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    ex_id = client.post("/api/v1/exchanges", json=body).json()["id"]
    explicit = False
    while True:
        state = client.get(f"/api/v1/exchanges/{ex_id}").json()["state"]
        if state == "awaiting_explicit_request" and not explicit:
            client.post(f"/api/v1/exchanges/{ex_id}/explicit-request")
            explicit = True
        elif state == "completed":
            return time.perf_counter() - started
        elif state in ("failed", "expired"):
            raise RuntimeError(f"exchange {ex_id} {state}")
        time.sleep(0.01)


def _figures(label: str, times: list[float], wall: float) -> None:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print(
        f"   {label}: p50 {statistics.median(ordered) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"{len(times) / wall:.1f} exchanges/s ({len(times)} exchanges)",
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
        configs = write_node_configs(
            directory,
            {name: f"http://127.0.0.1:{ports[name]}/as4" for name in ("blue", "red")},
            node=node,
            queue="poll_interval_seconds = 0.005\ngroup_commit_seconds = 0.005",
            tables={"blue": requester},
        )
        blue_ctx = build_context(load_settings(configs["blue"]))
        red_ctx = build_context(load_settings(configs["red"]))
        red_ctx.services["roles"].append(_ProviderStandIn(red_ctx))
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
            started = time.perf_counter()
            times = [_exchange(client, body) for _ in range(single)]
            _figures("1 at a time", times, time.perf_counter() - started)
            with ThreadPoolExecutor(concurrent) as pool:
                started = time.perf_counter()
                times = list(pool.map(lambda _: _exchange(client, body), range(concurrent * rounds)))
                _figures(f"{concurrent} concurrent", times, time.perf_counter() - started)


if __name__ == "__main__":
    run()
