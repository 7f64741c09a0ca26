"""What operators watch: Prometheus metrics at ``/metrics`` and JSON logs with correlation ids.

* :class:`Metrics` keeps this process's counters and latency histograms (HTTP requests by route and
  status), when each certificate the node uses ends (read at start) and, at every scrape, reads the
  node's shared state from the database — exchanges by state, AS4 messages by direction and state,
  queue jobs by kind and status — so that every process of a node reports the same node-wide figures.
  :func:`render` writes the Prometheus text exposition format.
* :class:`CorrelationMiddleware` gives every request a correlation id (the caller's ``X-Correlation-ID``
  when it is a sane token, a fresh one otherwise), echoes it in the response and puts it on every log
  record written while the request runs.
* :func:`configure_logging` applies ``[log]``: the level, and with ``json = true`` one JSON object per
  line. Log records carry ids and states, never personal data (the journal keeps that, encrypted).
"""

from __future__ import annotations

import contextvars
import json
import logging
import random
import re
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, inspect, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oots.errors import OotsError, exception_text
from oots.settings import LogSettings
from oots.store.database import Database, load_models

__all__ = [
    "LATENCY_BUCKETS",
    "CorrelationMiddleware",
    "JsonFormatter",
    "Metrics",
    "configure_logging",
    "correlation_id",
    "database_fault",
    "render",
    "route_template",
]

#: Upper bounds (seconds) of the latency histogram buckets.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

log = logging.getLogger(__name__)

_correlation: contextvars.ContextVar[str | None] = contextvars.ContextVar("oots_correlation_id", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,100}$")


def correlation_id() -> str | None:
    """The correlation id of the request being handled (``None`` outside a request)."""
    return _correlation.get()


# --- metrics --------------------------------------------------------------------------------------------


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items())) + "}"


@dataclass
class _Histogram:
    buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    count: int = 0
    total: float = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        for i, bound in enumerate(LATENCY_BUCKETS):
            if value <= bound:
                self.buckets[i] += 1


@dataclass(frozen=True)
class Family:
    """One metric family ready for rendering: name, type, help and ``(suffix, labels, value)`` samples."""

    name: str
    kind: str
    help: str
    samples: list[tuple[str, dict[str, str], float]]


