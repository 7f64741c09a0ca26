"""Persistence: the declarative base, the database (SQLite or PostgreSQL), migrations, the work queue.

Every table of oots is a typed mapping on :class:`Base`, in its owner's ``models`` module listed in
:data:`MODEL_MODULES`. :func:`open_database` opens the node's database from its settings and applies
every owner's migrations; :func:`open_existing_database` opens it for a command that must create
nothing. The durable work queue is :mod:`oots.store.queue`.
"""

from __future__ import annotations

from oots.store.base import NAMING_CONVENTION, Base, BigId, JsonValue, UtcDateTime, utcnow
from oots.store.database import MODEL_MODULES, Database, load_models, open_database, open_existing_database

__all__ = [
    "MODEL_MODULES",
    "NAMING_CONVENTION",
    "Base",
    "BigId",
    "Database",
    "JsonValue",
    "UtcDateTime",
    "load_models",
    "open_database",
    "open_existing_database",
    "utcnow",
]
