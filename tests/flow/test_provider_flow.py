"""The Evidence Provider end to end: a requester node and a provider node over real AS4.

The provider ("red", Spain's sample registers plus a register that is down) runs as its own
processes (``oots serve`` and ``oots worker``); the requester side ("blue") runs in this process with a small role
that records every answer it receives. Each case sends one evidence request and checks the exact EDM
answer, validated by the official rules, and the correlation ids of the ebMS message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))

from as4_flow_nodes import (
    As4Role,
    InProcessNode,
    serve_and_work,
    stop_all,
    wait_ready,
    without_oots_settings,
    write_configs,
)
from provider.conftest import pdf_text
from provider.parties import GARCIA, PROVIDER, query_request

from oots import edm
from oots.as4 import msh, profile
from oots.as4.model import PartyId, Payload
from oots.audit.journal import load_journal
from oots.audit.models import AuditEntry, AuditHead
from oots.edm import Identifier, LevelOfAssurance, Person, QueryError, QueryResponse, Text
from oots.network.local import free_port
from oots.node import NodeContext
from oots.provider.samples import sample_data_service
from oots.settings import load_settings
from oots.store import open_database
from oots.validation import validate

CORNER = "urn:oasis:names:tc:ebcore:partyid-type:unregistered:ES"
DOWN_SERVICE = "0b7c1a52-6a0e-4d7e-9f3c-5a1e2d3c4b5a"
DUTCH_SERVICE = "5d0c7e0e-3f1b-4a53-9a47-2c1d8e6f7a10"


class RecorderRole(As4Role):
    """The requester's side of the test: records every answer with its ebMS header."""

    name = "recorder"

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        with ctx.database.session() as session:
            session.execute(
                text("CREATE TABLE IF NOT EXISTS answers (ref TEXT PRIMARY KEY, action TEXT, message BLOB)")
            )
        self.messages: dict[str, msh.VerifiedMessage] = {}

    def as4_handlers(self) -> Mapping[str, Any]:
        return {
            profile.ACTION_EXECUTE_QUERY_RESPONSE: self.on_answer,
            profile.ACTION_EXCEPTION_RESPONSE: self.on_answer,
        }

    def on_answer(self, session: Session, message: msh.VerifiedMessage) -> None:
        ref = message.user_message.message_info.ref_to_message_id
        assert ref is not None
        self.messages[ref] = message
        session.execute(
            text("INSERT INTO answers VALUES (:r, :a, :m)"),
            {"r": ref, "a": message.user_message.collaboration_info.action, "m": message.payloads[0].data},
        )


class RecorderNode(InProcessNode[RecorderRole]):
    """The requester's side, built in this process: sends regrep bodies to red, records the answers."""

    def __init__(self, config: Path, port: int) -> None:
        super().__init__(config, port, RecorderRole)

    def submit(
        self,
        body: bytes,
        *,
        conversation: str | None = None,
        exchange_id: str | None = None,
        sent: dt.datetime | None = None,
    ) -> str:
        """Send ``body`` to red (in a new conversation unless one is given); the message id."""
        gateway = self.ctx.services["as4"]
        message = profile.user_message(
            message_id=gateway.access_point.new_message_id(),
            timestamp=sent or gateway.access_point.clock(),
            from_party=gateway.own_party,
            to_party=PartyId("red_gw", profile.PARTY_ID_TYPE),
            original_sender=PartyId("requester-es", CORNER),
            final_recipient=PartyId("provider-es", CORNER),
            conversation_id=conversation or str(uuid.uuid4()),
            exchange_id=exchange_id,
            specification_id=profile.SPECIFICATION_ID_V2 if exchange_id else None,
        )
        payload = Payload(f"{uuid.uuid4()}@blue.oots", profile.REGREP_MIME_TYPE, body)
        with self.ctx.database.session() as session:
            gateway.submit(session, message, [payload])
        return message.message_info.message_id

    def answer(self, message_id: str) -> msh.VerifiedMessage:
        """The answer to ``message_id`` (waited for, 60 s at most)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if message_id in self.role.messages:
                return self.role.messages[message_id]
            time.sleep(0.05)
        raise AssertionError("no answer came back")


class Requester(RecorderNode):
    def __init__(self, config: Path, port: int) -> None:
        super().__init__(config, port)
        self.provider_db = Path()
        self.provider_config = Path()
        self.provider_log = Path()

    def send(
        self, body: bytes, *, sent: dt.datetime | None = None, exchange_id: str | None = None
    ) -> tuple[str, msh.VerifiedMessage]:
        message_id = self.submit(body, sent=sent, exchange_id=exchange_id)
        return message_id, self.answer(message_id)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Requester]:
    with without_oots_settings():
        yield from _network(tmp_path_factory.mktemp("provflow"))


def _network(directory: Path) -> Iterator[Requester]:
    ports = {"blue": free_port(), "red": free_port()}
    down = free_port()  # nothing listens there: the register is down
    provider = f"""[provider]
