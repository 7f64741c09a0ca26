"""The demo network's sample registers and test people (package data, all invented).

``data/people.json`` lists the test people (for the eID test provider and the tests);
``data/companies.json`` the companies; ``data/registers/<kind>.csv`` the registers, one file per kind
with a ``country`` column. ``scripts/make_provider_samples.py`` writes them.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from oots.errors import NotFound
from oots.provider.matching import PersonQuery
from oots.provider.registers import CsvRegister

__all__ = ["SAMPLE_COUNTRIES", "SAMPLE_KINDS", "TestPerson", "load_people", "sample_register", "sample_register_path"]

SAMPLE_KINDS = ("births", "diplomas", "residence", "companies", "vehicles")
SAMPLE_COUNTRIES = ("BE", "FR", "DE", "IT", "ES", "EL", "NL", "PL")


def _data() -> Path:
    return Path(str(resources.files("oots.provider") / "data"))


def sample_register_path(kind: str) -> Path:
    """The CSV file of one sample register kind."""
    if kind not in SAMPLE_KINDS:
        raise NotFound(f"there is no sample register {kind!r} (known: {', '.join(SAMPLE_KINDS)})")
    return _data() / "registers" / f"{kind}.csv"


def sample_register(kind: str, country: str) -> CsvRegister:
    """One country's part of a sample register."""
    return CsvRegister(sample_register_path(kind), name=f"{country.lower()}-{kind}", where={"country": country})


@dataclass(frozen=True, slots=True)
class TestPerson:
    """A test person as an eID would assert them, with the registers that hold them."""

    __test__ = False  # not a pytest test class

    identifier: str
    family_name: str
    given_name: str
    date_of_birth: dt.date
    gender: str
    place_of_birth: str
    birth_name: str | None
    register_country: str
    registers: tuple[str, ...]
    note: str
    raw: dict[str, Any]

    def query(self, *, optional: bool = True) -> PersonQuery:
        """The person as a request presents them: the minimum data set with the identifier and, with
        ``optional``, the optional eIDAS attributes (gender, place of birth, birth name, post code)."""
        if not optional:
            return PersonQuery(self.family_name, self.given_name, self.date_of_birth, identifier=self.identifier)
        return PersonQuery(
            self.family_name,
            self.given_name,
            self.date_of_birth,
            identifier=self.identifier,
            birth_name=self.birth_name,
            place_of_birth=self.place_of_birth,
            gender=self.gender,
            post_code=self.raw["current_address"]["post_code"],
        )


def load_people() -> list[TestPerson]:
    """The test people of ``data/people.json``."""
    doc = json.loads((_data() / "people.json").read_text(encoding="utf-8"))
    return [
        TestPerson(
            identifier=p["identifier"],
            family_name=p["family_name"],
            given_name=p["given_name"],
            date_of_birth=dt.date.fromisoformat(p["date_of_birth"]),
            gender=p["gender"],
            place_of_birth=p["place_of_birth"],
            birth_name=p.get("birth_name"),
            register_country=p["register_country"],
            registers=tuple(p["registers"]),
            note=p["note"],
            raw=p,
        )
        for p in doc["people"]
    ]
