"""The parties of the provider's tests: a Spanish requester and provider, María José García Márquez, and
:func:`query_request`, a request between them for one of Spain's sample data services.

García Márquez is in Spain's sample registers (births, diplomas, residence), so requests about her match.
The flow and browser tests import this module too (``from provider.parties import ...``, with
``tests/unit`` on ``sys.path``).
"""

from __future__ import annotations

import datetime as dt

from oots import edm
from oots.edm import Agent, Identifier, LevelOfAssurance, Person, Text
from oots.provider.render import Authority
from oots.provider.samples import sample_data_service

__all__ = ["GARCIA", "OTHER_AUTHORITY", "OTHER_PROVIDER", "PROVIDER", "REQUESTER", "agent_of", "query_request"]


def agent_of(authority: Authority) -> Agent:
    """The request's ``EvidenceProvider`` naming ``authority`` (as the DSD lists it under Publisher)."""
    return Agent(Identifier(authority.identifier, authority.scheme_id), (Text(authority.name, "EN"),))


REQUESTER = Agent(Identifier("ESS9990002B", "urn:cef.eu:names:identifier:EAS:9920"), (Text("Sede", "ES"),))
#: The authority the tests' own data services (in ``[[provider.data_services]]``) issue as; no sample service does.
PROVIDER = Agent(Identifier("ESS9990001A", "urn:cef.eu:names:identifier:EAS:9920"), (Text("Ministerio", "ES"),))
#: A further authority a Spanish service may issue for, and the request's agent that names it.
OTHER_AUTHORITY = Authority("17750001500019", "urn:cef.eu:names:identifier:EAS:0009", "Rectorado de Madrid")
OTHER_PROVIDER = Agent(Identifier(OTHER_AUTHORITY.identifier, OTHER_AUTHORITY.scheme_id), (Text("Rectorado", "ES"),))
GARCIA = Person(
    family_name="García Márquez",
    given_name="María José",
    date_of_birth=dt.date(1982, 10, 7),
    identifier=Identifier("ES/ES/12345678Z", "eidas"),
    level_of_assurance=LevelOfAssurance.HIGH,
)


def query_request(
    subject: Person = GARCIA,
    *,
    kind: str = "births",
    evidence_type: edm.DataServiceEvidenceType | None = None,
    fmt: str = "application/pdf",
    procedure: str | None = "R1",
    preview: bool = False,
    version: edm.Version = edm.Version.EDM_V1,
    issued: dt.datetime | None = None,
    provider: Agent | None = None,
) -> edm.QueryRequest:
    """A request from :data:`REQUESTER` about ``subject``, for Spain's sample ``kind`` service (or
    ``evidence_type``) in its distribution of format ``fmt``, addressed to ``provider``: by default the
    sample service's authority, or :data:`PROVIDER` for an ``evidence_type`` of the tests' own services."""
    sample = sample_data_service("ES", kind)
    offered = evidence_type or sample.evidence_type()
    if provider is None:
        provider = PROVIDER if evidence_type is not None else agent_of(sample.authority)
    dist = next(d for d in offered.distributed_as if d.format == fmt)
    return edm.evidence_request(
        requester=REQUESTER,
        provider=provider,
        evidence_type=edm.requested_evidence_type(offered, dist),
        subject=subject,
        procedure=procedure,
        possibility_for_preview=preview,
        version=version,
        issued=issued,
    )
