"""The rule ids the official Schematron files declare, checked against the business-rule workbook.

The validator reports rule ids as the files declare them (that is what other tools running the official
files report). The workbook (v0.83) numbers some rules differently; the files where the two disagree are
listed in docs/validation.md and pinned here, so a new rule set that fixes or changes them shows up.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from lxml import etree

from oots.validation import BUILTIN_V1

WORKBOOK = "edm-v1.0/business-rules/Business+Rules+-+OOTS+Transactions+v0.83+2023-04.xlsx"
M = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
SCH = "{http://purl.oclc.org/dsdl/schematron}"

#: Files whose ids partly differ from their workbook sheet (copy-paste prefixes, missing "R-", a/b splits).
DIFFERING = {
    "DSD-ERR-C": 1,
    "DSD-ERR-S": 18,
    "DSD-RESP-C": 2,
    "DSD-RESP-S": 1,
    "DSD-SUB-C": 2,
    "DSD-SUB-S": 2,
    "EB-ERR": 8,
    "EB-SUB-S": 48,
    "EDM-ERR-S": 18,
    "EDM-RESP-C": 2,
    "EDM-RESP-S": 1,
    "LCM-ERR": 18,
}


def _sheets(path: Path) -> dict[str, set[str]]:
    with zipfile.ZipFile(path) as book:
        strings = ["".join(si.itertext()) for si in etree.fromstring(book.read("xl/sharedStrings.xml")).iter(f"{M}si")]
        rels = {r.get("Id"): r.get("Target") for r in etree.fromstring(book.read("xl/_rels/workbook.xml.rels"))}
        sheets: dict[str, set[str]] = {}
        for sheet in etree.fromstring(book.read("xl/workbook.xml")).iter(f"{M}sheet"):
            xml = etree.fromstring(book.read(f"xl/{rels[sheet.get(f'{R}id')]}"))
            ids = set()
            for cell in xml.iter(f"{M}c"):
                value = cell.find(f"{M}v")
                if value is not None and cell.get("t") == "s":
                    text = strings[int(value.text or "0")].strip()
                    if re.fullmatch(r"R-[A-Z]+-[A-Z]+-?[A-Z]?\d+[a-z]?", text):
                        ids.add(text)
            sheets[str(sheet.get("name"))] = ids
    return sheets


def test_rule_ids_against_the_workbook(spec_dir: Path) -> None:
    sheets = _sheets(spec_dir / WORKBOOK)
    differing: dict[str, int] = {}
    matched = 0
    for path in sorted((BUILTIN_V1 / "sch").glob("*.sch")):
        ids = [n.get("id") for n in etree.parse(str(path)).iter(f"{SCH}assert", f"{SCH}report") if n.get("id")]
        unknown = [i for i in ids if i not in sheets[path.stem]]
        matched += len(ids) - len(unknown)
        if unknown:
            differing[path.stem] = len(unknown)
    assert differing == DIFFERING
    assert matched == 434  # of the 555 assertions that have an id
