"""The node's pages answer its own failures 503 (an outage) or 500, with a fixed sentence."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from node_failures import NODE_FAILURES, SECRET_HOST
from oots.errors import ConfigError, StoreError, TransportError
from oots.node.app import FAILURE_HANDLERS


@pytest.mark.parametrize(("exc", "status"), NODE_FAILURES)
def test_a_failure_of_the_node_is_answered_without_its_message(
    exc: Exception, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    # Before, the preview space and the other pages answered Starlette's bare 500 for an outage too, and
    # the server logged the exception with its message.
    async def page(request: Request) -> Response:
        raise exc

    app = Starlette(routes=[Route("/preview/x", page)], exception_handlers=dict(FAILURE_HANDLERS))
    caplog.set_level(logging.DEBUG)

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://ep.example") as client:
            return await client.get("/preview/x")

    reply = asyncio.run(call())
    assert reply.status_code == status
    assert SECRET_HOST not in reply.text
    assert SECRET_HOST not in caplog.text
    assert reply.headers["cache-control"] == "no-store"
    if status == 503:
        assert reply.headers["retry-after"] == "30"
        assert reply.text.startswith("The service cannot answer at the moment.")
    else:
        assert "retry-after" not in reply.headers
        assert "operator" in reply.text
    if isinstance(exc, StoreError | ConfigError | TransportError):
        assert f"(error id {exc.error_id})" in reply.text


def test_the_node_app_maps_its_failures(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    from oots.node.app import create_app
    from oots.settings import load_settings

    config = tmp_path / "node.toml"
    config.write_text(
        f'[node]\nname = "be-node"\ncountry = "BE"\ndata_dir = "{tmp_path.as_posix()}"\n', encoding="utf-8"
    )
    app = create_app(load_settings(config))
    for kind, handler in FAILURE_HANDLERS.items():
        assert app.exception_handlers[kind] is handler