samples = true

[[provider.registers]]
name = "down"
kind = "http"
url = "http://127.0.0.1:{down}"
timeout_seconds = 2

[[provider.data_services]]
identifier = "{DOWN_SERVICE}"
evidence_type_classification = "https://sr.oots.tech.europa.eu/evidencetypeclassifications/ES/{DOWN_SERVICE}"
titles = {{ EN = "Certificate from a register that is down" }}
model = "birth-certificate"
formats = ["application/pdf"]
jurisdiction = "ES"
register = "down"
authority = {{ identifier = "ESS9990001A", scheme_id = "urn:cef.eu:names:identifier:EAS:9920", name = "Registro" }}
"""
    dutch = directory / "geboorten.csv"
    dutch.write_text(
        "nummer,achternaam,voornamen,geboortedatum,registration_number,registered_on,registry_office\n"
        "1,Jansen,Pieter,1961-03-05,1961/12,1961-03-07,Burgerlijke Stand Utrecht\n"
        "2,Bakker,Anna,1970-01-02,1970/3,1970-01-05,\n",  # no registry office: no valid certificate
        encoding="utf-8",
    )
    provider += f"""
[[provider.registers]]
name = "dutch"
kind = "csv"
path = "{dutch.as_posix()}"

[provider.registers.fields]
record_id = "nummer"
family_name = "achternaam"
given_name = "voornamen"
date_of_birth = "geboortedatum"

