"""The provider's intake: each request decision and its exact EDM answer (no network)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from oots import edm
from oots.as4 import profile
from oots.edm import LevelOfAssurance, Person, QueryError, QueryResponse
from oots.errors import NotFound, RegisterError
from oots.provider.dataservice import DataService, PreviewPolicy
from oots.provider.intake import Answer, Intake
from oots.provider.matching import LegalPersonQuery, LegalPersonRecord, PersonQuery, PersonRecord
from oots.provider.registers import RegisterRecord
from oots.provider.samples import sample_data_service, sample_data_services
from oots.validation import validate

from .parties import GARCIA, OTHER_AUTHORITY, OTHER_PROVIDER, PROVIDER, agent_of, query_request

NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)


def intake(services: Sequence[DataService] | None = None) -> Intake:
    return Intake(services if services is not None else sample_data_services("ES"), clock=lambda: NOW)


def request(
    subject: Person = GARCIA,
    *,
    fmt: str = "application/pdf",
    preview: bool = False,
    version: edm.Version = edm.Version.EDM_V1,
) -> tuple[edm.QueryRequest, bytes]:
    req = query_request(subject, fmt=fmt, preview=preview, version=version, issued=NOW)
    return req, edm.to_xml(req)


def valid(answer: Answer) -> QueryResponse | QueryError:
    report = validate(answer.payloads[0].data)
    assert report.valid, [f.as_dict() for f in report.findings if f.blocking]
    assert answer.payloads[0].mime_type == profile.REGREP_MIME_TYPE
    return answer.document


def names_its_request(answer: Answer, req: edm.QueryRequest, version: edm.Version) -> QueryError:
    """The answer's error, valid, naming ``req`` (its id, version and EvidenceRequester)."""
    document = valid(answer)
    assert isinstance(document, QueryError)
    assert document.request_id == req.id
    assert document.specification is version
    assert document.evidence_requester is not None
    assert document.evidence_requester.identifier == req.evidence_requester[0].identifier
    return document


def test_evidence_for_exactly_one_match() -> None:
    req, body = request(fmt="application/xml")
    answer = intake().answer(body, sent=NOW)
    document = valid(answer)
    assert isinstance(document, QueryResponse)
    assert answer.code is None
    assert answer.reason == "MATCH:IDENTIFIER"
    assert answer.action == profile.ACTION_EXECUTE_QUERY_RESPONSE
    assert document.request_id == req.id
    assert answer.payloads[1].mime_type == "application/xml"
    assert answer.subject_identifier == "ES/ES/12345678Z"
    assert len(answer.evidence_ids) == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not xml at all", "INVALID:XML"),
        (b"<a/>", "INVALID:MODEL"),
    ],
)
def test_unreadable_requests(data: bytes, reason: str) -> None:
    answer = intake().answer(data, sent=NOW)
    assert answer.code == "EDM:ERR:0003"
    assert answer.reason == reason
    assert answer.action == profile.ACTION_EXCEPTION_RESPONSE
    assert answer.request is None


def test_a_response_is_not_a_request() -> None:
    _, body = request()
    answer = intake().answer(body, sent=NOW)
    response = answer.payloads[0].data
    assert intake().answer(response, sent=NOW).reason == "INVALID:NOT_A_REQUEST"


def test_too_large_is_refused_before_parsing() -> None:
    small = Intake(sample_data_services("ES"), max_request_bytes=10_000, clock=lambda: NOW)
    answer = small.answer(b"<" * 10_001, sent=NOW)
    assert (answer.code, answer.reason) == ("EDM:ERR:0003", "INVALID:TOO_LARGE")


@pytest.mark.parametrize("version", [edm.Version.EDM_V1, edm.Version.EDM_V2])
@pytest.mark.parametrize("field", ["given_name", "family_name"])
def test_a_request_too_large_for_its_name_is_refused_with_its_id(version: edm.Version, field: str) -> None:
    # Before, the EDM:ERR:0003 named no request: the requester could not tell which exchange it ended.
    oversized = dataclasses.replace(GARCIA, **{field: "Ñ" * 600_000})
    req, body = request(oversized, version=version)
    assert len(body) > 1_000_000
    answer = intake().answer(body, sent=NOW)
    assert (answer.code, answer.reason) == ("EDM:ERR:0003", "INVALID:TOO_LARGE")
    names_its_request(answer, req, version)
    assert b"\xc3\x91" * 10 not in answer.payloads[0].data  # the name is not sent back
    assert answer.request is None
    assert answer.subject_identifier is None


