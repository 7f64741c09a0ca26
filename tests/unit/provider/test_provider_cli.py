"""``oots provider``: services, build-keys, lookup, people."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from clirun import run_cli
from config_snippets import be_births_service, broken_births_register
from oots.provider.samples import sample_evidence_type_id


@pytest.fixture
def config(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "reg.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(
            sa.text("CREATE TABLE r (id TEXT PRIMARY KEY, family_name TEXT, given_name TEXT, date_of_birth DATE)")
        )
        conn.execute(sa.text("INSERT INTO r VALUES ('1', 'Dupont', 'Marie', '1984-02-29')"))
    engine.dispose()
    path = tmp_path / "node.toml"
    path.write_text(
        f'[node]\ncountry = "EL"\n[provider]\nsamples = true\n'
        f'[[provider.registers]]\nname = "r"\nkind = "sql"\nurl = "sqlite:///{db}"\n'
        'source = "r"\nkeys_table = "r_keys"\n',
        encoding="utf-8",
    )
    return path


def test_services(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    code, out, _ = run_cli(capsys, "provider", "services", str(config))
    assert code == 0
    assert len(out.splitlines()) == 5
    assert sample_evidence_type_id("EL", "births") in out


def test_build_keys(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    code, out, _ = run_cli(capsys, "provider", "build-keys", str(config))
    assert code == 0
    assert "r: 1 keys in r_keys" in out


def test_lookup_and_render(capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path) -> None:
    births = sample_evidence_type_id("EL", "births")
    args = ["provider", "lookup", str(config), births, "--family-name", "Papadopoulou", "--given-name", "Eleni"]
    code, out, _ = run_cli(capsys, *args, "--born", "1987-03-25", "--render", "application/xml", "--out", str(tmp_path))
    assert code == 0, out
    assert out.startswith("MATCH MATCH:NAMES:family=EXACT,given=EXACT (candidates: 1)")
    [written] = tmp_path.glob("birth-certificate-*.xml")
    assert "Παπαδοπούλου" in written.read_text(encoding="utf-8")
    code, out, _ = run_cli(capsys, *args, "--born", "1987-03-26")
    assert code == 1
    assert out.startswith("NO_MATCH NO_MATCH:NO_CANDIDATE")
    code, _, err = run_cli(capsys, *args, "--born", "25.03.1987")
    assert code == 2
    assert "is not a date" in err
    code, _, err = run_cli(
        capsys,
        "provider",
        "lookup",
        str(config),
        "nope",
        "--family-name",
        "A",
        "--given-name",
        "B",
        "--born",
        "2000-01-01",
    )
    assert code == 2  # bad input, not "no match"
    assert "no data service nope" in err


def test_lookup_of_a_legal_person(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    companies = sample_evidence_type_id("EL", "companies")
    args = ["provider", "lookup", str(config), companies]
    code, out, err = run_cli(capsys, *args, "--legal-name", "Ελληνικά Τρόφιμα Α.Ε.", "--post-code", "10671")
    assert code == 0, err
    assert out.startswith("MATCH ")
    code, out, _ = run_cli(capsys, *args, "--legal-name", "Someone Else SA", "--legal-identifier", "VAT:EL999000606")
    assert code == 0
    assert out.startswith("MATCH ")
    code, out, _ = run_cli(capsys, *args, "--legal-name", "Nobody SA", "--legal-identifier", "VAT:EL000000000")
    assert code == 1
    assert out.startswith("NO_MATCH ")
    code, _, err = run_cli(capsys, *args, "--legal-name", "Nobody SA", "--legal-identifier", "EL000000000")
    assert code == 2
    assert "is not SCHEME:VALUE" in err
    code, _, err = run_cli(capsys, *args, "--family-name", "Papadopoulou", "--given-name", "Eleni")
    assert code == 2
    assert "about legal persons: --family-name, --given-name do not apply" in err


def test_lookup_with_the_optional_attributes(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    births = sample_evidence_type_id("EL", "births")
    args = ["provider", "lookup", str(config), births, "--family-name", "Papadopoulou", "--given-name", "Eleni"]
    more = ["--born", "1987-03-25", "--gender", "female", "--birth-name", "Papadopoulou", "--post-code", "10671"]
    code, out, err = run_cli(capsys, *args, *more)
    assert code == 0, err
    assert out.startswith("MATCH ")
    code, _, err = run_cli(capsys, *args, "--born", "1987-03-25", "--gender", "f")
    assert code == 2
    assert "--gender: 'f' is not one of Male, Female, Unspecified" in err
    code, _, err = run_cli(capsys, *args, "--born", "1987-03-25", "--legal-name", "X")
    assert code == 2
    assert "about natural persons" in err
    code, _, err = run_cli(capsys, "provider", "lookup", str(config), births, "--family-name", "Papadopoulou")
    assert code == 2
    assert "give --given-name, --born" in err


def test_lookup_tells_a_register_failure_from_no_match(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    _, register = broken_births_register(tmp_path)
    config = tmp_path / "node.toml"
    text = '[node]\ncountry = "BE"\n' + register + be_births_service("be-births", "births")
    config.write_text(text, encoding="utf-8")
    args = ["--family-name", "Dupont", "--given-name", "Marie", "--born", "1984-02-29"]
    code, out, err = run_cli(capsys, "provider", "lookup", str(config), "be-births", *args)
    assert code == 3
    assert out == ""
    assert "the register failed: register births is unavailable: register births, line 2 of births.csv" in err
    code, out, _ = run_cli(capsys, "provider", "services", str(config))
    assert code == 0
    assert "register births  UNAVAILABLE: register births, line 2 of births.csv" in out


def test_people(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "provider", "people")
    assert code == 0
    people = json.loads(out)
    assert any(p["family_name_native"] == "Παπαδοπούλου" for p in people)
