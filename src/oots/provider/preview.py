"""The preview space's core (no I/O): tokens, the life of a preview, the checks on what comes back.

When a request allows a preview (``PossibilityForPreview``) and the data service's policy asks for one,
the first request is answered ``EDM:ERR:0002`` PreviewRequired with a **PreviewLocation**
``<base>/preview/<token>``: the token is 256 random bits (:func:`new_token`), and only its SHA-256
(:func:`token_key`) is stored. The requester then sends the user's browser there and, at the same time,
a **second request** in the same conversation carrying that PreviewLocation (and, in v2.0, its
ReturnLocation). Both may come in either order:

======================  ===============  ==============================================================
state                   event            next state
======================  ===============  ==============================================================
``awaiting``            ``request``      ``held`` (the second request is stored, not answered)
``awaiting``            ``decision``     ``decided`` (the user was faster than the second request)
``held``                ``decision``     ``ready``
``decided``             ``request``      ``ready``
``ready``               ``answer``       ``answered`` (evidence, or the decision's error)
any open state          ``timeout``      ``expired`` (a held request is answered ``EDM:ERR:0005``)
======================  ===============  ==============================================================

A preview still open long after its deadline (its answer could not be sent; its timeout job lost) takes
the same ``timeout`` when the retention bound closes it, unanswered (outcome ``purged``).

Everything else — a second request for a preview that already has one, a decision taken twice, any
event on ``answered`` or ``expired`` — raises :class:`PreviewClosed`: a preview is used once.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from oots import edm
from oots.as4.model import PartyId
from oots.errors import LocalProtocolError
from oots.provider.dataservice import legal_person_query, person_query
from oots.provider.matching import (
    LegalPersonRecord,
    MatchOutcome,
    MatchRules,
    PersonRecord,
    identifier_issuer,
    match_legal_person,
    match_person,
    normalise_identifier,
)

__all__ = [
    "OPEN",
    "PREVIEW_PATH",
    "PreviewClosed",
    "PreviewEvent",
    "PreviewState",
    "Routing",
    "allowed_return",
    "fingerprint",
    "is_loopback",
    "location_of",
    "new_token",
    "next_state",
    "same_person",
    "token_from_location",
    "token_key",
    "valid_token",
]

#: Where the preview space lives on the provider node.
PREVIEW_PATH = "/preview"
#: A token as :func:`new_token` makes it: 32 bytes, URL-safe base64 without padding.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_token() -> str:
    """A new secret for one PreviewLocation (256 bits from ``secrets``)."""
    return secrets.token_urlsafe(32)


def token_key(token: str) -> str:
    """What the database keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def valid_token(token: str) -> bool:
    return bool(_TOKEN.match(token))


def location_of(base_url: str, token: str) -> str:
    """The PreviewLocation of ``token`` on the node at ``base_url``."""
    return f"{base_url.rstrip('/')}{PREVIEW_PATH}/{token}"


def token_from_location(location: str, base_url: str) -> str | None:
    """The token of a PreviewLocation this node gave (``None`` for any other URL)."""
    prefix = f"{base_url.rstrip('/')}{PREVIEW_PATH}/"
    if not location.startswith(prefix):
        return None
    token = location[len(prefix) :]
    return token if valid_token(token) else None


