"""A verifying client of the Evidence Broker and the Data Service Directory.

:class:`CommonServicesClient` asks the three queries and returns ``oots.edm`` objects. Every answer
goes through the same steps: HTTP GET → signature, digest and chain checked against the configured
roots (an unsigned, tampered or untrusted answer raises :class:`~oots.errors.SecurityError`) →
parsed with the hardened parser into the model → a RegRep error becomes :class:`RegistryError`
(:class:`AdditionalInputRequired` for ``DSD:ERR:0005``, carrying what to ask the user) → checked
against the question (a genuine answer to another question, replayed, is refused). Network failures,
unexpected HTTP statuses and answers to another question are :class:`RegistryError` too, so a caller
handles one error type for "the registry did not give an answer". Successful answers are kept for
``cache_ttl`` seconds, and so are the DSD's questions (``DSD:ERR:0005``), which depend on the query
alone. Base URLs come from settings or from DNS NAPTR (:mod:`oots.cs.discovery`).
:class:`AsyncCommonServicesClient` is the same client for asyncio code (a web portal).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from threading import Lock
from typing import Any, Concatenate, Generic, NotRequired, ParamSpec, TypedDict, TypeVar, Unpack

import httpx

from oots import edm
from oots.cs.discovery import Resolver, discover
from oots.cs.jades import DEFAULT_CLOCK_SKEW, DEFAULT_MAX_AGE, verify_answer
from oots.cs.queries import DSD_DATA_SERVICES, EB_EVIDENCE_TYPES, EB_REQUIREMENTS
from oots.cs.trust import TrustStore, commission_roots
from oots.errors import ConfigError, ModelError, RemoteProtocolError, XmlError
from oots.mediatypes import REGREP_MIME_TYPE

__all__ = [
    "AdditionalInputRequired",
    "AsyncCommonServicesClient",
    "ClientCore",
    "CommonServicesClient",
    "Query",
    "RegistryError",
]

#: Largest answer accepted.
MAX_ANSWER_BYTES = 10 * 1024 * 1024
#: The DSD's error code for "ask the user first" (a jurisdiction or classification values).
QUESTION = "DSD:ERR:0005"


class RegistryError(RemoteProtocolError):
    """The registry gave no usable answer: a RegRep error (``code``), an HTTP status or a network failure."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        detail: str | None = None,
        http_status: int | None = None,
        answer: edm.CommonServicesError | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.detail = detail
        self.http_status = http_status
        self.answer = answer


class AdditionalInputRequired(RegistryError):
    """``DSD:ERR:0005``: ask the user, then repeat the query with the jurisdiction and/or classification values."""

    @property
    def data_service_evidence_type(self) -> edm.DataServiceEvidenceType | None:
        return self.answer.data_service_evidence_type if self.answer else None

    @property
    def jurisdiction_determination(self) -> edm.JurisdictionDetermination | None:
        return self.answer.jurisdiction_determination if self.answer else None

    @property
    def classification_concepts(self) -> tuple[edm.InformationConcept, ...]:
        return self.answer.user_requested_classification_concepts if self.answer else ()


@dataclass(frozen=True)
class _Entry:
    expires: float
    #: An answer, or a question the DSD asked (``DSD:ERR:0005``): both depend on the query alone.
    document: edm.CommonServicesResponse | edm.CommonServicesError


_T = TypeVar("_T")
_P = ParamSpec("_P")
_Params = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Query(Generic[_T]):
    """One registry query, as the sans-I/O core builds it: where to send it and what to take from the answer."""

    base: str
    params: _Params
    pick: Callable[[edm.CommonServicesResponse], _T]

    @property
    def url(self) -> str:
        return f"{self.base}/rest/search"


class _Options(TypedDict):
    eb_url: str
    dsd_url: str
    trust: TrustStore | None
    version: NotRequired[edm.Version]
    require_signature: NotRequired[bool]
    cache_ttl: NotRequired[float]
    clock: NotRequired[Callable[[], float]]
    max_age: NotRequired[float]
    clock_skew: NotRequired[float]


def _requirements(document: edm.CommonServicesResponse) -> tuple[edm.Requirement, ...]:
    return document.requirements