[[provider.data_services]]
identifier = "{DUTCH_SERVICE}"
evidence_type_classification = "https://sr.oots.tech.europa.eu/evidencetypeclassifications/ES/{DUTCH_SERVICE}"
titles = {{ EN = "Certificate from a register of its own column names" }}
model = "birth-certificate"
formats = ["application/pdf", "application/xml"]
jurisdiction = "ES"
register = "dutch"
authority = {{ identifier = "ESS9990001A", scheme_id = "urn:cef.eu:names:identifier:EAS:9920", name = "Registro" }}
"""
    configs = write_configs(
        directory,
        ports,
        retry="[0.5, 1, 2]",
        node={"red": 'country = "ES"\nroles = ["provider"]'},
        tables={"red": provider},
    )
    red = configs["red"]
    log = directory / "red.log"
    procs = serve_and_work(red, ports["red"], log)
    try:
        wait_ready(ports["red"], procs[0], log)
        with Requester(configs["blue"], ports["blue"]) as blue:
            blue.provider_db = directory / "red" / "oots.db"
            blue.provider_config = red
            blue.provider_log = log
            yield blue
    finally:
        stop_all(procs)


def person(
    family: str, given: str, born: str, identifier: str | None = None, loa: LevelOfAssurance = LevelOfAssurance.HIGH
) -> Person:
    return Person(
        family_name=family,
        given_name=given,
        date_of_birth=dt.date.fromisoformat(born),
        identifier=Identifier(identifier, "eidas") if identifier else None,
        level_of_assurance=loa,
    )


def request_xml(
    subject: Person,
    *,
    kind: str = "births",
    version: edm.Version = edm.Version.EDM_V1,
    evidence_type: edm.DataServiceEvidenceType | None = None,
    fmt: str = "application/pdf",
) -> tuple[edm.QueryRequest, bytes]:
    request = query_request(subject, kind=kind, evidence_type=evidence_type, fmt=fmt, version=version)
    return request, edm.to_xml(request)


def checked(message: msh.VerifiedMessage, request: edm.QueryRequest) -> QueryResponse | QueryError:
    body = message.payloads[0].data
    report = validate(body)
    assert report.valid, [f.as_dict() for f in report.findings if f.blocking]
    document = edm.parse(body)
    assert isinstance(document, QueryResponse | QueryError)
    assert document.request_id == request.id
    return document


def error_of(message: msh.VerifiedMessage, request: edm.QueryRequest) -> QueryError:
    assert message.user_message.collaboration_info.action == profile.ACTION_EXCEPTION_RESPONSE
    document = checked(message, request)
    assert isinstance(document, QueryError)
    return document


def test_evidence_without_preview(network: Requester) -> None:
    request, body = request_xml(GARCIA)
    sent_id, answer = network.send(body)
    um = answer.user_message
    assert um.collaboration_info.action == profile.ACTION_EXECUTE_QUERY_RESPONSE
    assert um.message_info.ref_to_message_id == sent_id
    original = um.property(profile.ORIGINAL_SENDER)
    final = um.property(profile.FINAL_RECIPIENT)
    assert original is not None
    assert original.value == "provider-es"
    assert final is not None
    assert final.value == "requester-es"
    document = checked(answer, request)
    assert isinstance(document, QueryResponse)
    (package,) = document.packages
    (item,) = package.evidences
    attachment = next(p for p in answer.payloads if f"cid:{p.content_id}" == item.attachment.href)
    assert attachment.mime_type == "application/pdf"
    assert attachment.data.startswith(b"%PDF")
    assert item.metadata.is_about.natural_person is not None
    assert item.metadata.is_about.natural_person.family_name == "García Márquez"


def test_v2_request_keeps_its_exchange_id(network: Requester) -> None:
    request, body = request_xml(GARCIA, version=edm.Version.EDM_V2, fmt="application/xml")
    exchange = str(uuid.uuid4())
    _, answer = network.send(body, exchange_id=exchange)
    um = answer.user_message
    assert um.collaboration_info.action == profile.ACTION_EXECUTE_QUERY_RESPONSE
    prop = um.property(profile.EXCHANGE_ID)
    assert prop is not None
    assert prop.value == exchange
    document = checked(answer, request)
    assert isinstance(document, QueryResponse)
    assert document.specification is edm.Version.EDM_V2
    xml = [p for p in answer.payloads[1:] if p.mime_type == "application/xml"]
    assert xml
    assert b"BirthCertificate" in xml[0].data


def test_no_matching_record(network: Requester) -> None:
    request, body = request_xml(person("Nadie", "Nemo", "1950-01-01"))
    _, answer = network.send(body)
    error = error_of(answer, request)
    assert error.code == "EDM:ERR:0004"


def test_two_matching_records(network: Requester) -> None:
    request, body = request_xml(person("García", "María", "1982-10-07"))
    _, answer = network.send(body)
    error = error_of(answer, request)
    assert error.code == "EDM:ERR:0004"
    assert not answer.payloads[1:]  # never evidence


def test_unknown_evidence_type(network: Requester) -> None:
    offered = sample_data_service("ES", "births").evidence_type()
    unknown = edm.DataServiceEvidenceType(
        identifier=str(uuid.uuid4()),
        evidence_type_classification=f"https://sr.oots.tech.europa.eu/evidencetypeclassifications/ES/{uuid.uuid4()}",
        titles=offered.titles,
        distributed_as=offered.distributed_as,
    )
    request, body = request_xml(GARCIA, evidence_type=unknown)
    _, answer = network.send(body)
    assert error_of(answer, request).code == "EDM:ERR:0006"


def test_register_down(network: Requester) -> None:
    offered = edm.DataServiceEvidenceType(
        identifier=DOWN_SERVICE,
        evidence_type_classification=f"https://sr.oots.tech.europa.eu/evidencetypeclassifications/ES/{DOWN_SERVICE}",
        titles=(Text("Certificate", "EN"),),
        distributed_as=(edm.EvidenceTypeDistribution("application/pdf"),),
    )
    request, body = request_xml(GARCIA, evidence_type=offered)
    _, answer = network.send(body)
    assert error_of(answer, request).code == "EDM:ERR:0008"


def _dutch(fmt: str) -> edm.DataServiceEvidenceType:
    return edm.DataServiceEvidenceType(
        identifier=DUTCH_SERVICE,
        evidence_type_classification=f"https://sr.oots.tech.europa.eu/evidencetypeclassifications/ES/{DUTCH_SERVICE}",
        titles=(Text("Certificate", "EN"),),
        distributed_as=(edm.EvidenceTypeDistribution(fmt),),
    )


@pytest.mark.parametrize("fmt", ["application/pdf", "application/xml"])
def test_a_register_of_its_own_column_names_fills_the_evidence(network: Requester, fmt: str) -> None:
    request, body = request_xml(person("Jansen", "Pieter", "1961-03-05"), evidence_type=_dutch(fmt), fmt=fmt)
    _, answer = network.send(body)
    assert isinstance(checked(answer, request), QueryResponse)
    document = answer.payloads[1].data
    shown = pdf_text(document) if fmt == "application/pdf" else document.decode()
    assert "Jansen" in shown
    assert "Pieter" in shown


@pytest.mark.parametrize("fmt", ["application/pdf", "application/xml"])
def test_a_record_the_model_cannot_be_made_from_is_answered_and_journalled(network: Requester, fmt: str) -> None:
    request, body = request_xml(person("Bakker", "Anna", "1970-01-02"), evidence_type=_dutch(fmt), fmt=fmt)
    sent_id, answer = network.send(body)
    assert error_of(answer, request).code == "EDM:ERR:0008"
    con = sqlite3.connect(network.provider_db, timeout=10)
    try:
        rows = con.execute("SELECT details, message_ids FROM audit_entries WHERE side = 'provider'").fetchall()
    finally:
        con.close()
    reasons = [json.loads(r[0]).get("reason") for r in rows if sent_id in json.loads(r[1])]
    assert "EVIDENCE:INVALID" in reasons
    logged = network.provider_log.read_text(encoding="utf-8")
    assert f"data service {DUTCH_SERVICE}: ValidationFailed:" in logged
    assert "registry_office" in logged


def test_deadline_passed(network: Requester) -> None:
    request, body = request_xml(GARCIA)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    _, answer = network.send(body, sent=old)
    assert error_of(answer, request).code == "EDM:ERR:0005"


def test_invalid_request_names_the_rules(network: Requester) -> None:
    request, body = request_xml(GARCIA)
    broken = body.replace(b">application/pdf<", b">application/x-not-a-format<")
    assert broken != body
    _, answer = network.send(broken)
    error = error_of(answer, request)
    assert error.code == "EDM:ERR:0003"
    assert error.detail is not None
    assert "R-EDM-" in error.detail


def test_a_huge_request_is_refused_unread(network: Requester) -> None:
    request, body = request_xml(GARCIA)
    huge = body.replace(b"</query:QueryRequest>", b"<!--" + b"x" * 1_100_000 + b"--></query:QueryRequest>")
    _, answer = network.send(huge)
    assert answer.user_message.collaboration_info.action == profile.ACTION_EXCEPTION_RESPONSE
    document = edm.parse(answer.payloads[0].data)
    assert isinstance(document, QueryError)
    assert document.code == "EDM:ERR:0003"
    assert document.request_id == request.id
    assert b"xxxx" not in answer.payloads[0].data


def test_a_request_with_an_oversized_name_is_refused_naming_the_request(network: Requester) -> None:
    # The error named no request id before: the requester could not match it to its exchange.
    request, body = request_xml(person("García Márquez", "M" * 1_100_000, "1982-10-07", "ES/ES/12345678Z"))
    sent_id, answer = network.send(body)
    error = error_of(answer, request)  # valid by the official rules, and its requestId is the request's
    assert error.code == "EDM:ERR:0003"
    assert journalled(network, sent_id) == [
        ("request_received", "INVALID:TOO_LARGE", request.id),
        ("error_sent", "INVALID:TOO_LARGE", request.id),
    ]


def test_a_publisher_the_service_does_not_issue_for_is_refused_and_journalled(network: Requester) -> None:
    # Before, the evidence came issued by the service's own authority, which the request had not named.
    request = query_request(GARCIA, provider=PROVIDER)  # the authority of red's own services, not of births
    sent_id, answer = network.send(edm.to_xml(request))
    error = error_of(answer, request)
    assert (error.code, error.exception_type) == ("EDM:ERR:0006", "rs:UnresolvedReferenceExceptionType")
    assert journalled(network, sent_id) == [
        ("request_received", "UNKNOWN:EVIDENCE_PROVIDER", request.id),
        ("error_sent", "UNKNOWN:EVIDENCE_PROVIDER", request.id),
    ]


def test_a_name_over_the_limit_is_refused_naming_the_field_and_journalled(network: Requester) -> None:
    # Before, a 200,000-character name under the byte limit was matched against the register.
    long_name = "Garcíaaaaa" * 20_000
    request, body = request_xml(dataclasses.replace(GARCIA, family_name=long_name))
    sent_id, answer = network.send(body)
    error = error_of(answer, request)
    assert error.code == "EDM:ERR:0003"
    assert error.detail == "The request is not acceptable: natural_person.family_name is longer than 200 characters."
    assert journalled(network, sent_id) == [
        ("request_received", "INVALID:PERSON_TOO_LONG", request.id),
        ("error_sent", "INVALID:PERSON_TOO_LONG", request.id),
    ]


def journalled(network: Requester, sent_id: str) -> list[tuple[str, str, str | None]]:
    """The provider's journal entries of the request message ``sent_id``: (event, reason, request id)."""
    con = sqlite3.connect(network.provider_db, timeout=10)
    try:
        rows = con.execute("SELECT event, details, message_ids FROM audit_entries WHERE side = 'provider'").fetchall()
    finally:
        con.close()
    mine = [(event, json.loads(details)) for event, details, ids in rows if sent_id in json.loads(ids)]
    return [(event, details["reason"], details.get("request_id")) for event, details in mine]


