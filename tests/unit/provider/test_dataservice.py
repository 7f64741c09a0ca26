"""Data services: identify, render, provide — and the response they feed passes the official rules."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from oots import edm
from oots.edm import (
    Address,
    Agent,
    EvidenceTypeDistribution,
    Gender,
    Identifier,
    LegalPerson,
    LevelOfAssurance,
    Person,
    Text,
    Version,
)
from oots.errors import RegisterError
from oots.provider.datamodels import MODELS
from oots.provider.dataservice import (
    DataService,
    EvidenceRefused,
    PreviewPolicy,
    SubjectKind,
    legal_person_query,
    person_query,
)
from oots.provider.matching import MatchOutcome
from oots.provider.registers import CsvRegister, FieldMap
from oots.provider.render import MEDIA_JSON, MEDIA_PDF, MEDIA_XML
from oots.provider.samples import SAMPLE_COUNTRIES, SAMPLE_KINDS, load_people, sample_data_service, sample_data_services

DAY = dt.date(2026, 11, 27)
ELENI = Person(
    "Papadopoulou", "Eleni", dt.date(1987, 3, 25), LevelOfAssurance.HIGH, Identifier("EL/DE/AB1234567", "eidas")
)


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"00000000-0000-4000-8000-{next(counter):012d}"


def test_person_query_takes_every_attribute() -> None:
    person = Person(
        "Rossi",
        "Marco",
        dt.date(1985, 4, 12),
        LevelOfAssurance.SUBSTANTIAL,
        Identifier("IT/BE/X", "eidas"),
        birth_name="Rossi",
        place_of_birth="Milano",
        current_address=Address("IT", post_code="20124"),
        gender=Gender.MALE,
    )
    query = person_query(person)
    assert (query.identifier, query.place_of_birth, query.gender, query.post_code) == (
        "IT/BE/X",
        "Milano",
        "Male",
        "20124",
    )
    legal = LegalPerson(
        "Acme",
        identifiers=(Identifier("NL999000808B01", "VAT"),),
        legal_person_identifier=Identifier("NL/BE/99900808", "eidas"),
    )
    lq = legal_person_query(legal)
    assert lq.identifiers == (("VAT", "NL999000808B01"),)
    assert lq.legal_person_identifier == "NL/BE/99900808"


def test_provide_one_pdf() -> None:
    service = sample_data_service("EL", "births")
    provision = service.provide(ELENI, issuing_date=DAY, new_id=ids())
    assert provision.match.reason == "MATCH:IDENTIFIER"
    [evidence] = provision.evidences
    assert evidence.document.media_type == MEDIA_PDF
    meta = evidence.metadata
    assert meta.identifier == "00000000-0000-4000-8000-000000000001"
    assert meta.identifier in evidence.document.filename
    assert meta.issuing_date == DAY
    assert meta.distribution.format == MEDIA_PDF
    assert meta.distribution.conforms_to is None
    assert meta.is_conformant_to.evidence_type_classification == service.evidence_type_classification
    assert meta.issuing_authority.identifier.scheme_id == "urn:cef.eu:names:identifier:EAS:9933"
    assert meta.is_about.natural_person is not None
    assert meta.is_about.natural_person.family_name == "Παπαδοπούλου"
    assert meta.is_about.natural_person.identifier == ELENI.identifier


def test_provide_several_distributions_and_annexes(extract_pdf_text: Callable[[bytes], str]) -> None:
    service = sample_data_service("EL", "diplomas")
    wanted = [
        EvidenceTypeDistribution(MEDIA_PDF),
        EvidenceTypeDistribution(MEDIA_XML, service.model.conforms_to),
        EvidenceTypeDistribution(MEDIA_JSON),
    ]
    provision = service.provide(ELENI, wanted, issuing_date=DAY, new_id=ids())
    docs = provision.evidences
    assert [(e.document.media_type, e.annex) for e in docs] == [
        (MEDIA_PDF, False),
        (MEDIA_PDF, True),
        (MEDIA_XML, False),
        (MEDIA_XML, True),
        (MEDIA_JSON, False),
        (MEDIA_JSON, True),
    ]
    assert len({e.metadata.identifier for e in docs}) == 6
    assert docs[3].metadata.distribution.conforms_to == docs[3].document.conforms_to
    assert "diploma-supplement" in (docs[3].document.conforms_to or "")
    assert "Πτυχίο Νομικής" in extract_pdf_text(docs[0].document.content)
    assert "Diploma supplement" in extract_pdf_text(docs[1].document.content)


def test_no_match_and_ambiguity_are_refused_with_0004() -> None:
    service = sample_data_service("IT", "births")
    nobody = Person("Bianchi", "Luca", dt.date(1990, 1, 1), LevelOfAssurance.HIGH)
    with pytest.raises(EvidenceRefused) as caught:
        service.provide(nobody)
    assert caught.value.code == "EDM:ERR:0004"
    assert caught.value.reason == "NO_MATCH:NO_CANDIDATE"
    rossi = Person("Rossi", "Marco", dt.date(1985, 4, 12), LevelOfAssurance.HIGH)
    with pytest.raises(EvidenceRefused) as caught:
        service.provide(rossi)
    assert caught.value.code == "EDM:ERR:0004"
    assert caught.value.reason == "AMBIGUOUS:NAMES:n=2"
    # the place of birth settles it
    from_milano = Person("Rossi", "Marco", dt.date(1985, 4, 12), LevelOfAssurance.HIGH, place_of_birth="Milano")
    provision = service.provide(from_milano)
    assert provision.match.reason == "MATCH:TIE_BREAK:place_of_birth"


def test_level_of_assurance_too_low() -> None:
    low = Person("Papadopoulou", "Eleni", dt.date(1987, 3, 25), LevelOfAssurance.LOW)
    with pytest.raises(EvidenceRefused) as caught:
        sample_data_service("EL", "births").provide(low)
    assert caught.value.code == "EDM:ERR:0001"
    unknown = Person("Papadopoulou", "Eleni", dt.date(1987, 3, 25))
    with pytest.raises(EvidenceRefused):
        sample_data_service("EL", "births").provide(unknown)


@pytest.mark.parametrize(
    ("distribution", "reason"),
    [
        (EvidenceTypeDistribution("image/png"), "REFUSED:FORMAT"),
        (
            EvidenceTypeDistribution(MEDIA_XML, "https://sr.oots.tech.europa.eu/distributions/other-1.0"),
            "REFUSED:DATA_MODEL",
        ),
        (EvidenceTypeDistribution(MEDIA_XML, transformation="https://x/y"), "REFUSED:TRANSFORMATION"),
    ],
)
def test_unsupported_distributions_are_refused_with_0007(distribution: EvidenceTypeDistribution, reason: str) -> None:
    with pytest.raises(EvidenceRefused) as caught:
        sample_data_service("EL", "births").provide(ELENI, [distribution])
    assert caught.value.code == "EDM:ERR:0007"
    assert caught.value.reason == reason


def test_subject_kind_must_fit_the_service() -> None:
    companies = sample_data_service("NL", "companies")
    assert companies.subject_kind is SubjectKind.LEGAL_PERSON
    with pytest.raises(EvidenceRefused) as caught:
        companies.provide(ELENI)
    assert caught.value.code == "EDM:ERR:0003"
    acme = LegalPerson("ACME", LevelOfAssurance.HIGH, registered_address=Address("NL", post_code="5611 EB"))
    with pytest.raises(EvidenceRefused):
        sample_data_service("EL", "births").provide(acme)
    provision = companies.provide(acme)
    assert provision.match.reason == "MATCH:TIE_BREAK:post_code"
    about = provision.evidences[0].metadata.is_about.legal_person
    assert about is not None
    assert about.legal_name == "ACME BV"
    assert about.legal_person_identifier == Identifier("NL/NL/99900909", "eidas")


def test_preview_policy() -> None:
    service = sample_data_service("EL", "births")
    assert service.preview_needed(True)
    assert not service.preview_needed(False)
    required = DataService(**{**service.__dict__, "preview": PreviewPolicy.REQUIRED})
    assert required.preview_needed(True)
    with pytest.raises(EvidenceRefused) as caught:
        required.preview_needed(False)
    assert caught.value.code == "EDM:ERR:0002"
    never = DataService(**{**service.__dict__, "preview": PreviewPolicy.NEVER})
    assert not never.preview_needed(True)


def test_register_failure_passes_through_as_register_error() -> None:
    class Broken:
        name = "broken"

        def find_persons(self, query: object, *, swapped_names: bool = False) -> list[object]:
            raise RegisterError("register broken did not answer in time", register="broken", timeout=True)

        def find_legal_persons(self, query: object) -> list[object]:
            raise AssertionError("not reached")

        def fetch(self, record_id: str) -> object:
            raise AssertionError("not reached")

    service = sample_data_service("EL", "births", register=Broken())  # type: ignore[arg-type]
    with pytest.raises(RegisterError) as caught:
        service.provide(ELENI)
    assert caught.value.timeout


def test_evidence_type_for_the_dsd() -> None:
    service = sample_data_service("FR", "residence")
    offered = service.evidence_type()
    assert offered.identifier == service.identifier
    assert [d.format for d in offered.distributed_as] == [MEDIA_PDF, MEDIA_XML, MEDIA_JSON]
    assert offered.distributed_as[1].conforms_to == service.model.conforms_to
    assert offered.authentication_level_of_assurance is LevelOfAssurance.SUBSTANTIAL
    # stable identifiers across runs, distinct across services
    all_ids = {s.identifier for c in SAMPLE_COUNTRIES for s in sample_data_services(c)}
    assert len(all_ids) == len(SAMPLE_COUNTRIES) * len(SAMPLE_KINDS)
    assert sample_data_service("FR", "residence").identifier == service.identifier


def test_every_test_person_gets_their_evidence() -> None:
    for person in load_people():
        raw = person.raw
        subject = Person(
            person.family_name,
            person.given_name,
            person.date_of_birth,
            LevelOfAssurance(raw["level_of_assurance"]),
            Identifier(person.identifier, "eidas"),
            birth_name=person.birth_name,
            place_of_birth=person.place_of_birth,
            current_address=Address(person.register_country, post_code=raw["current_address"]["post_code"]),
            gender=Gender(person.gender),
        )
        for kind in person.registers:
            service = sample_data_service(person.register_country, kind)
            provision = service.provide(subject, [EvidenceTypeDistribution(MEDIA_XML)], issuing_date=DAY)
            assert provision.match.outcome is MatchOutcome.MATCH, (person.note, kind, provision.match.reason)


def test_the_response_carrying_the_evidence_passes_the_official_rules() -> None:
    from oots.validation import validate

    service = sample_data_service("EL", "diplomas")
    requester = Agent(
        Identifier("DK22233223", "urn:cef.eu:names:identifier:EAS:0096"), (Text("Denmark University Portal", "EN"),)
    )
    provider = service.authority_agent()
    request = edm.evidence_request(
        requester=requester,
        provider=provider,
        evidence_type=edm.requested_evidence_type(service.evidence_type(), service.distributions()[1]),
        subject=ELENI,
        version=Version.EDM_V1,
    )
    provision = service.provide(ELENI, [service.distributions()[1]], issuing_date=DAY)
    evidences = [
        edm.response_evidence(e.metadata, f"cid:evidence{n}@oots.example.eu", title=e.document.title, node=None)
        for n, e in enumerate(provision.evidences)
    ]
    response = edm.evidence_response(request, provider=provider, evidences=evidences, version=Version.EDM_V1)
    report = validate(edm.to_xml(response, Version.EDM_V1))
    blocking = [f for f in report.findings if f.blocking]
    assert report.valid, blocking


def test_a_field_mapped_register_fills_every_format(tmp_path: Path, extract_pdf_text: Callable[[bytes], str]) -> None:
    """A register whose columns are not the model's names: the field map fills the documents too."""
    path = tmp_path / "geboorten.csv"
    path.write_text(
        "nummer,achternaam,voornamen,geboortedatum,registration_number,registered_on,registry_office\n"
        "12,Jansen,Pieter,1961-03-05,1961/12,1961-03-07,Burgerlijke Stand Utrecht\n",
        encoding="utf-8",
    )
    fields = FieldMap(
        record_id="nummer", family_name="achternaam", given_name="voornamen", date_of_birth="geboortedatum"
    )
    service = sample_data_service("ES", "births", register=CsvRegister(path, fields=fields))
    jansen = Person("Jansen", "Pieter", dt.date(1961, 3, 5), LevelOfAssurance.HIGH)
    wanted = [EvidenceTypeDistribution(f) for f in (MEDIA_PDF, MEDIA_XML, MEDIA_JSON)]
    pdf, xml, json_doc = (e.document for e in service.provide(jansen, wanted, issuing_date=DAY).evidences)
    text = extract_pdf_text(pdf.content)
    assert "Jansen" in text
    assert "Pieter" in text
    assert b"<FamilyName>Jansen</FamilyName>" in xml.content.replace(b"ns0:", b"")
    assert json.loads(json_doc.content)["subject"]["familyName"] == "Jansen"


def test_the_guide_lists_the_fields_of_every_data_model() -> None:
    guide = (Path(__file__).parents[3] / "docs" / "provider.md").read_text(encoding="utf-8")
    for model in MODELS:
        fields = (*model.subject, *model.details)
        required = ", ".join(f"`{f.key}`" for f in fields if f.required)
        optional = ", ".join(f"`{f.key}`" for f in fields if not f.required)
        assert f"| `{model.name}` | {required} | {optional} |" in guide