@pytest.mark.parametrize(
    ("field", "length", "limit"), [("family_name", 200_000, 200), ("given_name", 201, 200), ("birth_name", 201, 200)]
)
def test_a_person_text_over_the_requesters_limit_is_refused_naming_the_field(
    field: str, length: int, limit: int
) -> None:
    # Before, a 200,000-character name under the byte limit was matched against the register as any other.
    req, body = request(dataclasses.replace(GARCIA, **{field: "A" * length}))
    assert len(body) < 1_000_000
    answer = intake().answer(body, sent=NOW)
    assert (answer.code, answer.reason) == ("EDM:ERR:0003", "INVALID:PERSON_TOO_LONG")
    document = valid(answer)
    assert isinstance(document, QueryError)
    assert document.request_id == req.id
    assert (
        document.detail == f"The request is not acceptable: natural_person.{field} is longer than {limit} characters."
    )
    assert b"A" * 100 not in answer.payloads[0].data
    assert answer.subject_identifier is None
    assert answer.evidence_ids == ()


def test_a_name_at_the_limit_is_matched_as_any_other() -> None:
    _, body = request(dataclasses.replace(GARCIA, birth_name="A" * edm.PERSON_NAME_CHARACTERS))
    answer = intake().answer(body, sent=NOW)
    assert answer.reason != "INVALID:PERSON_TOO_LONG"
    assert answer.code is None


def _invalid_date(body: bytes) -> bytes:
    return body.replace(b"1982-10-07", b"1982-13-07")


def _cut_before_the_query(body: bytes) -> bytes:
    return body[: body.index(b"<query:Query ")]


def _control_character_in_the_name(body: bytes) -> bytes:
    return body.replace(b"Mar\xc3\xada Jos\xc3\xa9", b"Mar\x01a")


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        (_invalid_date, "INVALID:MODEL"),
        (_cut_before_the_query, "INVALID:XML"),
        (_control_character_in_the_name, "INVALID:XML"),
    ],
)
@pytest.mark.parametrize("version", [edm.Version.EDM_V1, edm.Version.EDM_V2])
def test_every_invalid_request_whose_id_can_be_read_is_answered_with_it(
    broken: Callable[[bytes], bytes], reason: str, version: edm.Version
) -> None:
    req, body = request(version=version)
    data = broken(body)
    assert data != body
    answer = intake().answer(data, sent=NOW)
    assert (answer.code, answer.reason) == ("EDM:ERR:0003", reason)
    names_its_request(answer, req, version)  # the official rules (v1.0) and ours (v2.0) want its EvidenceRequester


@pytest.mark.parametrize("version", [edm.Version.EDM_V1, edm.Version.EDM_V2])
def test_a_request_cut_before_its_evidence_provider_is_answered_by_this_node(version: edm.Version) -> None:
    # Before, the error had no ErrorProvider at all and broke R-EDM-ERR-S11 (v2.0: its required slot).
    req, body = request(version=version)
    cut = body[: body.index(b'<rim:Slot name="EvidenceProvider"')]
    services = sample_data_services("ES")
    answer = intake(services).answer(cut, sent=NOW)
    assert (answer.code, answer.reason) == ("EDM:ERR:0003", "INVALID:XML")
    document = valid(answer)
    assert isinstance(document, QueryError)
    assert document.request_id == req.id
    assert document.error_provider is not None
    own = services[0].authority
    assert document.error_provider.identifier == edm.Identifier(own.identifier, own.scheme_id)
    assert document.error_provider.classification == "ERRP"


@pytest.mark.parametrize(
    "data",
    [
        b'<query:QueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:4.0" id="request-1">',
        b'<query:QueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:4.0" id="urn:uuid:',
        b'<query:QueryResponse xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:4.0" '
        b'requestId="urn:uuid:6f4d2a8e-5b1c-4e0f-9a7d-3c2b1a0f9e8d">',
        b'<!DOCTYPE x [<!ENTITY e "urn:uuid:6f4d2a8e-5b1c-4e0f-9a7d-3c2b1a0f9e8d">]>'
        b'<query:QueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:4.0" id="&e;">',
    ],
    ids=["not-a-uuid", "cut-in-the-id", "not-a-request", "dtd"],
)
def test_no_request_id_is_made_up(data: bytes) -> None:
    answer = intake().answer(data, sent=NOW)
    assert answer.code == "EDM:ERR:0003"
    assert isinstance(answer.document, QueryError)
    assert answer.document.request_id is None


