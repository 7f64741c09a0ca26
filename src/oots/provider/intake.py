"""The provider's intake: one received evidence request in, one EDM answer out (no I/O of its own).

:meth:`Intake.answer` takes the request payload as it came over AS4 and the ebMS timestamp of its
message, and decides:

* the payload is too large, not XML, not an evidence request, or breaks the official rules
  (``oots.validation``) → ``EDM:ERR:0003`` naming the violated rule ids, and the request's id whenever
  its root element can be read (:func:`oots.xmlsafe.parse_head`, :func:`oots.edm.read_request_head`);
* a name of the request's person (or authorized representative) is longer than
  :data:`oots.edm.PERSON_NAME_CHARACTERS`, another text than :data:`oots.edm.PERSON_TEXT_CHARACTERS`, a
  list has more than :data:`oots.edm.PERSON_LIST_ITEMS` items → ``EDM:ERR:0003`` naming the field
  (the requester's own limits);
* the deadline (``[provider] answer_deadline_seconds`` from the ebMS timestamp) has passed →
  ``EDM:ERR:0005``;
* no data service of this node has the requested identifier or evidence type → ``EDM:ERR:0006`` (the
  evidence type it references cannot be resolved here; ``EDM:ERR:0004`` would tell the requester that
  the person has no record);
* the service does not issue for the evidence provider (DSD publisher) the request names →
  ``EDM:ERR:0006`` (the reference cannot be resolved);
* the service refuses (:class:`~oots.provider.dataservice.EvidenceRefused`: no or several matching
  records, level of assurance, format, subject kind) → its code;
* the request allows a preview and the service's policy asks for one → with a preview space
  (``preview=True``), :meth:`Intake.receive` gives :class:`PreviewDue` (the evidence is rendered, the
  role opens the preview and answers ``EDM:ERR:0002``); without one, ``EDM:ERR:0007``;
* the request carries a PreviewLocation (the second request of a preview) → :class:`PreviewFollowUp`
  for the role to hold (see :mod:`oots.provider.preview`);
* the register fails → ``EDM:ERR:0008``, times out → ``EDM:ERR:0005``; the record cannot be made into
  a valid document (a required field missing, a bad date) → ``EDM:ERR:0008``; anything else failing
  → ``EDM:ERR:0008`` — each answered at once and logged with its reason (:meth:`Intake.failed`);
* otherwise an ``ExecuteQueryResponse`` with one attachment per evidence document.

The result (:class:`Answer`) carries the ebMS action, the payloads and a reason code for the journal
(never personal data). Sending it is the role's business (:mod:`oots.provider.role`).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from oots import edm, xmlsafe
from oots.as4 import profile
from oots.as4.model import Payload
from oots.edm import (
    Agent,
    LegalPerson,
    Person,
    QueryError,
    QueryRequest,
    QueryResponse,
    RequestHead,
    Text,
)
from oots.errors import ModelError, RegisterError, RegisterUnavailable, ValidationFailed, XmlError, error_text
from oots.provider.dataservice import DataService, EvidenceRefused, ProvidedEvidence, Provision
from oots.validation import Validator

__all__ = ["Answer", "Intake", "PreviewDue", "PreviewFollowUp", "service_agent", "subject_identifier"]

log = logging.getLogger(__name__)

#: Reason codes whose EDM code cannot travel as such: EDM:ERR:0002 is reserved for PreviewRequired.
_WIRE_CODE = {"REFUSED:PREVIEW_NOT_POSSIBLE": "EDM:ERR:0003"}


@dataclass(frozen=True)
class Answer:
    """What goes back for one request: the document, its ebMS action and payloads, and the outcome."""

    document: QueryResponse | QueryError
    payloads: tuple[Payload, ...]
    #: ``None`` for evidence, else the ``EDM:ERR`` code sent.
    code: str | None
    #: Why (for the journal; no personal data): ``MATCH:…``, ``NO_MATCH:…``, ``INVALID:…``, ….
    reason: str
    request: QueryRequest | None = None
    service: DataService | None = None
    #: Identifier of the subject the request is about (for the journal's person index), if any.
    subject_identifier: str | None = None
    evidence_ids: tuple[str, ...] = field(default=())

    @property
    def rejected(self) -> bool:
        """Whether the request was refused before it was looked at: unreadable, against the rules, a person
        text over the limits (``INVALID:…``). Such a request was not accepted, even if it could be read."""
        return self.request is None or self.reason.startswith("INVALID:")

    @property
    def action(self) -> str:
        return (
            profile.ACTION_EXECUTE_QUERY_RESPONSE
            if isinstance(self.document, QueryResponse)
            else profile.ACTION_EXCEPTION_RESPONSE
        )


@dataclass(frozen=True)
class PreviewDue:
    """A first request whose evidence must be previewed: matched and rendered, not yet sent."""

    request: QueryRequest
    service: DataService
    provision: Provision


@dataclass(frozen=True)
class PreviewFollowUp:
    """A valid request carrying a PreviewLocation: the second request of a preview, to be held."""

    request: QueryRequest
    service: DataService


def service_agent(service: DataService) -> Agent:
    """The evidence provider of ``service`` as an ``sdg:Agent`` (its issuing authority, every name)."""
    return service.authority_agent()


def _subject(request: QueryRequest) -> Person | LegalPerson:
    subject = request.natural_person or request.legal_person
    assert subject is not None  # QueryRequest guarantees exactly one
    return subject


def _head(data: bytes) -> RequestHead | None:
    """The id (version, requester) of a request refused before it could be read whole, if its head tells."""
    root = xmlsafe.parse_head(data)
    return None if root is None else edm.read_request_head(root)


def _oversized(request: QueryRequest) -> str | None:
    """Which text or list of the request's persons is over the limits a requester holds them to
    (:mod:`oots.edm.limits`), named by its field (``natural_person.family_name is longer than 200
    characters``); ``None`` when all are within them."""
    persons = (
        ("natural_person", request.natural_person),
        ("legal_person", request.legal_person),
        ("authorized_representative", request.authorized_representative),
    )
    for where, person in persons:
        if person is not None:
            try:
                edm.check_subject_sizes(person, where)
            except ModelError as exc:
                return exc.message
    return None


def subject_identifier(request: QueryRequest) -> str | None:
    if request.natural_person is not None and request.natural_person.identifier is not None:
        return request.natural_person.identifier.value
    if request.legal_person is not None and request.legal_person.legal_person_identifier is not None:
        return request.legal_person.legal_person_identifier.value
    return None


class Intake:
    """Answers evidence requests for a node's data services (see the module docstring)."""

    def __init__(
        self,
        services: Sequence[DataService],
        *,
        deadline: dt.timedelta = dt.timedelta(seconds=300),
        max_request_bytes: int = 1_000_000,
        content_domain: str = "provider.oots",
        validator: Validator | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        preview: bool = False,
    ) -> None:
        self.services = tuple(services)
        #: Whether the node runs a preview space (``receive`` then gives preview steps).
        self.preview = preview
        #: Rule ids not held against a request: only ``R-EDM-REQ-C005`` (https PreviewLocation), and only
        #: on a loopback demo network whose preview space runs plain http.
        self.tolerated_rules: frozenset[str] = frozenset()
        self.deadline = deadline
        self.max_request_bytes = max_request_bytes
        self.content_domain = content_domain
        self.validator = validator or Validator()
        self.clock = clock
        self._by_id = {s.identifier: s for s in self.services}
        self._by_type = {edm.sr_url(s.evidence_type_classification, v2=False): s for s in self.services}

    def own_agent(self) -> Agent | None:
        """This node as the ``ErrorProvider`` of an error to a request that names no evidence provider
        (unreadable, or cut before its EvidenceProvider slot): the authority of its first data service.
        Every error carries one (R-EDM-ERR-S11)."""
        return service_agent(self.services[0]) if self.services else None

    # --- the service asked for ---------------------------------------------------------------------
    def find_service(self, request: QueryRequest) -> DataService | None:
        """The data service asked for (by its identifier, else by its evidence type), as it is configured:
        see :meth:`DataService.issues_for` and :meth:`DataService.for_provider` for the authority."""
        wanted = request.evidence_request
        service = self._by_id.get(wanted.identifier) if wanted.identifier else None
        if service is None:
            service = self._by_type.get(edm.sr_url(wanted.evidence_type_classification or "", v2=False))
        return service

    # --- decisions ---------------------------------------------------------------------------------
    def answer(self, data: bytes, *, sent: dt.datetime) -> Answer:
        """The answer to the request ``data`` whose ebMS message was created at ``sent`` (no preview)."""
        result = self.receive(data, sent=sent, preview=False)
        assert isinstance(result, Answer)
        return result

    def refuse(self, data: bytes, reason: str, detail: str) -> Answer:
        """``EDM:ERR:0003`` for the request ``data`` refused for what its message carried around it (an
        ebMS value the node cannot keep), answered with the request's id and requester when its head tells."""
        return self.error("EDM:ERR:0003", _head(data), None, reason, detail=detail)

    def receive(
        self, data: bytes, *, sent: dt.datetime, preview: bool | None = None
    ) -> Answer | PreviewDue | PreviewFollowUp:
        """The answer to the request ``data``, or the preview step it starts or continues."""
        preview = self.preview if preview is None else preview
        request: QueryRequest | None = None
        if len(data) > self.max_request_bytes:
            head = _head(data)
            return self.error("EDM:ERR:0003", head, None, "INVALID:TOO_LARGE", detail="The request is too large.")
        try:
            report, root = self.validator.validate_document(data)
        except XmlError:
            head = _head(data)
            return self.error("EDM:ERR:0003", head, None, "INVALID:XML", detail="The request is not acceptable XML.")
        try:
            document = edm.parse_element(root)  # the tree the validator parsed: the request is parsed once
        except (XmlError, ModelError) as exc:
            rules = sorted(report.rule_ids(blocking_only=True))
            detail = "Violated rules: " + ", ".join(rules) if rules else f"The request is not valid: {exc}"
            head = edm.read_request_head(root)
            return self.error("EDM:ERR:0003", head, None, "INVALID:MODEL", detail=detail[:2000])
        if not isinstance(document, QueryRequest):
            return self.error("EDM:ERR:0003", None, None, "INVALID:NOT_A_REQUEST", detail="Not an evidence request.")
        request = document
        if report.rule_ids(blocking_only=True) - self.tolerated_rules:
            rules = sorted(report.rule_ids(blocking_only=True))
            return self.error(
                "EDM:ERR:0003",
                request,
                None,
                "INVALID:RULES",
                detail=("Violated rules: " + ", ".join(rules))[:2000],
            )
        oversized = _oversized(request)
        if oversized is not None:
            answer = self.error(
                "EDM:ERR:0003",
                request,
                None,
                "INVALID:PERSON_TOO_LONG",
                detail=f"The request is not acceptable: {oversized}.",
            )
            return replace(answer, subject_identifier=None)  # no oversized identifier in the person index
        if self.clock() > sent + self.deadline:
            return self.error("EDM:ERR:0005", request, None, "TIMEOUT:DEADLINE", detail="The request came too late.")
        service = self.find_service(request)
        if service is None:
            return self.error(
                "EDM:ERR:0006",
                request,
                None,
                "UNKNOWN:EVIDENCE_TYPE",
                detail="This evidence provider offers no data service for the evidence type requested.",
            )
        named = request.evidence_provider.identifier
        if not service.issues_for(named.value, named.scheme_id):
            return self.error(
                "EDM:ERR:0006",
                request,
                service,
                "UNKNOWN:EVIDENCE_PROVIDER",
                detail="This data service does not issue evidence for the evidence provider the request names; "
                "ask again with a publisher the Data Service Directory lists for it.",
            )
        service = service.for_provider(named.value, named.scheme_id)
        if request.preview_location is not None:
            if not preview:
                return self.error(
                    "EDM:ERR:0003",
                    request,
                    service,
                    "PREVIEW:UNKNOWN_LOCATION",
                    detail="The PreviewLocation does not name a preview of this evidence provider.",
                )
            return PreviewFollowUp(request, service)
        return self.provide(request, service, preview=preview)

    def provide(self, request: QueryRequest, service: DataService, *, preview: bool = False) -> Answer | PreviewDue:
        """Identify, render and answer; every refusal becomes its documented EDM error."""
        try:
            previewed = service.preview_needed(request.possibility_for_preview)
            if previewed and not preview:
                # No preview space on this node: never send evidence that should have been previewed.
                return self.error(
                    "EDM:ERR:0007",
                    request,
                    service,
                    "PREVIEW:UNAVAILABLE",
                    detail="This evidence provider cannot offer a preview; ask again without preview.",
                )
            provision = service.provide(
                _subject(request), request.evidence_request.distributed_as, language=request.language
            )
        except EvidenceRefused as exc:
            code = _WIRE_CODE.get(exc.reason, exc.code or "EDM:ERR:0008")
            return self.error(code, request, service, exc.reason, detail=exc.message)
        except Exception as exc:  # every failure is answered: the requester must not wait for its timeout
            return self.failed(request, service, exc)
        if previewed:
            return PreviewDue(request, service, provision)
        return self.evidence(request, service, provision.evidences, provision.match.reason)

    def failed(self, request: QueryRequest, service: DataService, exc: Exception) -> Answer:
        """The answer to a failure of the register or of rendering, and a warning with its reason.

        The answer is given at once, not retried (the requester may ask again): a timeout of the
        register → ``EDM:ERR:0005``; anything else → ``EDM:ERR:0008``. The EDM detail says only what
        failed; the log names the service, the exception type and its message (registers never put
        personal data in their messages; :func:`oots.errors.error_text` keeps only the type of a
        foreign exception raised outside the register)."""
        if isinstance(exc, RegisterUnavailable):
            code, reason = "EDM:ERR:0008", "REGISTER:UNAVAILABLE"
            detail = "The register is unavailable for now."
        elif isinstance(exc, RegisterError):
            code, reason = ("EDM:ERR:0005", "REGISTER:TIMEOUT") if exc.timeout else ("EDM:ERR:0008", "REGISTER:FAILED")
            detail = "The register timed out." if exc.timeout else "The register failed."
        elif isinstance(exc, ValidationFailed):
            code, reason = "EDM:ERR:0008", "EVIDENCE:INVALID"
            detail = "The register's record cannot be made into a valid evidence document."
        else:
            code, reason = "EDM:ERR:0008", "PROVIDER:FAILED"
            detail = "The evidence provider failed."
        why = error_text(exc)
        log.warning("provider: data service %s: %s, answered %s (%s)", service.identifier, why, code, reason)
        return self.error(code, request, service, reason, detail=detail)

    def evidence(
        self,
        request: QueryRequest,
        service: DataService,
        evidences: Sequence[ProvidedEvidence],
        reason: str,
        *,
        keep: Sequence[str] | None = None,
    ) -> Answer:
        """The ``ExecuteQueryResponse`` with ``evidences`` (only those in ``keep``; none is an empty
        response, as the Projectathon's TC08 answers a preview the user refused)."""
        payloads: list[Payload] = []
        items: list[edm.ResponseEvidence] = []
        kept: list[str] = []
        for provided in evidences:
            if keep is not None and provided.metadata.identifier not in keep:
                continue
            content_id = f"{uuid.uuid4().hex}@{self.content_domain}"
            payloads.append(Payload(content_id, provided.document.media_type, provided.document.content))
            items.append(
                edm.response_evidence(
                    provided.metadata,
                    f"cid:{content_id}",
                    title=provided.document.filename,
                    node="Annex" if provided.annex else "MainEvidence",
                )
            )
            kept.append(provided.metadata.identifier)
        response = edm.evidence_response(request, provider=service_agent(service), evidences=items)
        body = Payload(
            f"regrep{uuid.uuid4().hex}@{self.content_domain}", profile.REGREP_MIME_TYPE, edm.to_xml(response)
        )
        return Answer(
            response,
            (body, *payloads),
            None,
            reason,
            request,
            service,
            subject_identifier(request),
            tuple(kept),
        )

    def error(
        self,
        code: str,
        request: QueryRequest | RequestHead | None,
        service: DataService | None,
        reason: str,
        *,
        detail: str | None = None,
    ) -> Answer:
        """An ``ExceptionResponse`` of ``code`` (the request's version, or v2.0 when unknown); a request
        read only in part (:class:`~oots.edm.RequestHead`) is answered with its id all the same. The
        ``ErrorProvider`` is the service's authority, else the evidence provider the request names,
        else this node's own (:meth:`own_agent`)."""
        if service is not None:
            provider: Agent | None = service_agent(service)
        elif request is not None and request.evidence_provider is not None:
            provider = request.evidence_provider
        else:
            provider = self.own_agent()
        document = edm.query_error(code, request=request, error_provider=provider, detail=detail)
        return self.wrap_error(document, request if isinstance(request, QueryRequest) else None, service, reason)

    def preview_required(
        self, request: QueryRequest, service: DataService, location: str, *, allow_http: bool = False
    ) -> Answer:
        """``EDM:ERR:0002`` PreviewRequired sending the user to ``location`` (GET or POST)."""
        titles = [Text(f"Please look at your {service.title('EN')} and accept or refuse to send it.", "EN")]
        document = edm.preview_required(
            request,
            location=location,
            error_provider=service_agent(service),
            method="GET",
            description=titles,
            detail="The evidence is sent only after the person it is about has previewed and accepted it.",
            allow_http=allow_http,
        )
        return self.wrap_error(document, request, service, "PREVIEW:REQUIRED")

    def wrap_error(
        self, document: QueryError, request: QueryRequest | None, service: DataService | None, reason: str
    ) -> Answer:
        body = Payload(
            f"regrep{uuid.uuid4().hex}@{self.content_domain}", profile.REGREP_MIME_TYPE, edm.to_xml(document)
        )
        subject = subject_identifier(request) if request is not None else None
        return Answer(document, (body,), document.code, reason, request, service, subject)
