from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from clirun import run_cli
from oots.audit.journal import Entry, Event, Journal, Side, load_journal
from oots.audit.models import AuditEntry, AuditHead
from oots.errors import SecurityError
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
def journal_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Database, Journal]]:
    if request.param == "postgres":
        db = Database(request.getfixturevalue("postgres_database")())
    else:
        db = Database(f"sqlite:///{tmp_path / 'journal.db'}")
    db.migrate()
    try:
        yield db, Journal("be", b"s" * 32, b"d" * 32, clock=Clock())
    finally:
        db.dispose()


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


# --- tampering verify finds (both databases) ---------------------------------------------------------


def _fill_people(db: Database, journal: Journal, n: int) -> None:
    with db.session() as session:
        for i in range(n):
            journal.append(
                session,
                side=Side.PROVIDER,
                event=Event.REQUEST_RECEIVED,
                exchange_id=f"x-{i}",
                personal={"family_name": f"Name{i}"},
                subject=f"DE/BE/{i}",
            )


def _problems(db: Database, journal: Journal) -> list[str]:
    with db.session() as session:
        return [f"{b.seq}: {b.reason}" for b in journal.verify(session).breaks]


def test_verify_finds_a_removed_or_swapped_ciphertext(journal_db: tuple[Database, Journal]) -> None:
    db, journal = journal_db
    try:
        _fill_people(db, journal, 4)
        with db.session() as session:
            one, two = (session.get_one(AuditEntry, seq).personal for seq in (1, 2))
            session.execute(update(AuditEntry).where(AuditEntry.seq == 1).values(personal=two))
            session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(personal=one))
        assert [p.split(":")[0] for p in _problems(db, journal)] == ["1", "2"]
        with db.session() as session:
            session.execute(update(AuditEntry).where(AuditEntry.seq == 1).values(personal=one))
            session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(personal=two))
        assert _problems(db, journal) == []
        with db.session() as session:
            session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(personal=None))
        assert _problems(db, journal) == ["3: seal does not match: the entry or its predecessor was changed"]
    finally:
        db.dispose()


def test_verify_finds_a_changed_subject_key(journal_db: tuple[Database, Journal]) -> None:
    db, journal = journal_db
    try:
        _fill_people(db, journal, 3)
        with db.session() as session:
            session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(subject_key=journal.subject_key("X")))
        assert _problems(db, journal) == ["2: seal does not match: the entry or its predecessor was changed"]
    finally:
        db.dispose()


def test_verify_finds_a_cut_tail_with_the_head_moved_back(journal_db: tuple[Database, Journal]) -> None:
    db, journal = journal_db
    try:
        _fill_people(db, journal, 5)
        with db.session() as session:
            new_last = session.get_one(AuditEntry, 3)
            session.execute(delete(AuditEntry).where(AuditEntry.seq > 3))
            session.execute(update(AuditHead).values(seq=3, seal=new_last.seal))
        (problem,) = _problems(db, journal)
        assert problem.startswith("3: the journal's head (entries 1..3) does not match its MAC")
        # The node's next append does not launder it: the head's MAC stays wrong.
        _fill_people(db, journal, 1)
        assert _problems(db, journal) == [
            "4: the journal's head (entries 1..4) does not match its MAC: where the chain ends or starts was "
            "rewritten without the seal key"
        ]
        with db.session() as session:
            session.execute(update(AuditHead).values(mac=None))  # nor does removing the MAC
        assert "4: the journal's head has no MAC, yet entries sealed by version 2 exist" in _problems(db, journal)[0]
    finally:
        db.dispose()


def test_verify_finds_cut_first_entries_with_the_anchor_rewritten(journal_db: tuple[Database, Journal]) -> None:
    db, journal = journal_db
    try:
        _fill_people(db, journal, 5)
        with db.session() as session:
            last_removed = session.get_one(AuditEntry, 2)
            session.execute(delete(AuditEntry).where(AuditEntry.seq <= 2))
            session.execute(update(AuditHead).values(anchor_seq=2, anchor_seal=last_removed.seal))
        (problem,) = _problems(db, journal)
        assert problem.startswith("5: the journal's head (entries 3..5) does not match its MAC")
    finally:
        db.dispose()


