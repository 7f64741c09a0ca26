"""Each correction of a known defect in the official files: the defect trips without it, passes with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from oots.ns import RIM
from oots.validation import BUILTIN_V1, RuleSet, RuleSetError, Validator
from oots.validation.fixes import CODELIST_FIXES, SCHEMATRON_FIXES

ALL_FIXES = {f.name for f in SCHEMATRON_FIXES} | {f.name for f in CODELIST_FIXES}


def without(name: str) -> Validator:
    """A validator applying every correction but ``name``."""
    assert name in ALL_FIXES
    return Validator(fixes=ALL_FIXES - {name})


def _without_preview_location(data: bytes) -> bytes:
    root = etree.fromstring(data)
    exception = root.find("{urn:oasis:names:tc:ebxml-regrep:xsd:rs:4.0}Exception")
    assert exception is not None
    slot = next(s for s in exception.iterchildren(f"{{{RIM}}}Slot") if s.get("name") == "PreviewLocation")
    exception.remove(slot)
    return etree.tostring(root)


def test_fix_err_c022_count(samples: Path, validator: Validator) -> None:
    unfixed = without("FIX_ERR_C022_COUNT")
    data = (samples / "projectathon-testdata/TC06_Response_1.xml").read_bytes()  # a PreviewRequired error
    broken = _without_preview_location(data)
    # the official rule counts a boolean: it never fires, even when PreviewLocation is missing
    assert "R-EDM-ERR-C022" not in unfixed.validate(broken).rule_ids()
    assert validator.validate(data).valid
    report = validator.validate(broken)
    assert "R-EDM-ERR-C022" in report.rule_ids(blocking_only=True)
    assert not report.valid


def _with_preview_method(data: bytes, method: str) -> bytes:
    root = etree.fromstring(data)
    exception = root.find("{urn:oasis:names:tc:ebxml-regrep:xsd:rs:4.0}Exception")
    assert exception is not None
    for slot in exception.iterchildren(f"{{{RIM}}}Slot"):
        if slot.get("name") == "PreviewMethod":
            exception.remove(slot)
    slot = etree.SubElement(exception, f"{{{RIM}}}Slot", name="PreviewMethod")
    value = etree.SubElement(slot, f"{{{RIM}}}SlotValue")
    value.set("{http://www.w3.org/2001/XMLSchema-instance}type", "rim:StringValueType")
    etree.SubElement(value, f"{{{RIM}}}Value").text = method
    return etree.tostring(root)


def test_fix_err_c021_post(samples: Path, validator: Validator) -> None:
    unfixed = without("FIX_ERR_C021_POST")
    data = (samples / "projectathon-testdata/TC06_Response_1.xml").read_bytes()  # a PreviewRequired error
    post, put = _with_preview_method(data, "POST"), _with_preview_method(data, "PUT")
    # the official rule reads rim:value for POST: a correct POST fails it
    assert "R-EDM-ERR-C021" in unfixed.validate(post).rule_ids(blocking_only=True)
    assert "R-EDM-ERR-C021" not in validator.validate(post).rule_ids()
    assert validator.validate(post).valid
    assert "R-EDM-ERR-C021" in validator.validate(put).rule_ids(blocking_only=True)


def test_fix_querybinding_xslt2(samples: Path, validator: Validator) -> None:
    unfixed = without("FIX_QUERYBINDING_XSLT2")
    eb_error = samples / "EB/Complete XML examples (EB)/4.4. Query Error Response of the Evidence Broker - Birth.xml"
    with pytest.raises(RuleSetError, match="queryBinding"):
        unfixed.validate(eb_error.read_bytes())
    report = validator.validate(eb_error.read_bytes())
    assert report.valid
    assert "EB-ERR" in report.rule_sets
    dsd_error = (
        samples / "DSD/Complete XML examples (DSD)/4.4.1 Query Error Response of the DSD - Birth Certificate.xml"
    )
    with pytest.raises(RuleSetError, match="queryBinding"):
        unfixed.validate(dsd_error.read_bytes())
    assert validator.validate(dsd_error.read_bytes()).valid


def test_fix_edm_error_codes_wellformed() -> None:
    with pytest.raises(RuleSetError, match="not well-formed"):
        _ = RuleSet(BUILTIN_V1, fixes=ALL_FIXES - {"FIX_EDM_ERROR_CODES_WELLFORMED"}).codelists
    rules = RuleSet(BUILTIN_V1)
    assert "EDM:ERR:0008" in rules.codelists["EDMErrorCodes"].codes
    assert "FIX_EDM_ERROR_CODES_WELLFORMED" in rules.applied_fixes


def test_fixes_only_touch_the_defective_text() -> None:
    rules = RuleSet(BUILTIN_V1)
    for stem in rules.schematron_files:
        rules.schematron(stem)
    assert rules.applied_fixes == {"FIX_ERR_C021_POST", "FIX_ERR_C022_COUNT", "FIX_QUERYBINDING_XSLT2"}
    corrected = rules.schematron("EDM-ERR-C")
    assert corrected is not None
    # applying the corrections again to a corrected file changes nothing
    assert not any(fix.apply("EDM-ERR-C", corrected.root) for fix in SCHEMATRON_FIXES)
    fixed_gc = (BUILTIN_V1 / "codelists/OOTS/EDMErrorCodes-CodeList.gc").read_bytes()
    for fix in CODELIST_FIXES:
        once = fix.apply("EDMErrorCodes-CodeList.gc", fixed_gc)
        assert fix.apply("EDMErrorCodes-CodeList.gc", once) == once


def test_packaged_files_are_the_official_ones(spec_dir: Path) -> None:
    official = spec_dir / "edm-v1.0"
    for folder in ("sch", "xsd", "codelists/OOTS", "codelists/External"):
        for path in sorted((official / folder).rglob("*")):
            if path.is_file() and path.suffix in {".sch", ".xsd", ".gc"}:
                packaged = BUILTIN_V1 / folder / path.relative_to(official / folder)
                assert packaged.read_bytes() == path.read_bytes(), packaged