def render(families: Iterable[Family]) -> str:
    """The Prometheus text exposition format (version 0.0.4) of ``families``."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {family.help}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for suffix, labels, value in family.samples:
            number = repr(float(value)) if not float(value).is_integer() else str(int(value))
            lines.append(f"{family.name}{suffix}{_labels(labels)} {number}")
    return "\n".join(lines) + "\n"


#: Tables read at scrape time: (table, metric name, help, label columns).
_DB_GAUGES = (
    ("requester_exchanges", "oots_exchanges", "Exchanges of this node's requester by state.", ("state",)),
    ("as4_outbound", "oots_as4_outbound_messages", "AS4 messages sent by this node by state.", ("state",)),
    ("as4_inbound", "oots_as4_inbound_messages", "AS4 messages received by this node by state.", ("state",)),
    ("queue_jobs", "oots_queue_jobs", "Jobs of the node's durable queue by kind and status.", ("kind", "status")),
    ("audit_entries", "oots_audit_entries", "Entries of the audit journal by side and event.", ("side", "event")),
)


#: The gauge telling whether the database answered the scrape (its figures are missing when it did not).
_DATABASE_UP = ("oots_database_up", "gauge", "Whether the node's database answered this scrape (1) or not (0).")


#: When each certificate the node uses ends: its own (signing, encryption, TLS client) and its partners'.
_CERTIFICATE_EXPIRY = (
    "oots_certificate_expiry_timestamp_seconds",
    "gauge",
    "When a certificate the node uses stops being valid (notAfter, Unix time), by party and use.",
)


def database_fault(exc: BaseException) -> str:
    """One plain line saying why the database failed (no traceback, no password)."""
    if isinstance(exc, OotsError):
        return exc.message
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else 'no reason given'}"


class Metrics:
    """This process's request metrics plus the node-wide state read from ``database`` at each scrape.

    When the database does not answer, the scrape still succeeds: ``oots_database_up`` is 0 and the
    figures read from the database are left out.
    """

    def __init__(
        self,
        database: Database | None = None,
        *,
        node: str = "",
        certificates: Iterable[tuple[Mapping[str, str], float]] = (),
    ) -> None:
        self.database = database
        self.node = node
        #: ``({"party": ..., "use": ...}, notAfter as a Unix time)`` of each certificate the node uses.
        self.certificates = [(dict(labels), float(ends)) for labels, ends in certificates]
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = {}
        self._latency: dict[tuple[str, str], _Histogram] = {}
        self.started = time.time()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (method, route, str(status))
            self._requests[key] = self._requests.get(key, 0) + 1
            self._latency.setdefault((method, route), _Histogram()).observe(seconds)

    def _process_families(self) -> list[Family]:
        with self._lock:
            requests = [
                ("", {"method": m, "route": r, "status": s}, float(n))
                for (m, r, s), n in sorted(self._requests.items())
            ]
            latency: list[tuple[str, dict[str, str], float]] = []
            for (method, route), hist in sorted(self._latency.items()):
                base = {"method": method, "route": route}
                for bound, number in zip(LATENCY_BUCKETS, hist.buckets, strict=True):
                    latency.append(("_bucket", {**base, "le": repr(bound)}, float(number)))
                latency.append(("_bucket", {**base, "le": "+Inf"}, float(hist.count)))
                latency.append(("_sum", base, hist.total))
                latency.append(("_count", base, float(hist.count)))
        return [
            Family("oots_http_requests_total", "counter", "HTTP requests served by this process.", requests),
            Family("oots_http_request_duration_seconds", "histogram", "Time to answer an HTTP request.", latency),
            Family("oots_process_start_time_seconds", "gauge", "When this process started.", [("", {}, self.started)]),
            *(
                [Family(*_CERTIFICATE_EXPIRY, [("", labels, ends) for labels, ends in self.certificates])]
                if self.certificates
                else []
            ),
        ]

    def _database_families(self) -> list[Family]:
        if self.database is None:
            return []
        try:
            families = self._read_database(self.database)
        except (OotsError, SQLAlchemyError) as exc:
            log.warning("metrics: the database does not answer, so its figures are left out (%s)", database_fault(exc))
            return [Family(*_DATABASE_UP, [("", {}, 0.0)])]
        return [Family(*_DATABASE_UP, [("", {}, 1.0)]), *families]

    @staticmethod
    def _read_database(database: Database) -> list[Family]:
        families: list[Family] = []
        tables = load_models().tables
        with database.connect() as connection:
            present = set(inspect(connection).get_table_names())
            for table_name, name, help_text, columns in _DB_GAUGES:
                if table_name not in present or table_name not in tables:
                    continue
                cols = [tables[table_name].c[c] for c in columns]
                rows = connection.execute(select(*cols, func.count()).group_by(*cols)).all()
                samples = [("", dict(zip(columns, map(str, row[:-1]), strict=True)), float(row[-1])) for row in rows]
                families.append(Family(name, "gauge", help_text, samples))
        return families

    def families(self) -> list[Family]:
        return self._process_families() + self._database_families()

    def exposition(self) -> str:
        return render(self.families())


# --- correlation ids and request metrics -----------------------------------------------------------------


def route_template(scope: Scope, root_path: str = "") -> str:
    """The full path template of the route that answered (``/portal/applications/{ex}``), or ``unmatched``.

    Starlette's routers write the innermost matched route into the request's scope and add each mount's
    prefix to ``root_path``; the label is that prefix (past the ``root_path`` the application was given)
    followed by the route's own template. A mount whose application has no routes of its own ends in
    ``/{path}``. (The mounts of a node have no parameters in their prefixes.)
    """
    route = scope.get("route")
    template = getattr(route, "path", None)
    if template is None:
        return "unmatched"
    prefix = str(scope.get("root_path", ""))
    prefix = prefix[len(root_path) :] if prefix.startswith(root_path) else prefix
    if isinstance(route, Mount):
        return f"{prefix}/{{path}}"
    return f"{prefix}{template}" or "/"


class CorrelationMiddleware:
    """ASGI middleware: correlation id in and out, request counted and timed in :class:`Metrics`."""

    header = b"x-correlation-id"

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics
        # Fresh ids only tell requests apart in the logs (they are no secret): a generator seeded from the
        # system's randomness once, not a system call per request.
        self._random = random.Random(secrets.randbits(128))  # noqa: S311 - log ids, not secrets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = ""
        for name, value in scope.get("headers") or ():
            if name == self.header:  # the last one counts
                given = value.decode("latin-1")
        cid = given if _SANE_ID.match(given) else f"{self._random.getrandbits(64):016x}"
        token = _correlation.set(cid)
        status = 500
        started = time.perf_counter()
        root_path = scope.get("root_path", "")

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = dict(message)
                message["headers"] = [*message.get("headers", []), (self.header, cid.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.metrics is not None:
                route = route_template(scope, root_path)
                self.metrics.observe_request(scope.get("method", ""), route, status, time.perf_counter() - started)
            _correlation.reset(token)


# --- logs ------------------------------------------------------------------------------------------------

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class _SafeExceptions(logging.Formatter):
    """A formatter that writes a record's exception as :func:`exception_text` does."""

    def formatException(self, ei: Any) -> str:
        exc = ei[1] if isinstance(ei, tuple) else None
        return exception_text(exc) if isinstance(exc, BaseException) else ""


class JsonFormatter(_SafeExceptions):
    """One JSON object per line: time, level, logger, message, correlation id, node, and extras."""

    def __init__(self, node: str = "") -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.node:
            out["node"] = self.node
        cid = correlation_id()
        if cid is not None:
            out["correlation_id"] = cid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class _CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation = correlation_id() or "-"
        return True


def configure_logging(settings: LogSettings, *, node: str = "") -> logging.Handler:
    """Install one handler on the root logger as ``[log]`` says; returns it (replaces an earlier one)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_oots_node_handler", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler()
    if settings.json_format:
        handler.setFormatter(JsonFormatter(node))
    else:
        handler.addFilter(_CorrelationFilter())
        prefix = f"{node} " if node else ""
        handler.setFormatter(
            _SafeExceptions(f"%(asctime)s {prefix}%(levelname)s %(name)s [%(correlation)s]: %(message)s")
        )
    handler._oots_node_handler = True  # type: ignore[attr-defined]
    for other in [h for h in root.handlers if not getattr(h, "_oots_node_handler", False)]:
        root.removeHandler(other)
    root.addHandler(handler)
    root.setLevel(settings.level)
    return handler
