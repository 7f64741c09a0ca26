"""The Evidence Requester role: the procedure portal's side of OOTS (``docs/requester.md``).

Public API: :class:`RequesterRole` (plugs into a node), :class:`Requester` (the exchange operations),
the state machine (:class:`State`, :class:`Event`, :class:`Reason`, :data:`TRANSITIONS`,
:data:`REASON_TEXT`, :data:`ACTIONABLE`), :func:`create_api` (the portal API), the outbox (:class:`Outbox`,
:class:`As4Outbox`) and the webhook signatures (:func:`sign_webhook`, :func:`verify_webhook`).
"""

from __future__ import annotations

from oots.requester.api import create_api
from oots.requester.exchange import DISCOVER_JOB, EXPIRE_JOB, WEBHOOK_JOB, Requester, subject_from_json
from oots.requester.outbox import As4Outbox, Outbox
from oots.requester.role import RequesterRole
from oots.requester.states import (
    ACTIONABLE,
    REASON_TEXT,
    TERMINAL,
    TRANSITIONS,
    Event,
    Reason,
    RequestStatus,
    State,
    next_state,
)
from oots.requester.webhooks import sign as sign_webhook
from oots.requester.webhooks import verify as verify_webhook

__all__ = [
    "ACTIONABLE",
    "DISCOVER_JOB",
    "EXPIRE_JOB",
    "REASON_TEXT",
    "TERMINAL",
    "TRANSITIONS",
    "WEBHOOK_JOB",
    "As4Outbox",
    "Event",
    "Outbox",
    "Reason",
    "RequestStatus",
    "Requester",
    "RequesterRole",
    "State",
    "create_api",
    "next_state",
    "sign_webhook",
    "subject_from_json",
    "verify_webhook",
]
