"""The provider's data models are the ones the Common Services catalogue publishes: every
distribution the catalogue lists for a sample data service is rendered and valid."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import pytest

from oots.cs.datafile import load_catalogue
from oots.edm import EvidenceTypeDistribution
from oots.provider.datamodels import MODELS, model_by_conforms_to, validate_json_document, validate_xml
from oots.provider.dataservice import DataService, EvidenceRefused
from oots.provider.matching import LegalPersonQuery, LegalPersonRecord, PersonQuery, PersonRecord
from oots.provider.registers import CsvRegister, FieldMap
from oots.provider.render import MEDIA_JSON, MEDIA_XML
from oots.provider.samples import SAMPLE_COUNTRIES, SAMPLE_KINDS, sample_data_service, sample_register_path
from oots.xmlsafe import parse

CATALOGUE = load_catalogue(Path(str(resources.files("oots.cs") / "data" / "demo-catalogue.toml")))
LISTED = {ds.id: ds for ds in CATALOGUE.data_services}


def _register_countries(kind: str) -> set[str]:
    with sample_register_path(kind).open(encoding="utf-8", newline="") as f:
        return {row["country"] for row in csv.DictReader(f)}


def test_every_register_country_is_in_the_catalogue() -> None:
    # a country whose sample register holds records of a kind offers that kind on its access point
    countries = {
        a.id.removeprefix("AP_").removesuffix("_01") for ds in CATALOGUE.data_services for a in ds.access_services
    }
    for kind in SAMPLE_KINDS:
        for country in sorted(_register_countries(kind) & countries):
            service = sample_data_service(country, kind)
            listed = LISTED.get(service.identifier)
            assert listed is not None, f"the catalogue does not list the {kind} service of {country}"
            assert {a.id for a in listed.access_services} == {f"AP_{country}_01"}
            assert listed.classification == service.evidence_type_classification
            assert f"/{country}/" in listed.classification


def _a_record(country: str, kind: str) -> tuple[DataService, PersonRecord | LegalPersonRecord]:
    """The country's sample service and a real record to render. The service reads its kind's
    whole sample register, since a country's register may hold no record of that kind."""
    fields = FieldMap()
    register = CsvRegister(sample_register_path(kind), fields=fields)
    service = sample_data_service(country, kind, register=register)
    with sample_register_path(kind).open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    row = next((r for r in rows if r.get("country") == country), rows[0])
    found: Sequence[PersonRecord | LegalPersonRecord]
    if service.model.legal_person:
        found = register.find_legal_persons(LegalPersonQuery(row[fields.legal_name]))
    else:
        born = dt.date.fromisoformat(row[fields.date_of_birth])
        found = register.find_persons(PersonQuery(row[fields.family_name], row[fields.given_name], born))
    assert found, f"no record in the sample register {kind}"
    return service, found[0]


def test_every_catalogue_model_is_a_provider_model() -> None:
    urls = {d.conforms_to for ds in CATALOGUE.data_services for d in ds.distributions if d.conforms_to}
    assert urls
    for url in urls:
        assert model_by_conforms_to(url).conforms_to == url
    # the v1.0 profile's spelling names the same model
    v1 = next(iter(urls)).replace("sr.oots.tech.ec.europa.eu/datamodels/", "sr.oots.tech.europa.eu/distributions/")
    assert model_by_conforms_to(v1).conforms_to in urls
    assert {m.conforms_to for m in MODELS} >= urls


@pytest.mark.parametrize("country", SAMPLE_COUNTRIES)
@pytest.mark.parametrize("kind", SAMPLE_KINDS)
def test_catalogue_distributions_render_and_validate(country: str, kind: str) -> None:
    if country not in _register_countries(kind):
        pytest.skip(f"the sample register {kind} holds no record of {country}")
    service, record = _a_record(country, kind)
    listed = LISTED.get(service.identifier)
    assert listed is not None, f"the catalogue does not list the {kind} service of {country}"
    assert listed.distributions
    for d in listed.distributions:
        wanted = EvidenceTypeDistribution(d.format, conforms_to=d.conforms_to)
        evidences = service.render(record, [wanted])
        assert evidences
        main = evidences[0]
        assert main.document.media_type == d.format
        if d.conforms_to:
            assert main.metadata.distribution.conforms_to == d.conforms_to
            if d.format == MEDIA_XML:
                validate_xml(service.model, parse(main.document.content))
            elif d.format == MEDIA_JSON:
                validate_json_document(service.model, json.loads(main.document.content))
        else:
            assert main.document.content.startswith(b"%PDF-")


def test_the_old_demo_model_url_is_refused() -> None:
    service = sample_data_service("EL", "births")
    _, record = _a_record("EL", "births")
    old = "https://sr.oots.tech.europa.eu/distributions/oots-demo-birth-certificate-1.0.0"
    with pytest.raises(EvidenceRefused) as caught:
        service.render(record, [EvidenceTypeDistribution(MEDIA_XML, conforms_to=old)])
    assert caught.value.code == "EDM:ERR:0007"


def test_sample_diplomas_are_of_the_level_the_catalogue_lists_them_for() -> None:
    # the catalogue lists each country's diploma service as a proof of a tertiary education
    # qualification (Germany's: of the higher education entrance qualification), so the sample
    # register's diplomas are of that level: EQF 5 and up for tertiary, 4 for the entrance qualification
    names = {r.id: dict(r.names)["EN"] for r in CATALOGUE.requirements}
    proves = {cls: names[etl.requirement] for etl in CATALOGUE.evidence_type_lists for cls in etl.evidence_types}
    with sample_register_path("diplomas").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    checked = set()
    for country in SAMPLE_COUNTRIES:
        requirement = proves[sample_data_service(country, "diplomas").evidence_type_classification]
        levels = {int(row["eqf_level"]) for row in rows if row["country"] == country}
        assert levels, country
        if requirement == "Proof of tertiary education qualification":
            assert min(levels) >= 5, (country, levels)
        else:
            assert requirement == "Proof of higher education entrance qualification", (country, requirement)
            assert levels == {4}, (country, levels)
        checked.add(requirement)
    assert len(checked) == 2


def test_the_diploma_model_keeps_its_earlier_name() -> None:
    from oots.provider.datamodels import model_by_name

    assert model_by_name("secondary-education-diploma") is model_by_name("diploma")
