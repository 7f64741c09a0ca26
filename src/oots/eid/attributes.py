"""Mapping between the typed identity and the two wire vocabularies.

* OpenID Connect claims: the standard ones where they exist (``family_name``, ``given_name``,
  ``birthdate``, ``gender``, ``address``, ``acr``), eIDAS names in snake case for the rest
  (``person_identifier``, ``birth_name``, ``place_of_birth``, ``legal_person_identifier``,
  ``legal_name``, ...). A representative's claims sit in one nested ``representative`` object.
* SAML 2.0 attributes of the eIDAS attribute profile (``http://eidas.europa.eu/attributes/...``),
  ``NameFormat`` URI; a representative's attributes use the ``.../representative/...`` names and
  ``CurrentAddress`` is base64 of the eIDAS address elements.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from lxml import etree

from oots import xmlsafe
from oots.eid.identity import Address, Gender, Identity, LegalPerson, LevelOfAssurance, NaturalPerson, Subject
from oots.errors import ModelError, OotsError, RemoteProtocolError

__all__ = [
    "EIDAS_LEGAL",
    "EIDAS_NATURAL",
    "claims_to_subjects",
    "eidas_attributes_to_subjects",
    "identity_to_claims",
    "subject_to_claims",
    "subjects_to_eidas_attributes",
]

EIDAS_NATURAL = "http://eidas.europa.eu/attributes/naturalperson/"
EIDAS_LEGAL = "http://eidas.europa.eu/attributes/legalperson/"

# --- OpenID Connect -------------------------------------------------------------------------------

_ADDRESS_CLAIMS = {
    "formatted": "full_address",
    "street_address": "thoroughfare",
    "house_number": "locator_designator",
    "postal_code": "post_code",
    "locality": "post_city_name",
    "country": "admin_unit_level1",
    "region": "admin_unit_level2",
}

_LEGAL_OPTIONAL = ("vat_registration", "tax_reference", "lei", "eori")


def _address_to_claim(address: Address) -> dict[str, str]:
    return {claim: value for claim, name in _ADDRESS_CLAIMS.items() if (value := getattr(address, name)) is not None}


def _claim_to_address(value: Any) -> Address | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ModelError("the address claim must be an object")
    address = Address(**{name: str(value[claim]) for claim, name in _ADDRESS_CLAIMS.items() if claim in value})
    return None if address.is_empty() else address


def subject_to_claims(subject: Subject) -> dict[str, Any]:
    """The OpenID Connect claims describing one natural or legal person."""
    claims: dict[str, Any]
    if isinstance(subject, NaturalPerson):
        claims = {
            "person_identifier": subject.person_identifier,
            "family_name": subject.family_name,
            "given_name": subject.given_name,
            "birthdate": subject.date_of_birth.isoformat(),
        }
        if subject.birth_name:
            claims["birth_name"] = subject.birth_name
        if subject.place_of_birth:
            claims["place_of_birth"] = subject.place_of_birth
        if subject.current_address:
            claims["address"] = _address_to_claim(subject.current_address)
        if subject.gender:
            claims["gender"] = subject.gender.value.lower()
        return claims
    claims = {"legal_person_identifier": subject.legal_person_identifier, "legal_name": subject.legal_name}
    if subject.registered_address:
        claims["address"] = _address_to_claim(subject.registered_address)
    for name in _LEGAL_OPTIONAL:
        if (value := getattr(subject, name)) is not None:
            claims[name] = value
    return claims


def identity_to_claims(identity: Identity) -> dict[str, Any]:
    """All identity claims of an ID token (without the protocol claims iss, aud, exp, ...)."""
    claims = subject_to_claims(identity.subject)
    claims["acr"] = identity.level.uri
    if identity.representative is not None:
        claims["representative"] = subject_to_claims(identity.representative)
    return claims


def _text(claims: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = claims.get(name)
    if value is None or value == "":
        if required:
            raise ModelError(f"the claim {name} is missing")
        return None
    if not isinstance(value, str):
        raise ModelError(f"the claim {name} must be a string")
    return value


def _date(value: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ModelError(f"{what} must be a date YYYY-MM-DD") from None


def _subject_from_claims(claims: Mapping[str, Any]) -> Subject:
    if claims.get("legal_person_identifier"):
        return LegalPerson(
            legal_person_identifier=_text(claims, "legal_person_identifier", required=True) or "",
            legal_name=_text(claims, "legal_name", required=True) or "",
            registered_address=_claim_to_address(claims.get("address")),
            **{name: _text(claims, name) for name in _LEGAL_OPTIONAL},
        )
    gender = _text(claims, "gender")
    return NaturalPerson(
        person_identifier=_text(claims, "person_identifier", required=True) or "",
        family_name=_text(claims, "family_name", required=True) or "",
        given_name=_text(claims, "given_name", required=True) or "",
        date_of_birth=_date(_text(claims, "birthdate", required=True) or "", "birthdate"),
        birth_name=_text(claims, "birth_name"),
        place_of_birth=_text(claims, "place_of_birth"),
        current_address=_claim_to_address(claims.get("address")),
        gender=None if gender is None else Gender.parse("unspecified" if gender.lower() == "other" else gender),
    )


def claims_to_subjects(claims: Mapping[str, Any]) -> tuple[Subject, Subject | None]:
    """The subject and the optional representative described by verified ID token claims."""
    try:
        subject = _subject_from_claims(claims)
        rep = claims.get("representative")
        if rep is not None and not isinstance(rep, Mapping):
            raise ModelError("the representative claim must be an object")
        return subject, None if rep is None else _subject_from_claims(rep)
    except ModelError as exc:
        raise RemoteProtocolError(f"the identity provider's claims are unusable: {exc.message}") from None


# --- SAML / eIDAS ---------------------------------------------------------------------------------

_NATURAL_ATTRS = {
    "PersonIdentifier": "person_identifier",
    "CurrentFamilyName": "family_name",
    "CurrentGivenName": "given_name",
    "DateOfBirth": "date_of_birth",
    "BirthName": "birth_name",
    "PlaceOfBirth": "place_of_birth",
    "CurrentAddress": "current_address",
    "Gender": "gender",
}
_LEGAL_ATTRS = {
    "LegalPersonIdentifier": "legal_person_identifier",
    "LegalName": "legal_name",
    "LegalPersonAddress": "registered_address",
    "VATRegistrationNumber": "vat_registration",
    "TaxReference": "tax_reference",
    "LEI": "lei",
    "EORI": "eori",
}
#: eIDAS address element names (in the natural person namespace) for each Address field.
_ADDRESS_ELEMENTS = {
    "full_address": "FullCVaddress",
    "locator_designator": "LocatorDesignator",
    "thoroughfare": "Thoroughfare",
    "post_code": "PostCode",
    "post_city_name": "PostName",
    "admin_unit_level1": "AdminunitFirstline",
    "admin_unit_level2": "AdminunitSecondline",
}
_ADDRESS_NS = EIDAS_NATURAL.rstrip("/")


def _encode_address(address: Address) -> str:
    root = etree.Element(f"{{{_ADDRESS_NS}}}CurrentAddress", nsmap={"eidas-natural": _ADDRESS_NS})
    for name, element in _ADDRESS_ELEMENTS.items():
        if (value := getattr(address, name)) is not None:
            etree.SubElement(root, f"{{{_ADDRESS_NS}}}{element}").text = value
    inner = b"".join(etree.tostring(child) for child in root)
    return base64.b64encode(inner).decode("ascii")


def _decode_address(value: str) -> Address | None:
    try:
        inner = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise ModelError("CurrentAddress is not base64") from None
    wrapped = f'<a xmlns:eidas-natural="{_ADDRESS_NS}" xmlns="{_ADDRESS_NS}">'.encode() + inner + b"</a>"
    try:
        root = xmlsafe.parse(wrapped, max_bytes=64 * 1024)
    except OotsError as exc:
        raise ModelError(f"CurrentAddress is not usable XML: {exc.message}") from None
    values: dict[str, str] = {}
    by_element = {element: name for name, element in _ADDRESS_ELEMENTS.items()}
    for child in root:
        if not isinstance(child.tag, str):
            continue
        local = etree.QName(child).localname
        if local in by_element and child.text:
            values[by_element[local]] = child.text
    address = Address(**values)
    return None if address.is_empty() else address


def _subject_attributes(subject: Subject, representative: bool) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(subject, NaturalPerson):
        base = EIDAS_NATURAL + ("representative/" if representative else "")
        for attr, name in _NATURAL_ATTRS.items():
            value = getattr(subject, name)
            if value is None:
                continue
            if isinstance(value, Address):
                text = _encode_address(value)
            elif isinstance(value, Gender):
                text = value.value
            elif isinstance(value, dt.date):
                text = value.isoformat()
            else:
                text = str(value)
            out[base + attr] = [text]
        return out
    base = EIDAS_LEGAL + ("representative/" if representative else "")
    for attr, name in _LEGAL_ATTRS.items():
        value = getattr(subject, name)
        if value is None:
            continue
        out[base + attr] = [_encode_address(value) if isinstance(value, Address) else str(value)]
    return out


def subjects_to_eidas_attributes(subject: Subject, representative: Subject | None = None) -> dict[str, list[str]]:
    """eIDAS attribute name (URI) → values, for a subject and an optional representative."""
    attributes = _subject_attributes(subject, representative=False)
    if representative is not None:
        attributes.update(_subject_attributes(representative, representative=True))
    return attributes


def _single(attributes: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = attributes.get(name)
    if not values:
        return None
    if len(values) != 1:
        raise ModelError(f"the attribute {name.rsplit('/', 1)[-1]} has {len(values)} values, expected one")
    return values[0]


class _Get(Protocol):
    def __call__(self, attr: str, required: bool = False) -> str | None: ...


def _reader(attributes: Mapping[str, Sequence[str]], base: str) -> _Get:
    """``get(name, required=False)``: the single value of the attribute ``base + name``."""

    def get(attr: str, required: bool = False) -> str | None:
        value = _single(attributes, base + attr)
        if required and not value:
            raise ModelError(f"the attribute {attr} is missing")
        return value

    return get


def _natural_from(attributes: Mapping[str, Sequence[str]], base: str) -> NaturalPerson:
    get = _reader(attributes, base)

    address = get("CurrentAddress")
    gender = get("Gender")
    return NaturalPerson(
        person_identifier=get("PersonIdentifier", True) or "",
        family_name=get("CurrentFamilyName", True) or "",
        given_name=get("CurrentGivenName", True) or "",
        date_of_birth=_date(get("DateOfBirth", True) or "", "DateOfBirth"),
        birth_name=get("BirthName"),
        place_of_birth=get("PlaceOfBirth"),
        current_address=None if address is None else _decode_address(address),
        gender=None if gender is None else Gender.parse(gender),
    )


def _legal_from(attributes: Mapping[str, Sequence[str]], base: str) -> LegalPerson:
    get = _reader(attributes, base)

    address = get("LegalPersonAddress")
    return LegalPerson(
        legal_person_identifier=get("LegalPersonIdentifier", True) or "",
        legal_name=get("LegalName", True) or "",
        registered_address=None if address is None else _decode_address(address),
        vat_registration=get("VATRegistrationNumber"),
        tax_reference=get("TaxReference"),
        lei=get("LEI"),
        eori=get("EORI"),
    )


def _subject_from(attributes: Mapping[str, Sequence[str]], representative: bool) -> Subject | None:
    suffix = "representative/" if representative else ""
    if attributes.get(EIDAS_LEGAL + suffix + "LegalPersonIdentifier"):
        return _legal_from(attributes, EIDAS_LEGAL + suffix)
    if attributes.get(EIDAS_NATURAL + suffix + "PersonIdentifier"):
        return _natural_from(attributes, EIDAS_NATURAL + suffix)
    if representative:
        return None
    raise ModelError("the assertion names neither a PersonIdentifier nor a LegalPersonIdentifier")


def eidas_attributes_to_subjects(attributes: Mapping[str, Sequence[str]]) -> tuple[Subject, Subject | None]:
    """The subject and optional representative described by verified eIDAS attributes."""
    try:
        subject = _subject_from(attributes, representative=False)
        assert subject is not None
        return subject, _subject_from(attributes, representative=True)
    except ModelError as exc:
        raise RemoteProtocolError(f"the eIDAS attributes are unusable: {exc.message}") from None


def level_from_text(text: str) -> LevelOfAssurance:
    """A level of assurance from a provider's ``acr`` / ``AuthnContextClassRef``."""
    try:
        return LevelOfAssurance.parse(text)
    except ModelError as exc:
        raise RemoteProtocolError(exc.message) from None
