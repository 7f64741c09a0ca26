"""The portal API: JSON over HTTP, described by OpenAPI (served at ``/api/openapi.json``).

A procedure portal authenticates with its API key (``Authorization: Bearer <key>`` or
``X-API-Key: <key>``); the node knows only the key's SHA-256 (``[[requester.clients]]``). Every
exchange belongs to the client that created it; another client's exchange is "not found".

| method | path | what |
|---|---|---|
| POST | /api/v1/exchanges | start an exchange → 202 with its id and state |
| GET | /api/v1/exchanges/{id} | its state, the choices and questions, requests, evidence |
| GET | /api/v1/exchanges/{id}?since=V&wait=S | the same, once its version is no longer V (long poll, S <= 30 s) |
| POST | /api/v1/exchanges/{id}/choices | the user's choices and answers → 202 |
| POST | /api/v1/exchanges/{id}/explicit-request | the user asked for the evidence → 202 |
| POST | /api/v1/exchanges/{id}/cancel | end it |
| GET | /api/v1/exchanges/{id}/evidence | the evidence received |
| GET | /api/v1/exchanges/{id}/evidence/{n} | one document |

Errors are ``application/problem+json`` (``{"title", "status", "detail", "error_id"}``): 401 without a
valid key, 404 for an unknown exchange, 409 for a step the exchange's state does not allow, 422 for
input that does not fit (with the field's path).

A portal waiting for an exchange to move on reads it with ``since`` (the version it last saw) and
``wait``: the answer comes as soon as the exchange changes (woken by the commit that changed it, see
:mod:`oots.store.wake`), or after ``wait`` seconds with the same version, instead of the portal
polling in a tight loop.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from oots.errors import LocalProtocolError, ModelError, NotFound, OotsError
from oots.requester.exchange import CHANGED_TOPIC, Requester, subject_from_json
from oots.requester.states import TERMINAL, State
from oots.store import Database
from oots.store.wake import topic, wait_for

__all__ = ["create_api"]

log = logging.getLogger(__name__)

#: Longest long poll (``wait``) a reader may ask for, in seconds.
MAX_WAIT_SECONDS = 30.0
#: While a long poll waits, the exchange is read again after this long, then twice as long each time up
#: to :data:`MAX_RECHECK_SECONDS` (for changes made by other processes of the node on SQLite, which
#: sends no notifications across processes; commits in this process and on PostgreSQL wake it at once).
RECHECK_SECONDS = 0.5
MAX_RECHECK_SECONDS = 4.0


class ExchangeIn(BaseModel):
    """A new exchange: the procedure, the provider's country, the user, what evidence is needed."""

    model_config = ConfigDict(extra="forbid")

    procedure: str = Field(min_length=1, max_length=255, description="Procedure code (R1, S1, ...) or id.")
    country: str = Field(pattern=r"^[A-Z]{2}$", description="Country of the evidence provider.")
    person: dict[str, Any] = Field(
        description='{"natural_person": {...}} or {"legal_person": {...}}: the JSON form of sdg:Person / '
        "sdg:LegalPerson, from the user's eID login, with level_of_assurance."
    )
    requirements: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list, max_length=50, description="Requirement ids needed; empty: all of the procedure's."
    )
    return_url: str | None = Field(
        None, max_length=2000, pattern=r"^https?://", description="Where the user goes back after a preview."
    )
    preview: bool | None = Field(None, description="Allow a preview (default: the node's setting).")


class ChoiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upload: bool = Field(False, description="The user uploads this evidence instead.")
    list: str | None = Field(None, max_length=500, description="The chosen evidence type list id.")
    answers: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Per evidence type classification: question id → answer."
    )
    providers: dict[str, str] = Field(
        default_factory=dict, description="Per evidence type classification: the chosen provider id."
    )


class ChoicesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requirements: dict[str, ChoiceIn] = Field(description="Per requirement id: the user's choice.")


class Accepted(BaseModel):
    id: str
    state: str
    version: int
    href: str


