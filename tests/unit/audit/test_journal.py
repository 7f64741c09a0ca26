from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from clirun import run_cli
from oots.audit.journal import Entry, Event, Journal, Side, load_journal
from oots.audit.models import AuditEntry, AuditHead
from oots.settings import load_settings
from oots.store import Database, open_database

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(days=10)
        return self.now


@pytest.fixture
def node(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> tuple[Path, Database, Journal]:
    config = tmp_path / "node.toml"
    config.write_text(f'[node]\nname = "be"\ndata_dir = "{tmp_path.as_posix()}"\n', encoding="utf-8")
    settings = load_settings(config)
    db = open_database(settings)
    journal = load_journal(settings, clock=Clock())
    return config, db, journal


def fill(db: Database, journal: Journal, n: int) -> None:
    for i in range(n):
        with db.session(immediate=True) as session:
            journal.append(
                session,
                side=Side.PROVIDER,
                event=Event.REQUEST_RECEIVED,
                exchange_id=f"x-{i % 3}",
                conversation_id=f"c-{i}",
                message_ids=[f"m{i}@be"],
                details={"code": None, "i": i},
                personal={"family_name": "Müller", "given_name": "Anna"},
                subject=f"DE/BE/{i % 2}",
            )


def test_append_verify_and_personal_data_at_rest(node: tuple[Path, Database, Journal]) -> None:
    config, db, journal = node
    fill(db, journal, 6)
    with db.session() as session:
        assert journal.verify(session).ok
    raw = (config.parent / "oots.db").read_bytes()
    assert b"M\xc3\xbcller" not in raw
    assert b"DE/BE/1" not in raw


def test_cli_verify_finds_an_edited_a_deleted_and_a_reordered_entry(
    node: tuple[Path, Database, Journal], capsys: pytest.CaptureFixture[str]
) -> None:
    config, db, journal = node
    fill(db, journal, 6)
    assert run_cli(capsys, "audit", "verify", str(config))[0] == 0
    con = sqlite3.connect(config.parent / "oots.db")
    con.execute("UPDATE audit_entries SET outcome = 'accepted' WHERE seq = 3")
    con.commit()
    code, _, err = run_cli(capsys, "audit", "verify", str(config))
    assert code == 1
    assert "entry 3: seal does not match" in err
    con.execute("UPDATE audit_entries SET outcome = NULL WHERE seq = 3")
    con.execute("DELETE FROM audit_entries WHERE seq = 4")
    con.commit()
    code, _, err = run_cli(capsys, "audit", "verify", str(config))
    assert code == 1
    assert "entry 5: expected entry 4, found 5 (missing)" in err
    con.close()


def test_reordering_is_found(node: tuple[Path, Database, Journal], capsys: pytest.CaptureFixture[str]) -> None:
    config, db, journal = node
    fill(db, journal, 4)
    con = sqlite3.connect(config.parent / "oots.db")
    con.execute("UPDATE audit_entries SET seq = 100 WHERE seq = 2")
    con.execute("UPDATE audit_entries SET seq = 2 WHERE seq = 3")
    con.execute("UPDATE audit_entries SET seq = 3 WHERE seq = 100")
    con.commit()
    con.close()
    code, _, err = run_cli(capsys, "audit", "verify", str(config))
    assert code == 1
    assert "seal does not match" in err


def test_purge_keeps_the_chain_verifiable(node: tuple[Path, Database, Journal]) -> None:
    _, db, journal = node
    fill(db, journal, 6)  # recorded every 10 days from 2026-01-11
    with db.session(immediate=True) as session:
        removed = journal.purge(session, older_than=T0 + dt.timedelta(days=35))
    assert removed == 3
    with db.session() as session:
        report = journal.verify(session)
        assert report.ok, report.breaks
        assert (report.entries, report.anchor_seq, report.head_seq) == (3, 3, 6)
    fill(db, journal, 1)
    with db.session() as session:
        assert journal.verify(session).ok


def test_export_by_person_decrypts(node: tuple[Path, Database, Journal], capsys: pytest.CaptureFixture[str]) -> None:
    config, db, journal = node
    fill(db, journal, 4)
    code, out, _ = run_cli(capsys, "audit", "export", str(config), "--person", "DE/BE/1")
    assert code == 0
    data = json.loads(out)
    assert [e["seq"] for e in data] == [2, 4]
    assert data[0]["personal"] == {"family_name": "Müller", "given_name": "Anna"}


def test_unknown_personal_keys_are_refused(node: tuple[Path, Database, Journal]) -> None:
    _, db, journal = node
    with db.session() as session, pytest.raises(ValueError, match="not personal-data keys"):
        journal.append(session, side="provider", event="x", personal={"colour": "blue"})


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def journal_db(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Database, Journal]:
    if request.param == "postgres":
        db = Database(request.getfixturevalue("postgres_database")())
    else:
        db = Database(f"sqlite:///{tmp_path / 'journal.db'}")
    db.migrate()
    return db, Journal("be", b"s" * 32, b"d" * 32, clock=Clock())


def test_appends_in_one_transaction_chain_and_the_head_read_before_is_not_stale(
    journal_db: tuple[Database, Journal],
) -> None:
    db, journal = journal_db
    try:
        with db.session() as session:
            assert journal.verify(session).head_seq == 0  # the head is now in this session
            seqs = [journal.append(session, side=Side.REQUESTER, event=Event.REQUEST_SENT) for _ in range(3)]
            assert seqs == [1, 2, 3]
            report = journal.verify(session)  # the same session sees the head the appends moved
            assert report.ok
            assert (report.entries, report.head_seq) == (3, 3)
        with db.session() as session:
            assert journal.append(session, side=Side.REQUESTER, event=Event.REQUEST_SENT, details={"t": (1, 2)}) == 4
        with db.session() as session:
            report = journal.verify(session)
            assert report.ok
            assert report.head_seq == 4
            assert journal.search(session, limit=1)[0].details == {"t": [1, 2]}
    finally:
        db.dispose()


def test_an_append_rolled_back_with_its_savepoint_leaves_no_gap(journal_db: tuple[Database, Journal]) -> None:
    db, journal = journal_db
    try:
        with db.session() as session:
            journal.append(session, side=Side.PROVIDER, event=Event.REQUEST_RECEIVED)
            savepoint = session.begin_nested()
            journal.append(session, side=Side.PROVIDER, event=Event.MATCHING_DONE)
            savepoint.rollback()  # the step failed
            assert journal.append(session, side=Side.PROVIDER, event=Event.ERROR_SENT) == 2
        with db.session() as session:
            report = journal.verify(session)
            assert report.ok
            assert report.entries == 2
            assert [e.event for e in journal.entries(session)] == ["request_received", "error_sent"]
    finally:
        db.dispose()


def _chain(session: Session, journal: Journal) -> list[tuple[Any, ...]]:
    entries = journal.entries(session)
    return [(e.seq, e.recorded_at, e.event, e.details, e.message_ids, e.subject_key, e.seal) for e in entries]


def test_append_all_makes_the_chain_one_by_one_appends_make(journal_db: tuple[Database, Journal]) -> None:
    db, journal = journal_db
    steps = [
        Entry(Side.REQUESTER, Event.EXPLICIT_REQUEST_GIVEN, "x-1", outcome="requesting", details={"version": 3}),
        Entry(Side.REQUESTER, Event.REQUEST_SENT, "x-1", "c-1", ["m1@be"], "sent", {"pair": (1, 2)}, None, "BE/BE/1"),
    ]
    one_by_one = Journal("be", b"s" * 32, b"d" * 32, clock=Clock())
    try:
        with db.session() as session:
            assert journal.append_all(session, []) == []
            assert journal.append_all(session, steps) == [1, 2]
            with pytest.raises(ValueError, match="not personal-data keys"):  # refused before anything is written
                journal.append_all(session, [steps[0], Entry(Side.REQUESTER, "x", personal={"colour": "blue"})])
        with db.session() as session:
            batched = _chain(session, journal)
            session.execute(delete(AuditEntry))
            session.execute(update(AuditHead).values(seq=0, seal=session.get_one(AuditHead, 1).anchor_seal))
        with db.session() as session:
            for step in steps:
                one_by_one.append(session, **{f.name: getattr(step, f.name) for f in fields(step)})
        with db.session() as session:
            assert _chain(session, journal) == batched  # byte for byte
            personal = Entry(Side.REQUESTER, Event.REQUEST_SENT, personal={"person_identifier": "BE/BE/1"})
            assert journal.append_all(session, [personal, steps[0]]) == [3, 4]
        with db.session() as session:
            report = journal.verify(session)
            assert (report.ok, report.entries, report.head_seq) == (True, 4, 4)
            assert journal.export(journal.search(session, limit=2))[0]["personal"] == {"person_identifier": "BE/BE/1"}
    finally:
        db.dispose()
