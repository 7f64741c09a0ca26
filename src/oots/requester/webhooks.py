"""Signed webhooks: the portal hears of every state change of its exchanges.

Each state change enqueues one job (kind ``requester.webhook``, key ``<exchange>:<version>``) in the
transaction of the change; the worker posts it with retries (``webhook_max_attempts``, the queue's
back-off). The body is JSON: ``{"delivery", "exchange", "state", "reason", "version", "at"}``;
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
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.orm import Session

from oots.errors import SecurityError, TransportError
from oots.settings import RequesterSettings
from oots.store.queue import Job

__all__ = ["DELIVERY_HEADER", "SIGNATURE_HEADER", "sign", "verify", "webhook_handler"]

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


def webhook_handler(
    config: RequesterSettings,
    *,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
) -> Callable[[Session, Job], None]:
    """The queue handler that posts one webhook (raises TransportError so the queue retries)."""

    def handle(session: Session, job: Job) -> None:
        payload: dict[str, Any] = job.payload
        client = next((c for c in config.clients if c.id == payload["client"]), None)
        if client is None or not client.webhook_url:
            return
        # a job queued before delivery ids has none: its own id names the delivery (the same on each attempt)
        delivery = str(payload.get("delivery") or f"job-{job.id}")
        fields = {k: v for k, v in payload.items() if k != "client"}
        body = json.dumps({**fields, "delivery": delivery}, sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "oots-requester", DELIVERY_HEADER: delivery}
        if client.webhook_secret is not None:
            secret = client.webhook_secret.get_secret_value().encode()
            headers[SIGNATURE_HEADER] = sign(secret, body, int(clock()))
        try:
            with httpx.Client(timeout=config.webhook_timeout_seconds, transport=transport) as http:
                reply = http.post(client.webhook_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TransportError(f"webhook to {client.id} failed: {type(exc).__name__}") from None
        if not 200 <= reply.status_code < 300:
            raise TransportError(f"webhook to {client.id} answered HTTP {reply.status_code}")

    return handle
