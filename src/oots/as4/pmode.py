"""Processing Modes (PModes): how this access point exchanges messages with each partner.

The tree is named after the ebMS 3 Core Appendix D parameters (``PMode.Initiator.Party``,
``PMode[1].ReceptionAwareness.Retry.Parameters`` ...) so the reader of the specification finds the
code. It is plain frozen data: no I/O except :func:`load_domibus_pmode` (reads bytes it is given) and
:func:`pmodes_from_settings` (reads the certificate files the settings name).

* :class:`PModeSet` is what a node runs with: its own party, its partners (endpoint, certificates,
  trust anchors, retry schedule, duplicate-detection window) and the legs (service/action pairs with
  their security, reliability and payload settings). :meth:`PModeSet.resolve` assembles the
  :class:`PMode` for one partner and one leg.
* :func:`validate` collects every problem with its field path (``partners[blue_gw].endpoint: ...``);
  :meth:`PModeSet.check` raises :class:`oots.errors.ConfigError` carrying all of them. A partner's
  certificate outside its validity period is no such problem (one partner's expiry must not stop the
  node): :func:`certificate_notices` lists them for a warning, and :meth:`Partner.sending_problem`
  refuses messages to that partner.
* :func:`load_domibus_pmode` imports a Domibus PMode XML file (the format a Domibus administrator
  uploads), so a node can be configured from the same file as the Domibus it replaces or fronts.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cryptography import x509
from lxml import etree

from oots import xmlsafe
from oots.errors import ConfigError, NotFound, XmlError
from oots.mediatypes import GZIP

if TYPE_CHECKING:
    from oots.settings import As4Settings

__all__ = [
    "DEFAULT_MPC",
    "GATEWAY_ROLE",
    "MEP_ONE_WAY",
    "MEP_PUSH",
    "OOTS_PARTY_ID_TYPE",
    "TEST_ACTION",
    "TEST_SERVICE",
    "BusinessInfo",
    "DuplicateDetection",
    "ErrorHandling",
    "Leg",
    "PMode",
    "PModeSet",
    "Partner",
    "Party",
    "PayloadService",
    "Problem",
    "PropertyDef",
    "ReceptionAwareness",
    "RetrySchedule",
    "RetryStrategy",
    "Security",
    "Service",
    "certificate_notices",
    "load_domibus_pmode",
    "oots_legs",
    "pmodes_from_settings",
    "validate",
]

EBMS_NS = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"
DEFAULT_MPC = EBMS_NS + "defaultMPC"
MEP_ONE_WAY = EBMS_NS + "oneWay"
MEP_TWO_WAY = EBMS_NS + "twoWay"
MEP_PUSH = EBMS_NS + "push"
MEP_PUSH_AND_PUSH = EBMS_NS + "pushAndPush"
#: The test service and action every partner must answer (ebMS 3 Core §5.2.2.9, AS4 1.15 §4.4.3).
TEST_SERVICE = EBMS_NS + "service"
TEST_ACTION = EBMS_NS + "test"
GATEWAY_ROLE = "http://sdg.europa.eu/edelivery/gateway"
OOTS_PARTY_ID_TYPE = "urn:oasis:names:tc:ebcore:partyid-type:unregistered:oots"
OOTS_SERVICE = "QueryManager"
OOTS_SERVICE_TYPE = "urn:oasis:names:tc:ebcore:ebrs:ebms:binding:1.0"

SIGN_RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ENCRYPT_AES128_GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"

_DOMIBUS_NS = "http://domibus.eu/configuration"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a PMode set: where (a field path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True, slots=True)
class Party:
    """``PMode.Initiator.Party`` / ``PMode.Responder.Party``: one ``eb:PartyId`` with its type, and a role."""

    party_id: str
    party_id_type: str = OOTS_PARTY_ID_TYPE
    role: str = GATEWAY_ROLE

    @property
    def key(self) -> tuple[str, str]:
        return (self.party_id_type, self.party_id)

    def __str__(self) -> str:
        return f"{self.party_id} ({self.party_id_type})"


@dataclass(frozen=True, slots=True)
class Service:
    """``PMode[1].BusinessInfo.Service``: the value and its optional ``type``."""

    value: str
    type: str | None = None


@dataclass(frozen=True, slots=True)
class PropertyDef:
    """One entry of ``PMode[1].BusinessInfo.Properties``: a message property name and whether it is required."""

    name: str
    required: bool = False


class RetryStrategy(Enum):
    """How the retry offsets were produced (the Domibus vocabulary, kept for round trips)."""

    CONSTANT = "CONSTANT"
    PROGRESSIVE = "PROGRESSIVE"
    SEND_ONCE = "SEND_ONCE"
    EXPLICIT = "EXPLICIT"


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """``PMode[1].ReceptionAwareness.Retry.Parameters``.

    ``offsets`` are seconds after the first attempt at which the message is sent again while no
    receipt has come; after the last one (plus ``receipt_timeout``) the message fails with
    ``EBMS:0301 MissingReceipt``. An empty tuple means the message is sent once.
    """

    offsets: tuple[float, ...] = (60.0, 180.0, 600.0)
    receipt_timeout: float = 60.0
    strategy: RetryStrategy = RetryStrategy.EXPLICIT

    @classmethod
    def constant(cls, timeout_minutes: float, count: int, *, receipt_timeout: float = 60.0) -> RetrySchedule:
        """``count`` retries evenly spread over ``timeout_minutes`` (Domibus ``T;N;CONSTANT``)."""
        if count <= 0:
            return cls((), receipt_timeout, RetryStrategy.CONSTANT)
        step = timeout_minutes * 60.0 / count
        return cls(tuple(step * i for i in range(1, count + 1)), receipt_timeout, RetryStrategy.CONSTANT)

    @classmethod
    def progressive(
        cls, timeout_minutes: float, initial_minutes: float, factor: float, *, receipt_timeout: float = 60.0
    ) -> RetrySchedule:
        """Retries at ``initial, initial*factor, ...`` minutes while within the timeout (Domibus PROGRESSIVE)."""
        offsets: list[float] = []
        at = initial_minutes
        while initial_minutes > 0 and factor > 1 and at <= timeout_minutes:
            offsets.append(at * 60.0)
            at *= factor
        return cls(tuple(offsets), receipt_timeout, RetryStrategy.PROGRESSIVE)

    @classmethod
    def parse_domibus(cls, text: str, *, receipt_timeout: float = 60.0) -> RetrySchedule:
        """Read Domibus' ``timeout;count;CONSTANT``, ``timeout;initial;factor;PROGRESSIVE`` or ``SEND_ONCE``."""
        parts = [p.strip() for p in text.split(";")]
        try:
            if len(parts) == 4 and parts[3] == "PROGRESSIVE":
                return cls.progressive(
                    float(parts[0]), float(parts[1]), float(parts[2]), receipt_timeout=receipt_timeout
                )
            if len(parts) == 3 and parts[2] == "CONSTANT":
                return cls.constant(float(parts[0]), int(parts[1]), receipt_timeout=receipt_timeout)
            if len(parts) == 3 and parts[2] == "SEND_ONCE":
                return cls((), receipt_timeout, RetryStrategy.SEND_ONCE)
        except ValueError:
            pass
        raise ValueError(
            f"retry {text!r} is not 'timeout;count;CONSTANT', 'timeout;initial;factor;PROGRESSIVE' "
            "or 'timeout;count;SEND_ONCE' (minutes)"
        )

    @property
    def attempts(self) -> int:
        """How many times a message is sent at most (the first send plus the retries)."""
        return 1 + len(self.offsets)

    def next_attempt_after(self, attempts_made: int) -> float | None:
        """Offset (seconds after the first attempt) of the next send, or None when none is left."""
        if attempts_made < 1:
            return 0.0
        if attempts_made - 1 < len(self.offsets):
            return self.offsets[attempts_made - 1]
        return None


