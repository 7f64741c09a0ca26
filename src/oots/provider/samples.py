"""The demo network's sample registers and test people (package data, all invented).

``data/people.json`` lists the test people (for the eID test provider and the tests);
``data/companies.json`` the companies; ``data/registers/<kind>.csv`` the registers, one file per kind
with a ``country`` column. ``scripts/make_provider_samples.py`` writes them.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oots.edm import Jurisdiction, LevelOfAssurance
from oots.errors import NotFound
from oots.provider.datamodels import canonical_model_url, model_by_name
from oots.provider.dataservice import DataService, PreviewPolicy
from oots.provider.matching import PersonQuery
from oots.provider.registers import CsvRegister, Register
from oots.provider.render import Authority

if TYPE_CHECKING:
    from oots.cs.catalogue import Publisher

__all__ = [
    "SAMPLE_COUNTRIES",
    "SAMPLE_KINDS",
    "TestPerson",
    "load_people",
    "sample_authority",
    "sample_classification",
    "sample_data_service",
    "sample_data_services",
    "sample_evidence_type_id",
    "sample_register",
    "sample_register_path",
]

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


# --- the demo network's data services ----------------------------------------------------------------
#: kind → (data model, annexes, English title, subject description)
_SERVICES: dict[str, tuple[str, tuple[str, ...], str, str]] = {
    "births": ("birth-certificate", (), "Birth certificate", "An official certificate of the birth of a person."),
    "diplomas": (
        "diploma",
        ("diploma-supplement",),
        "Diploma",
        "A diploma awarded to a person, with its supplement.",
    ),
    "residence": ("residence-certificate", (), "Certificate of residence", "Where a person is registered as living."),
    "companies": (
        "company-register-extract",
        (),
        "Extract of the commercial register",
        "The registration of a company in the commercial register.",
    ),
    "vehicles": (
        "vehicle-registration",
        (),
        "Vehicle registration certificate",
        "The registration of a vehicle and its holder.",
    ),
}
_AUTHORITIES = {
    "BE": ("Federale Overheidsdienst Binnenlandse Zaken", "0208", "0999000001"),
    "FR": ("Direction interministérielle du numérique", "0009", "99900000100011"),
    "DE": ("Bundesverwaltungsamt", "9930", "DE999000001"),
    "IT": ("Ministero dell'Interno", "0211", "IT99900000001"),
    "ES": ("Ministerio de Justicia", "9920", "ESS9990001A"),
    "EL": ("Υπουργείο Εσωτερικών", "9933", "EL999000001"),
    "NL": ("Rijksdienst voor Identiteitsgegevens", "0190", "00000099900000000001"),
    "PL": ("Ministerstwo Cyfryzacji", "9945", "PL9990000001"),
}
_LANGUAGES = {"BE": "NL", "FR": "FR", "DE": "DE", "IT": "IT", "ES": "ES", "EL": "EL", "NL": "NL", "PL": "PL"}
_DEMO_NAMESPACE = uuid.UUID("6f4d2a8e-5b1c-4e0f-9a7d-3c2b1a0f9e8d")


@dataclass(frozen=True, slots=True)
class _Listed:
    identifier: str
    classification: str
    titles: dict[str, str]
    descriptions: dict[str, str]
    level_of_assurance: LevelOfAssurance | None
    #: The publishers of the service's access services on the country's access point, in catalogue order.
    authorities: tuple[Authority, ...]


@functools.cache
def _catalogue_listing() -> dict[tuple[str, str], _Listed]:
    """The sample services as the Common Services demo catalogue lists them (first of each kind)."""
    from oots.cs.datafile import load_catalogue  # the demo catalogue is the one list of identities

    catalogue = load_catalogue(Path(str(resources.files("oots.cs") / "data" / "demo-catalogue.toml")))
    kinds = {model_by_name(model).conforms_to: kind for kind, (model, *_) in _SERVICES.items()}
    listed: dict[tuple[str, str], _Listed] = {}
    for ds in catalogue.data_services:
        models = {canonical_model_url(d.conforms_to) for d in ds.distributions if d.conforms_to}
        kind = next((kinds[m] for m in models if m in kinds), None)
        if kind is None or not ds.access_services:
            continue
        country = ds.classification.rstrip("/").rsplit("/", 2)[-2]
        if (country, kind) in listed:
            continue
        own = [a for a in ds.access_services if a.id == f"AP_{country}_01"] or ds.access_services[:1]
        listed[(country, kind)] = _Listed(
            identifier=ds.id,
            classification=ds.classification,
            titles=dict(ds.titles),
            descriptions=dict(ds.descriptions),
            level_of_assurance=LevelOfAssurance(ds.level_of_assurance) if ds.level_of_assurance else None,
            authorities=tuple(_authority(a.publisher) for a in own),
        )
    return listed


def _authority(publisher: Publisher) -> Authority:
    names = dict(publisher.names)
    name = names.get("EN") or next(iter(names.values()), "")
    return Authority(publisher.id, publisher.scheme, name, tuple((lang.upper(), n) for lang, n in names.items()))


def sample_evidence_type_id(country: str, kind: str) -> str:
    """The ``DataServiceEvidenceType/Identifier`` of a sample service: the demo catalogue's, or a
    stable UUID for the few services the catalogue does not list."""
    listed = _catalogue_listing().get((country, kind))
    return listed.identifier if listed else str(uuid.uuid5(_DEMO_NAMESPACE, f"{country}/{kind}/data-service"))


def sample_classification(country: str, kind: str) -> str:
    """The ``EvidenceTypeClassification`` URL of a sample evidence type (the demo catalogue's, or stable)."""
    listed = _catalogue_listing().get((country, kind))
    if listed:
        return listed.classification
    return f"https://sr.oots.tech.europa.eu/evidencetypeclassifications/{country}/" + str(
        uuid.uuid5(_DEMO_NAMESPACE, f"{country}/{kind}/evidence-type")
    )


def sample_authority(country: str, kind: str | None = None) -> Authority:
    """The issuing authority of a sample service: the publisher the demo catalogue names for it, or
    the country's default authority."""
    listed = _catalogue_listing().get((country, kind)) if kind else None
    if listed:
        return listed.authorities[0]
    name, eas, value = _AUTHORITIES[country]
    return Authority(value, f"urn:cef.eu:names:identifier:EAS:{eas}", name)


#: Preview policies of the sample services: diplomas (a diploma and its supplement, two documents to
#: accept or refuse one by one) are only sent after a preview; the others when the request allows one.
_PREVIEW = {"diplomas": PreviewPolicy.REQUIRED}


def sample_data_service(country: str, kind: str, *, register: Register | None = None) -> DataService:
    """One sample data service of ``country`` reading its sample register (or ``register``).

    Its identifier, evidence type classification, titles, level of assurance and issuing authority
    are those the Common Services demo catalogue (``oots.cs`` package data) lists for the country's
    access point ``AP_<CC>_01``, so the demo network's discovery and exchange agree."""
    if country not in SAMPLE_COUNTRIES:
        raise NotFound(f"there is no sample country {country!r} (known: {', '.join(SAMPLE_COUNTRIES)})")
    if kind not in _SERVICES:
        raise NotFound(f"there is no sample register {kind!r} (known: {', '.join(SAMPLE_KINDS)})")
    model, annexes, title, description = _SERVICES[kind]
    listed = _catalogue_listing().get((country, kind))
    return DataService(
        identifier=sample_evidence_type_id(country, kind),
        evidence_type_classification=sample_classification(country, kind),
        titles=listed.titles if listed and listed.titles else {"EN": title},
        descriptions=listed.descriptions if listed and listed.descriptions else {"EN": description},
        model=model_by_name(model),
        annexes=tuple(model_by_name(a) for a in annexes),
        register=register or sample_register(kind, country),
        authority=sample_authority(country, kind),
        other_authorities=listed.authorities[1:] if listed else (),
        jurisdiction=Jurisdiction(country),
        level_of_assurance=(listed.level_of_assurance if listed else None) or LevelOfAssurance.SUBSTANTIAL,
        preview=_PREVIEW.get(kind, PreviewPolicy.IF_POSSIBLE),
        language=_LANGUAGES[country],
    )


def sample_data_services(country: str) -> list[DataService]:
    """The five sample data services of one country."""
    return [sample_data_service(country, kind) for kind in SAMPLE_KINDS]
