"""``oots validate``: text and JSON output, exit codes 0 / 1 / 2, ``--rules``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from clirun import run_cli
from oots.validation import BUILTIN_V1, Detected, Validator
from oots.validation.codelists import bindings

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


V2_REQUEST = "edm-v2.0-captures/reference/messages/requete.xml"


def test_json_report_names_rule_set_checks_and_verdict(samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "validate", "--json", str(samples / "projectathon-testdata/TC01_Request.xml"))
    assert code == 0
    entry = json.loads(out)[0]
    assert entry["rule_set"] == "oots-edm-v1.0"
    assert entry["checks"] > 100  # EDM-REQ-S + EDM-REQ-C assertions, the XSD, the code-list bindings
    assert entry["provisional"] is False
    assert entry["verdict"] == "VALID"
    assert entry["invalid"] is False


def _broken_v2_request(spec_dir: Path, tmp_path: Path) -> Path:
    text = (spec_dir / V2_REQUEST).read_text()
    broken = tmp_path / "v2-broken.xml"
    broken.write_text(text.replace('queryDefinition="DocumentQuery"', 'queryDefinition="Other"'))
    return broken


def test_only_provisional_failures_are_unconfirmed_exit_3(
    spec_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = _broken_v2_request(spec_dir, tmp_path)
    code, out, _ = run_cli(capsys, "validate", "--json", str(broken))
    assert code == 3
    entry = json.loads(out)[0]
    assert entry["valid"] is False
    assert entry["invalid"] is False
    assert entry["verdict"] == "UNCONFIRMED"
    assert entry["provisional"] is True
    assert entry["rule_set"] == "OOTS-V2 (provisional)"
    assert entry["checks"] > 0
    code, out, _ = run_cli(capsys, "validate", str(broken))
    assert code == 3
    assert ": UNCONFIRMED (edm-request, v2.0; OOTS-V2 (provisional), provisional, " in out


def test_a_confirmed_failure_outweighs_an_unconfirmed_one(
    spec_dir: Path, tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run_cli(capsys, "validate", str(_broken_v2_request(spec_dir, tmp_path)), str(samples / TAX))
    assert code == 1


def test_unknown_version_is_said_in_words(samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (samples / "projectathon-testdata/TC01_Request.xml").read_text()
    assert "oots-edm:v1.0" in text
    odd = tmp_path / "odd.xml"
    odd.write_text(text.replace("oots-edm:v1.0", "oots-edm:next"))
    _, out, _ = run_cli(capsys, "validate", str(odd))
    assert "version unknown" in out
    assert "vNone" not in out


HEADER = "edm-v2.0-captures/reference/messages/reponse.entete.xml"
EBMS_STAND_IN = """<sch:schema xmlns:sch="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt2">
  <sch:ns prefix="eb" uri="http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"/>
  <sch:pattern>
    <sch:rule context="eb:UserMessage/eb:CollaborationInfo">
      <sch:assert id="R-EBMS-T001" test="eb:Service = 'QueryManager'">Service MUST be QueryManager, not
        <sch:value-of select="eb:Service"/></sch:assert>
    </sch:rule>
  </sch:pattern>
</sch:schema>"""


def _ebms_rules(tmp_path: Path) -> Path:
    rules = tmp_path / "ebms-rules"
    (rules / "sch").mkdir(parents=True)
    (rules / "sch" / "EDM-ebMS.sch").write_text(EBMS_STAND_IN)
    (rules / "sch" / "Stray.sch").write_text(EBMS_STAND_IN)
    return rules


def test_rules_with_ebms_header_rules_check_the_header(
    spec_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = _ebms_rules(tmp_path)
    header = tmp_path / "header.xml"
    header.write_text((spec_dir / HEADER).read_text().replace(">QueryManager<", ">Elsewhere<"))
    code, out, err = run_cli(capsys, "validate", "--json", "--rules", str(rules), str(header))
    assert code == 1
    entry = json.loads(out)[0]
    assert entry["kind"] == "ebms-header"
    assert entry["version"] == "2.0"
    assert entry["checks"] == 1
    assert entry["checks_by_layer"] == {"ebms-header": 1}
    assert [(f["rule"], f["layer"], f["message"]) for f in entry["findings"]] == [
        ("R-EBMS-T001", "ebms-header", "Service MUST be QueryManager, not Elsewhere")
    ]
    assert "Stray.sch" in err
    assert "EDM-ebMS.sch" not in err
    code, out, _ = run_cli(capsys, "validate", "--rules", str(rules), str(spec_dir / HEADER))
    assert code == 0
    assert "valid (ebms-header, v2.0; ebms-rules, 1 checks: ebms-header 1), 0 finding(s)" in out


def test_without_ebms_rules_a_header_is_said_unchecked(spec_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "validate", "--json", str(spec_dir / HEADER))
    assert code == 3  # nothing checked is not a proof of conformance
    entry = json.loads(out)[0]
    assert (entry["valid"], entry["invalid"], entry["verdict"]) == (False, False, "UNCONFIRMED")
    assert entry["checks"] == 0
    assert entry["checks_by_layer"] == {}
    assert [f["rule"] for f in entry["findings"]] == ["OOTS-EBMS-000"]
    assert err == ""


def test_checks_are_counted_by_layer(samples: Path, validator: Validator, capsys: pytest.CaptureFixture[str]) -> None:
    request = samples / "projectathon-testdata/TC01_Request.xml"
    code, out, _ = run_cli(capsys, "validate", "--json", str(request))
    assert code == 0
    entry = json.loads(out)[0]
    by_layer = entry["checks_by_layer"]
    assert set(by_layer) == {"xsd", "schematron", "codelist"}
    ruleset = validator.ruleset_for(Detected("edm-request", "1.0", "", None))
    assert ruleset is not None
    schematron = validator.executable(ruleset, "edm-request")
    assert schematron is not None
    assert by_layer["xsd"] == 1
    assert by_layer["schematron"] == len(schematron.compiled.assertions)
    assert by_layer["codelist"] == sum(1 for b in bindings(ruleset) if b.kinds is None or "edm-request" in b.kinds)
    assert by_layer["codelist"] > 0
    assert entry["checks"] == sum(by_layer.values())
    code, out, _ = run_cli(capsys, "validate", str(request))
    assert f"oots-edm-v1.0, {entry['checks']} checks: xsd 1, schematron {by_layer['schematron']}, codelist " in out


def test_provisional_checks_are_counted_as_structure(spec_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "validate", "--json", str(spec_dir / V2_REQUEST))
    entry = json.loads(out)[0]
    assert code == 0
    assert set(entry["checks_by_layer"]) == {"structure"}
    assert entry["checks"] == entry["checks_by_layer"]["structure"] > 0


def test_a_rule_set_without_rules_for_the_kind_proves_nothing(
    spec_dir: Path, tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # before, a document no rule of the set applied to was "valid" with 0 checks (exit 0)
    rules = _ebms_rules(tmp_path)  # only ebMS header rules
    code, out, _ = run_cli(capsys, "validate", "--json", "--rules", str(rules), str(samples / TAX))
    assert code == 3
    entry = json.loads(out)[0]
    assert (entry["verdict"], entry["checks"], entry["checks_by_layer"]) == ("UNCONFIRMED", 0, {})
    assert [(f["rule"], f["severity"]) for f in entry["findings"]] == [("OOTS-RULES-000", "INFO")]
    assert "nothing checked" in entry["findings"][0]["message"]
