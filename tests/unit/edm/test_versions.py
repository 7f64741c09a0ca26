"""Versions are profiles: every shipped document converts to the other version and back."""

from __future__ import annotations

from pathlib import Path

import pytest
from edm_samples import SPEC, cs_v2, exchange_v1, exchange_v2, registry_v1
from edm_xsd import errors

from oots import edm
from oots.errors import ModelError

ALL = exchange_v1(SPEC) + exchange_v2(SPEC) + registry_v1(SPEC) + cs_v2(SPEC) if SPEC.is_dir() else []
V2_SHIPPED = exchange_v2(SPEC) + cs_v2(SPEC) if SPEC.is_dir() else []


def _skeleton(data: bytes) -> list[tuple[str, str]]:
    """Slot names in document order with their value types: what two versions must agree on."""
    from lxml import etree

    root = etree.fromstring(data)
    out = []
    for slot in root.iter("{urn:oasis:names:tc:ebxml-regrep:xsd:rim:4.0}Slot"):
        value = slot.find("{urn:oasis:names:tc:ebxml-regrep:xsd:rim:4.0}SlotValue")
        kind = "" if value is None else value.get("{http://www.w3.org/2001/XMLSchema-instance}type", "")
        out.append(
            (slot.get("name", ""), kind.split(":")[-1], "" if value is None else value.get("collectionType", ""))
        )
    return out


@pytest.mark.parametrize("path", ALL, ids=[p.name for p in ALL])
def test_converts_to_v1_xsd_valid(path: Path) -> None:
    doc = edm.parse(path.read_bytes())
    v1 = edm.to_xml(doc, edm.Version.EDM_V1)
    assert errors(v1) == []
    again = edm.parse(v1)
    assert type(again) is type(doc)
    if not isinstance(doc, edm.SubmitObjectsRequest | edm.RegistryResponse):
        assert again.specification is edm.Version.EDM_V1  # type: ignore[union-attr]
        back = edm.parse(edm.to_xml(again, edm.Version.EDM_V2))
        assert back.specification in (edm.Version.EDM_V2, edm.Version.CS_V2)  # type: ignore[union-attr]


@pytest.mark.parametrize("path", V2_SHIPPED, ids=[p.name for p in V2_SHIPPED])
def test_generated_v2_has_the_skeleton_of_the_shipped_message(path: Path) -> None:
    shipped = path.read_bytes()
    doc = edm.parse(shipped)
    # through v1.0 and back, then compare with the shipped message
    regenerated = edm.to_xml(edm.parse(edm.to_xml(doc, edm.Version.EDM_V1)), edm.Version.EDM_V2)
    assert _skeleton(regenerated) == _skeleton(shipped)


def _generated_v2() -> dict[str, bytes]:
    from edm_examples import METADATA, PROVIDER, request

    req = request()
    evidence = edm.response_evidence(METADATA, "cid:a1@example.de", title="Evidence")
    return {
        "requete.xml": edm.to_xml(req),
        "reponse.xml": edm.to_xml(edm.evidence_response(req, provider=PROVIDER, evidences=[evidence])),
        "erreur.xml": edm.to_xml(edm.query_error("EDM:ERR:0004", request=req, error_provider=PROVIDER)),
        "erreurExpiration.xml": edm.to_xml(edm.query_error("EDM:ERR:0005", request=req, error_provider=PROVIDER)),
    }


@pytest.mark.parametrize("name", ["requete.xml", "reponse.xml", "erreur.xml", "erreurExpiration.xml"])
def test_generated_v2_skeleton_matches_shipped(spec_dir: Path, name: str) -> None:
    shipped = (spec_dir / "edm-v2.0-captures/reference/messages" / name).read_bytes()
    assert _skeleton(_generated_v2()[name]) == _skeleton(shipped)


def test_unknown_target_version() -> None:
    from edm_examples import request

    with pytest.raises(ModelError, match="unknown version"):
        edm.to_xml(request(), "oots-edm:v9.9")
