"""A register that cannot be loaded at start: the node starts, its data services answer EDM:ERR:0008
until it loads, and it is loaded again by itself (a fixed CSV file, a database back up)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from clirun import run_cli
from config_snippets import be_births_service
from oots import edm
from oots.edm import QueryError
from oots.errors import RegisterError, RegisterUnavailable
from oots.provider.config import build_data_services, unavailable_services
from oots.provider.intake import Intake
from oots.provider.matching import PersonQuery
from oots.provider.registers import CsvRegister, UnavailableRegister
from oots.provider.samples import sample_data_service, sample_register_path
from oots.settings import load_settings

from .parties import GARCIA, query_request

NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
HEADER = "id,family_name,given_name,date_of_birth,registration_number,registered_on,registry_office"
GOOD = "1,Dupont,Marie,1984-02-29,R-1,1984-03-01,Gent"
BAD = "2,Martin,Paul,29/02/1984,R-2,1984-03-01,Gent"


def node(tmp_path: Path, csv_path: Path, sql_url: str) -> Path:
    text = (
        f"""
[node]
country = "BE"

[provider]
samples = true

[[provider.registers]]
name = "births-file"
kind = "csv"
path = "{csv_path}"

[[provider.registers]]
name = "births-db"
kind = "sql"
url = "{sql_url}"
source = "births"
"""
        + be_births_service("from-file", "births-file")
        + be_births_service("from-db", "births-db")
    )
    path = tmp_path / "node.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_bad_row_or_an_unreachable_database_leaves_the_other_services_running(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    csv_path = tmp_path / "births.csv"
    csv_path.write_text(f"{HEADER}\n{GOOD}\n{BAD}\n", encoding="utf-8")
    db = tmp_path / "not-yet" / "births.db"  # its directory does not exist: SQLite cannot open it
    with caplog.at_level(logging.ERROR, logger="oots.provider.config"):
        services = build_data_services(load_settings(node(tmp_path, csv_path, f"sqlite:///{db}")))
    assert len(services) == 7  # five samples of BE, and both configured ones
    by_id = {s.identifier: s for s in services}
    assert set(unavailable_services(services)) == {"from-file", "from-db"}
    logged = {r.getMessage() for r in caplog.records if r.levelname == "ERROR"}
    [file_line] = [m for m in logged if "from-file" in m]
    assert "provider.registers.births-file" in file_line
    assert "line 3 of births.csv" in file_line
    assert "1984" not in file_line
    [db_line] = [m for m in logged if "from-db" in m]
    assert "provider.registers.births-db" in db_line

    query = PersonQuery("Dupont", "Marie", dt.date(1984, 2, 29))
    with pytest.raises(RegisterUnavailable, match=r"line 3 of births\.csv"):
        by_id["from-file"].register.find_persons(query)

    # the file fixed: read again at the next request, without a restart
    csv_path.write_text(f"{HEADER}\n{GOOD}\n{BAD.replace('29/02/1984', '1984-02-29')}\n", encoding="utf-8")
    assert [p.record_id for p in by_id["from-file"].register.find_persons(query)] == ["1"]
    assert set(unavailable_services(services)) == {"from-db"}


def test_a_register_that_fails_to_load_is_tried_again_with_a_growing_wait() -> None:
    now = [0.0]
    attempts: list[float] = []
    good = CsvRegister(sample_register_path("births"))

    def load() -> CsvRegister:
        attempts.append(now[0])
        if len(attempts) < 3:
            raise RegisterError("register births cannot read its table (OperationalError)", register="births")
        return good

    register = UnavailableRegister("births", load, "down at start", clock=lambda: now[0], first_wait=5)
    query = PersonQuery("Dupont", "Marie", dt.date(1984, 2, 29))
    for t in (1.0, 5.0, 9.0, 14.0, 15.0, 34.0):
        now[0] = t
        with pytest.raises(RegisterUnavailable, match="register births is unavailable") as caught:
            register.find_persons(query)
        assert caught.value.register == "births"
    now[0] = 35.0
    register.find_persons(query)
    assert attempts == [5.0, 15.0, 35.0]  # after 5 s, then 10 s, then 20 s... until it loads
    assert register.loaded is good
    assert register.problem is None


def test_the_intake_answers_edm_err_0008_for_an_unavailable_register(tmp_path: Path) -> None:
    csv_path = tmp_path / "births.csv"
    csv_path.write_text(f"{HEADER}\n{BAD}\n", encoding="utf-8")
    with pytest.raises(RegisterError) as caught:
        CsvRegister(csv_path)
    register = UnavailableRegister("births", lambda: CsvRegister(csv_path), caught.value.message, stamp=lambda: 1)
    service = dataclasses.replace(sample_data_service("ES", "births"), register=register)
    request = query_request(GARCIA, fmt="application/pdf", preview=False, issued=NOW)
    answer = Intake([service], clock=lambda: NOW).answer(edm.to_xml(request), sent=NOW)
    assert (answer.code, answer.reason) == ("EDM:ERR:0008", "REGISTER:UNAVAILABLE")
    assert isinstance(answer.document, QueryError)


def test_config_check_reports_a_register_that_cannot_be_loaded(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = tmp_path / "births.csv"
    csv_path.write_text(f"{HEADER}\n{GOOD}\n{BAD}\n", encoding="utf-8")
    db = tmp_path / "births.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE births ({HEADER.replace(',', ' TEXT, ')} TEXT)"))
    engine.dispose()
    code, _, err = run_cli(capsys, "config", "check", str(node(tmp_path, csv_path, f"sqlite:///{db}")))
    assert code == 2
    assert "provider.registers.births-file: register births-file, line 3 of births.csv" in err
    assert "births-db" not in err
