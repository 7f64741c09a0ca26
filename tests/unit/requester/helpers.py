"""A requester wired to the real Common Services app in process, a recording outbox and a sample provider.

The provider's answers are made the way the provider role makes them: ``oots.provider`` sample data
services identify the person and render the evidence; ``oots.edm`` builds the response, the error or
the preview-required answer; the access point's verified form (``VerifiedMessage``) is what the
requester's AS4 handler receives.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cs.cs_helpers import DEMO, AppTransport
from sqlalchemy.orm import Session

from oots import edm
from oots.as4 import profile
from oots.as4.model import PartyId, Payload, UserMessage
from oots.as4.msh import VerifiedMessage
from oots.cs.client import CommonServicesClient
from oots.cs.datafile import parse_catalogue
from oots.cs.keys import CsPki
from oots.cs.server import create_app
from oots.cs.trust import TrustStore
from oots.errors import CertificateNotValid, NotFound
from oots.node.roles import NodeContext
from oots.provider.samples import load_people, sample_data_service
from oots.requester import RequesterRole
from oots.settings import Settings
from oots.store import open_database
from oots.store.queue import Worker

API_KEY = "portal-key-0123456789"
OTHER_KEY = "other-portal-key-987654"
BIRTH_REQUIREMENT = "https://sr.oots.tech.ec.europa.eu/requirements/d1ffb6b9-e588-513c-b54c-2beaebbe6471"
RESIDENCE_REQUIREMENT = "https://sr.oots.tech.ec.europa.eu/requirements/b3197a6d-d724-5c71-af5a-bd53846bc1cb"
BE_R1 = "4075e0f7-d363-5649-81b8-579fc6f81ef6"


def catalogue_text(two_requirements: bool = False) -> str:
    text = DEMO.read_text(encoding="utf-8")
    if two_requirements:
        # the Belgian procedure R1 also needs a proof of residence (a second requirement)
        text = re.sub(
            r'(id = "' + re.escape(RESIDENCE_REQUIREMENT) + r'"\n(?:.*\n){2}procedures = \[)',
            r'\1"' + BE_R1 + '", ',
            text,
            count=1,
        )
    return text


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@dataclass
class RecordingOutbox:
    """The outbox of the tests: keeps what would go over AS4; unknown access points are NotFound."""

    known: set[str] = field(default_factory=lambda: {"AP_BE_01", "AP_DE_01", "AP_FR_01", "AP_IT_01"})
    own_party: PartyId = field(default_factory=lambda: PartyId("AP_NL_01", profile.PARTY_ID_TYPE))
    sent: list[tuple[UserMessage, list[Payload]]] = field(default_factory=list)
    #: What each submit was given as packed ahead (None: packed in the transaction).
    packed: list[object | None] = field(default_factory=list)
    #: Access points whose certificate is not valid (as the node's access point refuses them): the reason.
    unusable: dict[str, str] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def new_message_id(self) -> str:
        return f"m{next(self._ids)}@ap-nl.oots"

    def pack(self, message: UserMessage, payloads: Sequence[Payload]) -> object | None:
        self._check(message)
        return ("packed", message.message_info.message_id)

    def submit(
        self, session: Session, message: UserMessage, payloads: Sequence[Payload], *, packed: object | None = None
    ) -> None:
        self._check(message)
        self.sent.append((message, list(payloads)))
        self.packed.append(packed)

    def _check(self, message: UserMessage) -> None:
        reason = self.unusable.get(message.party_info.to_party.party_id.value)
        if reason is not None:
            raise CertificateNotValid(reason)
        if message.party_info.to_party.party_id.value not in self.known:
            raise NotFound(f"no AS4 partner {message.party_info.to_party.party_id.value!r} is configured")

    def last_request(self) -> tuple[UserMessage, edm.QueryRequest]:
        message, payloads = self.sent[-1]
        doc = edm.parse(payloads[0].data)
        assert isinstance(doc, edm.QueryRequest)
        return message, doc


def person_json(name: str = "Peeters") -> dict[str, Any]:
    person = next(p for p in load_people() if p.family_name == name)
    return {
        "natural_person": {
            "level_of_assurance": "High",
            "identifier": {"value": person.identifier, "scheme_id": "eidas"},
            "family_name": person.family_name,
            "given_name": person.given_name,
            "date_of_birth": person.date_of_birth.isoformat(),
        }
    }


class Provider:
    """Answers requests like an evidence provider (the sample data services of ``oots.provider``)."""

    def __init__(self, country: str = "BE", kind: str = "births") -> None:
        self.service = sample_data_service(country, kind)
        self.agent = edm.Agent(
            identifier=edm.Identifier(self.service.authority.identifier, self.service.authority.scheme_id),
            names=(edm.Text(self.service.authority.name, "EN"),),
        )

    def _message(self, request_message: UserMessage, action: str) -> UserMessage:
        props = {p.name: p for p in request_message.message_properties}
        return profile.user_message(
            message_id=f"r{id(self)}-{request_message.message_info.message_id}",
            timestamp=dt.datetime.now(dt.UTC),
            from_party=request_message.party_info.to_party.party_id,
            to_party=request_message.party_info.from_party.party_id,
            original_sender=PartyId(props["finalRecipient"].value, props["finalRecipient"].type),
            final_recipient=PartyId(props["originalSender"].value, props["originalSender"].type),
            conversation_id=request_message.collaboration_info.conversation_id,
            action=action,
            ref_to_message_id=request_message.message_info.message_id,
        )

    def evidence(
        self, message: UserMessage, request: edm.QueryRequest, *, as_person: edm.Person | None = None
    ) -> VerifiedMessage:
        """The evidence for the request's person (or for ``as_person``, a person of the register)."""
        subject = as_person or request.natural_person
        assert subject is not None
        provision = self.service.provide(subject, request.evidence_request.distributed_as)
        payloads, evidences = [], []
        for i, provided in enumerate(provision.evidences):
            cid = f"ev{i}@provider.oots"
            payloads.append(Payload(cid, provided.document.media_type, provided.document.content))
            # the file name as the attachment's title, as a provider's node sends it
            evidences.append(edm.response_evidence(provided.metadata, f"cid:{cid}", title=provided.document.filename))
        response = edm.evidence_response(request, provider=self.agent, evidences=evidences)
        regrep = Payload("regrep@provider.oots", profile.REGREP_MIME_TYPE, edm.to_xml(response))
        um = self._message(message, profile.ACTION_EXECUTE_QUERY_RESPONSE)
        return VerifiedMessage(um, (regrep, *payloads), None, ())

    def error(self, message: UserMessage, request: edm.QueryRequest, code: str) -> VerifiedMessage:
        err = edm.query_error(code, request=request, error_provider=self.agent, detail="as the test wants")
        return self._wrap(message, err)

    def preview(self, message: UserMessage, request: edm.QueryRequest, location: str) -> VerifiedMessage:
        err = edm.preview_required(request, location=location, error_provider=self.agent)
        return self._wrap(message, err)

    def answered(self, message: UserMessage, action: str, payloads: Sequence[Payload]) -> VerifiedMessage:
        """An answer made elsewhere (a real provider's intake) sent back to ``message``."""
        return VerifiedMessage(self._message(message, action), tuple(payloads), None, ())

    def _wrap(self, message: UserMessage, doc: edm.QueryError) -> VerifiedMessage:
        regrep = Payload("regrep@provider.oots", profile.REGREP_MIME_TYPE, edm.to_xml(doc))
        return VerifiedMessage(self._message(message, profile.ACTION_EXCEPTION_RESPONSE), (regrep,), None, ())


