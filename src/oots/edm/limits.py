"""Limits on the texts of the person a request is about, shared by requester and provider.

A requester refuses a person beyond them before it asks (the portal API answers 422 naming the field),
and a provider refuses a request carrying one (``EDM:ERR:0003`` naming the field) instead of matching
a 200,000-character name against its register. Both count characters, not bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oots.edm.jsonform import object_to_json
from oots.edm.model import LegalPerson, Person
from oots.errors import ModelError

__all__ = [
    "PERSON_LIST_ITEMS",
    "PERSON_NAME_CHARACTERS",
    "PERSON_TEXT_CHARACTERS",
    "check_person_sizes",
    "check_subject_sizes",
]

#: The most characters of a name in the person (``family_name``, ``given_name``, ``birth_name``,
#: ``legal_name``, ...), and of any other text in it (identifiers, addresses, attribute values).
PERSON_NAME_CHARACTERS = 200
PERSON_TEXT_CHARACTERS = 1000
#: The most items of a list in the person (sector-specific attributes, several identifiers).
PERSON_LIST_ITEMS = 20


def check_person_sizes(value: Any, where: str) -> None:
    """Raise ModelError naming the field (``where`` and its path below) for a text of the JSON form of a
    person above its limit (a name: :data:`PERSON_NAME_CHARACTERS`, any other text:
    :data:`PERSON_TEXT_CHARACTERS`) or a list of more than :data:`PERSON_LIST_ITEMS` items."""
    if isinstance(value, str):
        name = where.rsplit(".", 1)[-1].split("[", 1)[0]
        limit = PERSON_NAME_CHARACTERS if name.endswith("name") else PERSON_TEXT_CHARACTERS
        if len(value) > limit:
            raise ModelError(f"{where} is longer than {limit} characters")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_person_sizes(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        if len(value) > PERSON_LIST_ITEMS:
            raise ModelError(f"{where} has more than {PERSON_LIST_ITEMS} items")
        for i, item in enumerate(value):
            check_person_sizes(item, f"{where}[{i}]")


def check_subject_sizes(subject: Person | LegalPerson, where: str) -> None:
    """:func:`check_person_sizes` for an ``sdg:Person`` or ``sdg:LegalPerson`` (its fields by their JSON
    names below ``where``, e.g. ``natural_person.family_name``)."""
    check_person_sizes(object_to_json(subject), where)
