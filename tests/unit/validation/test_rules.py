"""One official rule at a time: corrupt a valid official sample in exactly that rule's way.

Each case names the rule id, the sample, the node to corrupt (an ElementPath from the root, with the
usual prefixes) and the corruption: ``remove`` the node, set its ``text``, set an ``attr`` or delete one
(``delattr``). The corrupted document must stay XSD-valid and of the same kind, and the only new
blocking finding must be that rule.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from oots.ns import PREFIXES, XSI
from oots.validation import Layer, Validator

NS = {**PREFIXES, "xsi": XSI}

SAMPLE_FILES = {
    "request": "Exchange/4.5.4 - OOTS-EDM XML Examples of the Evidence Exchange/2 Example for requesting a Birth "
    "Certificate - natural person/2.1 Step 1  Evidence Request - Birth - full example.xml",
    "response": "Exchange/4.5.4 - OOTS-EDM XML Examples of the Evidence Exchange/2 Example for requesting a Birth "
    "Certificate - natural person/2.2 Step 2  Evidence Response - Birth - full example.xml",
    "error": "projectathon-testdata/TC06_Response_1.xml",
    "dsd": "DSD/Complete XML examples (DSD)/4.3. Query Response of the DSD - Birth Certificate.xml",
    "dsd-err5": "DSD/Complete XML examples (DSD)/4.4.3. Query Error Response of the DSD requesting additional User "
    "Provided Attributes - Birth Certificate - DSD-ERR005.xml",
    "eb-req": "EB/Complete XML examples (EB)/4.2. Get List of Requirements Query - Birth Certificate.xml",
    "eb-evi": "EB/Complete XML examples (EB)/4.3. Get Evidence Types for Requirement Query - Birth Certificate.xml",
    "eb-err": "EB/Complete XML examples (EB)/4.4. Query Error Response of the Evidence Broker - Birth.xml",
    "eb-sub": "LCM/Complete XML Examples/3.2.5 LCM Interface Specification of the EB/5.4 LCM Submit Objects to the "
    "Evidence Broker - Birth Certificate.xml",
    "dsd-sub": "LCM/Complete XML Examples/3.1.5 LCM Interface Specification of the DSD/5.5 LCM Submit Objects to the "
    "DSD - Birth Certificate.xml",
    "lcm-err": "LCM/Complete XML Examples/3.6 - Common Services API Specification/"
    "3.4 The Regrep LCM Error Response.xml",
}

CASES = [
    ("R-EDM-REQ-C001", "request", "rim:Slot[1]/rim:SlotValue/rim:Value", "remove", None, None),
    (
        "R-EDM-REQ-C012",
        "request",
        "rim:Slot[7]/rim:SlotValue/rim:Element/sdg:Agent/sdg:Identifier",
        "attr",
        "schemeID",
        "x",
    ),
    (
        "R-EDM-REQ-C015",
        "request",
        "rim:Slot[7]/rim:SlotValue/rim:Element/sdg:Agent/sdg:Address/sdg:AdminUnitLevel1",
        "text",
        None,
        "x",
    ),
    (
        "R-EDM-REQ-C020",
        "request",
        "rim:Slot[9]/rim:SlotValue/rim:Element/sdg:EvidenceProviderClassification/sdg:Type",
        "remove",
        None,
        None,
    ),
    (
        "R-EDM-REQ-C023",
        "request",
        "rim:Slot[9]/rim:SlotValue/rim:Element/sdg:EvidenceProviderClassification/sdg:SupportedValue",
        "remove",
        None,
        None,
    ),
    (
        "R-EDM-REQ-C026",
        "request",
        "query:Query/rim:Slot[2]/rim:SlotValue/sdg:DataServiceEvidenceType/sdg:Identifier",
        "text",
        None,
        "x",
    ),
    (
        "R-EDM-REQ-C029",
        "request",
        "query:Query/rim:Slot[2]/rim:SlotValue/sdg:DataServiceEvidenceType/sdg:Title[1]",
        "delattr",
        "lang",
        None,
    ),
    (
        "R-EDM-REQ-C033",
        "request",
        "query:Query/rim:Slot[2]/rim:SlotValue/sdg:DataServiceEvidenceType/sdg:DistributedAs/sdg:Format",
        "text",
        None,
        "x",
    ),
    (
        "R-EDM-REQ-C036",
        "request",
        "query:Query/rim:Slot[1]/rim:SlotValue/sdg:Person/sdg:LevelOfAssurance",
        "remove",
        None,
        None,
    ),
    (
        "R-EDM-REQ-C042",
        "request",
        "query:Query/rim:Slot[1]/rim:SlotValue/sdg:Person/sdg:Identifier",
        "attr",
        "schemeID",
        "x",
    ),
    ("R-EDM-REQ-S005", "request", "rim:Slot[1]", "remove", None, None),
    ("R-EDM-REQ-S010", "request", "rim:Slot[5]", "remove", None, None),
    ("R-EDM-REQ-S015", "request", "query:Query/rim:Slot[2]", "remove", None, None),
    ("R-EDM-REQ-S037", "request", "rim:Slot[6]/rim:SlotValue/rim:Element/sdg:Requirement", "remove", None, None),
    ("R-EDM-RESP-C002", "response", "rim:Slot[1]/rim:SlotValue/rim:Value", "remove", None, None),
    (
        "R-EDM-RESP-C008",
        "response",
        "rim:Slot[4]/rim:SlotValue/rim:Element/sdg:Agent/sdg:Address/sdg:AdminUnitLevel1",
        "text",
        None,
        "x",
    ),
    ("R-EDM-RESP-C013", "response", "rim:Slot[5]/rim:SlotValue/sdg:Agent/sdg:Identifier", "attr", "schemeID", "x"),
    (
        "R-EDM-RESP-C018",
        "response",
        "rim:RegistryObjectList/rim:RegistryObject/rim:Slot/rim:SlotValue/sdg:Evidence/sdg:IsConformantTo/sdg:Title[1]",
        "attr",
        "lang",
        "x",
    ),
    (
        "R-EDM-RESP-C021",
        "response",
        "rim:RegistryObjectList/rim:RegistryObject/rim:Slot/rim:SlotValue/sdg:Evidence/sdg:IsConformantTo/sdg:Description[1]",
        "delattr",
        "lang",
        None,
    ),
    (
        "R-EDM-RESP-C026",
        "response",
        "rim:RegistryObjectList/rim:RegistryObject/rim:Slot/rim:SlotValue/sdg:Evidence/sdg:Distribution/sdg:Language",
        "text",
        None,
        "x",
    ),
    (
        "R-EDM-RESP-C039",
        "response",
        "rim:RegistryObjectList/rim:RegistryObject/rim:Slot/rim:SlotValue/sdg:Evidence/sdg:IssuingAuthority/sdg:Identifier",
        "attr",
        "schemeID",
        "x",
    ),
    ("R-EDM-RESP-S003", "response", ".", "delattr", "requestId", None),
    ("R-EDM-RESP-S007", "response", "rim:RegistryObjectList", "remove", None, None),
    (
        "R-EDM-RESP-S029",
        "response",
        "rim:RegistryObjectList/rim:RegistryObject/rim:Slot/rim:SlotValue/sdg:Evidence",
        "remove",
        None,
        None,
    ),
    ("R-EDM-ERR-C001", "error", "rim:Slot[1]/rim:SlotValue/rim:Value", "remove", None, None),
    ("R-EDM-ERR-C004", "error", "rim:Slot[3]/rim:SlotValue/sdg:Agent/sdg:Identifier", "attr", "schemeID", "x"),
    ("R-EDM-ERR-C007", "error", "rim:Slot[3]/rim:SlotValue/sdg:Agent/sdg:Classification", "remove", None, None),
    ("R-EDM-ERR-C010", "error", "rim:Slot[4]/rim:SlotValue/sdg:Agent/sdg:Identifier", "attr", "schemeID", "x"),
    ("R-EDM-ERR-C016", "error", "rs:Exception", "delattr", "message", None),
    ("R-EDM-ERR-C019", "error", "rs:Exception/rim:Slot[2]/rim:SlotValue/rim:Value", "remove", None, None),
    ("R-EDM-ERR-C021", "error", "rs:Exception/rim:Slot[4]/rim:SlotValue/rim:Value", "remove", None, None),
    ("R-EDM-ERR-S004", "error", ".", "attr", "requestId", "x"),
    (
        "R-DSD-RESP-C002",
        "dsd",
        "rim:RegistryObjectList/rim:RegistryObject/rim:Slot/rim:SlotValue/sdg:DataServiceEvidenceType/sdg:Identifier",
        "text",
        None,
        "x",
    ),
    (
        "R-DSD-RESP-C008",
        "dsd",
        "rim:RegistryObjectList/rim:RegistryObject/rim:Slot/rim:SlotValue/sdg:DataServiceEvidenceType/sdg:AuthenticationLevelOfAssurance",
        "text",
        None,
        "x",
    ),
    (
        "R-DSD-RESP-C018",
        "dsd",
        "rim:RegistryObjectList/rim:RegistryObject/rim:Slot/rim:SlotValue/sdg:DataServiceEvidenceType/sdg:AccessService[1]/sdg:Publisher/sdg:Address/sdg:AdminUnitLevel1",
        "text",
        None,
        "x",
    ),
    (
        "R-DSD-RESP-C027",
        "dsd",
        "rim:RegistryObjectList/rim:RegistryObject/rim:Slot/rim:SlotValue/sdg:DataServiceEvidenceType/sdg:AccessService[1]/sdg:Publisher/sdg:ClassificationConcept/sdg:Description[1]",
        "delattr",
        "lang",
        None,
    ),
    (
        "R-DSD-RESP-C033",
        "dsd",
        "rim:RegistryObjectList/rim:RegistryObject/rim:Slot/rim:SlotValue/sdg:DataServiceEvidenceType/sdg:EvidenceProviderClassification/sdg:Description[1]",
        "delattr",
        "lang",
        None,
    ),
    (
        "R-DSD-ERR-C001",
        "dsd-err5",
        "rs:Exception/rim:Slot[2]/rim:SlotValue/sdg:EvidenceProviderJurisdictionDetermination/sdg:JurisdictionContextId",
        "text",
        None,
        "x",
    ),
    (
        "R-DSD-ERR-C011",
        "dsd-err5",
        "rs:Exception/rim:Slot[1]/rim:SlotValue/sdg:DataServiceEvidenceType/sdg:EvidenceTypeClassification",
        "text",
        None,
        "x",
    ),
    ("R-DSD-ERR-C016", "dsd-err5", "rs:Exception", "delattr", "xsi:type", None),
    ("R-DSD-RESP-S010", "dsd-err5", "rs:Exception/rim:Slot[2]", "attr", "name", "x"),
    (
        "R-EB-REQ-C001",
        "eb-req",
        "rim:RegistryObjectList/rim:RegistryObject/rim:Slot/rim:SlotValue/sdg:Requirement/sdg:Identifier",
        "text",
        None,
        "x",
    ),
    (
        "R-EB-REQ-C006",
        "eb-req",
        "rim:RegistryObjectList/rim:RegistryObject/rim:Slot/rim:SlotValue/sdg:Requirement/sdg:ReferenceFramework/sdg:Title[1]",
        "delattr",
        "lang",
        None,
    ),
    ("R-EB-REQ-S006", "eb-req", ".", "attr", "status", "x"),
    (
        "R-EB-EVI-C001",
        "eb-evi",
        "rim:RegistryObjectList/rim:RegistryObject/rim:Slot/rim:SlotValue/sdg:Requirement/sdg:Identifier",
        "text",
        None,
        "x",
    ),
    (
        "R-EB-EVI-C009",
        "eb-evi",
        "rim:RegistryObjectList/rim:RegistryObject/rim:Slot/rim:SlotValue/sdg:Requirement/sdg:ReferenceFramework/sdg:Jurisdiction/sdg:AdminUnitLevel1",
        "text",
        None,
        "x",
    ),
    (
        "R-EB-EVI-C019",
        "eb-evi",
        "rim:RegistryObjectList/rim:RegistryObject/rim:Slot/rim:SlotValue/sdg:Requirement/sdg:EvidenceTypeList/sdg:EvidenceType/sdg:Description[1]",
        "attr",
        "lang",
        "x",
    ),
    ("R-EB-ERR-009", "eb-err", "rs:Exception", "delattr", "xsi:type", None),
    ("R-EB-ERR-013", "eb-err", "rs:Exception", "delattr", "message", None),
    ("R-EB-ERR-015", "eb-err", "rs:Exception", "delattr", "code", None),
    (
        "R-EB-SUB-C001",
        "eb-sub",
        "rim:RegistryObjectList/rim:RegistryObject[1]/rim:Slot/rim:SlotValue/sdg:EvidenceType/sdg:EvidenceTypeClassification",
        "text",
        None,
        "x",
    ),
    (
        "R-EB-SUB-C012",
        "eb-sub",
        "rim:RegistryObjectList/rim:RegistryObject[3]/rim:Slot/rim:SlotValue/sdg:Requirement/sdg:Identifier",
        "text",
        None,
        "x",
    ),
    (
        "R-EB-SUB-C023",
        "eb-sub",
        "rim:RegistryObjectList/rim:RegistryObject[4]/rim:Slot/rim:SlotValue/sdg:ReferenceFramework/sdg:RelatedTo/sdg:Identifier",
        "text",
        None,
        "x",
    ),
    (
        "R-DSD-SUB-C001",
        "dsd-sub",
        "rim:RegistryObjectList/rim:RegistryObject[3]/rim:Slot/rim:SlotValue/sdg:DataServiceEvidenceType/sdg:Identifier",
        "text",
        None,
        "x",
    ),
    (
        "R-DSD-SUB-C013",
        "dsd-sub",
        "rim:RegistryObjectList/rim:RegistryObject[3]/rim:Slot/rim:SlotValue/sdg:DataServiceEvidenceType/sdg:EvidenceProviderClassification/sdg:Description[1]",
        "attr",
        "lang",
        "x",
    ),
    (
        "R-DSD-SUB-C032",
        "dsd-sub",
        "rim:RegistryObjectList/rim:RegistryObject[1]/rim:Slot/rim:SlotValue/sdg:AccessService/sdg:Publisher/sdg:ClassificationConcept/sdg:Type",
        "remove",
        None,
        None,
    ),
    ("R-LCM-ERR-003", "lcm-err", ".", "delattr", "requestId", None),
    ("R-LCM-ERR-006", "lcm-err", ".", "attr", "status", "x"),
]


def _attr_name(name: str) -> str:
    if ":" in name:
        prefix, local = name.split(":", 1)
        return f"{{{NS[prefix]}}}{local}"
    return name


def corrupt(data: bytes, path: str, op: str, attr: str | None, value: str | None) -> bytes:
    root = etree.fromstring(data)
    node = root if path == "." else root.find(path, NS)
    assert node is not None, f"{path} not in the sample"
    if op == "remove":
        parent = node.getparent()
        assert parent is not None
        parent.remove(node)
    elif op == "text":
        node.text = value
    elif op == "attr":
        assert attr is not None
        assert value is not None
        node.set(_attr_name(attr), value)
    elif op == "delattr":
        assert attr is not None
        del node.attrib[_attr_name(attr)]
    else:
        raise AssertionError(op)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_enough_distinct_rules() -> None:
    assert len({case[0] for case in CASES}) >= 40


@pytest.mark.parametrize(("rule", "sample", "path", "op", "attr", "value"), CASES, ids=[c[0] for c in CASES])
def test_rule_fires(
    rule: str,
    sample: str,
    path: str,
    op: str,
    attr: str | None,
    value: str | None,
    samples: Path,
    validator: Validator,
) -> None:
    data = (samples / SAMPLE_FILES[sample]).read_bytes()
    before = validator.validate(data)
    after = validator.validate(corrupt(data, path, op, attr, value))
    assert after.kind == before.kind
    assert not [f for f in after.findings if f.layer is Layer.XSD]
    new = after.rule_ids(blocking_only=True) - before.rule_ids(blocking_only=True)
    assert new == {rule}
    assert not after.valid
    hit = next(f for f in after.findings if f.rule == rule)
    assert hit.layer is Layer.SCHEMATRON
    assert hit.location.startswith("/")
    assert hit.message
