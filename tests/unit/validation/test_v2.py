"""The provisional v2.0 structural checks: real v2.0 messages pass, each corruption trips its rule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from oots.ns import QUERY, RIM, RS
from oots.validation import BUILTIN_V1, Layer, Validator
from oots.validation.v2 import RULES

REFERENCE = "edm-v2.0-captures/reference/messages"


def _v2_files(spec_dir: Path) -> list[Path]:
    files = [p for p in sorted((spec_dir / REFERENCE).glob("*.xml")) if ".entete." not in p.name]
    files += sorted((spec_dir / "common-services/acceptance-captures").glob("*.xml"))
    return files


def test_real_v2_messages_pass(spec_dir: Path, validator: Validator) -> None:
    files = _v2_files(spec_dir)
    assert len(files) == 9
    kinds = set()
    for path in files:
        report = validator.validate(path.read_bytes())
        assert report.version == "2.0", path.name
        assert report.valid, (path.name, report.findings)
        assert report.rule_sets == ("OOTS-V2 (provisional)",)
        kinds.add(report.kind)
    assert kinds == {"edm-request", "edm-response", "edm-error", "eb-requirements", "eb-evidence-types", "dsd-error"}


def _slot(parent: etree._Element, name: str) -> etree._Element:
    return next(s for s in parent.iterchildren(f"{{{RIM}}}Slot") if s.get("name") == name)


Mutation = Callable[[etree._Element], None]


def _drop_slot(name: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        root.remove(_slot(root, name))

    return mutate


def _set(path: str, attr: str, value: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        node = root if path == "." else root.find(path)
        assert node is not None
        node.set(attr, value)

    return mutate


def _add_preview_location(root: etree._Element) -> None:
    slot = etree.SubElement(root, f"{{{RIM}}}Slot", name="PreviewLocation")
    value = etree.SubElement(slot, f"{{{RIM}}}SlotValue")
    value.set("{http://www.w3.org/2001/XMLSchema-instance}type", "rim:StringValueType")
    etree.SubElement(value, f"{{{RIM}}}Value").text = "https://ep.example/preview/1"
    root.insert(2, slot)


def _drop_timestamp(root: etree._Element) -> None:
    exception = root.find(f"{{{RS}}}Exception")
    assert exception is not None
    exception.remove(_slot(exception, "Timestamp"))


def _spec_v21(root: etree._Element) -> None:
    value = _slot(root, "SpecificationIdentifier").find(f"{{{RIM}}}SlotValue/{{{RIM}}}Value")
    assert value is not None
    value.text = "oots-edm:v2.1"


CASES = [
    ("OOTS-V2-GEN-002", "requete.xml", _drop_slot("IssueDateTime")),
    (
        "OOTS-V2-GEN-003",
        "requete.xml",
        _set(
            f"{{{RIM}}}Slot[@name='IssueDateTime']/{{{RIM}}}SlotValue",
            "{http://www.w3.org/2001/XMLSchema-instance}type",
            "rim:StringValueType",
        ),
    ),
    ("OOTS-V2-REQ-001", "requete.xml", _set(".", "id", "1234")),
    ("OOTS-V2-REQ-002", "requete.xml", _set(f"{{{QUERY}}}ResponseOption", "returnType", "LeafClass")),
    ("OOTS-V2-REQ-003", "requete.xml", _set(f"{{{QUERY}}}Query", "queryDefinition", "Other")),
    ("OOTS-V2-REQ-006", "requete.xml", _add_preview_location),
    ("OOTS-V2-RESP-001", "reponse.xml", _set(".", "requestId", "nope")),
    ("OOTS-V2-ERR-003", "erreur.xml", _drop_timestamp),
    (
        "OOTS-V2-ERR-001",
        "erreur.xml",
        _set(".", "status", "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"),
    ),
]


@pytest.mark.parametrize(("rule", "name", "mutate"), CASES, ids=[c[0] for c in CASES])
def test_corruption_trips_the_rule(
    rule: str, name: str, mutate: Mutation, spec_dir: Path, validator: Validator
) -> None:
    root = etree.fromstring((spec_dir / REFERENCE / name).read_bytes())
    mutate(root)
    report = validator.validate(etree.tostring(root))
    assert rule in RULES
    assert report.rule_ids(blocking_only=True) == {rule}
    finding = next(f for f in report.findings if f.rule == rule)
    assert finding.layer is Layer.STRUCTURE
    assert finding.message.startswith("[provisional]")


def test_unknown_v2_minor_version_is_flagged(spec_dir: Path, validator: Validator) -> None:
    root = etree.fromstring((spec_dir / REFERENCE / "requete.xml").read_bytes())
    _spec_v21(root)
    report = validator.validate(etree.tostring(root))
    assert report.version == "2.1"
    assert "OOTS-V2-GEN-001" in report.rule_ids(blocking_only=True)


def test_rules_directory_replaces_the_provisional_checks(spec_dir: Path) -> None:
    # with --rules, the given rule set applies to v2.0 documents too (here: the v1.0 files, which reject it)
    report = Validator(BUILTIN_V1).validate((spec_dir / REFERENCE / "requete.xml").read_bytes())
    assert report.rule_sets[0] == "oots-edm-v1.0"
    assert "R-EDM-REQ-C001" in report.rule_ids()