@dataclass(frozen=True, slots=True)
class DuplicateDetection:
    """``PMode[1].ReceptionAwareness.DuplicateDetection``: on/off and the window a message id is remembered."""

    enabled: bool = True
    window: float = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class ReceptionAwareness:
    """``PMode[1].ReceptionAwareness``: retries while no receipt comes, and duplicate detection."""

    enabled: bool = True
    retry: RetrySchedule = field(default_factory=RetrySchedule)
    duplicate_detection: DuplicateDetection = field(default_factory=DuplicateDetection)


@dataclass(frozen=True, slots=True)
class ErrorHandling:
    """``PMode[1].ErrorHandling``: errors as synchronous responses; who is told of what."""

    report_as_response: bool = True
    missing_receipt_notify_producer: bool = True
    process_error_notify_producer: bool = True
    process_error_notify_consumer: bool = False
    delivery_failure_notify_producer: bool = True


@dataclass(frozen=True, slots=True)
class Security:
    """``PMode[1].Security``: WS-Security 1.1.1, X.509 sign then encrypt, signed (NRR) receipts."""

    wss_version: str = "1.1.1"
    sign: bool = True
    sign_algorithm: str = SIGN_RSA_SHA256
    sign_hash_function: str = DIGEST_SHA256
    encrypt: bool = True
    encrypt_algorithm: str = ENCRYPT_AES128_GCM
    encrypt_minimal_strength: int = 128
    send_receipt: bool = True
    send_receipt_non_repudiation: bool = True
    send_receipt_reply_pattern: str = "response"
    profile: str = "rsa"


@dataclass(frozen=True, slots=True)
class PayloadService:
    """``PMode[1].PayloadService``: the compression applied to payload parts (AS4 §3.1)."""

    compression_type: str | None = GZIP


@dataclass(frozen=True, slots=True)
class BusinessInfo:
    """``PMode[1].BusinessInfo``: service, action, expected message properties, MPC."""

    service: Service
    action: str
    properties: tuple[PropertyDef, ...] = ()
    mpc: str = DEFAULT_MPC