def test_verify_on_a_live_node_sees_one_snapshot_while_others_append_and_purge(
    journal_db: tuple[Database, Journal], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `oots audit verify` and the admin page's check do: an untouched journal verifies although the
    node appends and purges while the chain is read (before, on PostgreSQL: missing entries, and a chain
    running past its head)."""
    db, journal = journal_db
    try:
        fill(db, journal, 6)  # recorded every 10 days from 2026-01-11
        reading = journal.entries
        meanwhile = [True]

        def entries_meanwhile(session: Session, **kwargs: Any) -> Iterator[AuditEntry]:
            rows = reading(session, batch=1, **kwargs)
            if not meanwhile:  # the purge's own reading
                yield from rows
                return
            meanwhile.clear()
            yield next(rows)
            with db.session(immediate=True) as other:
                assert journal.purge(other, older_than=T0 + dt.timedelta(days=35)) == 3
            fill(db, journal, 1)
            yield from rows

        monkeypatch.setattr(journal, "entries", entries_meanwhile)
        with db.snapshot() as session:
            report = journal.verify(session)
        assert report.ok, report.breaks
        assert (report.entries, report.anchor_seq, report.head_seq) == (6, 0, 6)
        monkeypatch.undo()
        with db.snapshot() as session:
            report = journal.verify(session)
        assert report.ok, report.breaks
        assert (report.entries, report.anchor_seq, report.head_seq) == (4, 3, 7)
    finally:
        db.dispose()


def test_purge_refuses_a_journal_that_does_not_verify(journal_db: tuple[Database, Journal]) -> None:
    db, journal = journal_db
    try:
        _fill_people(db, journal, 6)
        with db.session() as session:
            session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(outcome="accepted"))
        with db.session() as session, pytest.raises(SecurityError, match=r"entry 2: seal does not match.*nothing"):
            journal.purge(session, older_than=T0 + dt.timedelta(days=45))
        with db.session() as session:
            report = journal.verify(session)
            assert (report.entries, report.anchor_seq) == (6, 0)
            assert [b.seq for b in report.breaks] == [2]
            # A change after the purged part does not stop a purge, and stays visible after it.
        with db.session() as session:
            session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(outcome=None))
            session.execute(update(AuditEntry).where(AuditEntry.seq == 5).values(outcome="accepted"))
        with db.session() as session:
            assert journal.purge(session, older_than=T0 + dt.timedelta(days=35)) == 3
        assert [p.split(":")[0] for p in _problems(db, journal)] == ["5"]
    finally:
        db.dispose()


# --- journals sealed before seal version 2 --------------------------------------------------------------


def _as_written_by_an_earlier_oots(db: Database, journal: Journal, key: bytes) -> None:
    """Reseal every entry with seal version 1 and leave the head without a MAC, as oots did before."""
    from oots.audit.chain import GENESIS, seal
    from oots.audit.journal import _fields

    with db.session() as session:
        previous = GENESIS
        for row in list(journal.entries(session)):
            fields = dataclasses.replace(_fields(row), version=1)
            row.seal, row.seal_version = seal(key, previous, fields), 1
            previous = row.seal
        session.execute(update(AuditHead).values(seal=previous, mac=None))


def test_entries_sealed_by_version_1_still_verify_and_the_next_append_keys_the_head(
    journal_db: tuple[Database, Journal],
) -> None:
    db, journal = journal_db
    try:
        _fill_people(db, journal, 3)
        _as_written_by_an_earlier_oots(db, journal, b"s" * 32)
        with db.session() as session:
            report = journal.verify(session)
            assert (report.ok, report.head_keyed, report.entries) == (True, False, 3)
        _fill_people(db, journal, 1)
        with db.session() as session:
            report = journal.verify(session)
            assert (report.ok, report.head_keyed, report.entries) == (True, True, 4)
            assert [e.seal_version for e in journal.entries(session)] == [1, 1, 1, 2]
            # a version-2 entry passed off as version 1 does not verify
            session.execute(update(AuditEntry).where(AuditEntry.seq == 4).values(seal_version=1))
        assert [p.split(":")[0] for p in _problems(db, journal)] == ["4"]
    finally:
        db.dispose()


def test_purge_of_an_unkeyed_head_verifies_the_whole_chain_first(journal_db: tuple[Database, Journal]) -> None:
    db, journal = journal_db
    try:
        _fill_people(db, journal, 6)
        _as_written_by_an_earlier_oots(db, journal, b"s" * 32)
        with db.session() as session:
            session.execute(delete(AuditEntry).where(AuditEntry.seq == 6))  # the tail cut, the head not moved
        with db.session() as session, pytest.raises(SecurityError, match="head is entry 6 but the chain ends at 5"):
            journal.purge(session, older_than=T0 + dt.timedelta(days=35))
    finally:
        db.dispose()


def test_a_journal_of_schema_audit_0001_is_migrated_and_verifies(tmp_path: Path) -> None:
    from alembic import command

    from oots.audit.chain import GENESIS, EntryFields, seal
    from oots.audit.sealing import digest, encrypt_personal
    from oots.store.database import alembic_config

    key, data_key = b"s" * 32, b"d" * 32
    journal = Journal("be", key, data_key, clock=Clock())
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        with db.connect(immediate=True) as conn:
            command.upgrade(alembic_config(conn), "audit_0001")
        previous = GENESIS
        with db.connect() as conn:
            for seq in (1, 2):
                blob = encrypt_personal(data_key, {"family_name": "Ng"}, associated=f"be:{seq}".encode())
                fields = EntryFields(
                    seq, T0, "be", "provider", "request_received", personal_digest=digest(blob), version=1
                )
                previous = seal(key, previous, fields)
                conn.execute(
                    AuditEntry.__table__.insert().values(  # type: ignore[attr-defined]
                        seq=seq,
                        recorded_at=T0,
                        node="be",
                        side="provider",
                        event="request_received",
                        message_ids=[],
                        details={},
                        personal=blob,
                        personal_digest=digest(blob),
                        subject_key=journal.subject_key("DE/BE/1"),
                        seal=previous,
                    )
                )
            conn.exec_driver_sql(f"UPDATE audit_head SET seq = 2, seal = '{previous}'")
        db.migrate()
        with db.session() as session:
            report = journal.verify(session)
            assert (report.ok, report.head_keyed, report.entries) == (True, False, 2)
    finally:
        db.dispose()


# --- the commands -----------------------------------------------------------------------------------------


def _config(tmp_path: Path, data_dir: Path, extra: str = "") -> Path:
    config = tmp_path / f"{data_dir.name}.toml"
    config.write_text(f'[node]\nname = "be"\ndata_dir = "{data_dir.as_posix()}"\n{extra}', encoding="utf-8")
    return config


@pytest.mark.parametrize("days", ["-5", "0"])
def test_cli_purge_refuses_days_below_one(
    node: tuple[Path, Database, Journal], capsys: pytest.CaptureFixture[str], days: str
) -> None:
    config, db, journal = node
    fill(db, journal, 3)
    code, _, err = run_cli(capsys, "audit", "purge", str(config), "--older-than-days", days)
    assert code == 2
    assert "older-than-days" in err
    with db.session() as session:
        assert journal.verify(session).entries == 3


def test_cli_purge_refuses_days_below_the_retention_period(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, tmp_path, "[audit]\nretention_days = 30\n")
    settings = load_settings(config)
    db = open_database(settings)
    journal = load_journal(settings, clock=Clock())
    try:
        fill(db, journal, 3)
        code, _, err = run_cli(capsys, "audit", "purge", str(config), "--older-than-days", "29")
        assert code == 2
        assert "shorter than the retention period (audit.retention_days = 30)" in err
        code, out, _ = run_cli(capsys, "audit", "purge", str(config))
        assert (code, out.split()[:3]) == (0, ["removed", "3", "entries"])
    finally:
        db.dispose()


def test_cli_purge_of_an_edited_journal_removes_nothing(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, tmp_path, "[audit]\nretention_days = 30\n")
    settings = load_settings(config)
    db = open_database(settings)
    try:
        fill(db, load_journal(settings, clock=Clock()), 4)
    finally:
        db.dispose()
    con = sqlite3.connect(tmp_path / "oots.db")
    con.execute("UPDATE audit_entries SET outcome = 'accepted' WHERE seq = 2")
    con.commit()
    code, _, err = run_cli(capsys, "audit", "purge", str(config))
    assert code == 1
    assert "does not verify (entry 2: seal does not match" in err
    assert "nothing was purged" in err
    assert con.execute("SELECT count(*) FROM audit_entries").fetchone() == (4,)
    con.close()
    code, _, err = run_cli(capsys, "audit", "verify", str(config))
    assert code == 1
    assert "entry 2: seal does not match" in err


@pytest.mark.parametrize(
    "command", [("audit", "verify"), ("audit", "export", "--exchange", "x"), ("audit", "head"), ("queue", "stats")]
)
def test_cli_read_only_commands_create_no_database(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    mistyped = tmp_path / "typo"
    config = _config(tmp_path, mistyped)
    code, _, err = run_cli(capsys, command[0], command[1], str(config), *command[2:])
    assert code != 0
    assert f"there is no database at {mistyped / 'oots.db'}" in err
    assert not mistyped.exists()


def test_cli_read_only_commands_create_no_keys(
    node: tuple[Path, Database, Journal], capsys: pytest.CaptureFixture[str]
) -> None:
    config, db, journal = node
    fill(db, journal, 2)
    keys = config.parent / "audit.keys"
    keys.unlink()
    for command, *options in (("verify",), ("export", "--exchange", "x-0"), ("purge",)):
        code, _, err = run_cli(capsys, "audit", command, str(config), *options)
        assert code == 2, command
        assert "the audit journal has no keys" in err
        assert str(keys) in err
        assert not keys.exists()


def test_cli_verify_refuses_a_database_with_migrations_pending(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from alembic import command

    from oots.store.database import alembic_config

    config = _config(tmp_path, tmp_path)
    db = Database(f"sqlite:///{tmp_path / 'oots.db'}")
    try:
        with db.connect(immediate=True) as conn:
            command.upgrade(alembic_config(conn), "audit_0001")
    finally:
        db.dispose()
    code, _, err = run_cli(capsys, "audit", "verify", str(config))
    assert code == 1
    assert "has migrations pending" in err
    assert "audit_0001" in err
    assert "oots db migrate" in err


def test_cli_export_to_a_missing_directory_is_a_plain_error(
    node: tuple[Path, Database, Journal], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, db, journal = node
    fill(db, journal, 2)
    target = tmp_path / "nonexistent" / "x.json"
    code, _, err = run_cli(capsys, "audit", "export", str(config), "--exchange", "x-0", "--out", str(target))
    assert code == 2
    assert f"cannot write {target}: No such file or directory" in err
    assert "Traceback" not in err


def test_cli_export_file_is_readable_by_its_owner_only(
    node: tuple[Path, Database, Journal], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, db, journal = node
    fill(db, journal, 2)
    fresh, existing = tmp_path / "fresh.json", tmp_path / "existing.json"
    existing.write_text("old")
    existing.chmod(0o644)
    for target in (fresh, existing):
        code, out, _ = run_cli(capsys, "audit", "export", str(config), "--exchange", "x-0", "--out", str(target))
        assert (code, out) == (0, f"wrote 1 entries to {target}\n")
        assert target.stat().st_mode & 0o777 == 0o600
        assert json.loads(target.read_text())[0]["personal"]["family_name"] == "Müller"


def test_cli_export_of_a_malformed_person_is_a_usage_error_and_no_match_says_so(
    node: tuple[Path, Database, Journal], capsys: pytest.CaptureFixture[str]
) -> None:
    config, db, journal = node
    fill(db, journal, 2)
    code, out, err = run_cli(capsys, "audit", "export", str(config), "--person", "12345")
    assert (code, out) == (2, "")
    assert "CC/CC/identifier" in err
    code, out, err = run_cli(capsys, "audit", "export", str(config), "--person", "DE/BE/9")
    assert (code, json.loads(out)) == (0, [])
    assert "no entries match" in err


def test_cli_export_names_an_entry_that_cannot_be_decrypted_and_exports_the_others(
    node: tuple[Path, Database, Journal], capsys: pytest.CaptureFixture[str]
) -> None:
    config, db, journal = node
    fill(db, journal, 4)
    con = sqlite3.connect(config.parent / "oots.db")
    con.execute("UPDATE audit_entries SET personal = (SELECT personal FROM audit_entries WHERE seq = 1) WHERE seq = 4")
    con.commit()
    con.close()
    code, out, err = run_cli(capsys, "audit", "export", str(config), "--exchange", "x-0")
    assert code == 1
    data = json.loads(out)
    assert [(e["seq"], e["personal"] is not None) for e in data] == [(1, True), (4, False)]
    assert "personal data of entry 4 cannot be decrypted: it was changed or moved" in data[1]["personal_error"]
    assert "error: the personal data of entry 4 cannot be decrypted" in err


def test_cli_head_and_verify_against_a_recorded_head_find_a_rollback(
    node: tuple[Path, Database, Journal], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, db, journal = node
    fill(db, journal, 2)
    db.dispose()
    database = config.parent / "oots.db"
    older = database.read_bytes()
    fill(db, journal, 2)
    db.dispose()
    code, out, _ = run_cli(capsys, "audit", "head", str(config))
    assert code == 0
    recorded = out.strip()
    assert recorded.startswith("4:")
    assert run_cli(capsys, "audit", "verify", str(config), "--head", recorded)[0] == 0
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    database.write_bytes(older)  # the whole database back to an older copy, head included
    assert run_cli(capsys, "audit", "verify", str(config))[0] == 0  # not detectable from inside
    code, _, err = run_cli(capsys, "audit", "verify", str(config), "--head", recorded)
    assert code == 1
    assert "entry 4: recorded as the head, but the journal ends at entry 2" in err


def test_search_by_message_id_finds_old_entries_and_pages(journal_db: tuple[Database, Journal]) -> None:
    db, journal = journal_db
    with db.session() as session:
        journal.append(session, side="requester", event="request_sent", exchange_id="old", message_ids=["m-1@oots"])
        for i in range(300):  # more than a page of newer entries, one with an id that contains the old one
            journal.append(
                session, side="requester", event="request_sent", exchange_id=f"new-{i}", message_ids=[f"x{i}m-1@oots"]
            )
    with db.session() as session:
        found = journal.search(session, message_id="m-1@oots", limit=50)
        assert [e.exchange_id for e in found] == ["old"]
        assert journal.search(session, message_id="m-%@oots") == []  # a wildcard is a character like any other
        page = journal.search(session, limit=50, offset=50)
        assert [e.exchange_id for e in page][:2] == ["new-249", "new-248"]
        assert len(page) == 50


def test_an_id_longer_than_its_column_is_left_out_not_a_failed_append(journal_db: tuple[Database, Journal]) -> None:
    # a peer's ids may be any length: PostgreSQL refused the entry (and the caller's transaction with it)
    db, journal = journal_db
    with db.session() as session:
        journal.append(
            session, side="provider", event="request_received", exchange_id="e" * 201, conversation_id="c" * 201
        )
        journal.append(
            session, side="provider", event="request_received", exchange_id="e" * 200, conversation_id="c" * 200
        )
    with db.session() as session:
        kept = [(e.exchange_id, e.conversation_id) for e in journal.search(session)]
        assert kept == [("e" * 200, "c" * 200), (None, None)]
        assert journal.verify(session).ok
