"""The preview space's decision page: who issued the evidence, in the page's language."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.requests import Request

from oots import edm
from oots.audit.journal import load_journal
from oots.eid.identity import Identity, LevelOfAssurance, NaturalPerson
from oots.node.roles import NodeContext
from oots.provider.intake import Intake
from oots.provider.preview_web import PreviewSpace, _View
from oots.provider.previews import Previews
from oots.provider.samples import sample_data_service
from oots.settings import Settings
from oots.store import open_database

NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
#: A sample service whose authority has a German name beside its English one.
BAVARIA = sample_data_service("DE", "diplomas")


@pytest.fixture
def space(tmp_path: Path) -> Iterator[PreviewSpace]:
    settings = Settings(
        node={"name": "red", "country": "DE", "data_dir": str(tmp_path), "base_url": "http://127.0.0.1:9"},
        eid={"issuer": "http://127.0.0.1:9/idp", "client_id": "red", "session_secret": "preview-page-0123456789"},
        provider={"samples": True},
    )
    ctx = NodeContext(settings=settings, database=open_database(settings))
    previews = Previews(
        Intake([BAVARIA], preview=True),
        load_journal(settings),
        base_url="http://127.0.0.1:9",
        timeout=dt.timedelta(minutes=20),
        return_origins=(),
        clock=lambda: NOW,
    )
    yield PreviewSpace(ctx, previews)
    ctx.database.dispose()


def _page(space: PreviewSpace, lang: str) -> str:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/preview/token",
        "query_string": f"lang={lang}".encode(),
        "headers": [],
        "scheme": "http",
        "server": ("red.test", 80),
    }
    person = NaturalPerson("DE/DE/123", "Müller", "Anna", dt.date(1990, 1, 2))
    identity = Identity(person, LevelOfAssurance.HIGH, "http://127.0.0.1:9/idp", "oidc", NOW)
    subject = edm.Person(family_name="Müller", given_name="Anna", date_of_birth=dt.date(1990, 1, 2))
    view = _View(BAVARIA, subject, [], NOW + dt.timedelta(minutes=20), None, decided=False)
    response = space._decision_page(Request(scope), "token", view, identity)
    assert response.status_code == 200
    return bytes(response.body).decode()


@pytest.mark.parametrize(
    ("lang", "shown"),
    [
        ("de", "Bayerisches Staatsministerium für Unterricht und Kultus"),
        ("en", "Bavarian State Ministry for Education and Cultural Affairs"),
        ("fr", "Bavarian State Ministry for Education and Cultural Affairs"),  # no French name: `name`
    ],
)
def test_the_page_names_the_issuing_authority_in_its_language(space: PreviewSpace, lang: str, shown: str) -> None:
    # Before, the page showed `name` in every language, though the authority had a German one.
    assert f": {shown}<br>" in _page(space, lang)
