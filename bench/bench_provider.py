"""Evidence provider: identity-matching lookups per second on a 1,000,000-row register, PDF rendering.

``python -m bench provider`` (``OOTS_BENCH_ROWS`` changes the register size). Builds a SQLite
register in a temporary directory, its match-key table, then times lookups of people it holds
(SQL adapter + matching, the whole identify step) and the rendering of a PDF of about 100 KB.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from oots.provider.datamodels import model_by_name
from oots.provider.matching import PersonQuery, match_person
from oots.provider.registers import SqlRegister
from oots.provider.render import Authority, EvidenceContent, render_pdf

FAMILY = [
    "Peeters",
    "Janssens",
    "Maes",
    "Martin",
    "Bernard",
    "Dubois",
    "Lefèvre",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "García",
    "Fernández",
    "González",
    "Rodríguez",
    "López",
    "Martínez",
    "Παπαδόπουλος",
    "Παπαδοπούλου",
    "Βασιλείου",
    "Γεωργίου",
    "Νικολάου",
    "de Jong",
    "de Vries",
    "van den Berg",
    "van Dijk",
    "Bakker",
    "Nowak",
    "Kowalski",
    "Wiśniewski",
    "Wójcik",
    "Kowalczyk",
    "Шевченко",
    "Коваленко",
    "Иванов",
    "Петров",
    "Wiśniewska-Kowalska",
    "García Márquez",
    "Fernández de Córdoba",
    "Χατζηγεωργίου",
    "Μπακογιάννης",
    "Żółkiewski",
    "Lewandowski",
    "Dąbrowski",
    "Zieliński",
]
GIVEN = [
    "Anna",
    "Maria",
    "Marie",
    "Jan",
    "Peter",
    "Jürgen",
    "Élodie",
    "Camille",
    "Luca",
    "Giulia",
    "Marco",
    "José Luis",
    "María José",
    "Ελένη",
    "Γιάννης",
    "Ευάγγελος",
    "Sanne",
    "Pieter",
    "Małgorzata",
    "Łukasz",
    "Олександр",
    "Олена",
    "Дмитрий",
    "Jean-Baptiste",
    "Lotte",
    "Sofia",
    "Lucas",
    "Emma",
    "Noah",
    "Mia",
]
ROWS = int(os.environ.get("OOTS_BENCH_ROWS", "1000000"))


def _make_register(engine: sa.Engine, rows: int, rng: random.Random) -> list[tuple[str, str, dt.date]]:
    meta = sa.MetaData()
    table = sa.Table(
        "people",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("family_name", sa.String(100)),
        sa.Column("given_name", sa.String(100)),
        sa.Column("date_of_birth", sa.Date, index=True),
        sa.Column("place_of_birth", sa.String(100)),
        sa.Column("registration_number", sa.String(40)),
    )
    meta.create_all(engine)
    start = dt.date(1930, 1, 1).toordinal()
    span = dt.date(2010, 12, 31).toordinal() - start
    sample: list[tuple[str, str, dt.date]] = []
    batch = []
    with engine.begin() as conn:
        for n in range(1, rows + 1):
            family = FAMILY[rng.randrange(len(FAMILY))]
            given = GIVEN[rng.randrange(len(GIVEN))]
            born = dt.date.fromordinal(start + rng.randrange(span))
            batch.append(
                {
                    "id": n,
                    "family_name": family,
                    "given_name": given,
                    "date_of_birth": born,
                    "place_of_birth": "Bruxelles",
                    "registration_number": f"R{n:09d}",
                }
            )
            if n % 997 == 0:
                sample.append((family, given, born))
            if len(batch) == 50_000:
                conn.execute(table.insert(), batch)
                batch = []
        if batch:
            conn.execute(table.insert(), batch)
    return sample


def _lookups(register: SqlRegister, queries: list[PersonQuery]) -> tuple[float, float, dict[str, int]]:
    """(wall-clock seconds, CPU seconds of this process, outcomes) of identifying every query."""
    outcomes: dict[str, int] = {}
    started, cpu = time.perf_counter(), time.process_time()
    for query in queries:
        result = match_person(query, register.find_persons(query))
        outcomes[result.outcome.value] = outcomes.get(result.outcome.value, 0) + 1
    return time.perf_counter() - started, time.process_time() - cpu, outcomes


def _sqlite_tuning(dbapi_connection: Any, _record: Any) -> None:
    # A register this size is read from the OS page cache: map it rather than copy pages around.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA mmap_size = 1073741824")
    cursor.execute("PRAGMA cache_size = -65536")
    cursor.close()


def _bench_matching() -> None:
    rng = random.Random(20261127)
    with tempfile.TemporaryDirectory() as tmp:
        engine = sa.create_engine(f"sqlite:///{Path(tmp) / 'register.db'}")
        sa.event.listen(engine, "connect", _sqlite_tuning)
        started = time.perf_counter()
        sample = _make_register(engine, ROWS, rng)
        print(f"   register: {ROWS:,} rows written in {time.perf_counter() - started:.1f} s")
        register = SqlRegister(engine, "people", keys_table="people_keys")
        started = time.perf_counter()
        keys = register.build_keys()
        print(f"   match keys: {keys:,} written in {time.perf_counter() - started:.1f} s")
        queries = []
        for family, given, born in sample:
            # as an eID would send them: Latin script, upper case, no diacritics
            queries.append(PersonQuery(family.upper(), given.upper(), born))
        queries = (queries * (1 + 5000 // max(1, len(queries))))[:5000]
        register.find_persons(queries[0])  # warm the statement cache
        elapsed, cpu, outcomes = _lookups(register, queries)
        print(
            f"   identity matching (key table): {len(queries) / elapsed:,.0f} lookups/s wall-clock, "
            f"{len(queries) / cpu:,.0f} per CPU-second ({1e6 * elapsed / len(queries):.0f} µs each; "
            f"outcomes {outcomes}; load average {os.getloadavg()[0]:.1f})"
        )
        plain = SqlRegister(engine, "people")
        few = queries[:1000]
        elapsed, cpu, outcomes = _lookups(plain, few)
        print(
            f"   identity matching (date-of-birth index only): {len(few) / elapsed:,.0f} lookups/s wall-clock, "
            f"{len(few) / cpu:,.0f} per CPU-second (outcomes {outcomes})"
        )
        engine.dispose()


def _bench_pdf() -> None:
    model = model_by_name("birth-certificate")
    data = {
        "family_name": "Παπαδοπούλου",
        "given_name": "Ελένη",
        "date_of_birth": "1987-03-25",
        "place_of_birth": "Αθήνα",
        "gender": "Female",
        "registration_number": "1987/00019",
        "registered_on": "1987-03-25",
        "registry_office": "Ληξιαρχείο Αθηνών",
    }
    authority = Authority("EL999000001", "urn:cef.eu:names:identifier:EAS:9933", "Υπουργείο Εσωτερικών")

    def content(rows: int) -> EvidenceContent:
        annex = [
            (f"Entry {i} — Καταχώριση", f"Marginal note {i}: Шевченко Олександр, Żółkiewski Łukasz")
            for i in range(rows)
        ]
        return EvidenceContent(
            "3f2b8c1e-7d4a-4b9e-8f1c-2a5d6e7f8091", model, data, authority, dt.date(2026, 11, 27), "EL", "Birth", annex
        )

    rows = 50
    size = len(render_pdf(content(rows)))
    while size < 95_000:
        rows = int(rows * 100_000 / size) + 1
        size = len(render_pdf(content(rows)))
    times = []
    cpu = []
    for _ in range(5):
        started, cpu_started = time.perf_counter(), time.process_time()
        pdf = render_pdf(content(rows))
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    print(
        f"   PDF of {len(pdf) / 1024:.0f} KB ({rows} annex rows, {len(re.findall(rb'/Type ?/Page[^s]', pdf))} pages): "
        f"{1000 * statistics.median(times):.1f} ms wall-clock, {1000 * statistics.median(cpu):.1f} ms CPU (median of 5)"
    )
    small, small_cpu = [], []
    for _ in range(5):
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(20):
            one = render_pdf(content(0))
        small.append((time.perf_counter() - started) / 20)
        small_cpu.append((time.process_time() - cpu_started) / 20)
    print(
        f"   PDF of one page ({len(one) / 1024:.0f} KB): {1000 * statistics.median(small):.2f} ms wall-clock, "
        f"{1000 * statistics.median(small_cpu):.2f} ms CPU (median of 5 × 20)"
    )


def run() -> None:
    _bench_matching()
    _bench_pdf()