def _problem(status: int, title: str, detail: str, error_id: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"title": title, "status": status, "detail": detail}
    if error_id:
        body["error_id"] = error_id
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def create_api(requester: Requester, database: Database) -> FastAPI:
    """The portal API application (mount it at ``/api``)."""
    clients = {c.id: c for c in requester.config.clients}
    base_url = requester.settings.node.base_url.rstrip("/")
    api = FastAPI(
        title="oots evidence requester — portal API",
        version="1",
        description=__doc__ or "",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )

    def client_id(request: Request) -> str:
        auth = request.headers.get("authorization", "")
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("x-api-key", "")
        digest = hashlib.sha256(key.encode()).hexdigest() if key else ""
        found = None
        for client in clients.values():
            if hmac.compare_digest(client.api_key_sha256, digest):
                found = client.id
        if found is None:
            raise _UnauthorisedError
        return found

    authenticated = Depends(client_id)

    @api.exception_handler(_UnauthorisedError)
    async def _unauthorised(request: Request, exc: _UnauthorisedError) -> JSONResponse:
        response = _problem(401, "Unauthorised", "a valid API key is needed (Authorization: Bearer <key>)")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @api.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return _problem(404, "Not found", exc.message, exc.error_id)

    @api.exception_handler(LocalProtocolError)
    async def _conflict(request: Request, exc: LocalProtocolError) -> JSONResponse:
        return _problem(409, "Not possible in this state", exc.message, exc.error_id)

    @api.exception_handler(ModelError)
    async def _invalid(request: Request, exc: ModelError) -> JSONResponse:
        return _problem(422, "Invalid input", exc.message, exc.error_id)

    @api.exception_handler(OotsError)
    async def _other(request: Request, exc: OotsError) -> JSONResponse:
        log.warning("portal API error %s: %s", exc.error_id, exc.message)
        return _problem(400, "Request failed", exc.message, exc.error_id)

    @api.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _problem(422, "Invalid input", f"{where}: {first.get('msg', 'invalid')}".strip(": "))

    def accepted(ex_id: str, state: str, version: int) -> JSONResponse:
        body = Accepted(id=ex_id, state=state, version=version, href=f"{base_url}/api/v1/exchanges/{ex_id}")
        return JSONResponse(body.model_dump(), status_code=202, headers={"Location": body.href})

    @api.post("/v1/exchanges", status_code=202, response_model=Accepted, summary="Start an exchange")
    def create_exchange(body: ExchangeIn, client: str = authenticated) -> JSONResponse:
        subject = subject_from_json(body.person)
        with database.session(immediate=True) as session:
            ex = requester.create(
                session,
                client_id=client,
                procedure=body.procedure,
                country=body.country,
                subject=subject,
                requirements=body.requirements,
                return_url=body.return_url,
                preview=body.preview,
            )
            return accepted(ex.id, ex.state, ex.version)

    def read(exchange_id: str, client: str) -> dict[str, Any]:
        with database.session() as session:
            return requester.view(session, exchange_id, client).to_json(base_url)

    changes = topic(CHANGED_TOPIC)

    @api.get("/v1/exchanges/{exchange_id}", summary="Read an exchange")
    async def read_exchange(
        exchange_id: str,
        client: str = authenticated,
        since: Annotated[int | None, Query(ge=0, description="The version last seen (with wait).")] = None,
        wait: Annotated[
            float, Query(ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for a version other than since.")
        ] = 0.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + wait
        recheck = RECHECK_SECONDS
        with changes.watch(exchange_id) as changed:  # before reading: a commit in between is not missed
            while True:
                view = await run_in_threadpool(read, exchange_id, client)
                remaining = deadline - time.monotonic()
                if since is None or view["version"] != since or State(view["state"]) in TERMINAL or remaining <= 0:
                    return view
                if not await wait_for(changed, min(remaining, recheck)):
                    recheck = min(recheck * 2, MAX_RECHECK_SECONDS)

    @api.post("/v1/exchanges/{exchange_id}/choices", status_code=202, response_model=Accepted, summary="Choose")
    def choose(exchange_id: str, body: ChoicesIn, client: str = authenticated) -> JSONResponse:
        choices = {k: v.model_dump(exclude_defaults=True) for k, v in body.requirements.items()}
        with database.session(immediate=True) as session:
            requester.choose(session, exchange_id, client, choices)
            ex = requester.load(session, exchange_id)
            return accepted(ex.id, ex.state, ex.version)

    @api.post(
        "/v1/exchanges/{exchange_id}/explicit-request",
        status_code=202,
        response_model=Accepted,
        summary="The user gave the explicit request",
    )
    def explicit_request(exchange_id: str, client: str = authenticated) -> JSONResponse:
        with database.session(immediate=True) as session:
            requester.give_explicit_request(session, exchange_id, client)
            ex = requester.load(session, exchange_id)
            return accepted(ex.id, ex.state, ex.version)

    @api.post("/v1/exchanges/{exchange_id}/cancel", summary="Cancel an exchange")
    def cancel(exchange_id: str, client: str = authenticated) -> dict[str, Any]:
        with database.session(immediate=True) as session:
            requester.cancel(session, exchange_id, client)
            return requester.view(session, exchange_id, client).to_json(base_url)

    @api.get("/v1/exchanges/{exchange_id}/evidence", summary="List the evidence received")
    def list_evidence(exchange_id: str, client: str = authenticated) -> list[dict[str, Any]]:
        with database.session() as session:
            evidence: list[dict[str, Any]] = requester.view(session, exchange_id, client).to_json(base_url)["evidence"]
            return evidence

    @api.get(
        "/v1/exchanges/{exchange_id}/evidence/{evidence_row}",
        summary="Download one evidence",
        response_class=Response,
    )
    def download(exchange_id: str, evidence_row: int, client: str = authenticated) -> Response:
        with database.session() as session:
            ev = requester.evidence(session, exchange_id, evidence_row, client)
            suffix = {"application/pdf": "pdf", "application/xml": "xml", "application/json": "json"}
            name = f"evidence-{ev.id}.{suffix.get(ev.media_type, 'bin')}"
            return Response(
                ev.content,
                media_type=ev.media_type,
                headers={
                    "Content-Disposition": f'attachment; filename="{name}"',
                    "X-Content-Type-Options": "nosniff",
                },
            )

    return api


class _UnauthorisedError(Exception):
    pass
