"""Rule set directories: layout, local-only schema resolution, code lists."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from oots.validation import BUILTIN_V1, RuleSet, RuleSetError

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:4.0"


def test_builtin_rule_set() -> None:
    rules = RuleSet(BUILTIN_V1)
    assert len(rules.schematron_files) == 21
    assert rules.schema is not None
    assert {"EAS", "Nuts", "EDMErrorCodes", "CountryIdentificationCode"} <= set(rules.codelists)
    assert (BUILTIN_V1 / "NOTICE").read_text().count("EUPL-1.2") >= 2


def test_not_a_rule_set(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError, match="does not exist"):
        RuleSet(tmp_path / "missing")
    with pytest.raises(RuleSetError, match="neither"):
        RuleSet(tmp_path)


def test_remote_schema_imports_are_refused(tmp_path: Path) -> None:
    (tmp_path / "xsd").mkdir()
    (tmp_path / "xsd" / "rim.xsd").write_text(
        f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{RIM}">'
        '<xs:import namespace="urn:example:other" schemaLocation="http://127.0.0.1:9/other.xsd"/>'
        "</xs:schema>"
    )
    with pytest.raises(RuleSetError, match=r"refused: http://127\.0\.0\.1:9/other\.xsd"):
        _ = RuleSet(tmp_path).schema


def test_remote_imports_resolve_by_file_name_without_a_catalogue(tmp_path: Path) -> None:
    # the official files import rim.xsd etc. from docs.oasis-open.org: found locally by name
    shutil.copytree(BUILTIN_V1 / "xsd", tmp_path / "xsd")
    rules = RuleSet(tmp_path)
    assert rules.catalogue == {}
    assert rules.schema is not None


def test_catalogue_entries_stay_inside_the_rule_set(tmp_path: Path) -> None:
    shutil.copytree(BUILTIN_V1 / "xsd", tmp_path / "xsd")
    (tmp_path / "catalog.xml").write_text(
        '<catalog xmlns="urn:oasis:names:tc:entity:xmlns:xml:catalog">'
        '<system systemId="http://example.org/a.xsd" uri="../../etc/passwd"/></catalog>'
    )
    with pytest.raises(RuleSetError, match="outside the rule set"):
        RuleSet(tmp_path)


def test_unknown_correction_names_are_refused() -> None:
    with pytest.raises(RuleSetError, match="unknown corrections"):
        RuleSet(BUILTIN_V1, fixes={"FIX_NOTHING"})
