"""The portal API: JSON over HTTP, described by OpenAPI (served at ``/api/openapi.json``).

A procedure portal authenticates with its API key (``Authorization: Bearer <key>`` or
``X-API-Key: <key>``) or with an OAuth2 access token (``Authorization: Bearer <token>``) that it gets
from ``POST /api/v1/oauth/token`` with the client credentials grant (its client id and secret, HTTP
Basic or form fields; ``scope`` optional: ``exchanges:read``, ``exchanges:write``). The node knows only
the SHA-256 of keys and secrets (``[[requester.clients]]``); tokens are short-lived and signed by the
node. Every exchange belongs to the client that created it; another client's exchange is "not found".

| method | path | what |
|---|---|---|
| POST | /api/v1/exchanges | start an exchange → 202 with its id and state |
| GET | /api/v1/exchanges | the client's exchanges, newest first (``state``, ``limit``, ``cursor``) |
| GET | /api/v1/exchanges/{id} | its state, the choices and questions, requests, evidence (¹) |
| POST | /api/v1/exchanges/{id}/choices | the user's choices and answers → 202 |
| POST | /api/v1/exchanges/{id}/explicit-request | the user asked for the evidence → 202 |
| POST | /api/v1/exchanges/{id}/cancel | end it |
| GET | /api/v1/exchanges/{id}/evidence | the evidence received |
| GET | /api/v1/exchanges/{id}/evidence/{n} | one document |
| POST | /api/v1/oauth/token | an access token (client credentials grant, RFC 6749 §4.4) |

(¹) With ``?version_after=n`` the answer waits until the exchange's version is above ``n`` or ``wait``
seconds (default 20, at most 60) have passed (an exchange that has ended is answered at once): a portal
without webhooks waits for the next change instead of polling. With ``?until=actionable`` it waits
(also) until the exchange is in a state the portal acts on: ``awaiting_user_choice``,
``awaiting_explicit_request``, ``awaiting_preview`` or an end.

A step (start, choices, explicit request) sent with ``Prefer: wait=N`` (RFC 7240; N seconds, at most 60)
is answered with the exchange as the read gives it once it is in a state the portal acts on (200), or
after N seconds with the exchange as it is then (202), with ``Preference-Applied: wait=N``: one call
per step of the portal instead of a step and then reads. A start that waits is discovered at once, in
its own transaction, when the node holds every Common Services answer discovery needs (in its cache).

A start sent with ``Idempotency-Key: <key>`` (1 to 255 printable ASCII characters, new for each exchange)
may be sent again when its answer was lost: the same key and body within 24 hours answers the exchange
it made (the same status and body, ``Idempotent-Replayed: true``); the same key with another body is 422.

Every error answer (but the token endpoint's, which follow RFC 6749) is ``application/problem+json``
(``{"title", "status", "detail", "error_id"}``, ``Problem``): 401 without a valid key or token, 403 for a
token without the scope the call needs, 404 for an unknown exchange or address, 405 for a method the
address does not take, 409 for a step the exchange's state does not allow, 413 for a body above 64 KiB,
422 for input that does not fit (with the field's path, and ``errors``: every field; a name of the
person above 200 characters, another text of it above 1000), 500 for an error of the node's own.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, unquote_plus, urlencode

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from oots.errors import (
    ConfigError,
    LocalProtocolError,
    ModelError,
    NotFound,
    OotsError,
    SecurityError,
    StoreError,
    TransportError,
    exception_text,
)
from oots.requester import idempotency
from oots.requester.api_reference import reference_html
from oots.requester.exchange import CHANGED_TOPIC, Discovered, RequestAhead, Requester, subject_from_json
from oots.requester.oauth import SCOPES, TokenIssuer, parse_scope, token_key
from oots.requester.records import ExchangeRecord
from oots.requester.states import ACTIONABLE, TERMINAL, Reason, RequestStatus, State
from oots.store import Database
from oots.store.database import OUTAGE_RETRY_SECONDS, outage
from oots.store.wake import Topic, Watch, topic, wait_for
from oots.threads import run_in_thread

__all__ = ["create_api"]

log = logging.getLogger(__name__)

#: Waiting calls (a long poll, a step with ``Prefer: wait``) are woken by the commit that changes their
#: exchange; for a change whose wake-up was lost or could not be relayed, the waiting calls look
#: for them together (one read of every watched exchange's version, at most every ``_LOOK_SECONDS``):
#: each call asks for a look after 0.25 s without a wake-up, then twice as long each time, at most 4 s.
_LOOK_SECONDS = 0.25
_LOOK_MAX_SECONDS = 4.0
#: The longest wait a read (``wait``) or a step (``Prefer: wait=N``) may ask for.
_MAX_WAIT_SECONDS = 60

#: The ``Prefer`` request header of a step, as the OpenAPI description shows it.
_PREFER_HEADER: dict[str, Any] = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "RFC 7240 `wait=N` (seconds, at most 60): answer with the exchange once it is in a state "
    "the portal acts on (200) or after N seconds as it is then (202); `Preference-Applied` says so.",
}

#: The response headers of the OpenAPI description: what a step's answer and a start's answer carry.
_PREFERENCE_APPLIED: dict[str, Any] = {
    "description": "`wait=N` when the node applied Prefer: wait (the body is then the exchange).",
    "schema": {"type": "string"},
}
_STARTED_HEADERS: dict[str, Any] = {
    "Location": {"description": "The exchange's address.", "schema": {"type": "string"}},
    "Idempotent-Replayed": {
        "description": "`true` when this start was sent before with the same Idempotency-Key and body: no "
        "exchange was made, the answer is the first start's (with Prefer: wait, its exchange now).",
        "schema": {"type": "string", "enum": ["true"]},
    },
}


def _wait_preference(headers: list[str]) -> int | None:
    """The seconds of an RFC 7240 ``wait`` preference (``Prefer: wait=10``), at most 60; None without one.

    The first ``wait`` counts; one whose value is not a number of seconds is ignored, as a server may
    ignore any preference it cannot apply (RFC 7240 §2)."""
    for header in headers:
        for preference in header.split(","):
            name, _, value = preference.split(";", 1)[0].partition("=")
            if name.strip().lower() != "wait":
                continue
            value = value.strip().strip('"')
            if not (value.isascii() and value.isdigit()):
                return None
            return _MAX_WAIT_SECONDS if len(value) > 3 else min(int(value), _MAX_WAIT_SECONDS)
    return None


#: The titles of the API's error answers by status (one per status: a portal may show or match it).
_TITLES: dict[int, str] = {
    400: "Request failed",
    401: "Unauthorised",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Not possible in this state",
    413: "Request body too large",
    422: "Invalid input",
    500: "Server error",
    503: "Service unavailable",
}

#: The fixed sentences of the node's own failures: the error's message may name a database, a host or
#: a file of the node, which is none of the caller's business (the log has the error id and its type).
_SERVER_ERROR_DETAIL = (
    "the node could not answer because of an error of its own; try again later, and if it persists "
    "give the error id to the node's operator"
)
_UNAVAILABLE_DETAIL = (
    "the node cannot answer at the moment (its database or a service it depends on cannot be reached); "
    "try again after the seconds Retry-After gives"
)


def _unavailable(cause: BaseException) -> JSONResponse:
    """The 503 answer of an outage (the database or a service beneath the node cannot be reached)."""
    return _problem(
        503,
        _TITLES[503],
        _UNAVAILABLE_DETAIL,
        getattr(cause, "error_id", None),
        headers={"Retry-After": str(OUTAGE_RETRY_SECONDS)},
        cause=cause,
    )


def _failure_answer(exc: BaseException) -> JSONResponse:
    """The answer to a failure of the node itself: 503 (with ``Retry-After``) while its database or a
    service beneath it cannot be reached, else 500; either with a fixed sentence, never the message."""
    if outage(exc):
        return _unavailable(exc)
    return _problem(500, _TITLES[500], _SERVER_ERROR_DETAIL, getattr(exc, "error_id", None), cause=exc)


#: What each error status of the API means, as the OpenAPI description says it.
_MEANINGS: dict[int, str] = {
    400: "the request could not be carried out (detail says why)",
    401: "no valid API key or access token",
    403: "the access token has not the scope the call needs",
    404: "no such exchange (or not the client's), or no such document",
    409: "a step the exchange's state does not allow",
    413: "a request body above 64 KiB",
    422: "input that does not fit (detail names the field, errors lists every one)",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers of an operation for its OpenAPI description, each a ``Problem``."""
    return {
        status: {
            "description": f"{_TITLES[status]}: {_MEANINGS[status]}.",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


#: The most bytes of a request's body (a start, choices, a token request): far above what a portal sends.
MAX_BODY_BYTES = 64 * 1024


class _NoStore:
    """ASGI middleware: every answer of the API that does not say otherwise is ``Cache-Control:
    no-store`` (exchanges carry names, choices and evidence: no cache on the way may keep them)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start" and not any(
                name.lower() == b"cache-control" for name, _ in message.get("headers", ())
            ):
                message["headers"] = [*message.get("headers", ()), (b"cache-control", b"no-store")]
            await send(message)

        await self.app(scope, receive, sending)


class _BodyLimit:
    """ASGI middleware: a request body above ``limit`` bytes is answered 413 (problem+json) before the
    application reads it; the body (at most ``limit`` bytes) is read here and handed on whole."""

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        too_large = not declared.isdigit() or int(declared) > self.limit
        chunks: list[bytes] = []
        size = 0
        more = not too_large
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.limit:
                too_large = True
                break
        if too_large:
            detail = f"the request body is larger than {self.limit} bytes"
            await _problem(413, _TITLES[413], detail)(scope, receive, send)
            return
        body = b"".join(chunks)
        handed = False

        async def replay() -> Any:
            nonlocal handed
            if not handed:
                handed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _ready(version: int, state: str, after: int | None, actionable: bool) -> bool:
    """Whether a waiting read may answer: the version is above ``after``, the state one the portal acts on;
    or the exchange has ended (it changes no more: waiting would only take the whole time)."""
    if state in TERMINAL:
        return True
    return (after is None or version > after) and (not actionable or state in ACTIONABLE)


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
    preview: StrictBool | None = Field(None, description="Allow a preview (default: the node's setting).")


class ChoiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upload: StrictBool = Field(False, description="The user uploads this evidence instead (true or false).")
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
    state: State
    version: int
    href: str


class RequestOut(BaseModel):
    requirement: str
    evidence_type: str
    provider: str | None
    status: RequestStatus = Field(
        description="pending: not sent yet; sent: waiting for the provider's answer; preview: the provider "
        "asked for a preview; received: the evidence came; failed: an error answer, or it could not be sent."
    )
    error_code: str | None


class PreviewOut(BaseModel):
    location: str = Field(description="Where to send the user for the provider's preview.")
    method: str = Field(description="GET or POST.")


class EvidenceOut(BaseModel):
    id: int
    evidence_id: str
    title: str | None = Field(description="The attachment's title (often its file name).")
    evidence_type_title: str | None = Field(description="What the evidence is: its evidence type's title.")
    issuing_authority: str | None = Field(description="The name of the authority that issued it.")
    media_type: str
    requirement: str | None
    size: int = Field(description="Bytes.")
    href: str = Field(description="Where to download it.")


class ExchangeSummaryOut(BaseModel):
    """An exchange in a list: what it is and where it is (read it for the rest)."""

    id: str
    href: str
    state: State
    version: int
    procedure: str
    country: str
    reason: Reason | None = Field(description="Why it failed or expired (a stable code).")
    reason_text: str | None
    created_at: str
    updated_at: str
    deadline: str


class ExchangeListOut(BaseModel):
    exchanges: list[ExchangeSummaryOut] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Give it as `cursor` for the next page; null on the last page.")
    next: str | None = Field(description="The next page's address (the same filter); null on the last page.")


#: The most exchanges in one page of the list, and how many without ``limit``.
LIST_LIMIT_MAX = 200
LIST_LIMIT_DEFAULT = 50


def _cursor(created_at: str, exchange_id: str) -> str:
    """The opaque cursor of a page that follows the exchange made at ``created_at`` with ``exchange_id``."""
    return base64.urlsafe_b64encode(json.dumps([created_at, exchange_id]).encode()).decode().rstrip("=")


def _after(cursor: str) -> tuple[dt.datetime, str]:
    """The place in the list a cursor names; ModelError for one this API did not give."""
    try:
        made, last = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        when = dt.datetime.fromisoformat(made)
    except (ValueError, TypeError, binascii.Error):
        raise ModelError("cursor: not a cursor this API gave (use next_cursor of the page before)") from None
    if when.tzinfo is None or not isinstance(last, str):
        raise ModelError("cursor: not a cursor this API gave (use next_cursor of the page before)")
    return when, last


class ExchangeOut(BaseModel):
    """An exchange as the API shows it (the answer of a read, and of a step sent with ``Prefer: wait``)."""

    id: str
    href: str
    state: State
    version: int = Field(description="Incremented on every state change.")
    procedure: str
    country: str
    reason: Reason | None = Field(description="Why it failed or expired (a stable code).")
    reason_text: str | None
    detail: str | None
    created_at: str
    updated_at: str
    deadline: str
    explicit_request_given: bool
    requirements: list[dict[str, Any]] = Field(description="Per requirement: lists, questions, providers, choices.")
    requests: list[RequestOut]
    preview: PreviewOut | None = Field(description="In state awaiting_preview: where the user goes.")
    evidence: list[EvidenceOut]


class FieldProblem(BaseModel):
    field: str = Field(
        description="Where in the request: the field's path in the body, or query.<name>, header.<name>."
    )
    message: str


class Problem(BaseModel):
    """Every error answer of the API (RFC 9457 problem details), whatever its status."""

    title: str = Field(description="The kind of error, the same for every error of that status.")
    status: int = Field(description="The HTTP status.")
    detail: str = Field(description="What went wrong, in a plain sentence (naming the field for input errors).")
    error_id: str = Field(description="Names this error in the node's log: give it to the node's operator.")
    errors: list[FieldProblem] | None = Field(None, description="Input errors: every field that does not fit.")


def _problem(
    status: int,
    title: str,
    detail: str,
    error_id: str | None = None,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    cause: BaseException | None = None,
) -> JSONResponse:
    """An error answer: always ``{"title", "status", "detail", "error_id"}`` (``errors`` for input errors),
    ``application/problem+json``, ``Cache-Control: no-store``; logged once (:func:`_log_answer`)."""
    error_id = error_id or uuid.uuid4().hex[:12]
    body: dict[str, Any] = {"title": title, "status": status, "detail": detail, "error_id": error_id}
    if errors is not None:
        body["errors"] = errors
    _log_answer(status, title, error_id, cause)
    return JSONResponse(
        body,
        status_code=status,
        media_type="application/problem+json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def _log_answer(status: int, title: str, error_id: str, cause: BaseException | None) -> None:
    """The one log line of an error answer, with its id (the answer's ``error_id``), never a message.

    The caller's mistakes (4xx) are INFO; a 4xx for an error of another kind (``cause``: an OotsError
    no status names) is WARNING with the error's type; a 5xx is ERROR with the exception's type and
    where it was raised (the traceback's frames): its message, which may hold what the request
    carried, is left out."""
    level = logging.ERROR if status >= 500 else logging.INFO if cause is None else logging.WARNING
    if cause is None:
        log.log(level, "portal API answered %d %s (error id %s)", status, title, error_id)
        return
    if status < 500:
        log.log(level, "portal API answered %d %s (error id %s): %s", status, title, error_id, type(cause).__name__)
        return
    log.log(
        level,
        "portal API answered %d %s (error id %s): %s",
        status,
        title,
        error_id,
        exception_text(cause, messages=False),
    )


class _ServerError:
    """ASGI middleware: an exception no handler took is answered 500 (503 for an outage: ``Problem``) and
    logged once, without its message (:func:`_log_answer`). It is not raised further: the server would
    log it again, message and all. An exception after the answer has begun can only be logged."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:  # the boundary: every failure becomes a 500 (503 for an outage) answer
            answer = _failure_answer(exc)
            if not started:
                await answer(scope, receive, send)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = Field(description="Always Bearer.")
    expires_in: int = Field(description="Seconds the token is valid.")
    scope: str = Field(description="The scopes granted, space-separated.")


@dataclass(frozen=True)
class _Caller:
    client: str
    scopes: frozenset[str]


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest() if secret else ""


def _same(expected: str, digest: str) -> bool:
    """Constant-time comparison of a configured digest with a presented one (an empty one never matches)."""
    return bool(expected) and bool(digest) and hmac.compare_digest(expected, digest)


def _basic(header: str) -> tuple[str, str] | None:
    """Client id and secret of an HTTP Basic header (RFC 6749 §2.3.1: each form-urlencoded)."""
    if header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    user, sep, password = decoded.partition(":")
    return (unquote_plus(user), unquote_plus(password)) if sep else ("", "")


def _oauth_error(status: int, error: str, description: str, *, basic: bool = False) -> JSONResponse:
    response = JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )
    if basic:
        response.headers["WWW-Authenticate"] = 'Basic realm="oots"'
    return response


def create_api(requester: Requester, database: Database) -> FastAPI:
    """The portal API application (mount it at ``/api``)."""
    clients = {c.id: c for c in requester.config.clients}
    base_url = requester.settings.node.base_url.rstrip("/")
    cfg = requester.config
    tokens = TokenIssuer(
        token_key(cfg.token_key.get_secret_value() if cfg.token_key else None, requester.settings.node.data_dir),
        issuer=base_url,
        lifetime_seconds=cfg.token_lifetime_seconds,
        clock=lambda: requester.clock().timestamp(),
    )
    api = FastAPI(
        title="oots evidence requester — portal API",
        version="1",
        description=__doc__ or "",
        openapi_url="/openapi.json",
        docs_url=None,  # our own page below: FastAPI's loads Swagger UI from a CDN
        redoc_url=None,
    )
    api.add_middleware(_ServerError)  # innermost: inside the body limit and no-store
    api.add_middleware(_BodyLimit, limit=MAX_BODY_BYTES)
    api.add_middleware(_NoStore)

    # The dependencies are coroutines: FastAPI runs a plain function in a worker thread, a hop per
    # dependency and request that costs more than the few microseconds of work (a hash, an HMAC).
    async def caller(request: Request) -> _Caller:
        auth = request.headers.get("authorization", "")
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("x-api-key", "")
        digest = _sha256(key)
        found = None
        for client in clients.values():
            if _same(client.api_key_sha256, digest):
                found = client
        if found is not None:
            return _Caller(found.id, frozenset(found.scopes))
        if key.count(".") == 2:  # an access token of ours?
            try:
                grant = tokens.verify(key)
            except SecurityError as exc:
                raise _UnauthorisedError(exc.message, token=True) from None
            holder = clients.get(grant.client_id)
            if holder is None or not holder.client_secret_sha256:  # the client was removed since
                raise _UnauthorisedError("the token's client is no longer registered", token=True)
            return _Caller(holder.id, grant.scopes & frozenset(holder.scopes))
        raise _UnauthorisedError("a valid API key or access token is needed (Authorization: Bearer <key>)")

    identified = Depends(caller)

    async def reader(who: _Caller = identified) -> str:
        if "exchanges:read" not in who.scopes:
            raise _ForbiddenError("exchanges:read")
        return who.client

    async def writer(who: _Caller = identified) -> str:
        if "exchanges:write" not in who.scopes:
            raise _ForbiddenError("exchanges:write")
        return who.client

    authenticated = Depends(reader)
    allowed_to_write = Depends(writer)

    @api.exception_handler(_UnauthorisedError)
    async def _unauthorised(request: Request, exc: _UnauthorisedError) -> JSONResponse:
        challenge = 'Bearer error="invalid_token"' if exc.token else "Bearer"
        return _problem(401, "Unauthorised", exc.detail, headers={"WWW-Authenticate": challenge})

    @api.exception_handler(_ForbiddenError)
    async def _forbidden(request: Request, exc: _ForbiddenError) -> JSONResponse:
        challenge = f'Bearer error="insufficient_scope", scope="{exc.scope}"'
        return _problem(
            403, "Forbidden", f"the call needs the scope {exc.scope}", headers={"WWW-Authenticate": challenge}
        )

    @api.post(
        "/v1/oauth/token",
        response_model=TokenOut,
        summary="Get an access token (OAuth2 client credentials)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "required": ["grant_type"],
                            "properties": {
                                "grant_type": {"type": "string", "enum": ["client_credentials"]},
                                "scope": {"type": "string", "description": "Space-separated: " + " ".join(SCOPES)},
                                "client_id": {"type": "string", "description": "Unless given by HTTP Basic."},
                                "client_secret": {"type": "string", "description": "Unless given by HTTP Basic."},
                            },
                        }
                    }
                },
            },
            "responses": {
                "400": {"description": "invalid_request, unsupported_grant_type or invalid_scope (RFC 6749 §5.2)"},
                "401": {"description": "invalid_client"},
            },
        },
    )
    async def token(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > 4096 or not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return _oauth_error(400, "invalid_request", "send a form (application/x-www-form-urlencoded), at most 4 KB")
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            return _oauth_error(400, "invalid_request", "the form is not UTF-8 form-urlencoded")
        if any(len(v) > 1 for v in form.values()):
            return _oauth_error(400, "invalid_request", "a parameter is repeated")
        fields = {k: v[0] for k, v in form.items()}
        basic = _basic(request.headers.get("authorization", ""))
        if basic is not None and ("client_id" in fields or "client_secret" in fields):
            return _oauth_error(400, "invalid_request", "use one way of client authentication, not two")
        client_id, secret = (
            basic if basic is not None else (fields.get("client_id", ""), fields.get("client_secret", ""))
        )
        client = clients.get(client_id)
        if client is None or not _same(client.client_secret_sha256, _sha256(secret)):
            return _oauth_error(401, "invalid_client", "unknown client or wrong secret", basic=basic is not None)
        if "grant_type" not in fields:
            return _oauth_error(400, "invalid_request", "grant_type is missing")
        if fields["grant_type"] != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "only grant_type=client_credentials is supported")
        try:
            scopes = parse_scope(fields.get("scope"), client.scopes)
        except SecurityError as exc:
            return _oauth_error(400, "invalid_scope", exc.message)
        access, lifetime = tokens.issue(client.id, scopes)
        out = TokenOut(
            access_token=access,
            token_type="Bearer",  # noqa: S106 - the token type's name, not a secret
            expires_in=lifetime,
            scope=" ".join(sorted(scopes)),
        )
        return JSONResponse(out.model_dump(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    @api.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return _problem(404, "Not found", exc.message, exc.error_id)

    @api.exception_handler(LocalProtocolError)
    async def _conflict(request: Request, exc: LocalProtocolError) -> JSONResponse:
        return _problem(409, "Not possible in this state", exc.message, exc.error_id)

    @api.exception_handler(ModelError)
    async def _invalid(request: Request, exc: ModelError) -> JSONResponse:
        return _problem(422, "Invalid input", exc.message, exc.error_id)

    @api.exception_handler(StoreError)
    @api.exception_handler(ConfigError)
    @api.exception_handler(TransportError)
    @api.exception_handler(DBAPIError)
    async def _failure(request: Request, exc: Exception) -> JSONResponse:
        return _failure_answer(exc)

    @api.exception_handler(OotsError)
    async def _other(request: Request, exc: OotsError) -> JSONResponse:
        return _problem(400, "Request failed", exc.message, exc.error_id, cause=exc)

    @api.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
                "message": str(e.get("msg", "invalid")),
            }
            for e in exc.errors()
        ] or [{"field": "", "message": "invalid"}]
        detail = f"{errors[0]['field']}: {errors[0]['message']}".strip(": ")
        if len(errors) > 1:
            detail += f" (and {len(errors) - 1} more: see errors)"
        return _problem(422, "Invalid input", detail, errors=errors)

    @api.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            detail = "the API has no such address; its calls are listed at /api/openapi.json"
        elif exc.status_code == 405:
            # every route of the address (Starlette names only the first one's methods)
            taken = {
                method
                for route in api.router.routes
                if isinstance(route, APIRoute) and route.matches(request.scope)[0] is not Match.NONE
                for method in route.methods or ()
            }
            headers["Allow"] = ", ".join(sorted(taken)) or headers.get("Allow", "")
            detail = f"this address does not take {request.method}; it takes {headers['Allow']}"
        else:
            detail = str(exc.detail)
        return _problem(
            exc.status_code, _TITLES.get(exc.status_code, HTTPStatus(exc.status_code).phrase), detail, headers=headers
        )

    def href(ex_id: str) -> str:
        return f"{base_url}/api/v1/exchanges/{ex_id}"

    def accepted_body(ex_id: str, state: str, version: int) -> dict[str, Any]:
        return Accepted(id=ex_id, state=state, version=version, href=href(ex_id)).model_dump()

    def accepted(ex_id: str, state: str, version: int) -> JSONResponse:
        return JSONResponse(accepted_body(ex_id, state, version), status_code=202, headers={"Location": href(ex_id)})

    def shown(view: dict[str, Any]) -> dict[str, Any]:
        return {"id": view["id"], "href": href(view["id"]), **view}

    def read(exchange_id: str, client: str) -> dict[str, Any]:
        with database.connect() as conn:
            return shown(requester.view(conn, exchange_id, client).to_json(base_url))

    def peek(exchange_id: str, client: str) -> tuple[int, str]:
        with database.connect() as conn:
            return requester.peek(conn, exchange_id, client)

    def stepped(session: Session, ex: ExchangeRecord, client: str, wait: int | None) -> _Stepped:
        view = None
        if wait is not None and ex.state in ACTIONABLE:
            # the portal's turn already (an end, say): the answer is read in the step's own transaction
            view = shown(requester.view(session, ex.id).to_json(base_url))
        return _Stepped(ex.id, client, ex.state, ex.version, view)

    def look(watch: Watch, exchange_id: str, client: str) -> tuple[int, str]:
        """Watch the exchange, then peek at it: a commit in between is not missed (in a worker thread)."""
        watch.key(exchange_id)
        return peek(exchange_id, client)

    def settled(step: _Stepped, wait: int | None, watch: Watch) -> _Stepped:
        """After the step's commit, in its thread: the portal waits, so watch the exchange and peek at it
        there (the wait then begins without a thread hop of its own)."""
        if wait is None or step.view is not None:
            return step
        version, state = look(watch, step.id, step.client)
        return replace(step, version=version, state=state)

    async def answer(step: _Stepped, wait: int | None, watch: Watch, *, location: bool = False) -> JSONResponse:
        """202 with the exchange's id, state and version; with ``Prefer: wait``, the exchange once the portal
        acts on it (200) or as it is after ``wait`` seconds (202). ``watch`` is the step's (see ``settled``)."""
        if wait is None:
            return accepted(step.id, step.state, step.version)
        view, ready = (
            (step.view, True)
            if step.view is not None
            else await waited(step.id, step.client, None, True, wait, watch=watch, begun=(step.version, step.state))
        )
        if view is None:
            view = await run_in_thread(read, step.id, step.client)
        headers = {"Preference-Applied": f"wait={wait}"}
        if location:
            headers["Location"] = href(step.id)
        return JSONResponse(view, status_code=200 if ready else 202, headers=headers)

    async def step_answered(
        request: Request,
        client: str,
        write: Callable[[Session], ExchangeRecord],
        *,
        first: Callable[[], None] | None = None,
        exchange_id: str | None = None,
        location: bool = False,
    ) -> JSONResponse:
        """Run a step (``write``, in a write transaction; ``first``, if given, before it: the work that
        needs no write) in a worker thread and answer as :func:`answer` does, honouring ``Prefer: wait``.

        A step of a known exchange (``exchange_id``) that waits watches it before its write, its own
        commit muted: the wait then begins from the version and state the step left, with no read of
        them after the commit (a commit of another thread or process after the step's still wakes it)."""
        wait = _wait_preference(request.headers.getlist("prefer"))

        def step(watch: Watch) -> _Stepped:
            if first is not None:
                first()
            if wait is not None and exchange_id is not None:
                watch.key(exchange_id)
                with watch.own_commits(), database.session(immediate=True) as session:
                    return stepped(session, write(session), client, wait)
            with database.session(immediate=True) as session:
                done = stepped(session, write(session), client, wait)
            return settled(done, wait, watch)

        with changes.watching() as watch:
            return await answer(await run_in_thread(step, watch), wait, watch, location=location)

    stepped_with_prefer: dict[str, Any] = {"parameters": [_PREFER_HEADER]}
    waited_answer: dict[int | str, dict[str, Any]] = {
        200: {
            "model": ExchangeOut,
            "description": "Sent with Prefer: wait: the exchange, in a state the portal acts on.",
            "headers": {"Preference-Applied": _PREFERENCE_APPLIED},
        },
        202: {
            "description": "Accepted (sent with Prefer: wait: the exchange as it is after the wait, an ExchangeOut).",
            "headers": {"Preference-Applied": _PREFERENCE_APPLIED},
        },
    }
    #: What the start's answers (200, 202) carry besides: its address and, for a start sent again, the replay.
    started_answer = {
        status: {**answer, "headers": {**answer["headers"], **_STARTED_HEADERS}}
        for status, answer in waited_answer.items()
    }

    @api.post(
        "/v1/exchanges",
        status_code=202,
        response_model=Accepted,
        summary="Start an exchange",
        openapi_extra=stepped_with_prefer,
        responses={**started_answer, **_errors(401, 403, 413, 422)},
    )
    async def create_exchange(
        request: Request,
        body: ExchangeIn,
        client: str = allowed_to_write,
        idempotency_key: Annotated[
            str | None,
            Header(
                description="Any string of yours (1 to 255 printable ASCII characters, a UUID say), new for each "
                "exchange: the same start sent again with it within 24 hours answers the exchange it made "
                "(with Idempotent-Replayed: true) instead of making another; with another body, 422."
            ),
        ] = None,
    ) -> JSONResponse:
        subject = subject_from_json(body.person)
        key = None if idempotency_key is None else idempotency.check_key(idempotency_key)
        digest = idempotency.body_digest(body.model_dump(mode="json")) if key is not None else ""
        discovered: Discovered | None = None

        def discover() -> None:
            # A portal that waits for its turn (Prefer: wait) gets discovery done in the start's own transaction
            # when the answers it needs are the Common Services' answers the node holds (no network I/O):
            # worked out here, before the write transaction. Otherwise it runs as its queue job.
            nonlocal discovered
            discovered = requester.discover_cached(
                procedure=body.procedure, country=body.country, requirements=body.requirements
            )

        def create(session: Session) -> ExchangeRecord:
            now = requester.clock()
            if key is not None:
                seen = idempotency.find(session.connection(), client, key, digest, now)
                if seen is not None:
                    raise _ReplayedError(seen)
            ex = requester.create(
                session,
                client_id=client,
                procedure=body.procedure,
                country=body.country,
                subject=subject,
                requirements=body.requirements,
                return_url=body.return_url,
                preview=body.preview,
                discovered=discovered,
            )
            if key is not None:
                first = idempotency.Remembered(ex.id, 202, accepted_body(ex.id, ex.state, ex.version))
                idempotency.remember(session.connection(), client, key, digest, now=now, done=first)
            return ex

        try:
            waits = bool(_wait_preference(request.headers.getlist("prefer")))
            return await step_answered(request, client, create, first=discover if waits else None, location=True)
        except _ReplayedError as replay:
            return await replayed(request, client, replay.seen)
        except (IntegrityError, idempotency.KeyInUse):
            # the same key in two starts at once (PostgreSQL): the other one committed first
            if key is None:
                raise
            seen = await run_in_thread(remembered, client, key, digest)
            if seen is None:
                raise
            return await replayed(request, client, seen)

    def remembered(client: str, key: str, digest: str) -> idempotency.Remembered | None:
        with database.connect() as conn:
            return idempotency.find(conn, client, key, digest, requester.clock())

    async def replayed(request: Request, client: str, seen: idempotency.Remembered) -> JSONResponse:
        """The start's answer again; sent with ``Prefer: wait``, the wait is on the exchange it made."""
        wait = _wait_preference(request.headers.getlist("prefer"))
        if wait is None:
            response = JSONResponse(seen.answer, status_code=seen.status, headers={"Location": href(seen.exchange_id)})
        else:
            begun = _Stepped(seen.exchange_id, client, "", 0)
            with changes.watching() as watch:
                response = await answer(await run_in_thread(settled, begun, wait, watch), wait, watch, location=True)
        response.headers["Idempotent-Replayed"] = "true"
        return response

    @api.get(
        "/v1/exchanges",
        summary="List the client's exchanges",
        response_model=None,
        responses={
            200: {"model": ExchangeListOut, "description": "A page of the client's exchanges, newest first."},
            **_errors(401, 403, 422),
        },
    )
    async def list_exchanges(
        client: str = authenticated,
        state: Annotated[State | None, Query(description="Only the exchanges in this state.")] = None,
        limit: Annotated[
            int, Query(ge=1, le=LIST_LIMIT_MAX, description=f"At most this many (at most {LIST_LIMIT_MAX}).")
        ] = LIST_LIMIT_DEFAULT,
        cursor: Annotated[
            str | None, Query(max_length=1000, description="next_cursor of the page before: the page after it.")
        ] = None,
    ) -> JSONResponse:
        after = None if cursor is None else _after(cursor)

        def listed() -> list[dict[str, Any]]:
            with database.connect() as conn:
                return requester.listing(conn, client, state=state, limit=limit + 1, after=after)

        rows = await run_in_thread(listed)
        page = [{"id": row["id"], "href": href(row["id"]), **row} for row in rows[:limit]]
        following = _cursor(page[-1]["created_at"], page[-1]["id"]) if len(rows) > limit else None
        query: dict[str, Any] = {"limit": limit, "cursor": following}
        if state is not None:
            query["state"] = state.value
        return JSONResponse(
            {
                "exchanges": page,
                "next_cursor": following,
                "next": f"{base_url}/api/v1/exchanges?{urlencode(query)}" if following else None,
            }
        )

    @api.get(
        "/v1/exchanges/{exchange_id}",
        summary="Read an exchange",
        response_model=None,
        responses={200: {"model": ExchangeOut, "description": "The exchange."}, **_errors(401, 403, 404, 422)},
    )
    async def read_exchange(
        exchange_id: str,
        client: str = authenticated,
        version_after: Annotated[
            int | None,
            Query(ge=0, description="Wait until the exchange's version is above this one (long polling)."),
        ] = None,
        until: Annotated[
            Literal["change", "actionable"],
            Query(
                description="actionable: wait (also) until the exchange is in a state the portal acts on "
                "(awaiting_user_choice, awaiting_explicit_request, awaiting_preview, completed, failed, expired)."
            ),
        ] = "change",
        wait: Annotated[
            float, Query(gt=0, le=_MAX_WAIT_SECONDS, description="Seconds to wait at most (version_after, until).")
        ] = 20.0,
    ) -> JSONResponse:
        actionable = until == "actionable"
        if version_after is not None or actionable:
            seen, _ = await waited(exchange_id, client, version_after, actionable, wait)
            if seen is not None:
                return JSONResponse(seen)
        return JSONResponse(await run_in_thread(read, exchange_id, client))

    changes = topic(CHANGED_TOPIC)

    def versions(exchange_ids: Collection[str]) -> dict[str, int]:
        with database.connect() as conn:
            return requester.versions(conn, exchange_ids)

    watched = _Watched(versions, changes, _LOOK_SECONDS)

    async def waited(
        exchange_id: str,
        client: str,
        after: int | None,
        actionable: bool,
        wait: float,
        *,
        watch: Watch | None = None,
        begun: tuple[int, str] | None = None,
    ) -> tuple[dict[str, Any] | None, bool]:
        """Wait until the exchange's version is above ``after`` (None: any) and, if ``actionable``, its state
        one the portal acts on, or ``wait`` seconds: whether it is so, with the exchange when it was read
        (None: the caller reads it). A step passes its ``watch``, already on the exchange, and the version
        and state it peeked at after that (``begun``)."""
        # The commit that changes the exchange wakes this wait at once, in whichever process of the node
        # it is made (oots.store.wake relays the others'); changes no wake-up reports (an in-memory or
        # non-Linux SQLite database shared by processes) are found by the shared look (_Watched). Woken,
        # it reads the whole exchange at once (the usual case: it did change), not its version first.
        deadline = time.monotonic() + wait
        seen: dict[str, Any] | None = None
        pause = _LOOK_SECONDS
        # watch before reading: a commit in between is not missed (a step did both in its own thread)
        with (
            nullcontext(watch) if watch is not None else changes.watching() as watching,
            watched.watch(exchange_id) as saw,
        ):
            changed = watching.flag
            version, state = begun if begun is not None else await run_in_thread(look, watching, exchange_id, client)
            while True:
                if _ready(version, state, after, actionable):
                    return seen, True
                saw(version)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return seen, False
                if await wait_for(changed, min(remaining, pause)):
                    seen = await run_in_thread(read, exchange_id, client)
                    version, state = int(seen["version"]), str(seen["state"])
                else:
                    await watched.look()  # a change it finds sets `changed`
                    pause = min(pause * 2, _LOOK_MAX_SECONDS)

    @api.post(
        "/v1/exchanges/{exchange_id}/choices",
        status_code=202,
        response_model=Accepted,
        summary="Choose",
        openapi_extra=stepped_with_prefer,
        responses={**waited_answer, **_errors(401, 403, 404, 409, 413, 422)},
    )
    async def choose(
        request: Request, exchange_id: str, body: ChoicesIn, client: str = allowed_to_write
    ) -> JSONResponse:
        choices = {k: v.model_dump(exclude_defaults=True) for k, v in body.requirements.items()}

        def choose_now(session: Session) -> ExchangeRecord:
            return requester.choose(session, exchange_id, client, choices)

        return await step_answered(request, client, choose_now, exchange_id=exchange_id)

    @api.post(
        "/v1/exchanges/{exchange_id}/explicit-request",
        status_code=202,
        response_model=Accepted,
        summary="The user gave the explicit request",
        openapi_extra=stepped_with_prefer,
        responses={**waited_answer, **_errors(400, 401, 403, 404, 409, 413)},
    )
    async def explicit_request(request: Request, exchange_id: str, client: str = allowed_to_write) -> JSONResponse:
        ahead: RequestAhead | None = None

        def make_ahead() -> None:  # the request made and signed before the write transaction, in a read one
            nonlocal ahead
            with database.session() as session:
                ahead = requester.explicit_request_ahead(session, exchange_id, client)

        def give(session: Session) -> ExchangeRecord:
            return requester.give_explicit_request(session, exchange_id, client, ahead=ahead)

        return await step_answered(request, client, give, first=make_ahead, exchange_id=exchange_id)

    @api.post(
        "/v1/exchanges/{exchange_id}/cancel",
        summary="Cancel an exchange",
        response_model=None,
        responses={
            200: {"model": ExchangeOut, "description": "The exchange, ended."},
            **_errors(401, 403, 404, 409, 413),
        },
    )
    async def cancel(exchange_id: str, client: str = allowed_to_write) -> JSONResponse:
        def end() -> dict[str, Any]:
            with database.session(immediate=True) as session:
                requester.cancel(session, exchange_id, client)
                return shown(requester.view(session, exchange_id, client).to_json(base_url))

        return JSONResponse(await run_in_thread(end))

    @api.get(
        "/v1/exchanges/{exchange_id}/evidence",
        summary="List the evidence received",
        response_model=None,
        responses={
            200: {"model": list[EvidenceOut], "description": "The evidence received."},
            **_errors(401, 403, 404),
        },
    )
    async def list_evidence(exchange_id: str, client: str = authenticated) -> JSONResponse:
        def listed() -> list[dict[str, Any]]:
            with database.connect() as conn:
                evidence: list[dict[str, Any]] = requester.view(conn, exchange_id, client).to_json(base_url)["evidence"]
                return evidence

        return JSONResponse(await run_in_thread(listed))

    @api.get(
        "/v1/exchanges/{exchange_id}/evidence/{evidence_row}",
        summary="Download one evidence",
        response_class=Response,
        responses=_errors(401, 403, 404, 422),
    )
    async def download(exchange_id: str, evidence_row: int, client: str = authenticated) -> Response:
        def load() -> Response:
            with database.connect() as conn:
                ev = requester.evidence(conn, exchange_id, evidence_row, client)
                suffix = {"application/pdf": "pdf", "application/xml": "xml", "application/json": "json"}
                name = f"evidence-{ev.id}.{suffix.get(ev.media_type, 'bin')}"
                return Response(
                    ev.content,
                    media_type=ev.media_type,
                    headers={
                        "Content-Disposition": f'attachment; filename="{name}"',
                        "X-Content-Type-Options": "nosniff",
                        "Cache-Control": "no-store",  # personal data: kept by no cache on the way
                    },
                )

        return await run_in_thread(load)

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = get_openapi(title=api.title, version=api.version, description=api.description, routes=api.routes)
            schema.setdefault("components", {})["securitySchemes"] = {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "The portal's API key."},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "oauth2": {
                    "type": "oauth2",
                    "description": "Client credentials grant; the token goes in Authorization: Bearer.",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": f"{base_url}/api/v1/oauth/token",
                            "scopes": {
                                "exchanges:read": "read exchanges and download their evidence",
                                "exchanges:write": "start exchanges, choose, give the explicit request, cancel",
                            },
                        }
                    },
                },
            }
            schemas = schema["components"].setdefault("schemas", {})
            problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(problem.pop("$defs", {}))
            schemas["Problem"] = problem
            # FastAPI's own 422 (HTTPValidationError) where an operation declares none: its input cannot fail
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    unprocessable = operation.get("responses", {}).get("422", {})
                    if "HTTPValidationError" in json.dumps(unprocessable):
                        del operation["responses"]["422"]
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            for path, operations in schema.get("paths", {}).items():
                if path.endswith("/oauth/token"):
                    continue
                for operation in operations.values():
                    scope = "exchanges:read" if operation is operations.get("get") else "exchanges:write"
                    operation["security"] = [{"apiKey": []}, {"apiKeyHeader": []}, {"oauth2": [scope]}]
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]

    reference: list[str] = []

    @api.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        """The reference page, built once from the OpenAPI document; it loads nothing from elsewhere."""
        if not reference:
            reference.append(reference_html(api.openapi(), openapi_url="openapi.json"))
        return HTMLResponse(
            reference[0],
            headers={
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return api


@dataclass(frozen=True)
class _Stepped:
    """An exchange after a step of the portal: its state, and its view when the portal waits for its turn."""

    id: str
    client: str
    state: str
    version: int
    view: dict[str, Any] | None = None


class _Watched:
    """The exchanges that waiting calls watch, with the version each call saw last.

    Changes other processes of a node make on SQLite wake no call here (oots.store.wake), so the waiting
    calls look for them together: whichever call's timer runs out first reads the versions of every
    watched exchange in one statement — at most once per ``interval`` for the whole process — and fires
    the change topic for each exchange that moved past a version a call saw; the woken calls read it.
    """

    def __init__(self, versions: Callable[[Collection[str]], dict[str, int]], changes: Topic, interval: float) -> None:
        self._versions = versions
        self._changes = changes
        self._interval = interval
        self._lock = threading.Lock()
        self._seen: dict[str, Counter[int]] = {}
        self._looked = 0.0
        self._looking = False

    @contextmanager
    def watch(self, exchange_id: str) -> Iterator[Callable[[int], None]]:
        """Watch an exchange while the block runs; call the function given with each version seen."""
        last: int | None = None

        def saw(version: int) -> None:
            nonlocal last
            with self._lock:
                self._forget(exchange_id, last)
                self._seen.setdefault(exchange_id, Counter())[version] += 1
            last = version

        try:
            yield saw
        finally:
            with self._lock:
                self._forget(exchange_id, last)

    def _forget(self, exchange_id: str, version: int | None) -> None:
        if version is None:
            return
        seen = self._seen[exchange_id]
        seen[version] -= 1
        if seen[version] <= 0:
            del seen[version]
        if not seen:
            del self._seen[exchange_id]

    async def look(self) -> None:
        """Read the watched exchanges' versions, unless another call did less than ``interval`` ago."""
        with self._lock:
            if self._looking or time.monotonic() - self._looked < self._interval or not self._seen:
                return
            self._looking = True
            oldest = {exchange_id: min(seen) for exchange_id, seen in self._seen.items()}
        try:
            now = await run_in_thread(self._versions, list(oldest))
        finally:
            with self._lock:
                self._looking = False
                self._looked = time.monotonic()
        # an exchange gone (or moved on) wakes its calls: they read it again and answer
        moved = [exchange_id for exchange_id, version in oldest.items() if now.get(exchange_id) != version]
        if moved:
            self._changes.fire(moved)


class _ReplayedError(Exception):
    """A start sent again with its Idempotency-Key: nothing is made, the first answer is given."""

    def __init__(self, seen: idempotency.Remembered) -> None:
        super().__init__(seen.exchange_id)
        self.seen = seen


class _UnauthorisedError(Exception):
    def __init__(self, detail: str, *, token: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.token = token


class _ForbiddenError(Exception):
    def __init__(self, scope: str) -> None:
        super().__init__(scope)
        self.scope = scope
