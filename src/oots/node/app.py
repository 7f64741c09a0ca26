"""The node, composed from its settings: one ASGI application and one worker.

* :func:`build_context` opens the database (migrating it), loads the access point when the node has a
  role, and creates the roles named in ``[node] roles``.
* :func:`create_app` serves ``/`` (links to the portal and the other areas the node serves), an empty
  ``/favicon.ico``, ``/health``, ``/ready``, ``/metrics`` (Prometheus), the admin area
  ``/admin``, the AS4 endpoint ``/as4`` and every role's routes; every request gets a correlation id
  (``X-Correlation-ID``) that the logs carry.
* :func:`create_worker` runs the queue (every role's job handlers and the delivery of received AS4
  messages to the role that consumes their action) and the access point's sender loop.

Nothing is kept in process memory between requests: any number of ``oots serve`` and ``oots worker``
processes can run one node against one PostgreSQL database.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from html import escape
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from oots import __version__
from oots.as4 import msh
from oots.as4.certificates import anchors_end, partner_end
from oots.as4.domibus_mode import DomibusAccessPoint, load_domibus_access_point
from oots.as4.service import AccessPoint, load_access_point
from oots.as4.store import DELIVER_JOB, RETIRED_PURGE_JOB, As4Store, InboundPurge, Unsent
from oots.audit.journal import check_keys as check_journal_keys
from oots.errors import ConfigError, NotFound, OotsError, StoreError, TransportError, exception_text
from oots.node.admin import admin_routes
from oots.node.admin import check_settings as check_admin_settings
from oots.node.gateway import SEND_TOPIC, As4Gateway
from oots.node.observe import CorrelationMiddleware, Metrics, database_fault
from oots.node.roles import As4Handler, As4Preparer, NodeContext, Periodic, Role, unavailable
from oots.settings import Settings
from oots.store import open_database
from oots.store.database import OUTAGE_RETRY_SECONDS, normalise_url, outage
from oots.store.loops import Loops
from oots.store.queue import DeadHook, Handler, Preparer, Worker, retired
from oots.store.wake import listen, topic, unlisten
from oots.threads import run_in_thread, set_threads

__all__ = ["ROLE_FACTORIES", "NodeWorker", "build_context", "check_node", "create_app", "create_worker"]

log = logging.getLogger(__name__)

#: Where each role named in ``[node] roles`` is created: ``module:function(ctx) -> Role``.
ROLE_FACTORIES: Mapping[str, str] = {
    "common_services": "oots.cs.role:create_role",
    "provider": "oots.provider.role:create_role",
    "requester": "oots.requester.role:create_role",
}


def _load_role(name: str, ctx: NodeContext) -> Role:
    target = ROLE_FACTORIES.get(name)
    if target is None:
        raise ConfigError(f"node.roles: unknown role {name!r}", [("node.roles", f"unknown role {name!r}")])
    module_name, _, function = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        raise ConfigError(
            f"node.roles: the {name} role is not available in this version of oots",
            [("node.roles", f"{name} is not available")],
        ) from None
    role: Role = getattr(module, function)(ctx)
    return role


def _access_point(settings: Settings, config_dir: Path | None) -> AccessPoint | DomibusAccessPoint | None:
    """The node's access point: the exchange roles need one; the Common Services answer over plain HTTP."""
    if settings.as4.mode == "domibus":
        return load_domibus_access_point(settings, base_dir=config_dir)
    if set(settings.node.roles) - {"common_services"} or settings.as4.signing_key is not None:
        return load_access_point(settings, base_dir=config_dir)
    return None


def _start_checks(
    settings: Settings, config_dir: Path | None
) -> tuple[list[ConfigError], AccessPoint | DomibusAccessPoint | None]:
    """What the node checks before it opens its database, each check run even when one before failed:
    the problems found, and the access point loaded on the way."""
    errors: list[ConfigError] = []
    access_point: AccessPoint | DomibusAccessPoint | None = None
    checks: list[Callable[[], object]] = [
        partial(normalise_url, settings.database_url),
        partial(check_journal_keys, settings),
        partial(check_admin_settings, settings),
    ]
    for check in checks:
        try:
            check()
        except ConfigError as exc:
            errors.append(exc)
    try:
        access_point = _access_point(settings, config_dir)
    except ConfigError as exc:
        errors.append(exc)
    return errors, access_point


