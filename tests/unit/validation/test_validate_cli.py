"""``oots validate``: text and JSON output, exit codes 0 / 1 / 2, ``--rules``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from clirun import run_cli
from oots.validation import BUILTIN_V1

TAX = (
    "Exchange/4.5.4 - OOTS-EDM XML Examples of the Evidence Exchange/4 Example for requesting an Extract of a "
    "Commercial Register/4.1 Step 1  Evidence Request  - Tax - full example.xml"
)


def test_valid_files_exit_0(samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [
        str(samples / "projectathon-testdata/TC01_Request.xml"),
        str(samples / "projectathon-testdata/TC01_Response.xml"),
    ]
    code, out, _ = run_cli(capsys, "validate", *files)
    assert code == 0
    assert out.count(": valid (") == 2


def test_json_report(samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(samples / "projectathon-testdata/TC01_Request.xml"), str(samples / TAX)]
    code, out, _ = run_cli(capsys, "validate", "--json", *files)
    assert code == 1
    data = json.loads(out)
    assert [entry["file"] for entry in data] == files
    assert data[0]["valid"] is True
    assert data[0]["kind"] == "edm-request"
    assert data[0]["version"] == "1.0"
    assert data[1]["valid"] is False
    c067 = [f for f in data[1]["findings"] if f["rule"] == "R-EDM-REQ-C067"]
    assert c067
    assert set(c067[0]) == {"rule", "severity", "layer", "message", "location"}
    assert c067[0]["severity"] == "ERROR"
    assert c067[0]["layer"] == "schematron"
    assert c067[0]["location"].endswith("sdg:AdminUnitLevel1[1]")


def test_missing_file_exits_2(tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "validate", str(samples / TAX), str(tmp_path / "nope.xml"))
    assert code == 2
    assert "UNUSABLE" in out


def test_rules_directory(tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a copy of the packaged set in the official 2.0.1 layout (xsd/, sch/, sch/codelist-include/)
    rules = tmp_path / "tdd-2.0.1"
    shutil.copytree(BUILTIN_V1 / "xsd", rules / "xsd")
    shutil.copytree(BUILTIN_V1 / "sch", rules / "sch")
    (rules / "sch" / "codelist-include").mkdir()
    shutil.copy(BUILTIN_V1 / "codelists/External/EAS.gc", rules / "sch" / "codelist-include")
    code, out, _ = run_cli(capsys, "validate", "--json", "--rules", str(rules), str(samples / TAX))
    assert code == 1
    assert "R-EDM-REQ-C067" in {f["rule"] for f in json.loads(out)[0]["findings"]}


def test_bad_rules_directory_exits_2(tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "validate", "--rules", str(tmp_path), str(samples / TAX))
    assert code == 2
    assert "not a rule set" in err
