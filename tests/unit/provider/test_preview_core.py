"""The preview space's core: tokens, locations, the state machine, the return allow-list, the person check."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from oots import edm
from oots.edm import Identifier, Person
from oots.provider.matching import Attribute, MatchRules
from oots.provider.preview import (
    PreviewClosed,
    PreviewEvent,
    PreviewState,
    Routing,
    allowed_return,
    fingerprint,
    is_loopback,
    location_of,
    new_token,
    next_state,
    same_person,
    token_from_location,
    token_key,
    valid_token,
)
from oots.provider.samples import sample_data_service

from .parties import GARCIA, query_request


def test_tokens_are_long_random_and_stored_only_as_a_hash() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert valid_token(token)
        assert len(token) == 43  # 32 bytes = 256 bits
        assert token not in token_key(token)
        assert len(token_key(token)) == 64
    assert not valid_token("short")
    assert not valid_token("a" * 42 + "/")


def test_locations_round_trip_only_on_our_own_base() -> None:
    token = new_token()
    location = location_of("https://ep.example.eu/", token)
    assert location == f"https://ep.example.eu/preview/{token}"
    assert token_from_location(location, "https://ep.example.eu") == token
    assert token_from_location(location, "https://other.example.eu") is None
    assert token_from_location(location + "/x", "https://ep.example.eu") is None
    assert token_from_location(location + "?a=1", "https://ep.example.eu") is None
    assert token_from_location("https://ep.example.eu/preview/../admin", "https://ep.example.eu") is None


def test_loopback() -> None:
    assert is_loopback("http://127.0.0.1:8010")
    assert is_loopback("http://localhost:8010/x")
    assert is_loopback("http://[::1]:80/")
    assert not is_loopback("http://ep.example.eu")
    assert not is_loopback("http://10.0.0.1")


def test_state_machine_in_both_orders_and_single_use() -> None:
    s = next_state(PreviewState.AWAITING, PreviewEvent.REQUEST)
    assert s is PreviewState.HELD
    s = next_state(s, PreviewEvent.DECISION)
    assert s is PreviewState.READY
    assert next_state(s, PreviewEvent.ANSWER) is PreviewState.ANSWERED
    s = next_state(PreviewState.AWAITING, PreviewEvent.DECISION)
    assert s is PreviewState.DECIDED
    assert next_state(s, PreviewEvent.REQUEST) is PreviewState.READY
    for state in (PreviewState.AWAITING, PreviewState.HELD, PreviewState.DECIDED, PreviewState.READY):
        assert next_state(state, PreviewEvent.TIMEOUT) is PreviewState.EXPIRED
    # single use: a second request, a second decision, anything after the end
    with pytest.raises(PreviewClosed):
        next_state(PreviewState.HELD, PreviewEvent.REQUEST)
    with pytest.raises(PreviewClosed):
        next_state(PreviewState.DECIDED, PreviewEvent.DECISION)
    with pytest.raises(PreviewClosed):
        next_state(PreviewState.AWAITING, PreviewEvent.ANSWER)
    for end in (PreviewState.ANSWERED, PreviewState.EXPIRED):
        for event in PreviewEvent:
            with pytest.raises(PreviewClosed):
                next_state(end, event)


ORIGINS = ("https://portal.example.eu", "http://127.0.0.1:8010")


@pytest.mark.parametrize(
    "url",
    [
        "https://portal.example.eu/requester/return/abc",
        "https://portal.example.eu:443/x?exchange=1",
        "https://PORTAL.example.eu/x",
        "http://127.0.0.1:8010/requester/return/abc",
    ],
)
def test_return_locations_on_registered_portals_are_allowed(url: str) -> None:
    assert allowed_return(url, ORIGINS) == url


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "https://evil.example.eu/x",
        "https://portal.example.eu.evil.eu/x",
        "http://portal.example.eu/x",  # the scheme counts
        "https://portal.example.eu:8443/x",  # so does the port
        "http://127.0.0.1:8011/x",
        "https://user@portal.example.eu/x",
        "https://portal.example.eu@evil.eu/x",
        "//portal.example.eu/x",
        "/requester/return/abc",
        "javascript:alert(1)",
        "https://portal.example.eu\\@evil.eu/",
        "https://portal.example.eu/x\r\nSet-Cookie: a=b",
        "https://portal.example.eu/ x",
        "https://portal.example.eu:99999/x",
        "https://portal.example.eu/" + "x" * 3000,
    ],
)
def test_other_return_locations_are_refused(url: str | None) -> None:
    assert allowed_return(url, ORIGINS) is None


def _request(subject: Person = GARCIA, **changes: object) -> edm.QueryRequest:
    request = query_request(subject, kind="diplomas", procedure=None, preview=True, version=edm.Version.EDM_V2)
    return dataclasses.replace(request, **changes)  # type: ignore[arg-type]


def test_the_fingerprint_ties_the_second_request_to_the_first() -> None:
    first = _request()
    second = _request(preview_location="https://ep.example.eu/preview/x", return_location="https://p.eu/r")
    assert fingerprint(first) == fingerprint(second)  # new id, location: the same request
    other = _request(dataclasses.replace(GARCIA, given_name="María"))
    assert fingerprint(other) != fingerprint(first)
    births = sample_data_service("ES", "births").evidence_type()
    assert fingerprint(_request(evidence_request=births)) != fingerprint(first)


def test_the_person_who_logs_in_must_be_the_subject() -> None:
    rules = MatchRules()
    # the eID gives the identifier with another destination country and the names in capitals
    logged_in = dataclasses.replace(
        GARCIA,
        identifier=Identifier("ES/FR/12345678Z", "eidas"),
        family_name="GARCIA MARQUEZ",
        given_name="MARIA JOSE",
    )
    assert same_person(logged_in, GARCIA, rules)
    someone_else = Person(
        family_name="López",
        given_name="Juan",
        date_of_birth=dt.date(1970, 1, 1),
        identifier=Identifier("ES/ES/87654321X", "eidas"),
    )
    assert not same_person(someone_else, GARCIA, rules)
    twin = dataclasses.replace(GARCIA, identifier=Identifier("ES/ES/99999999R", "eidas"))
    assert not same_person(twin, GARCIA, rules)  # same names, another identifier of the same country
    # another issuing country, the same birth date and part of the names: another person's eID (the
    # register's fallback to names, right for a record without an identifier, does not apply to a login)
    abroad = dataclasses.replace(
        GARCIA, identifier=Identifier("PT/FR/99999999", "eidas"), family_name="García", given_name="María"
    )
    assert not same_person(abroad, GARCIA, rules)
    assert not same_person(abroad, GARCIA, MatchRules(identifier_fallback=True))
    company = edm.LegalPerson(legal_name="Acme", legal_person_identifier=Identifier("ES/ES/B1", "eidas"))
    assert not same_person(company, GARCIA, rules)
    assert not same_person(GARCIA, company, rules)


def test_the_subject_is_read_with_every_attribute_the_matching_knows() -> None:
    # no identifier: names and date of birth agree, so only the optional attributes can tell them apart
    subject = Person(
        family_name="García Márquez",
        given_name="María José",
        date_of_birth=dt.date(1982, 10, 7),
        birth_name="García",
        place_of_birth="Sevilla",
        current_address=edm.Address("ES", post_code="41001"),
        gender=edm.Gender.FEMALE,
    )
    rules = MatchRules(reject_on_conflict=tuple(Attribute))
    assert same_person(subject, subject, rules)
    for change in (
        {"birth_name": "López"},
        {"place_of_birth": "Madrid"},
        {"current_address": edm.Address("ES", post_code="28001")},
        {"gender": edm.Gender.MALE},
    ):
        assert not same_person(dataclasses.replace(subject, **change), subject, rules), change  # type: ignore[arg-type]
    company = edm.LegalPerson(
        legal_name="Acme SA",
        identifiers=(Identifier("ESB12345678", "VAT"),),
        registered_address=edm.Address("ES", post_code="41001"),
    )
    assert same_person(company, company, rules)
    assert same_person(dataclasses.replace(company, legal_name="ACME S.A."), company, rules)  # the VAT number
    other = dataclasses.replace(company, identifiers=(Identifier("ESB87654321", "VAT"),), legal_name="Other SL")
    assert not same_person(other, company, rules)


def test_routing_survives_json() -> None:
    routing = Routing(("red_gw", "urn:t"), ("p", None), ("r", "urn:c"), "conv", "msg@x", "ex", "spec")
    assert Routing.from_json(routing.to_json()) == routing


def test_the_page_language() -> None:
    from oots.provider.preview_i18n import negotiate, translate

    assert negotiate(None, None, None) == "en"
    assert negotiate(None, None, "fr-FR,fr;q=0.9,en;q=0.8") == "fr"
    assert negotiate(None, None, "es-ES, de;q=0.5, fr;q=0.4") == "de"
    assert negotiate(None, None, "de;q=0, fr;q=0.1") == "fr"
    assert negotiate(None, None, "x" * 5000) == "en"
    assert negotiate(None, "de", "fr") == "de"
    assert negotiate("fr", "de", "en") == "fr"
    assert negotiate("xx", None, None) == "en"
    assert translate("fr", "Confirm my decision") == "Confirmer ma décision"
    assert translate("de", "Confirm my decision") == "Entscheidung bestätigen"
    assert translate("es", "Confirm my decision") == "Confirm my decision"


def test_every_word_of_the_pages_is_translated() -> None:
    import re
    from importlib import resources

    from oots.provider import preview_i18n

    catalogues = (preview_i18n._FR, preview_i18n._DE)
    assert set(catalogues[0]) == set(catalogues[1])
    templates = resources.files("oots.provider").joinpath("templates")
    used: set[str] = set()
    for page in templates.iterdir():
        if page.name.endswith(".html"):
            used |= set(re.findall(r"""_\(["']([^"']+)["']\)""", page.read_text("utf-8")))
    assert len(used) > 10
    # the sentences the pages' code shows: messages (heading and lines) and a decision's error
    import ast
    from pathlib import Path

    from oots.provider import preview_web

    said: set[str] = set()
    for node in ast.walk(ast.parse(Path(preview_web.__file__).read_text("utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "_message":
            for arg in node.args[1:3]:
                parts = arg.elts if isinstance(arg, ast.List | ast.Tuple) else [arg]
                said |= {p.value for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str)}
        if isinstance(node, ast.keyword) and node.arg == "error" and isinstance(node.value, ast.Constant):
            said.add(node.value.value)
        if isinstance(node, ast.AsyncFunctionDef) and node.name == "done":  # its sentences chosen by the decision
            said |= {
                c.value
                for c in ast.walk(node)
                if isinstance(c, ast.Constant) and isinstance(c.value, str) and c.value.endswith(".")
            }
    assert len(said) > 5
    missing = sorted(s for s in used | said if s not in catalogues[0])
    assert missing == []
