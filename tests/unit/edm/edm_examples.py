"""Small hand-made model objects for tests."""

from __future__ import annotations

import datetime as dt

from oots import edm

T0 = dt.datetime(2026, 11, 27, 10, 0, 0, 123000, tzinfo=dt.UTC)

REQUESTER = edm.Agent(
    identifier=edm.Identifier("DK22233223", "urn:cef.eu:names:identifier:EAS:0096"),
    names=(edm.Text("Denmark University Portal", "EN"),),
    address=edm.Address(admin_unit_level_1="DK", post_city_name="Copenhagen"),
)
PLATFORM = edm.Agent(
    identifier=edm.Identifier("OOTSDK", "urn:oasis:names:tc:ebcore:partyid-type:unregistered:DK"),
    names=(edm.Text("Intermediary platform", "EN"),),
)
PROVIDER = edm.Agent(
    identifier=edm.Identifier("DE73524311", "urn:cef.eu:names:identifier:EAS:9930"),
    names=(edm.Text("Civil Registration Office Berlin I", "EN"),),
    address=edm.Address(admin_unit_level_1="DE"),
)
PERSON = edm.Person(
    level_of_assurance=edm.LevelOfAssurance.HIGH,
    identifier=edm.Identifier("DK/DE/123123123", "eidas"),
    family_name="Smith",
    given_name="John",
    date_of_birth=dt.date(1970, 3, 1),
)
COMPANY = edm.LegalPerson(
    level_of_assurance=edm.LevelOfAssurance.SUBSTANTIAL,
    legal_person_identifier=edm.Identifier("SE/DE/5567891234", "eidas"),
    legal_name="Example AB",
)
EVIDENCE_TYPE = edm.DataServiceEvidenceType(
    identifier="2af27699-f131-4411-8fdb-9e8cd4e8bded",
    evidence_type_classification="https://sr.oots.tech.ec.europa.eu/evidencetypeclassifications/DE/ca8afed6-2dc0-422a-a931-d21c3d8d370e",
    titles=(edm.Text("Certificate of Birth", "EN"),),
    distributed_as=(edm.EvidenceTypeDistribution("application/pdf"),),
)
REQUIREMENT = edm.Requirement(
    identifier="https://sr.oots.tech.ec.europa.eu/requirements/315cfd75-6605-49c4-b0fe-799833b41099",
    names=(edm.Text("Proof of Birth", "EN"),),
)
METADATA = edm.Evidence(
    identifier="37a169f1-9cf6-4aa8-ac24-b083fa569173",
    is_about=edm.IsAbout(natural_person=PERSON),
    issuing_authority=PROVIDER,
    is_conformant_to=edm.EvidenceType(
        evidence_type_classification=EVIDENCE_TYPE.evidence_type_classification, titles=EVIDENCE_TYPE.titles
    ),
    issuing_date=dt.date(2026, 11, 1),
    distribution=edm.Distribution("application/pdf"),
)


def request(version: edm.Version = edm.Version.EDM_V2) -> edm.QueryRequest:
    return edm.evidence_request(
        requester=REQUESTER,
        provider=PROVIDER,
        evidence_type=EVIDENCE_TYPE,
        subject=PERSON,
        procedure="T3",
        requirements=[REQUIREMENT],
        version=version,
        issued=T0,
    )
