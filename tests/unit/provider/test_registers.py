"""Register adapters: CSV, SQL (SQLite; PostgreSQL marked), HTTP JSON (httpx MockTransport)."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from oots.errors import ConfigError, NotFound, RegisterError
from oots.provider.matching import LegalPersonQuery, PersonQuery, match_legal_person, match_person
from oots.provider.registers import CsvRegister, FieldMap, HttpJsonRegister, Register, SqlRegister
from oots.provider.samples import load_people, sample_register, sample_register_path

BIRTHS = sample_register_path("births")
COMPANIES = sample_register_path("companies")


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def load_into(engine: sa.Engine, table: str, path: Path, *, int_ids: bool = False) -> None:
    """Create ``table`` from a sample CSV (dates as DATE) and fill it."""
    rows = csv_rows(path)
    meta = sa.MetaData()
    columns: list[sa.Column[Any]] = []
    for name in rows[0]:
        if name == "id":
            columns.append(sa.Column("id", sa.Integer if int_ids else sa.String(40), primary_key=True))
        elif name == "date_of_birth":
            columns.append(sa.Column(name, sa.Date, index=True))
        else:
            columns.append(sa.Column(name, sa.String(200)))
    t = sa.Table(table, meta, *columns)
    meta.create_all(engine)
    values = []
    for n, row in enumerate(rows, start=1):
        v: dict[str, Any] = {k: (val or None) for k, val in row.items()}
        if int_ids:
            v["id"] = n
        if v.get("date_of_birth"):
            v["date_of_birth"] = dt.date.fromisoformat(v["date_of_birth"])
        values.append(v)
    with engine.begin() as conn:
        conn.execute(t.insert(), values)


# --- shared behaviour, run against every adapter ------------------------------------------------
def check_person_register(register: Register) -> None:
    eleni = PersonQuery("Papadopoulou", "Eleni", dt.date(1987, 3, 25))
    found = register.find_persons(eleni)
    assert [p.family_name for p in found] == ["Παπαδοπούλου"]
    result = match_person(eleni, found)
    assert result.is_match
    assert result.record is not None
    full = register.fetch(result.record.record_id)
    assert full.data["registry_office"].startswith("Ληξιαρχείο")
    assert full.data["date_of_birth"] == "1987-03-25"
    # by identifier alone (names spelt wrongly), whatever the destination country in it
    by_id = register.find_persons(PersonQuery("X", "Y", dt.date(1900, 1, 1), identifier="BE/IT/85072312345"))
    assert [p.given_name for p in by_id] == ["Lotte"]
    # the compound surname is found from one of its parts
    garcia = register.find_persons(PersonQuery("García", "María", dt.date(1982, 10, 7)))
    assert {p.family_name for p in garcia} == {"García Márquez", "García López"}
    assert match_person(PersonQuery("García", "María", dt.date(1982, 10, 7)), garcia).reason == "AMBIGUOUS:NAMES:n=2"
    # names given the other way round are found only when asked for
    swapped = PersonQuery("Lotte", "Peeters", dt.date(1985, 7, 23))
    assert register.find_persons(swapped) == []
    assert [p.family_name for p in register.find_persons(swapped, swapped_names=True)] == ["Peeters"]
    # nobody
    assert register.find_persons(PersonQuery("Nobody", "Noone", dt.date(1950, 1, 1))) == []
    with pytest.raises(NotFound):
        register.fetch("999999")


def check_company_register(register: Register) -> None:
    by_vat = register.find_legal_persons(LegalPersonQuery("whatever", identifiers=(("VAT", "DE 999 000 303"),)))
    assert [c.legal_name for c in by_vat] == ["Müller & Söhne GmbH"]
    acme = register.find_legal_persons(LegalPersonQuery("ACME"))
    assert len(acme) == 2
    assert match_legal_person(LegalPersonQuery("ACME", post_code="5611EB"), acme).reason == "MATCH:TIE_BREAK:post_code"
    eidas = register.find_legal_persons(LegalPersonQuery("?", legal_person_identifier="PL/FR/0009991010"))
    assert [c.legal_name for c in eidas] == ["Bursztyn Sp. z o.o."]


# --- CSV ---------------------------------------------------------------------------------------------
def test_csv_register() -> None:
    register = CsvRegister(BIRTHS)
    assert isinstance(register, Register)
    check_person_register(register)
    check_company_register(CsvRegister(COMPANIES))


def test_csv_register_where_filter() -> None:
    greek = CsvRegister(BIRTHS, where={"country": "EL"})
    assert len(greek) == 3
    assert greek.find_persons(PersonQuery("Peeters", "Lotte", dt.date(1985, 7, 23))) == []


def test_csv_register_field_map(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("nr;nom;prenom;naissance\n", encoding="utf-8")
    path.write_text("nr,nom,prenom,naissance\n7,Dupont,Marie,1984-02-29\n", encoding="utf-8")
    fields = FieldMap(record_id="nr", family_name="nom", given_name="prenom", date_of_birth="naissance")
    register = CsvRegister(path, fields=fields)
    found = register.find_persons(PersonQuery("DUPONT", "marie", dt.date(1984, 2, 29)))
    assert [p.record_id for p in found] == ["7"]
    # the record comes under the data model's names too, so that its documents show them
    assert register.fetch("7").data == {
        "nr": "7",
        "nom": "Dupont",
        "prenom": "Marie",
        "naissance": "1984-02-29",
        "family_name": "Dupont",
        "given_name": "Marie",
        "date_of_birth": "1984-02-29",
    }


DUTCH = FieldMap(
    record_id="nummer",
    family_name="achternaam",
    given_name="voornamen",
    date_of_birth="geboortedatum",
    identifier="bsn",
    place_of_birth="geboorteplaats",
)
DUTCH_HEADER = "nummer,land,achternaam,voornamen,geboortedatum,bsn,geboorteplaats,family_name,registration_number"
DUTCH_ROW = "12,NL,Jansen,Pieter,1961-03-05,NL/NL/123456782,Utrecht,stale,1961/12"


def dutch_sqlite(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'nl.db'}")
    names = DUTCH_HEADER.split(",")
    meta = sa.MetaData()
    table = sa.Table(
        "geboorten",
        meta,
        *[
            sa.Column(n, sa.Integer if n == "nummer" else sa.Date if n == "geboortedatum" else sa.String(80))
            for n in names
        ],
    )
    meta.create_all(engine)
    values: dict[str, Any] = dict(zip(names, DUTCH_ROW.split(","), strict=True))
    values["nummer"] = 12
    values["geboortedatum"] = dt.date(1961, 3, 5)
    with engine.begin() as conn:
        conn.execute(table.insert(), [values])
    return engine


def check_dutch_record(register: Register) -> None:
    [found] = register.find_persons(PersonQuery("Jansen", "Pieter", dt.date(1961, 3, 5)))
    data = register.fetch(found.record_id).data
    assert data["family_name"] == "Jansen"  # from achternaam, not the stale column of that name
    assert data["given_name"] == "Pieter"
    assert data["date_of_birth"] == "1961-03-05"
    assert data["identifier"] == "NL/NL/123456782"
    assert data["place_of_birth"] == "Utrecht"
    assert data["registration_number"] == "1961/12"  # other fields under their own names
    assert "birth_name" not in data


def test_every_adapter_gives_the_record_under_the_model_names(tmp_path: Path) -> None:
    path = tmp_path / "nl.csv"
    path.write_text(f"{DUTCH_HEADER}\n{DUTCH_ROW}\n", encoding="utf-8")
    check_dutch_record(CsvRegister(path, fields=DUTCH, where={"land": "NL"}))
    engine = dutch_sqlite(tmp_path)
    check_dutch_record(SqlRegister(engine, "geboorten", fields=DUTCH, where={"land": "NL"}))
    keyed = SqlRegister(engine, "geboorten", fields=DUTCH, keys_table="geboorten_keys")
    keyed.build_keys()
    check_dutch_record(keyed)
    row = dict(zip(DUTCH_HEADER.split(","), DUTCH_ROW.split(","), strict=True))

    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[row] if request.url.path == "/persons" else row)

    with HttpJsonRegister("http://register.test", fields=DUTCH, transport=httpx.MockTransport(api)) as http:
        check_dutch_record(http)


@pytest.mark.parametrize(
    ("fields", "where", "setting", "column"),
    [
        (dataclasses.replace(DUTCH, family_name="achternam"), {}, "fields.family_name", "achternam"),
        (dataclasses.replace(DUTCH, record_id="id"), {}, "fields.record_id", "id"),
        (dataclasses.replace(DUTCH, legal_identifiers={"VAT": "btw"}), {}, "fields.legal_identifiers.VAT", "btw"),
        (DUTCH, {"country": "NL"}, "where.country", "country"),
    ],
)
def test_a_column_the_settings_name_must_exist(
    tmp_path: Path, fields: FieldMap, where: dict[str, str], setting: str, column: str
) -> None:
    path = tmp_path / "nl.csv"
    path.write_text(f"{DUTCH_HEADER}\n{DUTCH_ROW}\n", encoding="utf-8")
    engine = dutch_sqlite(tmp_path)
    makers: list[Callable[[], Register]] = [
        lambda: CsvRegister(path, name="nl-births", fields=fields, where=where),
        lambda: SqlRegister(engine, "geboorten", name="nl-births", fields=fields, where=where),
    ]
    for make in makers:
        with pytest.raises(ConfigError) as caught:
            make()
        assert f"provider.registers.nl-births.{setting} names the column {column!r}" in caught.value.message
        assert caught.value.problems[0][0] == f"provider.registers.nl-births.{setting}"


def test_a_bad_date_names_its_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "nl.csv"
    path.write_text(f"{DUTCH_HEADER}\n{DUTCH_ROW}\n{DUTCH_ROW.replace('1961-03-05', '1961-13-45')}\n", encoding="utf-8")
    with pytest.raises(RegisterError, match=re.escape("line 3 of nl.csv: the column 'geboortedatum'")) as caught:
        CsvRegister(path, fields=DUTCH)
    assert "1961" not in caught.value.message


def test_csv_register_errors(tmp_path: Path) -> None:
    with pytest.raises(RegisterError, match="cannot read its file") as caught:
        CsvRegister(tmp_path / "missing.csv")
    assert not caught.value.timeout
    bad = tmp_path / "bad.csv"
    bad.write_text("id,family_name,given_name,date_of_birth\n1,A,B,31/12/1990\n", encoding="utf-8")
    with pytest.raises(RegisterError, match="not a date"):
        CsvRegister(bad)


def test_every_test_person_is_found_once_in_each_of_their_registers() -> None:
    people = load_people()
    assert len(people) >= 25
    assert {p.register_country for p in people} == {"BE", "FR", "DE", "IT", "ES", "EL", "NL", "PL"}
    for person in people:
        for kind in person.registers:
            register = sample_register(kind, person.register_country)
            result = match_person(person.query(), register.find_persons(person.query()))
            assert result.is_match, (person.note, kind, result.reason)
            assert result.record is not None
            assert result.record.date_of_birth == person.date_of_birth


def test_sample_ambiguities_need_the_optional_attributes() -> None:
    people = {p.identifier: p for p in load_people()}
    martin = people["FR/FR/2000275000222"]
    births = sample_register("births", "FR")
    bare = PersonQuery(martin.family_name, martin.given_name, martin.date_of_birth)
    assert match_person(bare, births.find_persons(bare)).reason == "AMBIGUOUS:NAMES:n=2"
    full = martin.query()
    assert match_person(full, births.find_persons(full)).reason == "MATCH:TIE_BREAK:gender"


# --- SQL ---------------------------------------------------------------------------------------------
@pytest.fixture
def sqlite_engine(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'registers.db'}")
    load_into(engine, "births", BIRTHS)
    load_into(engine, "companies", COMPANIES)
    return engine


def test_sql_register_on_sqlite_by_date_of_birth(sqlite_engine: sa.Engine) -> None:
    check_person_register(SqlRegister(sqlite_engine, "births"))
    check_company_register(SqlRegister(sqlite_engine, "companies"))


def test_sql_register_on_sqlite_with_key_table(sqlite_engine: sa.Engine) -> None:
    births = SqlRegister(sqlite_engine, "births", keys_table="births_keys")
    assert births.build_keys() > 24
    check_person_register(births)
    companies = SqlRegister(sqlite_engine, "companies", keys_table="companies_keys")
    companies.build_keys()
    check_company_register(companies)
    # rebuilding replaces the keys
    assert births.build_keys() == births.build_keys()


def test_sql_register_key_table_in_another_database(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    keys = sa.create_engine(f"sqlite:///{tmp_path / 'keys.db'}")
    births = SqlRegister(sqlite_engine, "births", keys_table="k", keys_engine=keys)
    births.build_keys()
    check_person_register(births)
    assert "k" not in sa.inspect(sqlite_engine).get_table_names()


@pytest.mark.parametrize("keys_table", [None, "selected_keys"])
def test_sql_register_from_a_select_with_where(sqlite_engine: sa.Engine, keys_table: str | None) -> None:
    register = SqlRegister(
        sqlite_engine,
        "SELECT * FROM births WHERE registered_on IS NOT NULL",
        where={"country": "EL"},
        keys_table=keys_table,
    )
    if keys_table:
        register.build_keys()
    found = register.find_persons(PersonQuery("Papadopoulou", "Eleni", dt.date(1987, 3, 25)))
    assert len(found) == 1
    assert register.find_persons(PersonQuery("García", "María", dt.date(1982, 10, 7))) == []
    by_id = register.find_persons(PersonQuery("?", "?", dt.date(1900, 1, 1), identifier="EL/FR/AB1234567"))
    assert [p.given_name for p in by_id] == ["Ελένη"]


def test_sql_register_with_integer_ids(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'int.db'}")
    load_into(engine, "births", BIRTHS, int_ids=True)
    register = SqlRegister(engine, "births", keys_table="births_keys")
    register.build_keys()
    check_person_register(register)
    with pytest.raises(NotFound):
        register.fetch("not-a-number")


def test_sql_register_errors(tmp_path: Path, sqlite_engine: sa.Engine) -> None:
    with pytest.raises(RegisterError, match="cannot read its table"):
        SqlRegister(sqlite_engine, "no_such_table")
    register = SqlRegister(sqlite_engine, "births", keys_table="births_keys")
    # the key table was never built: the lookup fails as a register error, not a crash
    with pytest.raises(RegisterError):
        register.find_persons(PersonQuery("A", "B", dt.date(2000, 1, 1)))
    with pytest.raises(RegisterError, match="no key table"):
        SqlRegister(sqlite_engine, "births").build_keys()


@pytest.mark.postgres
def test_sql_register_on_postgresql(postgres_database: Callable[[], str]) -> None:
    engine = sa.create_engine(postgres_database())
    try:
        load_into(engine, "births", BIRTHS, int_ids=True)
        load_into(engine, "companies", COMPANIES)
        check_person_register(SqlRegister(engine, "births"))
        keyed = SqlRegister(engine, "births", keys_table="births_keys")
        keyed.build_keys()
        check_person_register(keyed)
        companies = SqlRegister(engine, "companies", keys_table="companies_keys")
        companies.build_keys()
        check_company_register(companies)
    finally:
        engine.dispose()


# --- HTTP JSON ---------------------------------------------------------------------------------------
def fake_register_api(path: Path) -> httpx.MockTransport:
    """A register owner's API, in memory: it answers by date of birth (and identifier) only."""
    rows = csv_rows(path)

    def handle(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if request.url.path == "/api/persons":
            born = params.get("date_of_birth")
            ident = params.get("identifier", "")
            hits = [r for r in rows if r["date_of_birth"] == born or (ident and r["identifier"].endswith(ident[-8:]))]
            return httpx.Response(200, json={"records": hits})
        if request.url.path == "/api/legal-persons":
            return httpx.Response(200, json=rows)
        if request.url.path.startswith("/api/records/"):
            wanted = request.url.path.rsplit("/", 1)[1]
            for r in rows:
                if r["id"] == wanted:
                    return httpx.Response(200, json=r)
            return httpx.Response(404, json={"error": "not found"})
        return httpx.Response(500)

    return httpx.MockTransport(handle)


def test_http_json_register() -> None:
    with HttpJsonRegister("https://register.example/api", transport=fake_register_api(BIRTHS)) as register:
        check_person_register(register)
    with HttpJsonRegister("https://register.example/api", transport=fake_register_api(COMPANIES)) as register:
        check_company_register(register)


@pytest.mark.parametrize(
    ("handler", "message", "timeout"),
    [
        (lambda r: (_ for _ in ()).throw(httpx.ReadTimeout("slow", request=r)), "did not answer in time", True),
        (lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused", request=r)), "unreachable", False),
        (lambda r: httpx.Response(503), "HTTP 503", False),
        (lambda r: httpx.Response(200, content=b"<html>"), "not JSON", False),
        (lambda r: httpx.Response(200, json={"records": "x"}), "unexpected shape", False),
        (lambda r: httpx.Response(200, json=[{"id": "1"}]), "without its identity", False),
        (
            lambda r: httpx.Response(
                200, json=[{"id": "1", "family_name": "A", "given_name": "B", "date_of_birth": "x"}]
            ),
            "not a date",
            False,
        ),
    ],
)
def test_http_json_register_errors(handler: Any, message: str, timeout: bool) -> None:
    register = HttpJsonRegister(
        "https://register.example/api", name="be-births", transport=httpx.MockTransport(handler)
    )
    with pytest.raises(RegisterError, match=message) as caught:
        register.find_persons(PersonQuery("A", "B", dt.date(2000, 1, 1)))
    assert caught.value.timeout is timeout
    assert caught.value.register == "be-births"
    assert "A" not in str(caught.value).split()


def test_http_json_register_sends_the_query_and_quotes_ids() -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        if request.url.path.endswith("/persons"):
            return httpx.Response(200, json=[])
        return httpx.Response(200, json={"id": "a/b", "x": 1})

    register = HttpJsonRegister(
        "https://register.example/api/", headers={"Authorization": "Bearer t"}, transport=httpx.MockTransport(handler)
    )
    assert register.fetch("a/b").data == {"id": "a/b", "x": "1"}
    assert seen[0].raw_path == b"/api/records/a%2Fb"
    register.find_persons(PersonQuery("Ñ", "B", dt.date(2000, 1, 2), identifier="ES/BE/1"))
    assert dict(seen[1].params) == {
        "family_name": "Ñ",
        "given_name": "B",
        "date_of_birth": "2000-01-02",
        "identifier": "ES/BE/1",
    }
    assert json.dumps(dict(seen[1].params))


def test_every_adapter_returns_the_same_candidates(tmp_path: Path) -> None:
    """CSV, SQL with and without key table, HTTP JSON: the same candidates for every test person."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'same.db'}")
    load_into(engine, "births", BIRTHS)
    keyed = SqlRegister(engine, "births", keys_table="births_keys")
    keyed.build_keys()
    adapters: list[Register] = [
        CsvRegister(BIRTHS),
        SqlRegister(engine, "births"),
        keyed,
        HttpJsonRegister("https://register.example/api", transport=fake_register_api(BIRTHS)),
    ]
    for person in load_people():
        for query in (person.query(), person.query(optional=False)):
            for swapped in (False, True):
                seen = [sorted(p.record_id for p in a.find_persons(query, swapped_names=swapped)) for a in adapters]
                assert all(s == seen[0] for s in seen), (person.note, seen)
    engine.dispose()