def _one_requirement(document: edm.CommonServicesResponse) -> edm.Requirement:
    found = document.requirements
    if len(found) != 1:
        raise RegistryError(f"the Evidence Broker answered with {len(found)} requirements instead of one")
    return found[0]


def _data_services(document: edm.CommonServicesResponse) -> tuple[edm.DataServiceEvidenceType, ...]:
    return document.data_service_evidence_types


# -- is the answer about the question? A signed answer proves who wrote it, not what it answers: a genuine
# answer to another question (another country's providers, another requirement) must not be used.

#: The Semantic Repository's domain before and since late 2023; either spelling names the same thing.
_SR_OLD = "https://sr.oots.tech.europa.eu/"
_SR_NEW = "https://sr.oots.tech.ec.europa.eu/"


def _same_url(a: str, b: str) -> bool:
    def canonical(url: str) -> str:
        url = url.strip()
        return _SR_NEW + url[len(_SR_OLD) :] if url.startswith(_SR_OLD) else url

    return canonical(a) == canonical(b)


def _country_of(jurisdictions: tuple[edm.Jurisdiction, ...]) -> set[str]:
    return {j.admin_unit_level_1.upper() for j in jurisdictions}


def _not_asked(what: str) -> RegistryError:
    return RegistryError(f"the registry answered another question than the one asked: {what}", code="answer-mismatch")


def _check_requirements(asked: Mapping[str, str], requirements: tuple[edm.Requirement, ...]) -> None:
    country = asked.get("country-code", "").upper()
    procedure = asked.get("procedure-id")
    for req in requirements:
        frameworks = req.reference_frameworks
        if country and any(f.jurisdiction for f in frameworks):
            frameworks = tuple(f for f in frameworks if f.jurisdiction and f.jurisdiction.admin_unit_level_1 == country)
            if not frameworks:
                raise _not_asked(f"requirement {req.identifier} has no procedure in {country}")
        related = {r.identifier for f in frameworks for r in f.related_to}
        if procedure and related and procedure not in related:
            raise _not_asked(f"requirement {req.identifier} is not one of procedure {procedure}")


def _check_evidence_types(asked: Mapping[str, str], requirements: tuple[edm.Requirement, ...]) -> None:
    wanted = asked["requirement-id"]
    country = asked.get("country-code", "").upper()
    for req in requirements:
        if not _same_url(req.identifier, wanted):
            raise _not_asked(f"requirement {req.identifier} instead of {wanted}")
        for etl in req.evidence_type_lists:
            if country and etl.jurisdictions and country not in _country_of(etl.jurisdictions):
                raise _not_asked(f"evidence type list {etl.identifier} is not one of {country}")
            for et in etl.evidence_types:
                if country and et.jurisdictions and country not in _country_of(et.jurisdictions):
                    raise _not_asked(f"evidence type {et.evidence_type_classification} is not one of {country}")


def _check_data_services(asked: Mapping[str, str], found: tuple[edm.DataServiceEvidenceType, ...]) -> None:
    wanted = asked["evidence-type-classification"]
    country = asked["country-code"].upper()
    for dset in found:
        if not _same_url(dset.evidence_type_classification, wanted):
            raise _not_asked(f"evidence type {dset.evidence_type_classification} instead of {wanted}")
        if "evidence-type-id" in asked and dset.identifier != asked["evidence-type-id"]:
            raise _not_asked(f"data service evidence type {dset.identifier} instead of {asked['evidence-type-id']}")
        for service in dset.access_services:
            where = service.publisher.jurisdiction.admin_unit_level_1.upper()
            if where != country:
                provider = service.publisher.identifier.value
                raise _not_asked(f"the evidence provider {provider} is competent in {where}, not in {country}")
            if "specification" in asked and service.conforms_to != asked["specification"]:
                raise _not_asked(f"access service {service.identifier.value} conforms to {service.conforms_to}")


