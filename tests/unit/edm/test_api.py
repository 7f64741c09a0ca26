"""The public API of oots.edm is explicit, and the docs' example is a working document."""

from __future__ import annotations

import json
import re
from pathlib import Path

from edm_xsd import errors

from oots import edm

DOCS = Path(__file__).resolve().parents[3] / "docs" / "edm.md"


def test_all_is_complete_and_resolvable() -> None:
    assert sorted(edm.__all__) == sorted(set(edm.__all__))
    for name in edm.__all__:
        assert hasattr(edm, name), name
    public = {n for n in vars(edm) if not n.startswith("_") and n[0].isupper()}
    assert public <= set(edm.__all__) | {"annotations"}


def test_documented_json_example_works() -> None:
    text = DOCS.read_text(encoding="utf-8")
    block = re.search(r"```json\n(.*?)```", text, re.DOTALL)
    assert block is not None
    doc = edm.from_json(json.loads(block.group(1)))
    assert isinstance(doc, edm.QueryRequest)
    assert errors(edm.to_xml(doc, edm.Version.EDM_V1)) == []


def test_every_document_kind_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for kind in edm.DOCUMENT_KINDS:
        assert f"`{kind}`" in text, kind
