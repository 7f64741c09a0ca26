"""The at-heads check before Alembic: the right heads, out-of-date databases still migrated, no Alembic if settled."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

import oots.store.database as database
from oots.errors import StoreError
from oots.store import Database
from oots.store.database import MIGRATIONS_DIR, alembic_config
from oots.store.heads import current_revisions, known_heads


def alembic_heads() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


@pytest.fixture
def migrations_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(database, "MIGRATIONS_DIR", copy)
    return copy


def test_the_parsed_heads_are_alembics_heads() -> None:
    assert known_heads(MIGRATIONS_DIR) == alembic_heads()


def test_the_parsed_heads_follow_a_new_revision_and_a_merge(migrations_copy: Path) -> None:
    from oots.store.revision import new_revision

    new_revision("store", "nothing new", autogenerate=False)
    assert "store_0002" in known_heads(migrations_copy)
    assert "store_0001" not in known_heads(migrations_copy)
    assert known_heads(migrations_copy) == alembic_heads()
    merge = migrations_copy / "versions" / "merge_0001_all.py"
    merge.write_text(
        f'revision = "merge_0001"\ndown_revision = {tuple(sorted(alembic_heads()))!r}\n'
        "branch_labels = None\ndepends_on = None\n\n\ndef upgrade() -> None:\n    pass\n\n\n"
        "def downgrade() -> None:\n    pass\n",
        encoding="utf-8",
    )
    assert known_heads(migrations_copy) == {"merge_0001"} == alembic_heads()


def test_a_database_a_migration_behind_is_still_migrated(sqlite_url: str, migrations_copy: Path) -> None:
    from oots.store.revision import new_revision

    db = Database(sqlite_url)
    before = db.migrate()
    assert before == known_heads(migrations_copy)
    new_revision("store", "one more step", autogenerate=False)
    after = db.migrate()
    assert "store_0002" in after
    assert "store_0001" not in after
    with db.connect() as conn:
        assert current_revisions(conn) == after == alembic_heads()
    db.dispose()


def test_a_database_missing_one_branch_gets_it(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.migrate()
    with db.connect() as conn:
        conn.execute(text("DELETE FROM alembic_version WHERE version_num LIKE 'provider_%'"))
        conn.execute(text("DROP TABLE provider_preview_documents"))
        conn.execute(text("DROP TABLE provider_previews"))
    assert db.migrate() == alembic_heads()
    with db.connect() as conn:
        conn.execute(text("SELECT count(*) FROM provider_previews"))
    db.dispose()


def test_a_database_from_a_newer_oots_is_still_refused(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.migrate()
    with db.connect() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'store_0099' WHERE version_num = 'store_0001'"))
    with pytest.raises(StoreError, match="does not know"):
        db.migrate()
    db.dispose()


def test_a_database_never_migrated_has_no_version_table(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    with db.connect() as conn:
        assert current_revisions(conn) is None
    db.dispose()


def test_a_settled_database_loads_neither_alembic_nor_the_models(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.migrate()
    db.dispose()
    code = (
        "import sys\n"
        "from oots.store import Database\n"
        f"db = Database({sqlite_url!r})\n"
        "assert db.migrate()\n"
        "prefixes = ('alembic.', 'oots.requester', 'oots.provider')\n"
        "loaded = [m for m in sys.modules if m == 'alembic' or m.startswith(prefixes)]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_first_migration_runs_the_files_without_importing_the_roles_models(sqlite_url: str) -> None:
    """The upgrade needs only the migration files; the roles' packages load when a node has the role."""
    code = (
        "import sys\n"
        "from oots.store import Database\n"
        f"db = Database({sqlite_url!r})\n"
        "assert any(r.startswith('requester_') for r in db.migrate())\n"
        "loaded = [m for m in sys.modules if m.startswith(('oots.requester', 'oots.provider'))]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    db = Database(sqlite_url)
    assert db.revisions() == alembic_heads()
    db.dispose()


def test_a_revision_the_parser_cannot_read_leaves_the_decision_to_alembic(
    sqlite_url: str, migrations_copy: Path
) -> None:
    db = Database(sqlite_url)
    db.migrate()
    follow = migrations_copy / "versions" / "store_0002_computed.py"
    follow.write_text(
        'REV = "store_0002"\nrevision = REV\ndown_revision = "store_0001"\nbranch_labels = None\n'
        "depends_on = None\n\n\ndef upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n",
        encoding="utf-8",
    )
    assert known_heads(migrations_copy) is None
    assert "store_0002" in db.migrate()
    db.dispose()
