"""Signed webhooks: the portal hears of every state change of its exchanges.

Each state change enqueues one job (kind ``requester.webhook``, key ``<exchange>:<version>``) in the
transaction of the change; the worker posts it before the job's transaction (:class:`WebhookJob`),
with retries (``webhook_max_attempts``, the queue's back-off). The body is JSON:
``{"delivery", "exchange", "state", "reason", "version", "at"}``;
``version`` grows with every change, so a portal can order the calls and ignore stale ones (delivery is
at least once and, across retries, not in order). ``delivery`` is the id of the delivery, the same on
every attempt of it and repeated in the header ``X-Oots-Delivery``: a portal drops a call whose id it
has seen. The signature header is

    X-Oots-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 over "<t>.<body>" with the client's secret>

so it covers the delivery id (in the body). :func:`verify` is what a portal runs (it also refuses a
timestamp older than ``tolerance`` seconds and, given the delivery header, one that is not the body's).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.orm import Session

from oots.errors import SecurityError, TransportError
from oots.settings import RequesterSettings
from oots.store.queue import Job

__all__ = ["DELIVERY_HEADER", "SIGNATURE_HEADER", "WebhookJob", "sign", "verify", "webhook_handler"]

SIGNATURE_HEADER = "X-Oots-Signature"
#: The id of the delivery (as the signed body's ``delivery``): the same on each attempt of one delivery.
DELIVERY_HEADER = "X-Oots-Delivery"


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: bytes,
    body: bytes,
    header: str,
    *,
    now: float | None = None,
    tolerance: float = 300.0,
    delivery: str | None = None,
) -> None:
    """Check a webhook's signature header; SecurityError when it does not hold or is too old, or when
    ``delivery`` (the ``X-Oots-Delivery`` header, if given) is not the delivery id of the signed body."""
    fields = dict(part.partition("=")[::2] for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
        given = fields["v1"]
    except (KeyError, ValueError):
        raise SecurityError("the webhook signature header is malformed") from None
    expected = sign(secret, body, timestamp).partition(",v1=")[2]
    if not hmac.compare_digest(expected, given):
        raise SecurityError("the webhook signature does not match its body")
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise SecurityError("the webhook signature is too old (a replay?)")
    if delivery is not None:
        try:
            signed = json.loads(body).get("delivery")
        except (ValueError, AttributeError):
            signed = None
        if not isinstance(signed, str) or not hmac.compare_digest(signed.encode(), delivery.encode()):
            raise SecurityError("the webhook's delivery header is not the delivery id of its signed body")


#: How many outcomes of posts made ahead of their jobs are kept for their handlers at most.
OUTCOMES_KEPT = 1000


class WebhookJob:
    """The ``requester.webhook`` job: :meth:`prepare` posts the webhook before the job's transaction and
    keeps the outcome; :meth:`handle`, in the transaction, only records it (raising
    :class:`TransportError` so the queue retries a failed post). The client's endpoint may take its time
    (``webhook_timeout_seconds``) without the node's writers waiting for it: on SQLite the write lock,
    on PostgreSQL the audit journal's head a job before it in the group locked. A handler that finds no
    outcome kept (no preparer ran, or it was run by another process) posts itself, as before."""

    def __init__(
        self,
        config: RequesterSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.transport = transport
        self.clock = clock
        self._outcomes: dict[tuple[int, int], str | None] = {}
        self._lock = threading.Lock()

    def prepare(self, job: Job) -> None:
        """Post the webhook now (outside any transaction); the outcome waits for the job's handler."""
        outcome = self._post(job)
        with self._lock:
            self._outcomes[(job.id, job.attempts)] = outcome
            while len(self._outcomes) > OUTCOMES_KEPT:  # handlers that never ran (their lease lost)
                del self._outcomes[next(iter(self._outcomes))]

    def handle(self, session: Session, job: Job) -> None:
        """Record the post's outcome with the job: done, or a TransportError for the queue to retry."""
        with self._lock:
            prepared = (job.id, job.attempts) in self._outcomes
            outcome = self._outcomes.pop((job.id, job.attempts), None)
        if not prepared:
            outcome = self._post(job)
        if outcome is not None:
            raise TransportError(outcome)

    def _post(self, job: Job) -> str | None:
        """Post the job's webhook; ``None`` when it was taken (or there is nowhere to post), else why not."""
        config = self.config
        payload: dict[str, Any] = job.payload
        client = next((c for c in config.clients if c.id == payload["client"]), None)
        if client is None or not client.webhook_url:
            return None
        # a job queued before delivery ids has none: its own id names the delivery (the same on each attempt)
        delivery = str(payload.get("delivery") or f"job-{job.id}")
        fields = {k: v for k, v in payload.items() if k != "client"}
        body = json.dumps({**fields, "delivery": delivery}, sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "oots-requester", DELIVERY_HEADER: delivery}
        if client.webhook_secret is not None:
            secret = client.webhook_secret.get_secret_value().encode()
            headers[SIGNATURE_HEADER] = sign(secret, body, int(self.clock()))
        try:
            with httpx.Client(timeout=config.webhook_timeout_seconds, transport=self.transport) as http:
                reply = http.post(client.webhook_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"webhook to {client.id} failed: {type(exc).__name__}"
        if not 200 <= reply.status_code < 300:
            return f"webhook to {client.id} answered HTTP {reply.status_code}"
        return None


def webhook_handler(
    config: RequesterSettings,
    *,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
) -> Callable[[Session, Job], None]:
    """The queue handler that posts one webhook in the job's transaction (raises TransportError so the
    queue retries). The node registers :class:`WebhookJob` with its preparer instead."""
    return WebhookJob(config, transport=transport, clock=clock).handle