def _problems(error: ConfigError) -> list[tuple[str, str]]:
    return error.problems or [("(configuration)", error.message)]


def check_node(
    settings: Settings, *, config_dir: Path | None = None, warnings: list[str] | None = None
) -> list[tuple[str, str]]:
    """Every ``(path, reason)`` problem :func:`build_context` refuses to start with, found the same way but
    without opening the database (no connection, no migration) or writing a file (``oots config check``).

    The checks that need the database (its schema, a role's stored state) are not made. What the node
    would warn about at start (certificates expired or ending soon) is added to ``warnings`` when given.
    """
    errors, access_point = _start_checks(settings.resolved(config_dir), config_dir)
    if access_point is not None:
        if warnings is not None:
            warnings.extend(access_point.warnings)
        _close(access_point)
    return [problem for error in errors for problem in _problems(error)]


def _close(access_point: AccessPoint | DomibusAccessPoint) -> None:
    if isinstance(access_point, DomibusAccessPoint):
        access_point.client.close()
    else:
        access_point.sender.close()


def build_context(settings: Settings, *, config_dir: Path | None = None) -> NodeContext:
    """Check the settings (every problem at once, see :func:`check_node`), open the node's database and
    load what its roles need (the access point, the roles themselves).

    Relative file paths are taken from ``config_dir``, the configuration file's folder (the context's
    settings hold them so taken, see :meth:`~oots.settings.Settings.resolved`; settings from
    :func:`~oots.settings.load_settings` already are).
    """
    settings = settings.resolved(config_dir)
    errors, access_point = _start_checks(settings, config_dir)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        problems = [problem for error in errors for problem in _problems(error)]
        lines = "; ".join(f"{p}: {r}" for p, r in problems)
        raise ConfigError(f"the configuration has {len(problems)} problem(s): {lines}", problems)
    if access_point is not None:
        for warning in access_point.warnings:
            log.warning("certificate: %s", warning)
    settings.node.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # keys and personal data
    database = open_database(settings)
    ctx = NodeContext(settings=settings, database=database)
    if access_point is not None:
        ctx.clock = access_point.clock
        store = As4Store(database, access_point.pmodes, clock=access_point.clock)
        ctx.services["as4"] = As4Gateway(access_point, store)
    ctx.services["roles"] = [_load_role(name, ctx) for name in settings.node.roles]
    return ctx


def _roles(ctx: NodeContext) -> list[Role]:
    roles: list[Role] = ctx.services.get("roles", [])
    return roles


def _gateway(ctx: NodeContext) -> As4Gateway | None:
    gateway: As4Gateway | None = ctx.services.get("as4")
    return gateway


def as4_dispatch(ctx: NodeContext) -> Callable[[Session, msh.VerifiedMessage], None]:
    """The delivery hook: a received message goes to the role that consumes its action."""
    handlers: dict[str, As4Handler] = {}
    for role in _roles(ctx):
        for action, handler in role.as4_handlers().items():
            if action in handlers:
                raise ConfigError(f"two roles consume the AS4 action {action}")
            handlers[action] = handler

    def deliver(session: Session, message: msh.VerifiedMessage) -> None:
        action = message.user_message.collaboration_info.action
        handler = handlers.get(action)
        if handler is None:
            raise NotFound(f"no role of this node consumes AS4 messages with action {action}")
        handler(session, message)

    return deliver


def as4_preparation(ctx: NodeContext) -> Callable[[msh.VerifiedMessage], None] | None:
    """The delivery preparer: a received message goes to the ``as4_preparers()`` of the role that
    consumes its action, before the delivery's transaction (None when no role prepares anything)."""
    preparers: dict[str, As4Preparer] = {}
    for role in _roles(ctx):
        found = getattr(role, "as4_preparers", None)
        preparers.update(found() if found is not None else {})
    if not preparers:
        return None

    def prepare(message: msh.VerifiedMessage) -> None:
        preparer = preparers.get(message.user_message.collaboration_info.action)
        if preparer is not None:
            preparer(message)

    return prepare


