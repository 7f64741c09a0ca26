"""The typed identity a login delivers, whatever protocol brought it (OpenID Connect or SAML/eIDAS).

An :class:`Identity` is about one *subject*: a :class:`NaturalPerson` or a :class:`LegalPerson`
(the eIDAS minimum data sets). Where someone acts for another, ``representative`` is the person
acting and ``subject`` the one acted for. ``level`` is the eIDAS level of assurance of the login.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass, field

from oots.errors import ModelError

__all__ = [
    "LOA_URI_PREFIX",
    "Address",
    "Gender",
    "Identity",
    "LegalPerson",
    "LevelOfAssurance",
    "NaturalPerson",
    "Subject",
    "check_eidas_identifier",
]

LOA_URI_PREFIX = "http://eidas.europa.eu/LoA/"

#: ``CC/CC/identifier``: issuing country, destination country, then the identifier itself.
_EIDAS_IDENTIFIER = re.compile(r"^[A-Z]{2}/[A-Z]{2}/[^\s/][^\s]{0,255}$")


class LevelOfAssurance(enum.Enum):
    """eIDAS levels of assurance (Implementing Regulation 2015/1502), ordered low < substantial < high."""

    LOW = "low"
    SUBSTANTIAL = "substantial"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def uri(self) -> str:
        """The eIDAS URI, e.g. ``http://eidas.europa.eu/LoA/substantial``."""
        return LOA_URI_PREFIX + self.value

    @property
    def edm_value(self) -> str:
        """The word the exchange data model uses (``Low``, ``Substantial``, ``High``)."""
        return self.value.capitalize()

    def satisfies(self, required: LevelOfAssurance) -> bool:
        """True when a login at this level is good enough for ``required``."""
        return self.rank >= required.rank

    @classmethod
    def parse(cls, text: str) -> LevelOfAssurance:
        """Read a level from its URI, its EDM word or its short name (case-insensitive)."""
        value = text.strip()
        if value.startswith(LOA_URI_PREFIX):
            value = value[len(LOA_URI_PREFIX) :]
        try:
            return cls(value.lower())
        except ValueError:
            raise ModelError(f"{text!r} is not an eIDAS level of assurance (low, substantial, high)") from None


_RANK = {LevelOfAssurance.LOW: 1, LevelOfAssurance.SUBSTANTIAL: 2, LevelOfAssurance.HIGH: 3}


class Gender(enum.Enum):
    """eIDAS gender values."""

    MALE = "Male"
    FEMALE = "Female"
    UNSPECIFIED = "Unspecified"

    @classmethod
    def parse(cls, text: str) -> Gender:
        for item in cls:
            if item.value.lower() == text.strip().lower():
                return item
        raise ModelError(f"{text!r} is not an eIDAS gender (Male, Female, Unspecified)")


def check_eidas_identifier(value: str, what: str = "PersonIdentifier") -> str:
    """Return ``value`` if it has the eIDAS form ``CC/CC/identifier``, else raise :class:`ModelError`."""
    if not _EIDAS_IDENTIFIER.match(value):
        raise ModelError(f"{what} must look like CC/CC/identifier (two country codes, then the identifier)")
    return value


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address (the parts of the EDM ``AddressType`` / eIDAS ``CurrentAddress``)."""

    full_address: str | None = None
    thoroughfare: str | None = None
    locator_designator: str | None = None
    post_code: str | None = None
    post_city_name: str | None = None
    admin_unit_level1: str | None = None
    admin_unit_level2: str | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class NaturalPerson:
    """The eIDAS minimum data set of a natural person, plus its optional attributes."""

    person_identifier: str
    family_name: str
    given_name: str
    date_of_birth: dt.date
    birth_name: str | None = None
    place_of_birth: str | None = None
    current_address: Address | None = None
    gender: Gender | None = None

    def __post_init__(self) -> None:
        check_eidas_identifier(self.person_identifier)
        if not self.family_name.strip() or not self.given_name.strip():
            raise ModelError("a natural person needs a family name and a given name")

    @property
    def identifier(self) -> str:
        return self.person_identifier

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


@dataclass(frozen=True, slots=True)
class LegalPerson:
    """The eIDAS minimum data set of a legal person, plus its optional attributes."""

    legal_person_identifier: str
    legal_name: str
    registered_address: Address | None = None
    vat_registration: str | None = None
    tax_reference: str | None = None
    lei: str | None = None
    eori: str | None = None

    def __post_init__(self) -> None:
        check_eidas_identifier(self.legal_person_identifier, "LegalPersonIdentifier")
        if not self.legal_name.strip():
            raise ModelError("a legal person needs a legal name")

    @property
    def identifier(self) -> str:
        return self.legal_person_identifier

    @property
    def display_name(self) -> str:
        return self.legal_name


Subject = NaturalPerson | LegalPerson


@dataclass(frozen=True, slots=True)
class Identity:
    """Who logged in, at which level, through which provider.

    ``subject`` is the person the login is about; ``representative``, when set, is the natural or
    legal person acting on the subject's behalf. ``issuer`` is the provider (OIDC issuer or SAML
    entity id), ``protocol`` ``"oidc"`` or ``"saml"``.
    """

    subject: Subject
    level: LevelOfAssurance
    issuer: str
    protocol: str
    authenticated_at: dt.datetime
    representative: Subject | None = None
    session_index: str | None = field(default=None, compare=False)

    @property
    def is_natural_person(self) -> bool:
        return isinstance(self.subject, NaturalPerson)