@pytest.mark.parametrize("version", [edm.Version.EDM_V1, edm.Version.EDM_V2])
@pytest.mark.parametrize("bad_id", ["request-1", "urn:uuid:not-a-uuid"])
def test_a_readable_request_whose_id_is_no_urn_uuid_is_answered_without_it(version: edm.Version, bad_id: str) -> None:
    # Before, the error repeated the bad id and so broke R-EDM-ERR-S004 itself.
    req, body = request(version=version)
    answer = intake().answer(body.replace(req.id.encode(), bad_id.encode()), sent=NOW)
    assert (answer.code, answer.reason) == ("EDM:ERR:0003", "INVALID:RULES")
    document = valid(answer)
    assert isinstance(document, QueryError)
    assert document.exception_type == "rs:InvalidRequestExceptionType"
    assert document.request_id is None
    assert bad_id.encode() not in answer.payloads[0].data
    assert (document.detail or "").startswith("Violated rules: ")


def test_deadline_runs_from_the_ebms_timestamp() -> None:
    _, body = request()
    late = intake().answer(body, sent=NOW - dt.timedelta(seconds=301))
    assert (late.code, late.reason) == ("EDM:ERR:0005", "TIMEOUT:DEADLINE")
    valid(late)
    assert intake().answer(body, sent=NOW - dt.timedelta(seconds=299)).code is None


def test_level_of_assurance_too_low() -> None:
    low = dataclasses.replace(GARCIA, level_of_assurance=LevelOfAssurance.LOW)
    answer = intake().answer(request(low)[1], sent=NOW)
    assert answer.code == "EDM:ERR:0001"
    valid(answer)


def test_format_not_offered() -> None:
    pdf_only = dataclasses.replace(sample_data_service("ES", "births"), formats=("application/pdf",))
    _, body = request(fmt="application/json")
    answer = intake([pdf_only]).answer(body, sent=NOW)
    assert (answer.code, answer.reason) == ("EDM:ERR:0007", "REFUSED:FORMAT")
    valid(answer)


def test_preview_required_but_not_allowed_is_an_invalid_request() -> None:
    required = dataclasses.replace(sample_data_service("ES", "births"), preview=PreviewPolicy.REQUIRED)
    answer = intake([required]).answer(request()[1], sent=NOW)
    assert (answer.code, answer.reason) == ("EDM:ERR:0003", "REFUSED:PREVIEW_NOT_POSSIBLE")
    valid(answer)


def test_no_evidence_goes_out_when_a_preview_is_due() -> None:
    answer = intake().answer(request(preview=True)[1], sent=NOW)
    assert (answer.code, answer.reason) == ("EDM:ERR:0007", "PREVIEW:UNAVAILABLE")
    assert len(answer.payloads) == 1
    never = dataclasses.replace(sample_data_service("ES", "births"), preview=PreviewPolicy.NEVER)
    assert intake([never]).answer(request(preview=True)[1], sent=NOW).code is None


class BrokenRegister:
    name = "broken"

    def __init__(self, timeout: bool) -> None:
        self.timeout = timeout

    def find_persons(self, query: PersonQuery, *, swapped_names: bool = False) -> Sequence[PersonRecord]:
        raise RegisterError("the register broken failed", register="broken", timeout=self.timeout)

    def find_legal_persons(self, query: LegalPersonQuery) -> Sequence[LegalPersonRecord]:
        raise RegisterError("the register broken failed", register="broken", timeout=self.timeout)

    def fetch(self, record_id: str) -> RegisterRecord:
        raise AssertionError("not reached")


@pytest.mark.parametrize(("timeout", "code"), [(True, "EDM:ERR:0005"), (False, "EDM:ERR:0008")])
def test_register_failures(timeout: bool, code: str) -> None:
    service = sample_data_service("ES", "births", register=BrokenRegister(timeout))
    answer = intake([service]).answer(request()[1], sent=NOW)
    assert answer.code == code
    document = valid(answer)
    assert isinstance(document, QueryError)
    assert document.detail is not None
    assert "García" not in document.detail


class FailingRegister:
    """A register that finds the person, then fails the way an adapter may (not with RegisterError)."""

    name = "failing"

    def __init__(self, exc: Exception, *, on_fetch: bool = True) -> None:
        self.exc = exc
        self.on_fetch = on_fetch
        self.inner = sample_data_service("ES", "births").register

    def find_persons(self, query: PersonQuery, *, swapped_names: bool = False) -> Sequence[PersonRecord]:
        if not self.on_fetch:
            raise self.exc
        return self.inner.find_persons(query, swapped_names=swapped_names)

    def find_legal_persons(self, query: LegalPersonQuery) -> Sequence[LegalPersonRecord]:
        raise AssertionError("not reached")

    def fetch(self, record_id: str) -> RegisterRecord:
        raise self.exc


