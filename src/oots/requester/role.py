"""The evidence requester as a role of a node (``oots.node.roles.Role``).

* routes: the portal API at ``/api`` (``/api/v1/...``, OpenAPI at ``/api/openapi.json``) and the
  return location ``/requester/return/{exchange}`` where a provider's preview space sends the user back;
* job handlers: discovery (``requester.discover``), webhooks (``requester.webhook``), and timeouts
  (``requester.expire``) for the jobs a database from before the sweep may still hold;
* periodic work: the timeout sweep (``requester-expiry``, every ``requester.expiry_interval_seconds``),
  which ends the exchanges whose deadline has passed, a batch per write transaction, and the drop of the
  ``Idempotency-Key`` rows past their day (``requester-idempotency-keys``, every minute);
* AS4 handlers: ``ExecuteQueryResponse`` and ``ExceptionResponse`` (answers to our requests).

The Common Services client and the outbox come from the node's services (``"cs_client"``,
``"requester_outbox"`` or the access point gateway ``"as4"``), looked up when first needed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from oots.as4 import profile
from oots.as4.msh import VerifiedMessage
from oots.audit.journal import load_journal
from oots.errors import ConfigError
from oots.node.roles import As4Handler, As4Preparer, NodeContext, Periodic
from oots.requester import idempotency
from oots.requester.api import create_api
from oots.requester.discovery import CommonServices
from oots.requester.exchange import DISCOVER_JOB, EXPIRE_JOB, WEBHOOK_JOB, Discovered, Requester
from oots.requester.outbox import As4Outbox, Outbox
from oots.requester.portal import Portal
from oots.requester.webhooks import WebhookJob
from oots.store.queue import Handler, Job, Preparer

__all__ = ["RequesterRole", "create_role"]

#: Exchanges the timeout sweep ends in one write transaction at most (then it lets other writers in).
EXPIRY_BATCH = 20

#: Discovery answers (and parsed AS4 answers) kept for their jobs at most (one whose job never came is
#: forgotten past this many).
AHEAD_KEPT = 256


def create_role(ctx: NodeContext) -> RequesterRole:
    """The requester role of a node (``[node] roles = ["requester"]``)."""
    return RequesterRole(ctx)


class RequesterRole:
    """The evidence requester of a node."""

    name = "requester"

    def __init__(self, ctx: NodeContext, *, webhook_transport: httpx.BaseTransport | None = None) -> None:
        self.ctx = ctx
        self.webhook_transport = webhook_transport
        self.requester = Requester(
            ctx.settings,
            common_services=self._common_services,
            outbox=self._outbox,
            clock=ctx.clock,
            journal=load_journal(ctx.settings, clock=ctx.clock),
        )
        self._ahead: dict[str, Discovered] = {}
        # answers' RegRep documents parsed by the AS4 delivery's preparer, by message id, for its handler
        self._answers: dict[str, Any] = {}
        self._ahead_lock = threading.Lock()
        self._webhooks = WebhookJob(ctx.settings.requester, transport=webhook_transport)

    def _common_services(self) -> CommonServices:
        client = self.ctx.services.get("cs_client")
        if client is None:
            from oots.cs.client import CommonServicesClient

            client = self.ctx.services["cs_client"] = CommonServicesClient.from_settings(self.ctx.settings)
        return client

    def _outbox(self) -> Outbox:
        outbox = self.ctx.services.get("requester_outbox")
        if outbox is None:
            gateway = self.ctx.services.get("as4")
            if gateway is None:
                raise ConfigError("the requester needs the node's access point ([as4]) to send requests")
            outbox = self.ctx.services["requester_outbox"] = As4Outbox(gateway)
        return outbox

    # ---- Role ----------------------------------------------------------------------------------

    def routes(self) -> Sequence[BaseRoute]:
        routes: list[BaseRoute] = [
            Mount("/api", app=create_api(self.requester, self.ctx.database)),
            Route("/requester/return/{exchange_id}", self._return, methods=["GET", "POST"]),
        ]
        if self.ctx.settings.requester.demo_portal:
            login = self.ctx.services.get("eid_login")
            if login is None:
                from oots.eid import EidLogin

                login = self.ctx.services["eid_login"] = EidLogin.for_node(self.ctx.settings, self.ctx.database)
                routes.append(login.mount())
            routes.extend(Portal(self.requester, self.ctx.database, login).routes())
        return routes

    def job_handlers(self) -> Mapping[str, Handler]:
        def discover(session: Session, job: Job) -> None:
            exchange_id = job.payload["exchange"]
            with self._ahead_lock:
                ahead = self._ahead.pop(exchange_id, None)
            self.requester.discover(session, exchange_id, ahead=ahead)

        def expire(session: Session, job: Job) -> None:
            # No exchange gets a timeout job any more (the sweep, :meth:`sweep`, ends them), but a database
            # from before may still hold some: each ends its exchange if it is due, else does nothing.
            self.requester.expire(session, job.payload["exchange"])

        return {
            DISCOVER_JOB: discover,
            EXPIRE_JOB: expire,
            WEBHOOK_JOB: self._webhooks.handle,
        }

    def periodic(self) -> Sequence[Periodic]:
        every = self.ctx.settings.requester.expiry_interval_seconds
        keys = idempotency.SWEEP_INTERVAL.total_seconds()
        return [
            Periodic("requester-expiry", self.sweep, every_seconds=every),
            Periodic("requester-idempotency-keys", self.forget_keys, every_seconds=keys),
        ]

    def forget_keys(self) -> int:
        """Drop the rows of the ``Idempotency-Key`` s past their day (housekeeping: they are ignored
        already). Returns 0: one statement takes them all, so there is never more at once."""
        with self.ctx.database.session(immediate=True) as session:
            idempotency.forget(session.connection(), self.ctx.clock())
        return 0

    def sweep(self) -> int:
        """End a batch of exchanges whose deadline has passed (at most :data:`EXPIRY_BATCH`) in a write
        transaction of its own; return how many it ended. It looks first with a plain read, so a sweep
        that finds nothing due takes no write lock."""
        database = self.ctx.database
        with database.session() as session:
            if not self.requester.due(session, limit=1):
                return 0
        with database.session(immediate=True) as session:
            return self.requester.expire_due(session, limit=EXPIRY_BATCH)

    def job_preparers(self) -> Mapping[str, Preparer]:
        return {DISCOVER_JOB: self._discover_ahead, WEBHOOK_JOB: self._webhooks.prepare}

    def _discover_ahead(self, job: Job) -> None:
        """Ask the Common Services for a discovery job before its transaction (kept for the job)."""
        exchange_id = job.payload["exchange"]
        with self.ctx.database.session() as session:
            found = self.requester.discover_ahead(session, exchange_id)
        if found is not None:
            with self._ahead_lock:
                self._ahead[exchange_id] = found
                while len(self._ahead) > AHEAD_KEPT:
                    del self._ahead[next(iter(self._ahead))]

    def as4_handlers(self) -> Mapping[str, As4Handler]:
        handle: Callable[[Session, Any], None] = self._on_message
        return {profile.ACTION_EXECUTE_QUERY_RESPONSE: handle, profile.ACTION_EXCEPTION_RESPONSE: handle}

    def as4_preparers(self) -> Mapping[str, As4Preparer]:
        read: Callable[[Any], None] = self._read_answer
        return {profile.ACTION_EXECUTE_QUERY_RESPONSE: read, profile.ACTION_EXCEPTION_RESPONSE: read}

    def _read_answer(self, message: VerifiedMessage) -> None:
        """Parse an answer before its delivery's write transaction (one that does not parse is left to
        the handler, which drops it and says why)."""
        document = self.requester.read_answer(message)
        if document is None:
            return
        with self._ahead_lock:
            self._answers[message.message_id] = document
            while len(self._answers) > AHEAD_KEPT:
                del self._answers[next(iter(self._answers))]

    def _on_message(self, session: Session, message: VerifiedMessage) -> None:
        with self._ahead_lock:
            document = self._answers.pop(message.message_id, None)
        self.requester.on_message(session, message, document=document)

    def _return(self, request: Request) -> Response:  # sync: Starlette runs it in its thread pool (it writes)
        exchange_id = request.path_params["exchange_id"]
        with self.ctx.database.session(immediate=True) as session:
            ex = self.requester.returned(session, exchange_id)
            target = ex.return_url if ex is not None else None
        if target:
            joiner = "&" if "?" in target else "?"
            return RedirectResponse(f"{target}{joiner}{urlencode({'exchange': exchange_id})}", status_code=303)
        return HTMLResponse(
            "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Back from the preview</title></head>"
            "<body><main><h1>Back from the preview</h1><p>You can close this page and go back to the "
            "procedure portal.</p></main></body></html>",
            status_code=200 if ex is not None else 404,
        )