def as4_delivery_failed(ctx: NodeContext) -> Callable[[Session, msh.VerifiedMessage, BaseException], None] | None:
    """The hook told when a received message's delivery job is dead-lettered: it goes to the
    ``as4_delivery_failed()`` of the role that consumes its action (None when no role has one)."""
    hooks: dict[str, Callable[[Session, msh.VerifiedMessage, BaseException], None]] = {}
    for role in _roles(ctx):
        found = getattr(role, "as4_delivery_failed", None)
        hooks.update(found() if found is not None else {})
    if not hooks:
        return None

    def failed(session: Session, message: msh.VerifiedMessage, exc: BaseException) -> None:
        hook = hooks.get(message.user_message.collaboration_info.action)
        if hook is not None:
            hook(session, message, exc)

    return failed


#: Messages a sender thread claims at once: small, so that the threads share a burst between them.
SEND_BATCH = 2


@dataclass
class NodeWorker:
    """The node's background work: the queue worker, the access point's sender threads and the node's
    periodic work (:func:`_periodic`, each :class:`oots.node.roles.Periodic` a thread of its own: the
    access point's purge of received messages, the roles' ``periodic()`` such as the requester's timeout
    sweep).

    ``senders`` threads send due AS4 messages side by side (each attempt waits for the partner's
    receipt, so one thread would send one message at a time); they sleep until a message is
    submitted in any process of the node (:func:`oots.store.wake.listen`) or ``poll_seconds`` pass
    (for retries that fall due, and wake-ups that could not be relayed). A submission
    wakes one of them; one that claimed a full batch calls another (see :class:`oots.store.loops.Loops`).
    """

    ctx: NodeContext
    worker: Worker
    poll_seconds: float = 1.0
    senders: int = 4
    _loops: Loops = field(init=False)
    _unsent: Unsent = field(init=False, default_factory=Unsent)
    _listening: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self._loops = Loops(self.worker)
        gateway = _gateway(self.ctx)
        if gateway is not None:
            # Domibus sends for us: one thread hands it what is due.
            threads = 1 if isinstance(gateway.access_point, DomibusAccessPoint) else max(1, self.senders)
            self._loops.every(
                "as4-sender",
                partial(gateway.send_due, limit=SEND_BATCH, unsent=self._unsent),
                poll_seconds=self.poll_seconds,
                wake=topic(SEND_TOPIC),
                threads=threads,
                batch=SEND_BATCH,
            )
            # On stop, what the senders claimed and have not started goes back at once.
            self._loops.on_stop(partial(self._unsent.give_back, gateway.store))
        for work in _periodic(self.ctx):
            self._loops.every(work.name, work.tick, poll_seconds=work.every_seconds)

    def start(self) -> None:
        """Run everything in background threads (for ``oots serve --with-worker`` and tests)."""
        listen(self.ctx.database)
        self._listening = True
        self._loops.start()

    def run_forever(self) -> None:
        """Run in the foreground until SIGTERM or SIGINT; finish the current job, release the rest.

        Sends in flight get ``node.shutdown_seconds`` to end; the process then exits without them.
        """
        listen(self.ctx.database)
        try:
            self._loops.run_forever(join_seconds=self.ctx.settings.node.shutdown_seconds)
        finally:
            unlisten(self.ctx.database)
            self._close_sender()

    def stop(self, timeout: float | None = None) -> None:
        """Stop every thread, waiting ``timeout`` (default ``node.shutdown_seconds``) for what they hold."""
        self._loops.stop(self.ctx.settings.node.shutdown_seconds if timeout is None else timeout)
        if self._listening:
            self._listening = False
            unlisten(self.ctx.database)
        self._close_sender()

    @property
    def alive(self) -> bool:
        """Whether every thread :meth:`start` started still runs (``/ready`` of ``oots serve --with-worker``)."""
        return self._loops.alive

    def _close_sender(self) -> None:
        gateway = _gateway(self.ctx)
        if gateway is not None:
            gateway.close()