@dataclass
class Node:
    ctx: NodeContext
    role: RequesterRole
    outbox: RecordingOutbox
    clock: Clock
    worker: Worker
    cs_transport: AppTransport

    def drain(self) -> int:
        """Do the node's background work until none is left, as its worker would: the role's periodic
        work (the timeout sweep) until it finds nothing, then every due queue job. How much was done."""
        done = 0
        for work in self.role.periodic():
            while ended := work.tick():
                done += ended if isinstance(ended, int) else 1
        return done + self.worker.drain()

    def deliver(self, message: VerifiedMessage) -> None:
        handler = self.role.as4_handlers()[message.user_message.collaboration_info.action]
        with self.ctx.database.session() as session:
            handler(session, message)


def make_node(
    tmp_path: Path,
    pki: CsPki,
    *,
    two_requirements: bool = False,
    webhook_url: str = "",
    preview: bool = True,
    webhook_transport: Any = None,
    oauth_secret: str = "",
    database_url: str = "",
    catalogue: str = "",
    requester: Mapping[str, Any] | None = None,
) -> Node:
    """A requester node on the demo catalogue (``catalogue``: another catalogue's text instead)."""
    settings = Settings(
        node={"name": "nl-portal", "country": "BE", "data_dir": str(tmp_path), "base_url": "https://portal.example"},
        database={"url": database_url},
        queue={"group_commit_seconds": 0, "backoff_base_seconds": 0.01, "backoff_max_seconds": 0.01},
        requester={
            "identifier": "NL12345678",
            "scheme_id": "urn:cef.eu:names:identifier:EAS:0106",
            "name": "Example procedure portal",
            "possibility_for_preview": preview,
            "clients": [
                {
                    "id": "portal",
                    "api_key_sha256": hashlib.sha256(API_KEY.encode()).hexdigest(),
                    "webhook_url": webhook_url,
                    "webhook_secret": "s3cret-webhook-key",
                },
                {"id": "other", "api_key_sha256": hashlib.sha256(OTHER_KEY.encode()).hexdigest()},
                *(
                    [
                        {
                            "id": "oauth-portal",
                            "client_secret_sha256": hashlib.sha256(oauth_secret.encode()).hexdigest(),
                        },
                        {
                            "id": "oauth-reader",
                            "client_secret_sha256": hashlib.sha256(oauth_secret.encode()).hexdigest(),
                            "scopes": ["exchanges:read"],
                        },
                    ]
                    if oauth_secret
                    else []
                ),
            ],
            **(requester or {}),
        },
    )
    import tomllib

    parsed = parse_catalogue(tomllib.loads(catalogue or catalogue_text(two_requirements)))
    transport = AppTransport(create_app(parsed, pki.signer()))
    cs = CommonServicesClient(
        eb_url="http://cs.test", dsd_url="http://cs.test/dsd", trust=TrustStore((pki.root,)), transport=transport
    )
    clock = Clock()
    outbox = RecordingOutbox()
    ctx = NodeContext(
        settings=settings,
        database=open_database(settings),
        clock=clock,
        services={"cs_client": cs, "requester_outbox": outbox},
    )
    role = RequesterRole(ctx, webhook_transport=webhook_transport)
    worker = Worker(ctx.database, settings.queue, clock=clock)
    preparers = role.job_preparers()
    for kind, handler in role.job_handlers().items():
        worker.register(kind, handler, prepare=preparers.get(kind))
    return Node(ctx, role, outbox, clock, worker, transport)


class ListTransport(httpx.BaseTransport):
    """A sync transport to an ASGI app that keeps repeated headers (several Set-Cookie)."""

    def __init__(self, app: Any) -> None:
        self.asgi = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            reply = await self.asgi.handle_async_request(request)
            body = await reply.aread()
            return reply.status_code, list(reply.headers.raw), body

        status, headers, content = asyncio.run(call())
        headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
        return httpx.Response(status, headers=headers, content=content)