def is_loopback(url: str) -> bool:
    """True for a URL on this machine (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_return(url: str | None, origins: Iterable[str]) -> str | None:
    """``url`` when it is an absolute http(s) URL on one of the allowed ``origins``; else ``None``.

    No open redirect: the scheme, host and port must be those of a registered requester portal, and
    URLs with credentials, backslashes, blanks or control characters are refused outright.
    """
    if not url or len(url) > 2000 or any(c in url for c in "\\ \t\r\n") or not url.isprintable():
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username is not None:
        return None
    if parts.password is not None or "@" in parts.netloc:
        return None
    default = 443 if parts.scheme == "https" else 80
    origin = f"{parts.scheme}://{parts.hostname.lower()}" + ("" if port in (None, default) else f":{port}")
    allowed = set()
    for item in origins:
        o = urlsplit(item)
        try:
            o_port = o.port
        except ValueError:
            continue
        o_default = 443 if o.scheme == "https" else 80
        allowed.add(
            f"{o.scheme}://{(o.hostname or '').lower()}" + ("" if o_port in (None, o_default) else f":{o_port}")
        )
    return url if origin in allowed else None


def _subject_of(request: edm.QueryRequest) -> edm.Person | edm.LegalPerson:
    subject = request.natural_person or request.legal_person
    assert subject is not None  # a QueryRequest has exactly one
    return subject


def fingerprint(request: edm.QueryRequest) -> str:
    """What the second request must repeat of the first: subject, representative, evidence type and
    distributions, requester — as one SHA-256 (hex)."""
    wanted = request.evidence_request
    data = {
        "subject": edm.object_to_json(_subject_of(request)),
        "representative": (
            edm.object_to_json(request.authorized_representative) if request.authorized_representative else None
        ),
        "service": [wanted.identifier, edm.sr_url(wanted.evidence_type_classification or "", v2=False)],
        "distributions": [edm.object_to_json(d) for d in wanted.distributed_as],
        "requester": [[a.identifier.value, a.identifier.scheme_id] for a in request.evidence_requester],
        "specification": request.specification.value,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=True).encode()).hexdigest()


def same_person(
    logged_in: edm.Person | edm.LegalPerson, subject: edm.Person | edm.LegalPerson, rules: MatchRules
) -> bool:
    """Whether the person who logged in to the preview space is the request's subject, by the data
    service's matching rules (the subject taken as the only candidate, read by the same
    :func:`~oots.provider.dataservice.person_query` / ``legal_person_query`` as a request's subject)."""
    if isinstance(subject, edm.Person):
        if not isinstance(logged_in, edm.Person):
            return False
        wanted, found = person_query(subject), person_query(logged_in)
        if wanted.identifier and found.identifier:
            # Both logged in with eIDAS: the identifiers decide. Unlike a register's record, the subject
            # here is another eID login, so an identifier from another issuing country is not "unknown
            # to this register" (where names and birth date would be looked at) but another person, or
            # the same one with another eID: either way not the login the request was made with.
            issuers = (
                identifier_issuer(normalise_identifier(wanted.identifier)),
                identifier_issuer(normalise_identifier(found.identifier)),
            )
            if None not in issuers and issuers[0] != issuers[1]:
                return False
        record = PersonRecord(record_id="request", **asdict(wanted))
        return match_person(found, [record], rules).outcome is MatchOutcome.MATCH
    if not isinstance(logged_in, edm.LegalPerson):
        return False
    legal = LegalPersonRecord(record_id="request", **asdict(legal_person_query(subject)))
    return match_legal_person(legal_person_query(logged_in), [legal], rules).outcome is MatchOutcome.MATCH


class PreviewState(StrEnum):
    AWAITING = "awaiting"
    HELD = "held"
    DECIDED = "decided"
    READY = "ready"
    ANSWERED = "answered"
    EXPIRED = "expired"


class PreviewEvent(StrEnum):
    REQUEST = "request"
    DECISION = "decision"
    ANSWER = "answer"
    TIMEOUT = "timeout"


#: The states in which a preview can still change.
OPEN = frozenset({PreviewState.AWAITING, PreviewState.HELD, PreviewState.DECIDED, PreviewState.READY})

_NEXT: dict[tuple[PreviewState, PreviewEvent], PreviewState] = {
    (PreviewState.AWAITING, PreviewEvent.REQUEST): PreviewState.HELD,
    (PreviewState.AWAITING, PreviewEvent.DECISION): PreviewState.DECIDED,
    (PreviewState.HELD, PreviewEvent.DECISION): PreviewState.READY,
    (PreviewState.DECIDED, PreviewEvent.REQUEST): PreviewState.READY,
    (PreviewState.READY, PreviewEvent.ANSWER): PreviewState.ANSWERED,
    (PreviewState.AWAITING, PreviewEvent.TIMEOUT): PreviewState.EXPIRED,
    (PreviewState.HELD, PreviewEvent.TIMEOUT): PreviewState.EXPIRED,
    (PreviewState.DECIDED, PreviewEvent.TIMEOUT): PreviewState.EXPIRED,
    (PreviewState.READY, PreviewEvent.TIMEOUT): PreviewState.EXPIRED,
}


class PreviewClosed(LocalProtocolError):
    """The event does not fit the preview's state: it was already used, decided or closed."""


def next_state(state: PreviewState, event: PreviewEvent) -> PreviewState:
    """The state after ``event`` (see the module docstring); :class:`PreviewClosed` if it does not fit."""
    try:
        return _NEXT[(state, event)]
    except KeyError:
        raise PreviewClosed(f"a preview in state {state.value} takes no {event.value}", code=state.value) from None


@dataclass(frozen=True, slots=True)
class Routing:
    """How to answer a held request over AS4 (kept as JSON until the answer goes out)."""

    to_party: tuple[str, str | None]
    original_sender: tuple[str, str | None]
    final_recipient: tuple[str, str | None]
    conversation_id: str
    ref_to_message_id: str
    exchange_id: str | None = None
    specification_id: str | None = None

    @staticmethod
    def party(value: tuple[str, str | None]) -> PartyId:
        return PartyId(value[0], value[1])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Routing:
        return cls(
            to_party=(data["to_party"][0], data["to_party"][1]),
            original_sender=(data["original_sender"][0], data["original_sender"][1]),
            final_recipient=(data["final_recipient"][0], data["final_recipient"][1]),
            conversation_id=data["conversation_id"],
            ref_to_message_id=data["ref_to_message_id"],
            exchange_id=data.get("exchange_id"),
            specification_id=data.get("specification_id"),
        )