def _check_answer(params: _Params, document: edm.CommonServicesResponse | edm.CommonServicesError) -> None:
    """Raise :class:`RegistryError` (``code="answer-mismatch"``) unless ``document`` answers ``params``."""
    asked = dict(params)
    query_id = asked.get("queryId")
    if isinstance(document, edm.CommonServicesError):
        if query_id == DSD_DATA_SERVICES and document.data_service_evidence_type is not None:
            _check_data_services(asked, (document.data_service_evidence_type,))
        return
    if query_id == EB_REQUIREMENTS:
        _check_requirements(asked, document.requirements)
    elif query_id == EB_EVIDENCE_TYPES:
        _check_evidence_types(asked, document.requirements)
    elif query_id == DSD_DATA_SERVICES:
        _check_data_services(asked, document.data_service_evidence_types)


class ClientCore:
    """The sans-I/O client: builds the queries, keeps the cache and checks every answer.

    The transports (:class:`CommonServicesClient`, :class:`AsyncCommonServicesClient`) only send
    :meth:`request` and give the reply to :meth:`receive`.
    """

    def __init__(
        self,
        *,
        eb_url: str,
        dsd_url: str,
        trust: TrustStore | None,
        version: edm.Version = edm.Version.CS_V2,
        require_signature: bool = True,
        cache_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_age: float = DEFAULT_MAX_AGE.total_seconds(),
        clock_skew: float = DEFAULT_CLOCK_SKEW.total_seconds(),
    ) -> None:
        if version not in (edm.Version.CS_V2, edm.Version.EDM_V1):
            raise ConfigError(f"{version} is not a Common Services API version")
        if (require_signature or version is edm.Version.CS_V2) and trust is None:
            raise ConfigError("verifying answers needs trust roots")
        self.eb_url = eb_url.rstrip("/")
        self.dsd_url = dsd_url.rstrip("/")
        self.trust = trust
        self.version = version
        self.require_signature = require_signature or version is edm.Version.CS_V2
        self.cache_ttl = cache_ttl
        self.max_age = dt.timedelta(seconds=max_age)
        self.clock_skew = dt.timedelta(seconds=clock_skew)
        self._clock = clock
        self._cache: dict[tuple[str, _Params], _Entry] = {}
        self._lock = Lock()

    @staticmethod
    def _settings_arguments(settings: Any, resolver: Resolver | None) -> dict[str, Any]:
        cs = settings.common_services
        env = cs.environment
        if cs.trust_roots:
            trust = TrustStore.from_pem_files([Path(p) for p in cs.trust_roots])
        elif env in ("acc", "prod"):
            trust = commission_roots(env)
        else:
            raise ConfigError("common_services.trust_roots: a local instance needs its trust roots")
        if cs.allowed_signers:
            trust = trust.with_signers(cs.allowed_signers)
        version = edm.Version(cs.accept_version)
        urls = {}
        for registry in ("eb", "dsd"):
            url = getattr(cs, f"{registry}_url")
            if not url:
                if env == "local":
                    raise ConfigError(f"common_services.{registry}_url: a local instance needs its URL")
                url = discover(
                    cs.country or settings.node.country,
                    registry,
                    major=version.major,
                    environment=env,
                    resolver=resolver,
                    allowed_domains=cs.registry_domains,
                )
            urls[registry] = url
        return {
            "eb_url": urls["eb"],
            "dsd_url": urls["dsd"],
            "trust": trust,
            "version": version,
            "require_signature": cs.require_signature,
            "cache_ttl": cs.cache_ttl_seconds,
            "max_age": cs.signature_max_age_seconds,
            "clock_skew": cs.clock_skew_seconds,
            "timeout": cs.timeout_seconds,
        }

    # -- the three queries

    def requirements_query(
        self,
        /,
        *,
        procedure_id: str | None = None,
        country_code: str | None = None,
        jurisdiction_admin_l2: str | None = None,
        jurisdiction_admin_l3: str | None = None,
    ) -> Query[tuple[edm.Requirement, ...]]:
        """EB query 1: the requirements of a procedure (in a country)."""
        values = {
            "procedure-id": procedure_id,
            "country-code": country_code,
            "jurisdiction-admin-l2": jurisdiction_admin_l2,
            "jurisdiction-admin-l3": jurisdiction_admin_l3,
        }
        return Query(self.eb_url, _params(EB_REQUIREMENTS, values), _requirements)

    def evidence_types_query(
        self, /, requirement_id: str, *, country_code: str | None = None
    ) -> Query[edm.Requirement]:
        """EB query 2: the requirement with its evidence type lists (alternatives) in a country."""
        values = {"requirement-id": requirement_id, "country-code": country_code}
        return Query(self.eb_url, _params(EB_EVIDENCE_TYPES, values), _one_requirement)

    def data_services_query(
        self,
        /,
        evidence_type_classification: str,
        country_code: str,
        *,
        jurisdiction_admin_l2: str | None = None,
        jurisdiction_admin_l3: str | None = None,
        jurisdiction_context_id: str | None = None,
        evidence_type_id: str | None = None,
        specification: str | None = None,
        classification_values: Mapping[str, str] | None = None,
    ) -> Query[tuple[edm.DataServiceEvidenceType, ...]]:
        """DSD query: the data services of an evidence type in a country.

        Raises :class:`AdditionalInputRequired` when the user must give a jurisdiction or a
        classification value first.
        """
        values: dict[str, str | None] = {
            "evidence-type-classification": evidence_type_classification,
            "country-code": country_code,
            "jurisdiction-admin-l2": jurisdiction_admin_l2,
            "jurisdiction-admin-l3": jurisdiction_admin_l3,
            "jurisdiction-context-id": jurisdiction_context_id,
            "evidence-type-id": evidence_type_id,
            "specification": specification,
        }
        values.update(dict(classification_values or {}))  # classification answers: <concept id>=<value>
        return Query(self.dsd_url, _params(DSD_DATA_SERVICES, values), _data_services)

    # -- sending and receiving

    @property
    def headers(self) -> dict[str, str]:
        """The request headers of every query."""
        return {"Accept": REGREP_MIME_TYPE, "Accept-Version": self.version.value}

    def cached(self, query: Query[_T]) -> _T | None:
        """The answer to ``query`` while the cache holds it; ``None`` means: send it."""
        with self._lock:
            entry = self._cache.get((query.base, query.params))
            if entry is None or entry.expires <= self._clock():
                return None
        _check_answer(query.params, entry.document)
        if isinstance(entry.document, edm.CommonServicesError):
            raise _refusal(entry.document)
        return query.pick(entry.document)

    def receive(self, query: Query[_T], status: int, headers: Mapping[str, str], body: bytes) -> _T:
        """Check the reply to ``query`` (status, size, signature, digest, chain, that it answers ``query``),
        parse it, keep it, pick."""
        document = self._answer(query, status, headers, body)
        picked = query.pick(document)
        self._remember((query.base, query.params), document)
        return picked

    def _remember(
        self, key: tuple[str, _Params], document: edm.CommonServicesResponse | edm.CommonServicesError
    ) -> None:
        if self.cache_ttl <= 0:
            return
        now = self._clock()
        with self._lock:
            self._cache[key] = _Entry(now + self.cache_ttl, document)
            if len(self._cache) > 4096:
                for stale in [k for k, v in self._cache.items() if v.expires <= now] or list(self._cache)[:1024]:
                    del self._cache[stale]

    def _answer(
        self, query: Query[Any], status: int, headers: Mapping[str, str], body: bytes
    ) -> edm.CommonServicesResponse:
        base = query.base
        if status != 200:
            raise RegistryError(f"the registry at {base} answered HTTP {status}", http_status=status)
        if len(body) > MAX_ANSWER_BYTES:
            raise RegistryError(f"the registry's answer is larger than {MAX_ANSWER_BYTES} bytes")
        if self.require_signature:
            assert self.trust is not None
            body = verify_answer(body, headers, self.trust, max_age=self.max_age, clock_skew=self.clock_skew).body
        try:
            document = edm.parse(body)
        except (XmlError, ModelError) as exc:
            raise RegistryError(f"the registry's answer is not a RegRep query response: {exc.message}") from None
        if isinstance(document, edm.CommonServicesError | edm.CommonServicesResponse):
            _check_answer(query.params, document)
        if isinstance(document, edm.CommonServicesError):
            if document.code == QUESTION:
                # What to ask the user depends on the query alone, as an answer does: kept as one.
                self._remember((query.base, query.params), document)
            raise _refusal(document)
        if not isinstance(document, edm.CommonServicesResponse):
            raise RegistryError(f"the registry answered with a {type(document).__name__}, not a query response")
        if self.version is edm.Version.CS_V2 and document.specification is not edm.Version.CS_V2:
            raise RegistryError(f"asked for {self.version.value}, the registry answered {document.specification}")
        return document