def _certificate_expiries(ctx: NodeContext) -> list[tuple[dict[str, str], float]]:
    """The end of each certificate the node uses, for ``/metrics``: ``({"party", "use"}, notAfter)``.

    ``use`` is ``signing``, ``encryption`` or ``tls`` for the node's own certificates, ``partner`` for a
    partner's (the earlier end of its signing and encryption certificates) and ``trust_anchor`` for the
    CA certificates a partner's chain to (the earliest end of its ``trust_anchors``).
    """
    gateway = _gateway(ctx)
    if gateway is None:
        return []
    ap = gateway.access_point
    own = ap.pmodes.own.party_id
    labels = {"signing and encryption": ("signing", "encryption"), "TLS client": ("tls",)}
    out: list[tuple[dict[str, str], float]] = []
    for cert in gateway.own_certificates():
        if cert.certificate is not None:  # unreadable: the sender says so when it connects
            ends = cert.certificate.not_valid_after_utc.timestamp()
            out += [({"party": own, "use": use}, ends) for use in labels.get(cert.use, (cert.use,))]
    for partner in ap.pmodes.partners:
        end = partner_end(partner)
        if end is not None:
            out.append(({"party": partner.party.party_id, "use": "partner"}, end[1].not_valid_after_utc.timestamp()))
        anchor = anchors_end(partner)
        if anchor is not None:
            out.append(
                ({"party": partner.party.party_id, "use": "trust_anchor"}, anchor.not_valid_after_utc.timestamp())
            )
    return out


def _user_areas(settings: Settings) -> list[tuple[str, str]]:
    """The links of the node's home page: what its roles serve to people first, then the operator's pages."""
    roles = settings.node.roles
    areas = []
    if "requester" in roles and settings.requester.demo_portal:
        areas.append(("/portal/", "Procedure portal (demo): apply for a procedure with evidence from another country"))
    if "common_services" in roles:
        areas.append(("/cs/health", "Common Services (Evidence Broker and Data Service Directory): status"))
    areas += [
        ("/admin", "Admin area"),
        ("/health", "Health"),
        ("/ready", "Readiness"),
        ("/metrics", "Metrics"),
    ]
    return areas


def _periodic(ctx: NodeContext) -> list[Periodic]:
    """The periodic work every worker of the node runs: the access point's purge of received messages
    past the duplicate-detection window (``as4-inbound-purge``, every ``[as4] purge_interval_seconds``)
    and each role's ``periodic()``."""
    out: list[Periodic] = []
    gateway = _gateway(ctx)
    if gateway is not None:
        as4 = ctx.settings.as4
        purge = InboundPurge(gateway.store, window_seconds=as4.duplicate_window_seconds)
        out.append(Periodic("as4-inbound-purge", purge, every_seconds=as4.purge_interval_seconds))
    for role in _roles(ctx):
        found = getattr(role, "periodic", None)
        out += found() if found is not None else ()
    return out


def create_worker(ctx: NodeContext) -> NodeWorker:
    """The node's worker: every role's job handlers and periodic work, AS4 deliveries, the sender loop."""
    worker = Worker(ctx.database, ctx.settings.queue, clock=ctx.clock)
    handlers: dict[str, Handler] = {}
    preparers: dict[str, Preparer] = {}
    dead_hooks: dict[str, DeadHook] = {}
    for role in _roles(ctx):
        found = getattr(role, "job_preparers", None)
        preparers.update(found() if found is not None else {})
        found = getattr(role, "job_dead_hooks", None)
        dead_hooks.update(found() if found is not None else {})
        for kind, handler in role.job_handlers().items():
            if kind in handlers:
                raise ConfigError(f"two roles handle the job kind {kind}")
            handlers[kind] = handler
    gateway = _gateway(ctx)
    if gateway is not None:
        handlers[DELIVER_JOB] = gateway.store.deliver_handler(as4_dispatch(ctx))
        prepare = as4_preparation(ctx)
        if prepare is not None:
            preparers[DELIVER_JOB] = gateway.store.deliver_preparer(prepare)
        dead_hooks[DELIVER_JOB] = gateway.store.delivery_dead(as4_delivery_failed(ctx))
    handlers.setdefault(RETIRED_PURGE_JOB, retired)  # left by a version whose purge was a queue job
    for kind, handler in handlers.items():
        worker.register(kind, handler, prepare=preparers.get(kind), on_dead=dead_hooks.get(kind))
    return NodeWorker(ctx, worker)


_UNAVAILABLE_TEXT = "The service cannot answer at the moment. Please try again in a little while."
_FAILURE_TEXT = (
    "The service could not answer because of an error of its own. Please try again later; if it persists, "
    "give the error id to the service's operator."
)


