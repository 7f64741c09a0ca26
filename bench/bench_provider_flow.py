"""Evidence requests answered per second by the provider role, without preview.

One provider node (SQLite database, dev keys) in this process; each request goes through the role's
AS4 handler as the queue would deliver it: validation with the official rules, parsing, identity
matching against the Spanish sample register, the evidence document, the EDM response, the AS4
answer packed, signed and encrypted into the outbound queue, and the audit journal — one
transaction per request.

Two figures: with the sample PDF rendered for each request (a one-page document), and with a PDF of
about 100 KB (the same rendering path, its output replaced by a 100 KB document so that the figure
measures the exchange and not the PDF layout; the rendering of a 100 KB PDF itself is in
``bench provider``).
``BENCH_REQUESTS`` sets the number of requests (default 200).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from oots import edm
from oots.as4 import profile
from oots.as4.model import PartyId, Payload
from oots.as4.msh import VerifiedMessage
from oots.network.pair import write_node_configs
from oots.node import build_context
from oots.provider import dataservice
from oots.provider.render import RenderedDocument
from oots.provider.samples import load_people, sample_data_service
from oots.settings import load_settings

CORNER = "urn:oasis:names:tc:ebcore:partyid-type:unregistered:ES"


def _config(directory: Path) -> Path:
    nowhere = "http://127.0.0.1:9/as4"  # blue only appears as red's partner; nothing is sent to it
    return write_node_configs(
        directory,
        {"red": nowhere, "blue": nowhere},
        node={"red": 'country = "ES"\nroles = ["provider"]'},
        tables={"red": "[provider]\nsamples = true"},
    )["red"]


def _request() -> bytes:
    person = next(p for p in load_people() if p.identifier == "ES/ES/12345678Z")
    service = sample_data_service("ES", "births")
    offered = service.evidence_type()
    requester = edm.Agent(
        identifier=edm.Identifier("ESS9990002B", "urn:cef.eu:names:identifier:EAS:9920"),
        names=(edm.Text("Sede", "ES"),),
    )
    request = edm.evidence_request(
        requester=requester,
        provider=service.authority_agent(),  # the register's authority: the evidence path, not EDM:ERR:0006
        evidence_type=edm.requested_evidence_type(offered, offered.distributed_as[0]),
        subject=edm.Person(
            family_name=person.family_name,
            given_name=person.given_name,
            date_of_birth=person.date_of_birth,
            identifier=edm.Identifier(person.identifier, "eidas"),
            level_of_assurance=edm.LevelOfAssurance.HIGH,
        ),
        procedure="R1",
        version=edm.Version.EDM_V1,
    )
    return edm.to_xml(request)


def _measure(ctx: Any, body: bytes, count: int) -> tuple[float, int, float]:
    """(answered per second, largest AS4 answer in bytes, answered per CPU-second of this process)."""
    role = ctx.services["roles"][0]
    gateway = ctx.services["as4"]
    size = 0
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        message = profile.user_message(
            message_id=gateway.access_point.new_message_id(),
            timestamp=dt.datetime.now(dt.UTC),
            from_party=PartyId("blue_gw", profile.PARTY_ID_TYPE),
            to_party=gateway.own_party,
            original_sender=PartyId("requester-es", CORNER),
            final_recipient=PartyId("provider-es", CORNER),
            conversation_id=edm.new_uuid(),
        )
        verified = VerifiedMessage(message, (Payload("req@blue", profile.REGREP_MIME_TYPE, body),), None, ())
        with ctx.database.session() as session:
            role.on_request(session, verified)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    with ctx.database.session() as session:
        size = int(session.execute(text("SELECT max(length(body)) FROM as4_outbound")).scalar() or 0)
        legs = set(session.scalars(text("SELECT DISTINCT leg FROM as4_outbound")))
    if legs != {"ootsResponseLeg"}:  # an error answer is another, cheaper path: not what this bench times
        raise RuntimeError(f"the provider answered on {sorted(legs)}, not with evidence only")
    return count / elapsed, size, count / cpu


def run() -> None:
    count = int(os.environ.get("BENCH_REQUESTS", "200"))
    body = _request()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = build_context(load_settings(_config(Path(tmp))))
        _measure(ctx, body, 5)  # warm-up: rule sets compiled, fonts loaded
        rate, size, per_cpu = _measure(ctx, body, count)
        print(
            f"   {count} requests, sample PDF rendered each time: {rate:.1f} answered/s, "
            f"{per_cpu:.1f} per CPU-second ({size / 1024:.0f} KB)"
        )

        big = b"%PDF-1.7\n" + os.urandom(100 * 1024)
        original = dataservice.render

        def render_100k(content: Any, media_type: str) -> RenderedDocument:
            document = original(content, media_type)
            return dataclasses.replace(document, content=big)

        dataservice.render = render_100k  # type: ignore[assignment]
        try:
            rates, cpu_rates = [], []
            for _ in range(3):
                rate, size, per_cpu = _measure(ctx, body, max(1, count // 3))
                rates.append(rate)
                cpu_rates.append(per_cpu)
        finally:
            dataservice.render = original
        print(
            f"   PDF of about 100 KB: {statistics.median(rates):.1f} answered/s, "
            f"{statistics.median(cpu_rates):.1f} per CPU-second (median of 3 runs of {max(1, count // 3)}; "
            f"answer {size / 1024:.0f} KB; load average {os.getloadavg()[0]:.1f}; target >= 50/s)"
        )
