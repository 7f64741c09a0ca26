"""The requester across two real nodes: its node asks a provider node over AS4, on loopback.

``blue`` runs the requester role (``[node] roles = ["requester"]``) with its portal API; a local
Common Services server (signed answers, the demo catalogue with the Belgian access service pointed at
``red``) runs beside them. Until the provider role is on ``main``, ``red`` carries a stand-in role
that answers like a provider: the provider's sample data services identify the person and render the
evidence, ``oots.edm`` builds the answer, the node's gateway sends it back over AS4. Each request
that crosses the wire passes the official v1.0 rules.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from as4_flow_nodes import write_configs
from sqlalchemy.orm import Session
from starlette.routing import BaseRoute

from oots import edm
from oots.as4 import msh, profile
from oots.as4.model import PartyId, Payload
from oots.cs.datafile import parse_catalogue
from oots.cs.keys import generate_pki, write_pki
from oots.cs.server import create_app as create_cs_app
from oots.network.local import ServerThread, free_port
from oots.node import NodeContext, build_context, create_app
from oots.provider.samples import load_people, sample_data_service
from oots.settings import load_settings
from oots.store.queue import Handler
from oots.validation import validate

pytestmark = pytest.mark.slow

KEY = "flow-portal-key-0123456789"
DEMO = Path(__file__).resolve().parents[2] / "src" / "oots" / "cs" / "data" / "demo-catalogue.toml"


class ProviderStandIn:
    """Answers ExecuteQueryRequest like an evidence provider (preview first when ``preview`` is set)."""

    name = "provider-stand-in"

    def __init__(self, ctx: NodeContext, base_url: str, *, preview: bool) -> None:
        self.ctx = ctx
        self.base_url = base_url
        self.preview = preview
        self.received: list[bytes] = []
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
        self.received.append(message.payloads[0].data)
        request = edm.parse(message.payloads[0].data)
        assert isinstance(request, edm.QueryRequest)
        assert request.natural_person is not None
        payloads: list[Payload] = []
        answer: edm.QueryResponse | edm.QueryError
        action = profile.ACTION_EXCEPTION_RESPONSE
        if self.preview and request.possibility_for_preview and request.preview_location is None:
            answer = edm.preview_required(
                request, location=self.base_url.replace("http://", "https://") + "/preview/1", error_provider=self.agent
            )
        else:
            provision = self.service.provide(request.natural_person, request.evidence_request.distributed_as)
            evidences = []
            for i, provided in enumerate(provision.evidences):
                cid = f"ev{i}@red.oots"
                payloads.append(Payload(cid, provided.document.media_type, provided.document.content))
                evidences.append(edm.response_evidence(provided.metadata, f"cid:{cid}"))
            answer = edm.evidence_response(request, provider=self.agent, evidences=evidences)
            action = profile.ACTION_EXECUTE_QUERY_RESPONSE
        um = message.user_message
        props = {p.name: p for p in um.message_properties}
        gateway = self.ctx.services["as4"]
        reply = gateway.user_message(
            to_party=um.party_info.from_party.party_id,
            action=action,
            conversation_id=um.collaboration_info.conversation_id,
            original_sender=PartyId(props["finalRecipient"].value, props["finalRecipient"].type),
            final_recipient=PartyId(props["originalSender"].value, props["originalSender"].type),
            ref_to_message_id=message.message_id,
        )
        regrep = Payload("regrep@red.oots", profile.REGREP_MIME_TYPE, edm.to_xml(answer))
        gateway.submit(session, reply, [regrep, *payloads])


def _configure(tmp_path: Path, ports: dict[str, int]) -> dict[str, Path]:
    pki = generate_pki()
    paths = write_pki(pki, tmp_path / "cs")
    trust = next(p for p in paths.values() if p.name == "cs-trust.pem")
    requester = f"""[common_services]
environment = "local"
eb_url = "http://127.0.0.1:{ports["cs"]}"
dsd_url = "http://127.0.0.1:{ports["cs"]}/dsd"
trust_roots = ["{trust.as_posix()}"]

