"""Corrections of known defects in the official v1.0 rule files, applied where the files are loaded.

The packaged files stay byte-identical to the official ones; each correction below has a name, says what
it corrects, and only applies when it finds the exact defective text (so corrected or later official
files pass through untouched). ``docs/validation.md`` lists them; ``tests/unit/validation/test_fixes.py``
shows each defect trips without its correction and passes with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

__all__ = [
    "CODELIST_FIXES",
    "FIX_EDM_ERROR_CODES_WELLFORMED",
    "FIX_ERR_C021_POST",
    "FIX_ERR_C022_COUNT",
    "FIX_QUERYBINDING_XSLT2",
    "SCHEMATRON_FIXES",
    "CodelistFix",
    "SchematronFix",
]

SCH = "{http://purl.oclc.org/dsdl/schematron}"


@dataclass(frozen=True, slots=True)
class SchematronFix:
    """A correction of a parsed ``.sch`` file: ``apply(stem, root)`` returns True if it changed something."""

    name: str
    description: str
    apply: Callable[[str, etree._Element], bool]


@dataclass(frozen=True, slots=True)
class CodelistFix:
    """A correction of a code-list file's bytes: ``apply(file_name, data)`` returns the corrected bytes."""

    name: str
    description: str
    apply: Callable[[str, bytes], bytes]


_C022_DEFECT = "count(rim:Slot[@name='PreviewLocation']=1)"
_C022_INTENT = "count(rim:Slot[@name='PreviewLocation'])=1"


def _fix_c022(stem: str, root: etree._Element) -> bool:
    changed = False
    for node in root.iter(f"{SCH}assert"):
        if node.get("id") == "R-EDM-ERR-C022" and (node.get("test") or "").replace(" ", "") == _C022_DEFECT:
            node.set("test", _C022_INTENT)
            changed = True
    return changed


#: R-EDM-ERR-C022 counts a boolean (always 1, so the rule can never fire) instead of the slots.
FIX_ERR_C022_COUNT = SchematronFix(
    "FIX_ERR_C022_COUNT",
    "EDM-ERR-C.sch R-EDM-ERR-C022 tests count(rim:Slot[@name='PreviewLocation']=1), the count of a boolean, "
    "which is always 1; the intent is count(rim:Slot[@name='PreviewLocation'])=1.",
    _fix_c022,
)

_C021_DEFECT = "matches(rim:Value, '^GET$') or matches(rim:value, '^POST$')"
_C021_INTENT = "matches(rim:Value, '^GET$') or matches(rim:Value, '^POST$')"


def _fix_c021(stem: str, root: etree._Element) -> bool:
    changed = False
    for node in root.iter(f"{SCH}assert"):
        if node.get("id") == "R-EDM-ERR-C021" and (node.get("test") or "").strip() == _C021_DEFECT:
            node.set("test", _C021_INTENT)
            changed = True
    return changed


#: R-EDM-ERR-C021 reads rim:value (lower case, no such element) for POST, so a correct POST always fails.
FIX_ERR_C021_POST = SchematronFix(
    "FIX_ERR_C021_POST",
    "EDM-ERR-C.sch R-EDM-ERR-C021 tests matches(rim:value, '^POST$') with a lower-case element name that "
    "never exists, so PreviewMethod POST always fails; the intent is rim:Value, as for GET.",
    _fix_c021,
)

_NO_BINDING_FILES = frozenset({"EB-ERR", "DSD-ERR-S"})


def _fix_binding(stem: str, root: etree._Element) -> bool:
    if stem in _NO_BINDING_FILES and root.get("queryBinding") is None:
        root.set("queryBinding", "xslt2")
        return True
    return False


#: EB-ERR.sch and DSD-ERR-S.sch declare no queryBinding (so XSLT 1 / XPath 1) but use XPath 2 functions.
FIX_QUERYBINDING_XSLT2 = SchematronFix(
    "FIX_QUERYBINDING_XSLT2",
    "EB-ERR.sch and DSD-ERR-S.sch declare no queryBinding although their tests need XPath 2; "
    "they are read with queryBinding='xslt2' like the other 19 files.",
    _fix_binding,
)

_GC_DEFECT = b"Problem during the processing of a QueryRequest/SimpleValue>"
_GC_INTENT = b"Problem during the processing of a QueryRequest</SimpleValue>"


def _fix_gc(name: str, data: bytes) -> bytes:
    if name == "EDMErrorCodes-CodeList.gc" and _GC_DEFECT in data:
        return data.replace(_GC_DEFECT, _GC_INTENT)
    return data


#: The EDM error code list misses a ``<`` before a closing tag, so it is not well-formed XML.
FIX_EDM_ERROR_CODES_WELLFORMED = CodelistFix(
    "FIX_EDM_ERROR_CODES_WELLFORMED",
    "codelists/OOTS/EDMErrorCodes-CodeList.gc is not well-formed (the EDM:ERR:0008 name lacks the '<' of "
    "its closing </SimpleValue> tag); the missing character is restored.",
    _fix_gc,
)

SCHEMATRON_FIXES: tuple[SchematronFix, ...] = (FIX_ERR_C021_POST, FIX_ERR_C022_COUNT, FIX_QUERYBINDING_XSLT2)
CODELIST_FIXES: tuple[CodelistFix, ...] = (FIX_EDM_ERROR_CODES_WELLFORMED,)