def test_the_provider_journals_each_answer_without_personal_data(network: Requester) -> None:
    request, body = request_xml(GARCIA)
    sent_id, _ = network.send(body)
    con = sqlite3.connect(network.provider_db, timeout=10)
    try:
        rows = con.execute(
            "SELECT event, outcome, details, message_ids, personal FROM audit_entries WHERE side = 'provider'"
        ).fetchall()
    finally:
        con.close()
    mine = [r for r in rows if sent_id in json.loads(r[3])]
    assert [r[0] for r in mine] == ["request_received", "evidence_sent"]
    details = json.loads(mine[1][2])
    assert details["reason"] == "MATCH:IDENTIFIER"
    assert details["request_id"] == request.id
    text_of_all = " ".join(str(r[:4]) for r in rows)
    assert "García" not in text_of_all
    assert "12345678Z" not in text_of_all
    assert mine[0][4]  # the person's identifier is kept, encrypted
    reasons = {json.loads(r[2]).get("reason") for r in rows}
    assert {"NO_MATCH:NO_CANDIDATE", "UNKNOWN:EVIDENCE_TYPE", "REGISTER:FAILED", "TIMEOUT:DEADLINE"} <= reasons


def test_the_provider_journal_chain_holds_with_each_answer_and_its_entries_in_one_commit(network: Requester) -> None:
    # the two entries of an answer are added without flushing in between: consecutive sequence
    # numbers, the head at the last one, and a seal chain that verifies
    _, body = request_xml(GARCIA)
    sent_id, _ = network.send(body)
    settings = load_settings(network.provider_config)
    database = open_database(settings)
    try:
        with database.session() as session:
            assert load_journal(settings).verify(session).ok
            entries = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars().all()
            head = session.execute(select(AuditHead)).scalar_one()
            mine = [e for e in entries if sent_id in e.message_ids]
            assert [e.event for e in mine] == ["request_received", "evidence_sent"]
            assert mine[1].seq == mine[0].seq + 1
            assert [e.seq for e in entries] == list(range(entries[0].seq, head.seq + 1))
    finally:
        database.dispose()