@dataclass(frozen=True, slots=True)
class Leg:
    """``PMode[1]``: one leg (service + action) with its processing settings."""

    name: str
    business_info: BusinessInfo
    security: Security = field(default_factory=Security)
    reception_awareness: ReceptionAwareness | None = None
    error_handling: ErrorHandling = field(default_factory=ErrorHandling)
    payload_service: PayloadService = field(default_factory=PayloadService)

    @property
    def is_test(self) -> bool:
        bi = self.business_info
        return bi.service.value == TEST_SERVICE and bi.action == TEST_ACTION


@dataclass(frozen=True, slots=True)
class Partner:
    """A partner access point: its party, where it listens, the certificates it uses, how to retry."""

    name: str
    party: Party
    endpoint: str
    signing_certificate: x509.Certificate | None = None
    encryption_certificate: x509.Certificate | None = None
    trust_anchors: tuple[x509.Certificate, ...] = ()
    #: Overrides the legs' reception awareness for this partner when set.
    reception_awareness: ReceptionAwareness | None = None

    def sending_problem(self, now: dt.datetime) -> str | None:
        """Why no message can be sent to this partner at ``now`` (its encryption or signing certificate is
        expired or not yet valid), or None. Its receipts could not be trusted, or it could not decrypt."""
        for what, cert in (("encryption", self.encryption_certificate), ("signing", self.signing_certificate)):
            problem = None if cert is None else _check_certificate(cert, now)
            if problem is not None:
                return (
                    f"the {what} certificate of AS4 partner {self.name} ({self.party.party_id}) {problem}: "
                    "no message can be sent to it until a valid certificate is configured for it"
                )
        return None


@dataclass(frozen=True, slots=True)
class PMode:
    """One complete processing mode: a one-way push leg between us and one partner."""

    id: str
    agreement: str | None
    mep: str
    mep_binding: str
    initiator: Party
    responder: Party
    leg: Leg
    partner: Partner
    #: ``PMode[1].Protocol.Address``: the responder's endpoint (the partner's when we initiate).
    address: str
    reception_awareness: ReceptionAwareness


@dataclass(frozen=True, slots=True)
class PModeSet:
    """Everything this access point needs to send and receive: itself, its partners, its legs."""

    own: Party
    partners: tuple[Partner, ...]
    legs: tuple[Leg, ...]
    agreement: str | None = None
    mep: str = MEP_ONE_WAY
    mep_binding: str = MEP_PUSH
    reception_awareness: ReceptionAwareness = field(default_factory=ReceptionAwareness)

    # -- lookups ---------------------------------------------------------------------------------
    def partner(self, name_or_party_id: str, party_id_type: str | None = None) -> Partner:
        """The partner with this configured name or party id (and type, when given)."""
        for p in self.partners:
            if p.name == name_or_party_id and party_id_type is None:
                return p
        for p in self.partners:
            if p.party.party_id == name_or_party_id and party_id_type in (None, p.party.party_id_type):
                return p
        raise NotFound(f"no AS4 partner {name_or_party_id!r} is configured")

    def sender(self, party_id: str, party_id_type: str | None) -> Partner:
        """The partner whose ``eb:PartyId`` is exactly this value and type (no type: an empty one).

        How a received header names its sender: on party ids only, never on the configured names, so
        the partner whose certificate checks the signature is the partner the message is attributed to.
        """
        key = (party_id_type or "", party_id)
        for p in self.partners:
            if p.party.key == key:
                return p
        shown = f"{party_id!r} of type {party_id_type!r}" if party_id_type else f"{party_id!r} (without a type)"
        raise NotFound(f"no AS4 partner with the party id {shown} is configured")

    def leg(self, service: str, action: str, service_type: str | None = None) -> Leg:
        """The leg for ``service``/``action`` (a missing ``service_type`` matches any type)."""
        for leg in self.legs:
            bi = leg.business_info
            if (bi.service.value, bi.action) == (service, action) and (
                service_type is None or bi.service.type in (None, service_type)
            ):
                return leg
        raise NotFound(f"no PMode leg for service {service!r} and action {action!r}")

    def test_leg(self) -> Leg:
        return self.leg(TEST_SERVICE, TEST_ACTION)

    def resolve(self, partner: Partner, leg: Leg, *, initiator_is_us: bool = True) -> PMode:
        """The PMode for one message with ``partner`` on ``leg``; we initiate unless told otherwise."""
        initiator, responder = (self.own, partner.party) if initiator_is_us else (partner.party, self.own)
        awareness = partner.reception_awareness or leg.reception_awareness or self.reception_awareness
        pid = f"{initiator.party_id}>{responder.party_id}:{leg.name}"
        return PMode(
            id=pid,
            agreement=self.agreement,
            mep=self.mep,
            mep_binding=self.mep_binding,
            initiator=initiator,
            responder=responder,
            leg=leg,
            partner=partner,
            address=partner.endpoint,
            reception_awareness=awareness,
        )

    def resolve_incoming(
        self,
        *,
        from_party: tuple[str, str],
        to_party: tuple[str, str],
        service: str,
        action: str,
        service_type: str | None = None,
    ) -> PMode:
        """The PMode of a received message, from its ``eb:PartyInfo`` and ``eb:CollaborationInfo``.

        ``from_party`` and ``to_party`` are ``(type, id)``. Raises :class:`NotFound` when the sender is
        unknown, the message is not for us, or no leg matches (the caller maps it to ``EBMS:0001``).
        """
        if to_party != self.own.key:
            raise NotFound(f"the message is addressed to {to_party[1]!r}, not to this access point")
        partner = self.sender(from_party[1], from_party[0])
        leg = self.leg(service, action, service_type)
        return self.resolve(partner, leg, initiator_is_us=False)

    # -- checks ----------------------------------------------------------------------------------
    def check(self, *, require_certificates: bool = True) -> PModeSet:
        """Return self when :func:`validate` finds nothing, else raise :class:`ConfigError` with every problem."""
        problems = validate(self, require_certificates=require_certificates)
        if problems:
            lines = "; ".join(str(p) for p in problems)
            raise ConfigError(
                f"the PModes have {len(problems)} problem(s): {lines}", [(p.path, p.message) for p in problems]
            )
        return self

    def with_partners(self, partners: Iterable[Partner]) -> PModeSet:
        return replace(self, partners=tuple(partners))


