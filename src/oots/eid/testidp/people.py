"""The test identities of the test identity provider, read from a JSON data file.

The file shipped with the package (``people.json``) holds, per country, test citizens (some in the
demo registers, one who matches nobody, a pair who match ambiguously) and companies with the person
who represents them. ``load_people(path)`` reads another file of the same form.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from oots.eid.identity import Address, Gender, LegalPerson, NaturalPerson, Subject
from oots.errors import ConfigError, OotsError

__all__ = ["Country", "TestPeople", "TestSubject", "load_people"]


@dataclass(frozen=True, slots=True)
class TestSubject:
    """One selectable test identity: a key, the subject, an optional representative, a note."""

    key: str
    subject: Subject
    representative: Subject | None
    note: str


@dataclass(frozen=True, slots=True)
class Country:
    code: str
    name: str
    people: tuple[TestSubject, ...]
    companies: tuple[TestSubject, ...]


@dataclass(frozen=True, slots=True)
class TestPeople:
    countries: tuple[Country, ...]

    def country(self, code: str) -> Country | None:
        return next((c for c in self.countries if c.code == code), None)

    def find(self, key: str) -> TestSubject | None:
        for country in self.countries:
            for item in (*country.people, *country.companies):
                if item.key == key:
                    return item
        return None


def _address(data: Mapping[str, Any] | None) -> Address | None:
    return None if data is None else Address(**{k: str(v) for k, v in data.items()})


def _person(data: Mapping[str, Any]) -> NaturalPerson:
    return NaturalPerson(
        person_identifier=data["person_identifier"],
        family_name=data["family_name"],
        given_name=data["given_name"],
        date_of_birth=dt.date.fromisoformat(data["date_of_birth"]),
        birth_name=data.get("birth_name"),
        place_of_birth=data.get("place_of_birth"),
        current_address=_address(data.get("current_address")),
        gender=Gender.parse(data["gender"]) if data.get("gender") else None,
    )


def _company(data: Mapping[str, Any]) -> LegalPerson:
    return LegalPerson(
        legal_person_identifier=data["legal_person_identifier"],
        legal_name=data["legal_name"],
        registered_address=_address(data.get("registered_address")),
        vat_registration=data.get("vat_registration"),
        tax_reference=data.get("tax_reference"),
        lei=data.get("lei"),
        eori=data.get("eori"),
    )


def _parse(doc: Mapping[str, Any], source: str) -> TestPeople:
    countries = []
    try:
        for code, entry in sorted(doc["countries"].items()):
            people = tuple(TestSubject(p["key"], _person(p), None, p.get("note", "")) for p in entry.get("people", []))
            by_key = {p.key: p.subject for p in people}
            companies = []
            for c in entry.get("companies", []):
                rep = c.get("representative")
                if rep is not None and rep not in by_key:
                    raise ConfigError(f"{source}: company {c['key']} names an unknown representative {rep}")
                companies.append(TestSubject(c["key"], _company(c), by_key.get(rep), c.get("note", "")))
            countries.append(Country(code, entry.get("name", code), people, tuple(companies)))
    except ConfigError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OotsError) as exc:
        raise ConfigError(f"{source} is not a usable test identity file: {exc}") from None
    return TestPeople(tuple(countries))


def load_people(path: str | Path | None = None) -> TestPeople:
    """Read test identities from ``path``, or the file shipped with the package."""
    if path is None:
        text = resources.files("oots.eid.testidp").joinpath("people.json").read_text(encoding="utf-8")
        source = "the shipped people.json"
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the test identity file {path}: {exc.strerror}") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{source} is not JSON: {exc}") from None
    return _parse(doc, source)
