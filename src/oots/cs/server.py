"""The Evidence Broker and Data Service Directory as RegRep REST query services (an ASGI app).

``GET /rest/search?queryId=...`` answers the three queries (``/eb/rest/search`` and
``/dsd/rest/search`` answer only their own registry's); ``GET /health`` tells whether the service is
up and what its catalogue holds. The ``Accept-Version`` header chooses the API: ``oots-cs:v2.0``
gets the v2.0 answer, signed (``digest`` + ``oots-response-sig``) when a signer is configured;
anything else gets the 1.x answer (``oots-edm:v1.0`` profile). As in the Commission's services the
HTTP status is 200 for every RegRep answer, errors included: read ``@status``.

Answers are pure functions of (catalogue, query, version), so bodies are kept in a bounded LRU cache
keyed by the parsed query; only the signature is made per request (it carries the time).
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from threading import Lock

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oots import edm
from oots.cs import answers, repository
from oots.cs.catalogue import Catalogue
from oots.cs.datafile import load_catalogue
from oots.cs.jades import AnswerSigner
from oots.cs.keys import load_signer
from oots.cs.queries import (
    DataServicesQuery,
    EvidenceTypesQuery,
    Query,
    QueryFailure,
    RequirementsQuery,
    Service,
    parse_query,
)
from oots.errors import ConfigError
from oots.mediatypes import REGREP_MIME_TYPE
from oots.settings import Settings, load_settings
from oots.store import Database, open_database

__all__ = [
    "CONTENT_TYPE",
    "MAX_QUERY_STRING",
    "SERVICE_NAME",
    "AnswerCache",
    "StoredCatalogue",
    "answer",
    "app_factory",
    "create_app",
    "create_app_from_settings",
    "store_catalogue_file",
    "version_of",
]

#: The media type of the answers (RegRep REST binding).
CONTENT_TYPE = REGREP_MIME_TYPE
#: What ``/health`` calls this service (``oots demo`` checks it is its own process that answers).
SERVICE_NAME = "oots common services"
#: Longest query string looked at; longer ones get the registry's bad-parameters error.
MAX_QUERY_STRING = 8192

log = logging.getLogger("oots.cs.server")


def version_of(accept_version: str | None) -> edm.Version:
    """The answer version for an ``Accept-Version`` header (2.0 when asked for, else the 1.x API)."""
    if accept_version and accept_version.strip().lower().startswith("oots-cs:v2"):
        return answers.V2
    return answers.V1


def answer(catalogue: Catalogue, query: Query, version: edm.Version) -> bytes:
    """The answer body for a parsed query: a result or the registry's error."""
    try:
        if isinstance(query, RequirementsQuery):
            return answers.requirements_answer(catalogue.find_requirements(query), version)
        if isinstance(query, EvidenceTypesQuery):
            return answers.evidence_types_answer(catalogue.find_evidence_types(query), catalogue, version)
        assert isinstance(query, DataServicesQuery)
        return answers.data_service_answer(catalogue.find_data_services(query), version)
    except QueryFailure as failure:
        return answers.error_answer(failure, version)