async def _failure(request: Request, exc: Exception) -> Response:
    """The answer of the node's pages (the preview space, the admin area, AS4) to a failure of its own:
    503 with ``Retry-After`` while its database or a service beneath it cannot be reached, else 500; a
    fixed sentence and the error id, never the error's message (it may name the database, hosts, files)."""
    error_id = getattr(exc, "error_id", None) or uuid.uuid4().hex[:12]
    headers = {"Cache-Control": "no-store"}
    if outage(exc):
        status, sentence = 503, _UNAVAILABLE_TEXT
        headers["Retry-After"] = str(OUTAGE_RETRY_SECONDS)
    else:
        status, sentence = 500, _FAILURE_TEXT
    log.error(
        "node answered %d to %s (error id %s): %s",
        status,
        request.url.path,
        error_id,
        exception_text(exc, messages=False),
    )
    return PlainTextResponse(f"{sentence} (error id {error_id})", status_code=status, headers=headers)


#: The node-wide mapping of its own failures to HTTP answers (the portal API has its own, as problems).
FAILURE_HANDLERS: Mapping[Any, Callable[[Request, Exception], Any]] = {
    StoreError: _failure,
    ConfigError: _failure,
    TransportError: _failure,
    DBAPIError: _failure,
}


def create_app(settings: Settings | NodeContext, *, with_worker: bool = False) -> Starlette:
    """The node's ASGI application (built from settings, or from an already built context)."""
    ctx = settings if isinstance(settings, NodeContext) else build_context(settings)
    node = ctx.settings.node
    set_threads(node.threads)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "node": node.name, "version": __version__})

    async def ready(request: Request) -> JSONResponse:
        if background is not None and not background.alive:
            # The in-process worker died: jobs and AS4 messages would stay queued behind a ready node.
            return JSONResponse({"status": "unavailable", "reason": "the worker has stopped"}, status_code=503)
        try:
            with ctx.database.session() as session:
                session.execute(text("SELECT 1"))
        except (OotsError, SQLAlchemyError) as exc:
            error_id = exc.error_id if isinstance(exc, OotsError) else uuid.uuid4().hex[:12]
            log.warning("not ready: the database does not answer (error id %s): %s", error_id, database_fault(exc))
            return JSONResponse({"status": "unavailable", "error_id": error_id}, status_code=503)
        body: dict[str, Any] = {"status": "ready", "node": node.name}
        missing = await run_in_thread(unavailable, ctx)  # may try a register's database again
        if missing:
            # Still ready: the other data services answer. These answer EDM:ERR:0008 until their register
            # loads; why is in the log and the admin area (not here, where anyone may look).
            body["unavailable_data_services"] = sorted(missing)
        return JSONResponse(body)

    areas = _user_areas(ctx.settings)

    async def home(request: Request) -> HTMLResponse:
        roles = ", ".join(node.roles) or "no OOTS role"
        links = "".join(f"<li><a href='{href}'>{escape(text)}</a></li>" for href, text in areas)
        return HTMLResponse(
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{escape(node.name)} — oots node</title></head><body><main>"
            f"<h1>{escape(node.name)}</h1>"
            f"<p>oots {__version__} node for country {escape(node.country)}: {escape(roles)}.</p>"
            f"<ul>{links}</ul></main></body></html>"
        )

    async def favicon(request: Request) -> Response:
        # no icon, but no 404 in the browser's console on every page either (cached for a day)
        return Response(status_code=204, headers={"cache-control": "public, max-age=86400"})

    metrics = Metrics(ctx.database, node=node.name, certificates=_certificate_expiries(ctx))

    async def metrics_page(request: Request) -> PlainTextResponse:
        return PlainTextResponse(metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

    routes: list[BaseRoute] = [
        Route("/", home),
        Route("/favicon.ico", favicon),
        Route("/health", health),
        Route("/ready", ready),
        Route("/metrics", metrics_page),
        *admin_routes(ctx),
    ]
    gateway = _gateway(ctx)
    if gateway is not None:
        routes.extend(gateway.routes())
    for role in _roles(ctx):
        routes.extend(role.routes())

    background = create_worker(ctx) if with_worker else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # wake this process's long-polling readers on other processes' commits, while the app serves
        # (started here, not while the app is built; stopped with it, so no listener outlives it)
        listen(ctx.database)
        try:
            if background is not None:
                background.start()
            try:
                yield
            finally:
                if background is not None:
                    background.stop()
        finally:
            unlisten(ctx.database)

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(CorrelationMiddleware, metrics=metrics)],
        exception_handlers=dict(FAILURE_HANDLERS),
    )
    app.state.context = ctx
    app.state.metrics = metrics
    app.state.settings = ctx.settings
    return app