[requester]
identifier = "NL12345678"
scheme_id = "urn:cef.eu:names:identifier:EAS:0106"
name = "Flow test portal"

[[requester.clients]]
id = "portal"
api_key_sha256 = "{hashlib.sha256(KEY.encode()).hexdigest()}"
"""
    node = f'country = "BE"\nroles = ["requester"]\nbase_url = "http://127.0.0.1:{ports["blue"]}"'
    configs = write_configs(tmp_path, ports, retry="[0.5, 1, 2]", node={"blue": node}, tables={"blue": requester})
    catalogue_toml = DEMO.read_text(encoding="utf-8").replace('id = "AP_BE_01"', 'id = "red_gw"')
    import tomllib

    configs["catalogue"] = tmp_path / "catalogue.toml"
    configs["catalogue"].write_text(catalogue_toml, encoding="utf-8")
    configs["_pki"] = tmp_path / "cs"
    (tmp_path / "cs" / "pki.marker").write_text("", encoding="utf-8")
    _CATALOGUES[str(tmp_path)] = (parse_catalogue(tomllib.loads(catalogue_toml)), pki)
    return configs


_CATALOGUES: dict[str, Any] = {}


@pytest.fixture(params=[False, True], ids=["without-preview", "with-preview"])
def network(request: pytest.FixtureRequest, tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    ports = {"blue": free_port(), "red": free_port(), "cs": free_port()}
    configs = _configure(tmp_path, ports)
    catalogue, pki = _CATALOGUES.pop(str(tmp_path))
    blue_ctx = build_context(load_settings(configs["blue"]))
    red_ctx = build_context(load_settings(configs["red"]))
    stand_in = ProviderStandIn(red_ctx, f"http://127.0.0.1:{ports['red']}", preview=request.param)
    red_ctx.services["roles"].append(stand_in)
    with (
        ServerThread(create_cs_app(catalogue, pki.signer()), ports["cs"]),
        ServerThread(create_app(red_ctx, with_worker=True), ports["red"]),
        ServerThread(create_app(blue_ctx, with_worker=True), ports["blue"]),
    ):
        yield {"blue": f"http://127.0.0.1:{ports['blue']}", "stand_in": stand_in, "preview": request.param}


def _wait(client: httpx.Client, ex_id: str, states: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view: dict[str, Any] = client.get(f"/api/v1/exchanges/{ex_id}").json()
        if view["state"] in states or time.monotonic() > deadline:
            return view
        time.sleep(0.05)


def test_exchange_across_two_nodes(network: dict[str, Any]) -> None:
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
    with httpx.Client(base_url=network["blue"], headers={"Authorization": f"Bearer {KEY}"}, timeout=10) as client:
        created = client.post("/api/v1/exchanges", json=body)
        assert created.status_code == 202, created.text
        ex_id = created.json()["id"]
        view = _wait(client, ex_id, {"awaiting_explicit_request", "failed"})
        assert view["state"] == "awaiting_explicit_request", view
        assert client.post(f"/api/v1/exchanges/{ex_id}/explicit-request").status_code == 202
        if network["preview"]:
            view = _wait(client, ex_id, {"awaiting_preview", "completed", "failed"})
            assert view["preview"]["location"].endswith("/preview/1"), view
        view = _wait(client, ex_id, {"completed", "failed", "expired"})
        assert view["state"] == "completed", view
        (evidence,) = view["evidence"]
        pdf = client.get(f"/api/v1/exchanges/{ex_id}/evidence/{evidence['id']}")
        assert pdf.content.startswith(b"%PDF")
    received = network["stand_in"].received
    assert len(received) == (2 if network["preview"] else 1)
    for document in received:
        report = validate(document)
        assert report.valid, report
    if network["preview"]:
        second = edm.parse(received[1])
        assert isinstance(second, edm.QueryRequest)
        assert second.preview_location is not None
