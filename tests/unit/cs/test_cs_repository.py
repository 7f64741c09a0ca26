"""The catalogue in the database (SQLite here; PostgreSQL with OOTS_TEST_POSTGRES_URL)."""

from __future__ import annotations

import pytest

from cs.cs_helpers import DEMO
from oots.cs.datafile import load_catalogue
from oots.cs.repository import load_catalogue as load_stored
from oots.cs.repository import revision, save_catalogue
from oots.store import Database


def _round_trip(url: str) -> None:
    demo = load_catalogue(DEMO)
    db = Database(url)
    try:
        db.migrate()
        with db.session() as session:
            assert revision(session) == 0
            assert save_catalogue(session, demo) == 1
        with db.session() as session:
            stored = load_stored(session)
            assert revision(session) == 1
        assert sorted(stored.procedures, key=str) == sorted(demo.procedures, key=str)
        assert sorted(stored.evidence_types, key=str) == sorted(demo.evidence_types, key=str)
        assert stored.requirements == demo.requirements
        assert stored.evidence_type_lists == demo.evidence_type_lists
        assert stored.data_services == demo.data_services
        smaller = load_catalogue(DEMO)
        smaller = type(smaller)(procedures=smaller.procedures, requirements=smaller.requirements[:1])
        with db.session() as session:
            assert (
                save_catalogue(
                    session,
                    type(smaller)(
                        procedures=smaller.procedures,
                        requirements=tuple(
                            type(r)(r.id, r.names, r.descriptions, r.procedures) for r in smaller.requirements
                        ),
                    ),
                )
                == 2
            )
        with db.session() as session:
            again = load_stored(session)
        assert len(again.requirements) == 1
        assert again.data_services == ()
    finally:
        db.dispose()


def test_catalogue_round_trip_sqlite(sqlite_url: str) -> None:
    _round_trip(sqlite_url)


@pytest.mark.postgres
def test_catalogue_round_trip_postgres(postgres_url: str) -> None:
    _round_trip(postgres_url)


def test_server_answers_from_the_database_and_reloads(tmp_path, clean_env) -> None:  # type: ignore[no-untyped-def]
    from oots.cs.repository import save_catalogue as save
    from oots.cs.server import StoredCatalogue, create_app_from_settings
    from oots.settings import Settings

    url = f"sqlite:///{tmp_path / 'cs.db'}"
    settings = Settings(database={"url": url}, common_services={"catalogue_file": str(DEMO)})
    app = create_app_from_settings(settings)  # an empty database is filled from the catalogue file
    assert app is not None
    db = Database(url)
    try:
        holder = StoredCatalogue(db, refresh_seconds=0)
        assert len(holder().data_services) == 42
        first = holder()
        assert holder() is first  # same revision: same snapshot
        with db.session() as session:
            save(session, type(first)(procedures=first.procedures))
        assert holder().data_services == ()
    finally:
        db.dispose()