@dataclass
class AnswerCache:
    """A bounded LRU cache of answer bodies (thread-safe; answers are deterministic)."""

    size: int = 2048
    _data: OrderedDict[object, bytes] = field(default_factory=OrderedDict)
    _lock: Lock = field(default_factory=Lock)

    def get(self, key: object, make: Callable[[], bytes]) -> bytes:
        with self._lock:
            body = self._data.get(key)
            if body is not None:
                self._data.move_to_end(key)
                return body
        body = make()
        if self.size:
            with self._lock:
                self._data[key] = body
                while len(self._data) > self.size:
                    self._data.popitem(last=False)
        return body

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def create_app(
    catalogue: Catalogue | Callable[[], Catalogue],
    signer: AnswerSigner | None = None,
    *,
    cache_size: int = 2048,
) -> Starlette:
    """The Common Services ASGI app over ``catalogue`` (or a callable returning the current snapshot)."""
    current: Callable[[], Catalogue] = catalogue if callable(catalogue) else (lambda: catalogue)
    cache = AnswerCache(cache_size)
    seen: list[Catalogue] = []

    def snapshot() -> Catalogue:
        cat = current()
        if not seen or seen[0] is not cat:
            cache.clear()
            seen[:] = [cat]
        return cat

    def search(service: Service | None) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            version = version_of(request.headers.get("accept-version"))
            cat = snapshot()
            raw = request.scope.get("query_string", b"")
            fallback = service or Service.EB
            if len(raw) > MAX_QUERY_STRING:
                failure = QueryFailure(fallback.bad_parameters, "query", "the query string is too long")
                key: object = ("too-long", fallback, version)
                body = cache.get(key, lambda: answers.error_answer(failure, version))
            else:
                try:
                    query = parse_query(service, request.query_params.multi_items())
                except QueryFailure as failure:
                    body = answers.error_answer(failure, version)
                else:
                    body = cache.get((query, version), lambda: answer(cat, query, version))
            headers = {"content-type": CONTENT_TYPE}
            if version is answers.V2 and signer is not None:
                headers.update(signer.headers(body))
            return Response(body, status_code=200, headers=headers)

        return endpoint

    async def health(request: Request) -> JSONResponse:
        cat = snapshot()
        return JSONResponse(
            {
                "status": "ok",
                "service": SERVICE_NAME,
                "signed": signer is not None,
                "catalogue": {
                    "procedures": len(cat.procedures),
                    "requirements": len(cat.requirements),
                    "evidence_types": len(cat.evidence_types),
                    "evidence_type_lists": len(cat.evidence_type_lists),
                    "data_services": len(cat.data_services),
                },
            }
        )

    routes = [
        Route("/rest/search", search(None), methods=["GET"]),
        Route("/eb/rest/search", search(Service.EB), methods=["GET"]),
        Route("/dsd/rest/search", search(Service.DSD), methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/favicon.ico", _no_icon, methods=["GET"]),
    ]
    return Starlette(routes=routes)


async def _no_icon(request: Request) -> Response:
    """No icon, but no 404 either when a browser shows an answer (cached for a day)."""
    return Response(status_code=204, headers={"cache-control": "public, max-age=86400"})


class StoredCatalogue:
    """The catalogue snapshot of a database, reloaded when its revision changes (checked every few seconds)."""

    def __init__(self, db: Database, *, refresh_seconds: float = 5.0) -> None:
        self.db = db
        self.refresh_seconds = refresh_seconds
        self._checked = float("-inf")
        self._revision = -1
        self._catalogue = Catalogue()
        self._lock = Lock()

    def __call__(self) -> Catalogue:
        now = time.monotonic()
        if now - self._checked < self.refresh_seconds:
            return self._catalogue
        with self._lock:
            if now - self._checked >= self.refresh_seconds:
                with self.db.session() as session:
                    current = repository.revision(session)
                    if current != self._revision:
                        self._catalogue = repository.load_catalogue(session)
                        self._revision = current
                self._checked = now
        return self._catalogue


def store_catalogue_file(settings: Settings) -> int:
    """Load ``common_services.catalogue_file`` into the node's database; return the new revision."""
    cs = settings.common_services
    if cs.catalogue_file is None:
        raise ConfigError("common_services.catalogue_file: no catalogue file to load")
    catalogue = load_catalogue(cs.catalogue_file)
    db = open_database(settings)
    try:
        with db.session(immediate=True) as session:
            return repository.save_catalogue(session, catalogue)
    finally:
        db.dispose()


def create_app_from_settings(settings: Settings) -> Starlette:
    """The app of a node's settings: the catalogue in its database, the signing key of ``[common_services]``.

    A database that holds no catalogue yet is filled from ``common_services.catalogue_file``.
    """
    cs = settings.common_services
    signer = None
    if cs.signing_key_file is not None or cs.signing_chain_file is not None:
        if cs.signing_key_file is None or cs.signing_chain_file is None:
            raise ConfigError("common_services: give both signing_key_file and signing_chain_file")
        signer = load_signer(cs.signing_key_file, cs.signing_chain_file)
    db = open_database(settings)
    with db.session() as session:
        empty = repository.revision(session) == 0
    if empty:
        if cs.catalogue_file is None:
            raise ConfigError("common_services.catalogue_file: the database holds no catalogue yet")
        with db.session(immediate=True) as session:
            if repository.revision(session) == 0:
                repository.save_catalogue(session, load_catalogue(cs.catalogue_file))
    return create_app(StoredCatalogue(db), signer)


def app_factory() -> Starlette:
    """For ``uvicorn --factory oots.cs.server:app_factory``: settings from ``$OOTS_CONFIG`` and ``OOTS_*``."""
    return create_app_from_settings(load_settings(os.environ.get("OOTS_CONFIG") or None))
