"""Two nodes composed by ``oots.node`` exchange a request and its answer through their roles.

Each node runs its web endpoint (uvicorn) and its worker in threads of this process, with its own
database and keys; everything between them goes over AS4 on loopback. The roles are a small echo:
the "provider" answers every ExecuteQueryRequest with an ExecuteQueryResponse carrying the same
payload, the "requester" records the answers it receives.
"""

from __future__ import annotations

import asyncio
import time
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from as4_flow_nodes import As4Role, InProcessNode, write_configs
from sqlalchemy import text
from sqlalchemy.orm import Session

from oots.as4 import msh, profile
from oots.as4.model import PartyId, Payload
from oots.errors import ConfigError
from oots.network.local import free_port
from oots.node import NodeContext, build_context, create_app
from oots.node.app import as4_dispatch
from oots.settings import load_settings

CORNER = "urn:oasis:names:tc:ebcore:partyid-type:unregistered:BE"


class EchoRole(As4Role):
    name = "echo"

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        with ctx.database.session() as session:
            session.execute(text("CREATE TABLE IF NOT EXISTS echo_answers (ref TEXT PRIMARY KEY, body BLOB)"))

    def as4_handlers(self) -> Mapping[str, Any]:
        return {
            profile.ACTION_EXECUTE_QUERY_REQUEST: self.on_request,
            profile.ACTION_EXECUTE_QUERY_RESPONSE: self.on_response,
        }

    def on_request(self, session: Session, message: msh.VerifiedMessage) -> None:
        gateway = self.ctx.services["as4"]
        um = message.user_message
        answer = gateway.user_message(
            to_party=um.party_info.from_party.party_id,
            action=profile.ACTION_EXECUTE_QUERY_RESPONSE,
            conversation_id=um.collaboration_info.conversation_id,
            original_sender=PartyId("provider-1", CORNER),
            final_recipient=PartyId("requester-1", CORNER),
            ref_to_message_id=message.message_id,
        )
        gateway.submit(session, answer, list(message.payloads))

    def on_response(self, session: Session, message: msh.VerifiedMessage) -> None:
        ref = message.user_message.message_info.ref_to_message_id
        session.execute(text("INSERT INTO echo_answers VALUES (:r, :b)"), {"r": ref, "b": message.payloads[0].data})


EchoNode = InProcessNode[EchoRole]


@pytest.fixture
def two_nodes(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Iterator[tuple[EchoNode, EchoNode]]:
    ports = {"blue": free_port(), "red": free_port()}
    configs = write_configs(tmp_path, ports, retry="[0.5, 1, 2]")
    with (
        EchoNode(configs["blue"], ports["blue"], EchoRole) as blue,
        EchoNode(configs["red"], ports["red"], EchoRole) as red,
    ):
        yield blue, red


def test_a_request_and_its_answer_cross_two_nodes(two_nodes: tuple[EchoNode, EchoNode]) -> None:
    blue, _red = two_nodes
    gateway = blue.ctx.services["as4"]
    request = gateway.user_message(
        to_party=PartyId("red_gw", profile.PARTY_ID_TYPE),
        action=profile.ACTION_EXECUTE_QUERY_REQUEST,
        conversation_id="7a0c4f5e-2a51-4a0b-9b38-93a4a4d8f3b1",
        original_sender=PartyId("requester-1", CORNER),
        final_recipient=PartyId("provider-1", CORNER),
    )
    body = b"<query:QueryRequest xmlns:query='urn:oasis:names:tc:ebxml-regrep:xsd:query:4.0'/>"
    with blue.ctx.database.session() as session:
        gateway.submit(session, request, [Payload("regrep@blue", profile.REGREP_MIME_TYPE, body)])
    deadline = time.monotonic() + 30
    rows: list[Any] = []
    while time.monotonic() < deadline and not rows:
        with blue.ctx.database.session() as session:
            rows = list(session.execute(text("SELECT ref, body FROM echo_answers")))
        time.sleep(0.05)
    assert rows == [(request.message_info.message_id, body)]


def test_health_and_readiness_of_a_node_without_roles(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OOTS_NODE__DATA_DIR", str(tmp_path))
    app = create_app(load_settings())

    async def check() -> tuple[Any, Any]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node") as client:
            return (await client.get("/health")).json(), (await client.get("/ready")).json()

    health, ready = asyncio.run(check())
    assert health["status"] == "ok"
    assert ready["status"] == "ready"


def test_a_role_that_does_not_exist_is_a_config_error(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    from oots.node import app as node_app

    clean_env.setattr(node_app, "ROLE_FACTORIES", {"provider": "oots.no_such_module:create_role"})
    settings = load_settings().model_copy(
        update={"node": load_settings().node.model_copy(update={"data_dir": tmp_path, "roles": ("provider",)})}
    )
    fake_ap = types.SimpleNamespace(clock=lambda: None, pmodes=None, warnings=())
    clean_env.setattr(node_app, "load_access_point", lambda *a, **k: fake_ap)
    clean_env.setattr(node_app, "As4Store", lambda *a, **k: None)
    with pytest.raises(ConfigError, match="not available"):
        build_context(settings)


def test_a_message_no_role_consumes_is_refused(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OOTS_NODE__DATA_DIR", str(tmp_path))
    ctx = build_context(load_settings())
    deliver = as4_dispatch(ctx)

    class Message:
        class user_message:
            class collaboration_info:
                action = "ExecuteQueryRequest"

    from oots.errors import NotFound

    with ctx.database.session() as session, pytest.raises(NotFound, match="no role"):
        deliver(session, Message())  # type: ignore[arg-type]