class HollowRegister(FailingRegister):
    """Finds the person, and its record lacks a field the data model requires."""

    def fetch(self, record_id: str) -> RegisterRecord:
        full = self.inner.fetch(record_id)
        return RegisterRecord(record_id, {k: v for k, v in full.data.items() if k != "registry_office"})


@pytest.mark.parametrize(
    ("register", "code", "reason", "logged"),
    [
        (
            FailingRegister(NotFound("register failing has no record with that id")),
            "EDM:ERR:0008",
            "REGISTER:FAILED",
            "no record under the id it matched",
        ),
        (FailingRegister(KeyError("country"), on_fetch=False), "EDM:ERR:0008", "REGISTER:FAILED", "KeyError"),
        (
            FailingRegister(ConnectionRefusedError(111, "Connection refused")),
            "EDM:ERR:0008",
            "REGISTER:FAILED",
            "ConnectionRefusedError",
        ),
        (
            FailingRegister(TimeoutError("timed out"), on_fetch=False),
            "EDM:ERR:0005",
            "REGISTER:TIMEOUT",
            "TimeoutError",
        ),
        (
            FailingRegister(RegisterError("register failing answered HTTP 500", register="failing")),
            "EDM:ERR:0008",
            "REGISTER:FAILED",
            "answered HTTP 500",
        ),
        (HollowRegister(RuntimeError()), "EDM:ERR:0008", "EVIDENCE:INVALID", "registry_office"),
    ],
)
@pytest.mark.parametrize("fmt", ["application/pdf", "application/xml"])
def test_every_failure_of_the_register_or_of_rendering_is_answered_and_logged(
    register: FailingRegister, code: str, reason: str, logged: str, fmt: str, caplog: pytest.LogCaptureFixture
) -> None:
    service = sample_data_service("ES", "births", register=register)
    with caplog.at_level("WARNING", logger="oots.provider.intake"):
        answer = intake([service]).answer(request(fmt=fmt)[1], sent=NOW)
    assert (answer.code, answer.reason) == (code, reason)
    document = valid(answer)
    assert isinstance(document, QueryError)
    assert document.detail is not None
    assert logged not in document.detail  # the reason stays in the log
    [record] = [r for r in caplog.records if r.name == "oots.provider.intake"]
    assert record.levelname == "WARNING"
    assert service.identifier in record.getMessage()
    assert logged in record.getMessage()
    assert "García" not in record.getMessage()