def test_the_answer_prepared_before_the_delivery_is_the_one_sent(network: Requester, tmp_path: Path) -> None:
    # the worker prepares a delivered request before the delivery's transaction (validation,
    # matching, rendering, packing); the delivery then keeps that very answer, and a delivery with
    # nothing prepared makes its answer itself
    from oots.as4.models import As4Inbound, As4Outbound
    from oots.node.app import build_context
    from oots.provider.role import create_role

    _, body = request_xml(GARCIA)
    sent_id, _ = network.send(body)
    settings = load_settings(network.provider_config)
    red = build_context(settings)
    try:
        with red.database.session() as session:
            inbound_id = session.execute(select(As4Inbound.id).where(As4Inbound.message_id == sent_id)).scalar_one()
            _, message = red.services["as4"].store.load_inbound(session, inbound_id)
    finally:
        red.database.dispose()
    # a second provider with the same keys and partners on a database of its own
    fresh = settings.model_copy(update={"node": settings.node.model_copy(update={"data_dir": tmp_path})})
    ctx = build_context(fresh)
    role = create_role(ctx)
    receive = role.intake.receive
    calls: list[str] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append("receive")
        return receive(*args, **kwargs)

    role.intake.receive = counted  # type: ignore[method-assign]
    try:
        role.prepare_request(message)
        prepared = role._prepared[sent_id]
        assert prepared.reply is not None
        assert prepared.packed is not None
        with ctx.database.session() as session:
            role.on_request(session, message)
        assert calls == ["receive"]
        assert not role._prepared
        with ctx.database.session() as session:
            role.on_request(session, message)  # nothing prepared this time
        assert calls == ["receive", "receive"]
        with ctx.database.session() as session:
            sent = session.execute(select(As4Outbound.message_id, As4Outbound.body).order_by(As4Outbound.id)).all()
        assert sent[0] == (prepared.reply.message_info.message_id, prepared.packed.body)
        assert len(sent) == 2
        assert sent[1][0] != sent[0][0]
    finally:
        ctx.database.dispose()
