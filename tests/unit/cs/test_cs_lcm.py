"""The official LCM samples feed the catalogue; the answers built from them are conformant."""

from __future__ import annotations

from pathlib import Path

import pytest

from cs.cs_helpers import DEMO
from oots.cs import answers
from oots.cs.catalogue import Catalogue, NeedMoreInput
from oots.cs.datafile import load_catalogue
from oots.cs.lcm import catalogue_from_lcm
from oots.cs.queries import DataServicesQuery, EvidenceTypesQuery, RequirementsQuery
from oots.errors import ModelError
from oots.validation import Validator


@pytest.fixture(scope="module")
def from_lcm(spec_dir: Path) -> Catalogue:
    folder = spec_dir / "edm-v1.0" / "samples" / "LCM" / "Complete XML Examples"
    files = sorted(folder.rglob("5.* LCM Submit Objects*.xml"))
    assert len(files) == 4
    merged = Catalogue()
    for path in files:
        merged = merged.merged(catalogue_from_lcm(path.read_bytes()))
    return merged


def test_official_lcm_samples_load(from_lcm: Catalogue) -> None:
    assert len(from_lcm.data_services) == 3
    assert len(from_lcm.evidence_type_lists) >= 4
    page = from_lcm.find_requirements(RequirementsQuery(procedure_id="R1", country_code="DE"))
    assert page.items[0][0].names[0] == ("EN", "Proof of Birth")


def test_lcm_birth_certificate_flow(from_lcm: Catalogue) -> None:
    birth = "https://sr.oots.tech.europa.eu/evidencetypeclassifications/DE/ca8afed6-2dc0-422a-a931-d21c3d8d370e"
    with pytest.raises(NeedMoreInput) as info:
        from_lcm.find_data_services(DataServicesQuery(birth, "DE"))
    more = info.value
    assert more.jurisdiction is not None
    assert more.jurisdiction.level == "LAU"
    (concept,) = more.classifications
    page = from_lcm.find_data_services(
        DataServicesQuery(
            birth,
            "DE",
            jurisdiction_admin_l3="02000000",
            jurisdiction_context_id=more.jurisdiction.context_id,
            classification_values=((concept.id, "ApplicantHasBeenResidentInGermany"),),
        )
    )
    assert [a.publisher.names[0][1] for a in page.items[0].access_services] == ["Civil Registration Office Hamburg"]
    validator = Validator()
    assert validator.validate(answers.data_service_answer(page, answers.V1)).valid
    assert validator.validate(answers.error_answer(more, answers.V1)).valid
    req = from_lcm.requirements[0]
    found = from_lcm.find_evidence_types(EvidenceTypesQuery(requirement_id=req.id, country_code="DE"))
    assert validator.validate(answers.evidence_types_answer(found, from_lcm, answers.V1)).valid


def test_lcm_merges_with_the_data_file(from_lcm: Catalogue) -> None:
    both = load_catalogue(DEMO).merged(from_lcm)
    assert len(both.data_services) == 45


def test_not_a_submission_is_refused(spec_dir: Path) -> None:
    response = spec_dir / "edm-v1.0/samples/LCM/Complete XML Examples/3.6 - Common Services API Specification"
    with pytest.raises(ModelError):
        catalogue_from_lcm((response / "3.3 The Regrep LCM Successful Response.xml").read_bytes())
    with pytest.raises(ModelError):
        catalogue_from_lcm(b"<x/>")


def test_answers_spell_the_semantic_repository_per_version(from_lcm: Catalogue) -> None:
    page = from_lcm.find_requirements(RequirementsQuery(procedure_id="R1", country_code="DE"))
    v1 = answers.requirements_answer(page, answers.V1)
    v2 = answers.requirements_answer(page, answers.V2)
    assert b"https://sr.oots.tech.europa.eu/requirements/" in v1
    assert b"https://sr.oots.tech.ec.europa.eu/requirements/" in v2
    assert b"https://sr.oots.tech.europa.eu/" not in v2