def test_a_failure_outside_the_register_is_answered_without_its_message(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise ValueError("García Márquez")  # a foreign message may quote the data it choked on

    monkeypatch.setattr("oots.provider.dataservice.render", broken)
    with caplog.at_level("WARNING", logger="oots.provider.intake"):
        answer = intake().answer(request()[1], sent=NOW)
    assert (answer.code, answer.reason) == ("EDM:ERR:0008", "PROVIDER:FAILED")
    assert "ValueError" in caplog.text
    assert "García" not in caplog.text


def test_v2_request_is_answered_in_v2_with_the_evidence_type_in_either_sr_spelling() -> None:
    _, body = request(version=edm.Version.EDM_V2, fmt="application/json")
    assert b"sr.oots.tech.ec.europa.eu" in body
    answer = intake().answer(body, sent=NOW)
    assert answer.code is None
    assert answer.document.specification is edm.Version.EDM_V2


def _issuing_as(service: DataService, provider: edm.Agent) -> tuple[str, set[str]]:
    """The answer's EvidenceProvider and the IssuingAuthority of its evidences, for a request to ``provider``."""
    req = query_request(fmt="application/xml", issued=NOW, provider=provider)
    document = valid(intake([service]).answer(edm.to_xml(req), sent=NOW))
    assert isinstance(document, QueryResponse)
    issuers = {e.metadata.issuing_authority.identifier.value for p in document.packages for e in p.evidences}
    return document.evidence_provider[0].identifier.value, issuers


def test_a_service_of_several_authorities_issues_as_the_one_the_request_names() -> None:
    births = dataclasses.replace(sample_data_service("ES", "births"), other_authorities=(OTHER_AUTHORITY,))
    own = births.authority.identifier
    assert _issuing_as(births, OTHER_PROVIDER) == (OTHER_AUTHORITY.identifier, {OTHER_AUTHORITY.identifier})
    assert _issuing_as(births, agent_of(births.authority)) == (own, {own})
    # the service itself is not changed by answering as another authority
    assert births.authority.identifier == own
    assert births.for_provider(OTHER_AUTHORITY.identifier).authority == OTHER_AUTHORITY
    assert births.for_provider(OTHER_AUTHORITY.identifier, "urn:x").authority.identifier == own
    assert births.for_provider(None) is births


@pytest.mark.parametrize(
    "named",
    [
        PROVIDER,  # an authority of this node's other services, not of this one
        edm.Agent(edm.Identifier(OTHER_AUTHORITY.identifier, "urn:cef.eu:names:identifier:EAS:9920"), PROVIDER.names),
        edm.Agent(edm.Identifier("S0000000X", "urn:cef.eu:names:identifier:EAS:9920"), PROVIDER.names),
    ],
    ids=["another-authority", "right-number-other-scheme", "unknown"],
)
def test_a_request_naming_a_publisher_the_service_does_not_issue_for_is_refused(named: edm.Agent) -> None:
    # Before, it was answered with evidence issued by the service's own authority, which it did not ask.
    births = dataclasses.replace(sample_data_service("ES", "births"), other_authorities=(OTHER_AUTHORITY,))
    req = query_request(fmt="application/xml", issued=NOW, provider=named)
    answer = intake([births]).answer(edm.to_xml(req), sent=NOW)
    assert (answer.code, answer.reason) == ("EDM:ERR:0006", "UNKNOWN:EVIDENCE_PROVIDER")
    assert answer.action == profile.ACTION_EXCEPTION_RESPONSE
    assert answer.evidence_ids == ()
    document = valid(answer)
    assert isinstance(document, QueryError)
    assert document.exception_type == "rs:UnresolvedReferenceExceptionType"
    assert document.request_id == req.id
    assert answer.service is not None
    assert answer.service.identifier == births.identifier


def test_an_evidence_type_no_data_service_offers_is_an_unresolved_reference() -> None:
    # Before, it was EDM:ERR:0004 (object not found), which a requester reads as "no record of you".
    diplomas = sample_data_service("ES", "diplomas")
    req, body = request(fmt="application/xml")  # asks for the birth certificate
    answer = intake([diplomas]).answer(body, sent=NOW)
    assert (answer.code, answer.reason) == ("EDM:ERR:0006", "UNKNOWN:EVIDENCE_TYPE")
    document = valid(answer)
    assert isinstance(document, QueryError)
    assert document.exception_type == "rs:UnresolvedReferenceExceptionType"
    assert document.request_id == req.id
    assert answer.evidence_ids == ()


def test_sample_services_name_every_publisher_of_their_access_point() -> None:
    diplomas = sample_data_service("FR", "diplomas")
    assert diplomas.authority.name == "Ministry of Higher Education and Research"
    assert [a.name for a in diplomas.other_authorities] == ["Rectorate of the Académie de Paris"]
    births = sample_data_service("DE", "births")
    assert [a.name for a in births.other_authorities] == ["Registry Office Munich", "Registry Office Hamburg-Mitte"]
    assert sample_data_service("BE", "births").other_authorities == ()
    # their names go out in the language the catalogue gives them in (English), not the service's
    assert diplomas.authority_agent().names == (edm.Text("Ministry of Higher Education and Research", "EN"),)


def test_sample_services_are_the_ones_the_demo_catalogue_lists() -> None:
    from importlib import resources

    from oots.cs.datafile import load_catalogue
    from oots.provider.samples import SAMPLE_COUNTRIES

    catalogue = load_catalogue(Path(str(resources.files("oots.cs") / "data" / "demo-catalogue.toml")))
    listed = {ds.id: ds for ds in catalogue.data_services}
    found = 0
    for country in SAMPLE_COUNTRIES:
        for service in sample_data_services(country):
            ds = listed.get(service.identifier)
            assert ds is not None, f"the catalogue does not list {service.identifier} of {country}"
            found += 1
            assert ds.classification == service.evidence_type_classification
            assert ds.level_of_assurance == service.level_of_assurance.value
            authorities = [service.authority, *service.other_authorities]
            assert [a.id for a in ds.access_services] == [f"AP_{country}_01"] * len(authorities)
            assert [(a.publisher.id, a.publisher.scheme) for a in ds.access_services] == [
                (a.identifier, a.scheme_id) for a in authorities
            ]
    assert found == len(SAMPLE_COUNTRIES) * 5


def test_a_provider_node_without_data_services_is_a_config_error(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    from oots.errors import ConfigError
    from oots.node import NodeContext
    from oots.provider.role import create_role
    from oots.settings import load_settings

    clean_env.setenv("OOTS_NODE__DATA_DIR", str(tmp_path))
    settings = load_settings()
    ctx = NodeContext(settings=settings, database=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no data service"):
        create_role(ctx)
