"""Helpers shared by the Common Services tests (imported by name: the test folders are not packages)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

#: A time at which the Commission's acceptance chain is valid (its signer expires 2027-10-23), days
#: after the captures were signed (2026-07-22 and 2026-07-29).
CAPTURE_TIME = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
CAPTURES = ("eb_requirements_fr", "eb_evidence_types_fr", "dsd_aucun_service_fr")


@dataclass(frozen=True)
class Capture:
    name: str
    body: bytes
    headers: dict[str, str]

    @property
    def received_at(self) -> dt.datetime:
        """When the answer came: a few seconds after its signing time (``iat``), the pinned clock of its checks."""
        protected = self.headers["oots-response-sig"].split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
        return dt.datetime.fromtimestamp(header["iat"], dt.UTC) + dt.timedelta(seconds=5)


def read_headers(path: Path) -> dict[str, str]:
    headers = {}
    for line in path.read_text(encoding="ascii").splitlines():
        name, _, value = line.partition(": ")
        headers[name] = value
    return headers


DEMO = Path(__file__).resolve().parents[3] / "src" / "oots" / "cs" / "data" / "demo-catalogue.toml"
SR = "https://sr.oots.tech.ec.europa.eu"
EB1 = "urn:fdc:oots:eb:ebxml-regrep:queries:requirements-by-procedure-and-jurisdiction"
EB2 = "urn:fdc:oots:eb:ebxml-regrep:queries:evidence-types-by-requirement-and-jurisdiction"
DSD = "urn:fdc:oots:dsd:ebxml-regrep:queries:dataservices-by-evidencetype-and-jurisdiction"


class AppTransport(httpx.BaseTransport):
    """A sync httpx transport that hands requests to an ASGI app in process (``mangle`` edits replies)."""

    def __init__(
        self,
        app: Any,
        mangle: Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]] | None = None,
    ) -> None:
        self.asgi = httpx.ASGITransport(app=app)
        self.mangle = mangle
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1

        async def call() -> tuple[int, dict[str, str], bytes]:
            reply = await self.asgi.handle_async_request(request)
            body = await reply.aread()
            return reply.status_code, dict(reply.headers), body

        status, headers, content = asyncio.run(call())
        if self.mangle is not None:
            content, headers = self.mangle(content, headers)
        headers.pop("content-length", None)
        return httpx.Response(status, headers=headers, content=content)


def app_client(app: Any) -> httpx.Client:
    """A plain httpx client talking to ``app`` in process."""
    return httpx.Client(transport=AppTransport(app), base_url="http://testserver")
