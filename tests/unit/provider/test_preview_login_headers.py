"""The preview space's own eID login pages (``/preview/eid/...``) send the preview pages' security headers."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from oots.audit.journal import load_journal
from oots.node.roles import NodeContext
from oots.provider.intake import Intake
from oots.provider.preview_web import LOGIN_CSP, PreviewSpace
from oots.provider.previews import Previews
from oots.provider.samples import sample_data_services
from oots.settings import Settings
from oots.store import open_database

Get = Callable[[str], httpx.Response]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Get]:
    settings = Settings(
        node={"name": "red", "country": "ES", "data_dir": str(tmp_path), "base_url": "http://127.0.0.1:9"},
        eid={"issuer": "http://127.0.0.1:9/idp", "client_id": "red", "session_secret": "login-headers-0123456789"},
        provider={"samples": True},
    )
    ctx = NodeContext(settings=settings, database=open_database(settings))
    previews = Previews(
        Intake(sample_data_services("ES"), preview=True),
        load_journal(settings),
        base_url="http://127.0.0.1:9",
        timeout=dt.timedelta(minutes=20),
        return_origins=(),
        clock=lambda: dt.datetime.now(dt.UTC),
    )
    app = Starlette(routes=list(PreviewSpace(ctx, previews).routes()))

    def get(path: str) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://red.test") as c:
                return await c.get(path)

        return asyncio.run(go())

    yield get
    ctx.database.dispose()


@pytest.mark.parametrize("path", ["/preview/eid/logged-out", "/preview/eid/callback", "/preview/eid/callback?state=x"])
def test_login_pages_send_the_security_headers(client: Get, path: str) -> None:
    page = client(path)
    assert page.status_code < 500
    assert page.headers["content-security-policy"] == LOGIN_CSP
    assert "frame-ancestors 'none'" in LOGIN_CSP
    assert "script-src" not in LOGIN_CSP  # default-src 'none': no script at all
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers.get_list("content-security-policy") == [LOGIN_CSP]  # not sent twice


def test_preview_pages_keep_their_own_policy(client: Get) -> None:
    page = client("/preview/" + "A" * 43)
    assert page.headers["content-security-policy"] != LOGIN_CSP
    assert page.headers["referrer-policy"] == "no-referrer"