def oots_legs(*, reception_awareness: ReceptionAwareness | None = None) -> tuple[Leg, ...]:
    """The legs OOTS uses (TDD 4.7): the three QueryManager actions and the mandatory test service."""
    props = (
        PropertyDef("originalSender", True),
        PropertyDef("finalRecipient", True),
        PropertyDef("ExchangeId", False),
        PropertyDef("SpecificationId", False),
    )
    service = Service(OOTS_SERVICE, OOTS_SERVICE_TYPE)
    legs = [
        Leg(name, BusinessInfo(service, action, props), reception_awareness=reception_awareness)
        for name, action in (
            ("ootsRequestLeg", "ExecuteQueryRequest"),
            ("ootsResponseLeg", "ExecuteQueryResponse"),
            ("ootsErrorLeg", "ExceptionResponse"),
        )
    ]
    legs.append(
        Leg(
            "testServiceCase", BusinessInfo(Service(TEST_SERVICE), TEST_ACTION), reception_awareness=reception_awareness
        )
    )
    return tuple(legs)


# -- validation -------------------------------------------------------------------------------------


def _check_url(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    return None


def _check_certificate(cert: x509.Certificate, now: dt.datetime) -> str | None:
    if now < cert.not_valid_before_utc:
        return f"is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
    if now > cert.not_valid_after_utc:
        return f"expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    return None


def certificate_notices(pmodes: PModeSet, now: dt.datetime) -> list[Problem]:
    """Every partner certificate (signing, encryption, trust anchor) not valid at ``now``, with its path.

    These are warnings, not problems: the node starts, messages to such a partner fail one by one
    (:meth:`Partner.sending_problem`) and messages signed with an expired certificate are refused.
    """
    out: list[Problem] = []
    for partner in pmodes.partners:
        path = f"partners[{partner.name}]"
        who = f"partner {partner.name} ({partner.party.party_id})"
        for attr in ("signing_certificate", "encryption_certificate"):
            cert = getattr(partner, attr)
            problem = None if cert is None else _check_certificate(cert, now)
            if problem:
                out.append(
                    Problem(f"{path}.{attr}", f"{problem}: messages to {who} fail until a valid one is configured")
                )
        for i, anchor in enumerate(partner.trust_anchors):
            problem = _check_certificate(anchor, now)
            if problem:
                out.append(
                    Problem(f"{path}.trust_anchors[{i}]", f"{problem}: messages from {who} that rely on it are refused")
                )
    return out


def _validate_awareness(ra: ReceptionAwareness, path: str) -> list[Problem]:
    out: list[Problem] = []
    offsets = ra.retry.offsets
    if any(not math.isfinite(o) or o <= 0 for o in offsets):
        out.append(Problem(f"{path}.retry.offsets", "every retry offset must be a positive number of seconds"))
    if any(b <= a for a, b in itertools.pairwise(offsets)):
        out.append(Problem(f"{path}.retry.offsets", "retry offsets must increase"))
    if ra.retry.receipt_timeout <= 0:
        out.append(Problem(f"{path}.retry.receipt_timeout", "must be positive"))
    if ra.duplicate_detection.enabled and ra.duplicate_detection.window <= 0:
        out.append(Problem(f"{path}.duplicate_detection.window", "must be positive when detection is on"))
    if not ra.enabled:
        out.append(Problem(f"{path}.enabled", "AS4 1.15 requires reception awareness"))
    return out


def _validate_leg(leg: Leg, path: str) -> list[Problem]:
    out: list[Problem] = []
    bi = leg.business_info
    if not bi.service.value:
        out.append(Problem(f"{path}.business_info.service", "is empty"))
    if not bi.action:
        out.append(Problem(f"{path}.business_info.action", "is empty"))
    sec = leg.security
    if sec.wss_version != "1.1.1":
        out.append(Problem(f"{path}.security.wss_version", "AS4 1.15 uses WS-Security 1.1.1"))
    if not sec.sign:
        out.append(Problem(f"{path}.security.sign", "AS4 1.15 requires signed messages"))
    if not sec.encrypt:
        out.append(Problem(f"{path}.security.encrypt", "AS4 1.15 requires encrypted payloads"))
    if sec.encrypt_minimal_strength < 128:
        out.append(Problem(f"{path}.security.encrypt_minimal_strength", "must be at least 128"))
    if not sec.send_receipt or sec.send_receipt_reply_pattern != "response":
        out.append(
            Problem(f"{path}.security.send_receipt", "receipts must be sent synchronously (reply pattern response)")
        )
    if not sec.send_receipt_non_repudiation:
        out.append(Problem(f"{path}.security.send_receipt_non_repudiation", "AS4 1.15 requires NRR receipts"))
    if not leg.error_handling.report_as_response:
        out.append(Problem(f"{path}.error_handling.report_as_response", "errors must be reported as responses"))
    ct = leg.payload_service.compression_type
    if ct not in (None, GZIP):
        out.append(Problem(f"{path}.payload_service.compression_type", f"must be {GZIP} or none"))
    if leg.reception_awareness is not None:
        out.extend(_validate_awareness(leg.reception_awareness, f"{path}.reception_awareness"))
    return out


def validate(pmodes: PModeSet, *, require_certificates: bool = True) -> list[Problem]:
    """Every problem of ``pmodes``, each with its field path; an empty list when it is usable.

    ``require_certificates`` off accepts partners without certificates (a PMode imported from Domibus,
    before keys are added). Certificates' validity periods are not checked here: see
    :func:`certificate_notices`.
    """
    out: list[Problem] = []
    if not pmodes.own.party_id:
        out.append(Problem("own.party_id", "is empty"))
    if not pmodes.own.party_id_type:
        out.append(Problem("own.party_id_type", "is empty"))
    if pmodes.mep != MEP_ONE_WAY:
        out.append(Problem("mep", "only the One-Way MEP is supported"))
    if pmodes.mep_binding != MEP_PUSH:
        out.append(Problem("mep_binding", "only the Push binding is supported"))
    out.extend(_validate_awareness(pmodes.reception_awareness, "reception_awareness"))
    if not pmodes.legs:
        out.append(Problem("legs", "no leg is configured"))
    seen_legs: set[tuple[str, str]] = set()
    for leg in pmodes.legs:
        path = f"legs[{leg.name}]"
        key = (leg.business_info.service.value, leg.business_info.action)
        if key in seen_legs:
            out.append(Problem(path, f"a second leg for service {key[0]!r} and action {key[1]!r}"))
        seen_legs.add(key)
        out.extend(_validate_leg(leg, path))
    if pmodes.legs and not any(leg.is_test for leg in pmodes.legs):
        out.append(Problem("legs", "the test service leg (ebMS 3 §5.2.2.9) is missing"))
    seen_parties: dict[tuple[str, str], str] = {}
    for partner in pmodes.partners:
        path = f"partners[{partner.name}]"
        if not partner.party.party_id:
            out.append(Problem(f"{path}.party.party_id", "is empty"))
        if not partner.party.party_id_type:
            out.append(
                Problem(f"{path}.party.party_id_type", "is empty (the eDelivery AS4 profile needs a PartyId type)")
            )
        for other in pmodes.partners:
            if other is not partner and other.party.party_id == partner.name:
                out.append(
                    Problem(
                        f"{path}.name",
                        f"is the party id of partners[{other.name}]: give the partner a name no party id has",
                    )
                )
        if partner.party.key in seen_parties:
            out.append(Problem(f"{path}.party", f"the same party as partners[{seen_parties[partner.party.key]}]"))
        seen_parties[partner.party.key] = partner.name
        problem = _check_url(partner.endpoint)
        if problem:
            out.append(Problem(f"{path}.endpoint", problem))
        for attr in ("signing_certificate", "encryption_certificate"):
            cert = getattr(partner, attr)
            if cert is None and require_certificates:
                out.append(Problem(f"{path}.{attr}", "is missing"))
        if partner.reception_awareness is not None:
            out.extend(_validate_awareness(partner.reception_awareness, f"{path}.reception_awareness"))
    return out


# -- Domibus PMode import ---------------------------------------------------------------------------


def _children(el: etree._Element | None, tag: str) -> list[etree._Element]:
    if el is None:
        return []
    return [c for c in el if isinstance(c.tag, str) and etree.QName(c).localname == tag]


def _child(el: etree._Element | None, tag: str) -> etree._Element | None:
    found = _children(el, tag)
    return found[0] if found else None


def _bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() == "true"


class _Importer:
    """Reads a Domibus ``db:configuration`` document, collecting every problem with its path."""

    def __init__(self, root: etree._Element, receipt_timeout: float, duplicate_window: float) -> None:
        self.root = root
        self.problems: list[Problem] = []
        self.receipt_timeout = receipt_timeout
        self.duplicate_window = duplicate_window
        bp = _child(root, "businessProcesses")
        if bp is None:
            self.problems.append(Problem("configuration", "has no businessProcesses"))
        self.bp = bp

    def named(self, container: str, tag: str, attr: str = "value") -> dict[str, str]:
        return {
            el.get("name", ""): el.get(attr, "") for el in _children(_child(self.bp, container), tag) if el.get("name")
        }

    def ref(self, table: Mapping[str, object], name: str | None, path: str) -> object | None:
        if name is None:
            self.problems.append(Problem(path, "is missing"))
            return None
        if name not in table:
            self.problems.append(Problem(path, f"refers to {name!r}, which is not defined"))
            return None
        return table[name]

    def run(self) -> PModeSet:
        bp = self.bp
        roles = self.named("roles", "role")
        id_types = {
            el.get("name", ""): el.get("value", "")
            for el in _children(_child(_child(bp, "parties"), "partyIdTypes"), "partyIdType")
        }
        meps = self.named("meps", "mep")
        bindings = self.named("meps", "binding")
        agreements = {el.get("name", ""): el for el in _children(_child(bp, "agreements"), "agreement")}
        services = {el.get("name", ""): el for el in _children(_child(bp, "services"), "service")}
        actions = self.named("actions", "action")
        securities = {el.get("name", ""): el for el in _children(_child(bp, "securities"), "security")}
        error_handlings = {el.get("name", ""): el for el in _children(_child(bp, "errorHandlings"), "errorHandling")}
        mpcs = {el.get("name", ""): el.get("qualifiedName", "") for el in _children(_child(self.root, "mpcs"), "mpc")}
        as4 = _child(bp, "as4")
        awareness = {el.get("name", ""): el for el in _children(as4, "receptionAwareness")}
        reliabilities = {el.get("name", ""): el for el in _children(as4, "reliability")}
        properties = {el.get("name", ""): el for el in _children(_child(bp, "properties"), "property")}
        property_sets = {el.get("name", ""): el for el in _children(_child(bp, "properties"), "propertySet")}

        # parties
        parties: dict[str, tuple[Party | None, str]] = {}
        for el in _children(_child(bp, "parties"), "party"):
            name = el.get("name", "")
            path = f"parties[{name}]"
            ident = _child(el, "identifier")
            party: Party | None = None
            if ident is None:
                self.problems.append(Problem(f"{path}.identifier", "is missing"))
            else:
                id_type = self.ref(id_types, ident.get("partyIdType"), f"{path}.identifier.partyIdType")
                party = Party(ident.get("partyId", ""), str(id_type or ""), GATEWAY_ROLE)
                if not party.party_id:
                    self.problems.append(Problem(f"{path}.identifier.partyId", "is empty"))
            parties[name] = (party, el.get("endpoint", ""))

        # legs
        legs: dict[str, Leg] = {}
        ra_cache: dict[str, ReceptionAwareness] = {}
        for el in _children(_child(bp, "legConfigurations"), "legConfiguration"):
            name = el.get("name", "")
            path = f"legConfigurations[{name}]"
            svc = self.ref(services, el.get("service"), f"{path}.service")
            action = self.ref(actions, el.get("action"), f"{path}.action")
            mpc = mpcs.get(el.get("defaultMpc", ""), DEFAULT_MPC) or DEFAULT_MPC
            props: list[PropertyDef] = []
            pset_name = el.get("propertySet")
            if pset_name:
                pset = self.ref(property_sets, pset_name, f"{path}.propertySet")
                if isinstance(pset, etree._Element):
                    for pref in _children(pset, "propertyRef"):
                        prop = self.ref(properties, pref.get("property"), f"propertySet[{pset_name}].propertyRef")
                        if isinstance(prop, etree._Element):
                            props.append(PropertyDef(prop.get("key", ""), _bool(prop.get("required"), False)))
            security = Security()
            sec_el = self.ref(securities, el.get("security"), f"{path}.security")
            if isinstance(sec_el, etree._Element):
                profile = sec_el.get("profile", "rsa")
                if profile != "rsa":
                    self.problems.append(
                        Problem(f"securities[{sec_el.get('name')}].profile", f"{profile!r} is not supported (rsa is)")
                    )
                security = replace(security, profile=profile)
            rel = self.ref(reliabilities, el.get("reliability"), f"{path}.reliability")
            if isinstance(rel, etree._Element):
                security = replace(
                    security,
                    send_receipt_non_repudiation=_bool(rel.get("nonRepudiation"), True),
                    send_receipt_reply_pattern=rel.get("replyPattern", "response"),
                )
            ra: ReceptionAwareness | None = None
            ra_name = el.get("receptionAwareness")
            ra_el = self.ref(awareness, ra_name, f"{path}.receptionAwareness")
            if isinstance(ra_el, etree._Element) and ra_name is not None:
                if ra_name not in ra_cache:
                    ra_cache[ra_name] = self.awareness(ra_el, f"as4.receptionAwareness[{ra_name}]")
                ra = ra_cache[ra_name]
            eh = ErrorHandling()
            eh_el = self.ref(error_handlings, el.get("errorHandling"), f"{path}.errorHandling")
            if isinstance(eh_el, etree._Element):
                eh = ErrorHandling(
                    report_as_response=_bool(eh_el.get("errorAsResponse"), True),
                    missing_receipt_notify_producer=True,
                    process_error_notify_producer=_bool(eh_el.get("businessErrorNotifyProducer"), False),
                    process_error_notify_consumer=_bool(eh_el.get("businessErrorNotifyConsumer"), False),
                    delivery_failure_notify_producer=_bool(eh_el.get("deliveryFailureNotifyProducer"), False),
                )
            service = Service("")
            if isinstance(svc, etree._Element):
                service = Service(svc.get("value", ""), svc.get("type") or None)
            legs[name] = Leg(
                name=name,
                business_info=BusinessInfo(service, str(action or ""), tuple(props), mpc),
                security=security,
                reception_awareness=ra,
                error_handling=eh,
                payload_service=PayloadService(GZIP if _bool(el.get("compressPayloads"), True) else None),
            )

        # processes: which legs and parties take part
        own_name = self.root.get("party")
        chosen_legs: dict[str, Leg] = {}
        partner_names: list[str] = []
        agreement: str | None = None
        mep, binding = MEP_ONE_WAY, MEP_PUSH
        processes = _children(bp, "process")
        if not processes:
            self.problems.append(Problem("businessProcesses", "has no process"))
        for proc in processes:
            pname = proc.get("name", "")
            path = f"process[{pname}]"
            ag = self.ref(agreements, proc.get("agreement"), f"{path}.agreement") if proc.get("agreement") else None
            if isinstance(ag, etree._Element) and ag.get("value"):
                agreement = ag.get("value")
            mep = str(self.ref(meps, proc.get("mep"), f"{path}.mep") or MEP_ONE_WAY)
            binding = str(self.ref(bindings, proc.get("binding"), f"{path}.binding") or MEP_PUSH)
            for attr in ("initiatorRole", "responderRole"):
                self.ref(roles, proc.get(attr), f"{path}.{attr}")
            for group, tag in (("initiatorParties", "initiatorParty"), ("responderParties", "responderParty")):
                for pe in _children(_child(proc, group), tag):
                    pn = pe.get("name", "")
                    if self.ref(parties, pn, f"{path}.{group}[{pn}]") is not None and pn not in partner_names:
                        partner_names.append(pn)
            for le in _children(_child(proc, "legs"), "leg"):
                ln = le.get("name", "")
                leg = self.ref(legs, ln, f"{path}.legs[{ln}]")
                if isinstance(leg, Leg):
                    chosen_legs[ln] = leg

        if own_name is None:
            self.problems.append(Problem("configuration.party", "is missing (the name of this access point's party)"))
        own_entry = parties.get(own_name or "")
        own: Party | None = own_entry[0] if own_entry else None
        if own_name is not None and own_entry is None:
            self.problems.append(Problem("configuration.party", f"refers to {own_name!r}, which is not defined"))
        role = roles.get(next(iter(roles), ""), GATEWAY_ROLE) or GATEWAY_ROLE
        partners: list[Partner] = []
        for pn in partner_names:
            party, endpoint = parties[pn]
            if party is None:
                continue
            partners.append(Partner(name=pn, party=replace(party, role=role), endpoint=endpoint))
        if self.problems:
            lines = "; ".join(str(p) for p in self.problems)
            raise ConfigError(
                f"the Domibus PMode has {len(self.problems)} problem(s): {lines}",
                [(p.path, p.message) for p in self.problems],
            )
        assert own is not None
        first_ra = next((leg.reception_awareness for leg in chosen_legs.values() if leg.reception_awareness), None)
        return PModeSet(
            own=replace(own, role=role),
            partners=tuple(partners),
            legs=tuple(chosen_legs.values()),
            agreement=agreement,
            mep=mep,
            mep_binding=binding,
            reception_awareness=first_ra or ReceptionAwareness(),
        )

    def awareness(self, el: etree._Element, path: str) -> ReceptionAwareness:
        retry_text = el.get("retry")
        retry = RetrySchedule(receipt_timeout=self.receipt_timeout)
        if retry_text is not None:
            try:
                retry = RetrySchedule.parse_domibus(retry_text, receipt_timeout=self.receipt_timeout)
            except ValueError as exc:
                self.problems.append(Problem(f"{path}.retry", str(exc)))
        dup = DuplicateDetection(_bool(el.get("duplicateDetection"), True), self.duplicate_window)
        return ReceptionAwareness(True, retry, dup)


def load_domibus_pmode(
    data: bytes, *, receipt_timeout: float = 60.0, duplicate_window: float = 7 * 24 * 3600.0
) -> PModeSet:
    """Import a Domibus PMode XML document (``db:configuration``) into a :class:`PModeSet`.

    The access point's own party is the configuration's ``party`` attribute; every party named in a
    process becomes a partner (ourselves included, as Domibus lets a party send to itself). Domibus
    keeps certificates in its key stores, so partners come without them: add them with
    :meth:`PModeSet.with_partners` or through the settings. Raises :class:`ConfigError` listing every
    problem with its path.
    """
    try:
        root = xmlsafe.parse(data)
    except XmlError as exc:
        raise ConfigError(f"the Domibus PMode is not usable XML: {exc.message}") from None
    if etree.QName(root).namespace != _DOMIBUS_NS or etree.QName(root).localname != "configuration":
        raise ConfigError(f"not a Domibus PMode: the root element must be {{{_DOMIBUS_NS}}}configuration")
    return _Importer(root, receipt_timeout, duplicate_window).run()


# -- from settings ----------------------------------------------------------------------------------


def _read_certificates(path: Path, where: str, problems: list[Problem]) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        problems.append(Problem(where, f"cannot read {path}: {exc.strerror}"))
        return []
    try:
        if b"-----BEGIN" in data:
            return list(x509.load_pem_x509_certificates(data))
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        problems.append(Problem(where, f"{path} holds no X.509 certificate"))
        return []


def _one_certificate(path: Path | None, where: str, problems: list[Problem]) -> x509.Certificate | None:
    if path is None:
        return None
    certs = _read_certificates(path, where, problems)
    return certs[0] if certs else None


def pmodes_from_settings(settings: As4Settings, *, base_dir: Path | None = None) -> PModeSet:
    """Build the :class:`PModeSet` of the ``[as4]`` settings (reads the certificate and PMode files named there).

    Relative paths are taken from ``base_dir`` (:meth:`~oots.settings.As4Settings.resolved`; default: the
    working directory). A ``pmode_file`` (a Domibus PMode) supplies the legs and the partners' endpoints;
    ``[[as4.partners]]`` entries add partners or complete those of the file (same name) with certificates
    and endpoints.
    """
    settings = settings.resolved(base_dir)
    problems: list[Problem] = []

    retry = RetrySchedule(
        tuple(float(x) for x in settings.retry_offsets_seconds), float(settings.receipt_timeout_seconds)
    )
    dup = DuplicateDetection(settings.duplicate_detection, float(settings.duplicate_window_seconds))
    default_ra = ReceptionAwareness(True, retry, dup)
    if settings.pmode_file is not None:
        path = settings.pmode_file
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"as4.pmode_file: cannot read {path}: {exc.strerror}") from None
        base_set = load_domibus_pmode(
            data,
            receipt_timeout=float(settings.receipt_timeout_seconds),
            duplicate_window=float(settings.duplicate_window_seconds),
        )
        base_set = replace(base_set, own=Party(settings.party_id, settings.party_id_type, settings.role))
    else:
        base_set = PModeSet(
            own=Party(settings.party_id, settings.party_id_type, settings.role),
            partners=(),
            legs=oots_legs(),
            reception_awareness=default_ra,
        )
    partners = {p.name: p for p in base_set.partners if p.party.key != base_set.own.key}
    for i, ps in enumerate(settings.partners):
        where = f"as4.partners[{i}]"
        existing = partners.get(ps.name)
        party = Party(
            ps.party_id or (existing.party.party_id if existing else ps.name), ps.party_id_type, settings.role
        )
        anchors: list[x509.Certificate] = []
        for j, anchor in enumerate(ps.trust_anchors):
            anchors.extend(_read_certificates(anchor, f"{where}.trust_anchors[{j}]", problems))
        ra = None
        if ps.retry_offsets_seconds is not None:
            ra = replace(default_ra, retry=replace(retry, offsets=tuple(float(x) for x in ps.retry_offsets_seconds)))
        partners[ps.name] = Partner(
            name=ps.name,
            party=party,
            endpoint=ps.endpoint or (existing.endpoint if existing else ""),
            signing_certificate=_one_certificate(ps.signing_certificate, f"{where}.signing_certificate", problems),
            encryption_certificate=_one_certificate(
                ps.encryption_certificate or ps.signing_certificate, f"{where}.encryption_certificate", problems
            ),
            trust_anchors=tuple(anchors),
            reception_awareness=ra,
        )
    if problems:
        lines = "; ".join(str(p) for p in problems)
        raise ConfigError(
            f"the [as4] settings have {len(problems)} problem(s): {lines}", [(p.path, p.message) for p in problems]
        )
    return replace(base_set, partners=tuple(partners.values()), reception_awareness=default_ra)
