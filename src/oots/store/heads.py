"""The cheap "is this database already at every head?" check run before Alembic at every start.

Loading Alembic's script directory imports every migration file and most of Alembic (a few hundred
milliseconds of CPU per process start). A node's database is almost always already migrated, so
:meth:`oots.store.Database.migrate` first compares the rows of ``alembic_version`` with the heads
read from the migration files' ``revision`` / ``down_revision`` assignments (parsed, not imported),
and only runs Alembic when they differ: a database never migrated, one a migration behind, or one
from a newer oots (which Alembic then refuses).
"""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import Connection, inspect, text

__all__ = ["VERSION_TABLE", "current_revisions", "known_heads"]

#: Alembic's own bookkeeping table (the default name; ``env.py`` does not change it).
VERSION_TABLE = "alembic_version"


def _assignments(source: str) -> dict[str, object]:
    """The literal values of the module-level ``revision`` and ``down_revision`` assignments."""
    found: dict[str, object] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, value = node.target.id, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, node.value
        else:
            continue
        if name in ("revision", "down_revision"):
            found[name] = ast.literal_eval(value)
    return found


def known_heads(migrations_dir: Path) -> set[str] | None:
    """The revisions no other revision revises: what ``alembic upgrade heads`` brings a database to.

    Every ``versions/*.py`` file that assigns ``revision`` is a revision; its ``down_revision`` (none,
    one, or several for a merge) names the revisions it follows. ``None`` when a file cannot be read
    that way (not Python, or an assignment that is not a plain literal): then only Alembic can tell.
    """
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in sorted((migrations_dir / "versions").glob("*.py")):
        try:
            values = _assignments(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            return None
        revision = values.get("revision")
        if not isinstance(revision, str):
            continue
        revisions.add(revision)
        down = values.get("down_revision")
        if isinstance(down, str):
            revised.add(down)
        elif isinstance(down, (tuple, list)):
            revised.update(str(d) for d in down)
    return revisions - revised


def current_revisions(conn: Connection) -> set[str] | None:
    """The revisions recorded in ``alembic_version``; ``None`` when the table does not exist yet."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return {row[0] for row in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))}  # noqa: S608