def _refusal(document: edm.CommonServicesError) -> RegistryError:
    """The error a RegRep error answer raises (:class:`AdditionalInputRequired` for the DSD's question)."""
    kind = AdditionalInputRequired if document.code == QUESTION else RegistryError
    return kind(
        f"{document.code}: {document.message or 'the registry refused the query'}",
        code=document.code,
        detail=document.detail,
        answer=document,
    )


def _unreachable(base: str, exc: Exception) -> RegistryError:
    return RegistryError(f"cannot reach the registry at {base}: {type(exc).__name__}")


def _sent(build: Callable[Concatenate[ClientCore, _P], Query[_T]]) -> Callable[Concatenate[Any, _P], _T]:
    """A query of the core, sent and answered by the blocking transport."""

    @wraps(build)
    def ask(self: CommonServicesClient, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        return self.send(build(self, *args, **kwargs))

    return ask


def _awaited(
    build: Callable[Concatenate[ClientCore, _P], Query[_T]],
) -> Callable[Concatenate[Any, _P], Coroutine[Any, Any, _T]]:
    """A query of the core, sent and answered by the asyncio transport."""

    @wraps(build)
    async def ask(self: AsyncCommonServicesClient, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        return await self.send(build(self, *args, **kwargs))

    return ask


class CommonServicesClient(ClientCore):
    """Queries the EB and the DSD and returns verified, typed answers (blocking HTTP)."""

    def __init__(
        self, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None, **options: Unpack[_Options]
    ) -> None:
        super().__init__(**options)
        self._http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)

    @classmethod
    def from_settings(
        cls, settings: Any, *, resolver: Resolver | None = None, transport: httpx.BaseTransport | None = None
    ) -> CommonServicesClient:
        """A client from a node's :class:`~oots.settings.Settings` (``[common_services]``)."""
        return cls(**cls._settings_arguments(settings, resolver), transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CommonServicesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, query: Query[_T]) -> _T:
        """The answer to ``query``, from the cache or the registry."""
        found = self.cached(query)
        if found is not None:
            return found
        try:
            reply = self._http.get(query.url, params=query.params, headers=self.headers)
        except httpx.HTTPError as exc:
            raise _unreachable(query.base, exc) from None
        return self.receive(query, reply.status_code, reply.headers, reply.content)

    requirements = _sent(ClientCore.requirements_query)
    evidence_types = _sent(ClientCore.evidence_types_query)
    data_services = _sent(ClientCore.data_services_query)


class AsyncCommonServicesClient(ClientCore):
    """:class:`CommonServicesClient` for asyncio code: the same queries, checks and errors, awaited."""

    def __init__(
        self, *, timeout: float = 10.0, transport: httpx.AsyncBaseTransport | None = None, **options: Unpack[_Options]
    ) -> None:
        super().__init__(**options)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport, follow_redirects=False)

    @classmethod
    def from_settings(
        cls, settings: Any, *, resolver: Resolver | None = None, transport: httpx.AsyncBaseTransport | None = None
    ) -> AsyncCommonServicesClient:
        """A client from a node's :class:`~oots.settings.Settings` (``[common_services]``)."""
        return cls(**cls._settings_arguments(settings, resolver), transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncCommonServicesClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def send(self, query: Query[_T]) -> _T:
        """The answer to ``query``, from the cache or the registry."""
        found = self.cached(query)
        if found is not None:
            return found
        try:
            reply = await self._http.get(query.url, params=query.params, headers=self.headers)
        except httpx.HTTPError as exc:
            raise _unreachable(query.base, exc) from None
        return self.receive(query, reply.status_code, reply.headers, reply.content)

    requirements = _awaited(ClientCore.requirements_query)
    evidence_types = _awaited(ClientCore.evidence_types_query)
    data_services = _awaited(ClientCore.data_services_query)


def _params(query_id: str, values: Mapping[str, str | None]) -> tuple[tuple[str, str], ...]:
    return (("queryId", query_id), *((k, v) for k, v in values.items() if v is not None))
