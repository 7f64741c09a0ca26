"""The exchange state machine of the evidence requester: every rule in one table.

An *exchange* is what a procedure portal asks for: the evidence one user needs for one procedure
(one or more requirements). Its state moves only along :data:`TRANSITIONS`; a move the table does
not list raises :class:`~oots.errors.LocalProtocolError`. Terminal states are ``completed``,
``failed`` and ``expired``; a failed or expired exchange carries a :class:`Reason` from a stable
vocabulary a portal can show a user (``REASON_TEXT`` has the plain English sentence for each).

| state | event | next |
|---|---|---|
| discovering | needs_choice | awaiting_user_choice |
| discovering | discovered | awaiting_explicit_request |
| awaiting_user_choice | chosen | discovering |
| awaiting_explicit_request | explicit_request | requesting |
| awaiting_explicit_request | chosen | discovering |
| requesting | preview_required | awaiting_preview |
| requesting | evidence_received | requesting (more evidence to ask for) |
| requesting | all_received | completed |
| awaiting_preview | evidence_received | requesting |
| awaiting_preview | all_received | completed |
| any non-terminal | fail | failed |
| any non-terminal | cancel | failed (reason ``cancelled``) |
| any non-terminal | timeout | expired |
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from oots.errors import LocalProtocolError

__all__ = [
    "ACTIONABLE",
    "REASON_TEXT",
    "TERMINAL",
    "TRANSITIONS",
    "Event",
    "Reason",
    "RequestStatus",
    "State",
    "next_state",
]


class State(StrEnum):
    """Where an exchange is."""

    DISCOVERING = "discovering"
    AWAITING_USER_CHOICE = "awaiting_user_choice"
    AWAITING_EXPLICIT_REQUEST = "awaiting_explicit_request"
    REQUESTING = "requesting"
    AWAITING_PREVIEW = "awaiting_preview"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"


class Event(StrEnum):
    """What happens to an exchange."""

    NEEDS_CHOICE = "needs_choice"
    DISCOVERED = "discovered"
    CHOSEN = "chosen"
    EXPLICIT_REQUEST = "explicit_request"
    PREVIEW_REQUIRED = "preview_required"
    EVIDENCE_RECEIVED = "evidence_received"
    ALL_RECEIVED = "all_received"
    FAIL = "fail"
    CANCEL = "cancel"
    TIMEOUT = "timeout"


class Reason(StrEnum):
    """Why an exchange failed or expired: the stable vocabulary a portal shows its users."""

    PROCEDURE_UNKNOWN = "procedure_unknown"
    NO_EVIDENCE_TYPE = "no_evidence_type"
    NO_PROVIDER = "no_provider"
    REGISTRY_UNAVAILABLE = "registry_unavailable"
    PROVIDER_UNREACHABLE = "provider_unreachable"
    PERSON_NOT_FOUND = "person_not_found"
    EVIDENCE_NOT_AVAILABLE = "evidence_not_available"
    LEVEL_OF_ASSURANCE_TOO_LOW = "level_of_assurance_too_low"
    PREVIEW_REFUSED = "preview_refused"
    PREVIEW_NOT_THE_SUBJECT = "preview_not_the_subject"
    REQUEST_REFUSED = "request_refused"
    PROVIDER_ERROR = "provider_error"
    INVALID_ANSWER = "invalid_answer"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"


class RequestStatus(StrEnum):
    """Where one evidence request of an exchange is (``requests[].status`` of the API).

    ``pending`` (not sent yet: an earlier request goes first), ``sent`` (waiting for the provider's
    answer), ``preview`` (the provider asked for a preview; the second request is sent), ``received``
    (the evidence came), ``failed`` (an error answer, or the request could not be sent)."""

    PENDING = "pending"
    SENT = "sent"
    PREVIEW = "preview"
    RECEIVED = "received"
    FAILED = "failed"


TERMINAL: Final = frozenset({State.COMPLETED, State.FAILED, State.EXPIRED})

_LIVE: Final = tuple(s for s in State if s not in TERMINAL)

#: The states a portal acts on: the exchange waits for the portal or its user (choices, the explicit request,
#: the preview) or has ended. In the others (discovering, requesting) the node works on its own.
ACTIONABLE: Final = frozenset(
    {State.AWAITING_USER_CHOICE, State.AWAITING_EXPLICIT_REQUEST, State.AWAITING_PREVIEW, *TERMINAL}
)

TRANSITIONS: Final[dict[tuple[State, Event], State]] = {
    (State.DISCOVERING, Event.NEEDS_CHOICE): State.AWAITING_USER_CHOICE,
    (State.DISCOVERING, Event.DISCOVERED): State.AWAITING_EXPLICIT_REQUEST,
    (State.AWAITING_USER_CHOICE, Event.CHOSEN): State.DISCOVERING,
    (State.AWAITING_EXPLICIT_REQUEST, Event.CHOSEN): State.DISCOVERING,
    (State.AWAITING_EXPLICIT_REQUEST, Event.EXPLICIT_REQUEST): State.REQUESTING,
    (State.REQUESTING, Event.PREVIEW_REQUIRED): State.AWAITING_PREVIEW,
    (State.REQUESTING, Event.EVIDENCE_RECEIVED): State.REQUESTING,
    (State.REQUESTING, Event.ALL_RECEIVED): State.COMPLETED,
    (State.AWAITING_PREVIEW, Event.EVIDENCE_RECEIVED): State.REQUESTING,
    (State.AWAITING_PREVIEW, Event.ALL_RECEIVED): State.COMPLETED,
    **{(s, Event.FAIL): State.FAILED for s in _LIVE},
    **{(s, Event.CANCEL): State.FAILED for s in _LIVE},
    **{(s, Event.TIMEOUT): State.EXPIRED for s in _LIVE},
}

#: What a portal can tell its user for each reason (English; portals translate by the reason code).
REASON_TEXT: Final[dict[Reason, str]] = {
    Reason.PROCEDURE_UNKNOWN: "The procedure is not known to the Evidence Broker.",
    Reason.NO_EVIDENCE_TYPE: "No evidence can be retrieved through OOTS for this requirement in that country; "
    "please upload the document yourself.",
    Reason.NO_PROVIDER: "No authority of that country offers this evidence through OOTS; please upload it yourself.",
    Reason.REGISTRY_UNAVAILABLE: "The European directories could not be reached; please try again later.",
    Reason.PROVIDER_UNREACHABLE: "The authority holding the evidence could not be reached; please try again later.",
    Reason.PERSON_NOT_FOUND: "The authority found no record for you; check your details or upload the document.",
    Reason.EVIDENCE_NOT_AVAILABLE: "The authority cannot provide this evidence; please upload it yourself.",
    Reason.LEVEL_OF_ASSURANCE_TOO_LOW: "The authority needs a login with a higher level of assurance; "
    "log in again with a stronger eID means.",
    Reason.PREVIEW_REFUSED: "You chose not to share the evidence after previewing it.",
    Reason.PREVIEW_NOT_THE_SUBJECT: "The person who logged in at the preview was not the applicant, so the "
    "authority sent nothing; start again and log in at the preview with your own eID.",
    Reason.REQUEST_REFUSED: "The authority refused the request.",
    Reason.PROVIDER_ERROR: "The authority answered with an error; please try again later or upload the document.",
    Reason.INVALID_ANSWER: "An answer to a follow-up question was not accepted; please check it.",
    Reason.CANCELLED: "The request was cancelled.",
    Reason.TIMEOUT: "The evidence did not arrive in time; you can start again.",
}


def next_state(state: State, event: Event) -> State:
    """The state after ``event`` in ``state``; LocalProtocolError for a move the table does not list."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise LocalProtocolError(f"an exchange in state {state.value} cannot take the event {event.value}") from None
