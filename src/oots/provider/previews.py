"""The previews a provider node holds open: rows, jobs and answers (the database side of the preview space).

:class:`Previews` takes the steps of :mod:`oots.provider.preview` inside the caller's transaction:

* :meth:`Previews.open` — a first request whose evidence must be previewed: the rendered documents
  and the preview row are stored, a timeout job is queued for the deadline, and the ``EDM:ERR:0002``
  answer (with the PreviewLocation) is returned for the role to send;
* :meth:`Previews.follow_up` — the second request: refused with its EDM error, or **held** (stored,
  not answered; ``None``) until the user decides or the deadline passes;
* :meth:`Previews.decide` — the user's decision in the preview space;
* the jobs :data:`ANSWER_JOB` (decision and held request both there: send the accepted evidence, an
  empty response when none was accepted, or ``EDM:ERR:0004`` when the person who logged in is not the
  subject) and :data:`EXPIRE_JOB` (deadline passed: a held request gets ``EDM:ERR:0005``);
* :meth:`Previews.purge` — the retention bound, run by the provider role's periodic work in every
  worker: a preview still open ``retention`` after its deadline (its answer could not be sent and its
  dead job was never requeued, or its timeout job was lost) is closed unanswered (``expired``, outcome
  :data:`PURGED`) and its personal data deleted, a batch per transaction.

Nothing waits in memory and no worker blocks: a held request is a row; the answer goes out from the
queue job that finds both halves. When a preview closes its documents and the personal data it held
(the subject, the held request) are deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ScalarResult, delete, null, select
from sqlalchemy.orm import Session

from oots import edm
from oots.audit.journal import Entry, Event, Journal, Side
from oots.errors import ModelError, XmlError, error_text
from oots.provider.dataservice import DataService, ProvidedEvidence
from oots.provider.intake import Answer, Intake, PreviewDue, PreviewFollowUp
from oots.provider.models import ProviderPreview, ProviderPreviewDocument
from oots.provider.preview import (
    OPEN,
    PreviewClosed,
    PreviewEvent,
    PreviewState,
    Routing,
    allowed_return,
    fingerprint,
    is_loopback,
    location_of,
    new_token,
    next_state,
    token_from_location,
    token_key,
    valid_token,
)
from oots.provider.render import RenderedDocument
from oots.store.queue import Job, cancel, enqueue

__all__ = [
    "ANSWER_JOB",
    "ANSWER_NOT_SENT",
    "EXPIRE_JOB",
    "NOT_THE_SUBJECT",
    "PURGED",
    "PURGE_BATCH",
    "RETIRED_PURGE_JOB",
    "Previews",
    "Sender",
    "subject_from_row",
]

log = logging.getLogger(__name__)

ANSWER_JOB = "provider.preview_answer"
EXPIRE_JOB = "provider.preview_expire"
#: The queue job that ran the retention purge before it was the role's periodic work: nothing queues it
#: any more; the provider's workers complete the ones an older version left, doing nothing.
RETIRED_PURGE_JOB = "provider.preview_purge"

#: Previews one purge closes in its transaction; after a full batch the next runs at once.
PURGE_BATCH = 50

#: The outcome of a preview closed by the retention bound (journalled as ``timeout``, ``PREVIEW:RETENTION``).
PURGED = "purged"

#: The journal's outcome of ``exchange_failed`` when an answer could not be sent (the requester's
#: certificate is not valid): the job is dead-lettered, and answers once requeued.
ANSWER_NOT_SENT = "answer_not_sent"

#: The decision recorded when the person who logged in is not the request's subject.
NOT_THE_SUBJECT = "not_the_subject"

#: ``send(session, routing, answer)`` submits an answer over AS4 and returns the reply's message id.
Sender = Callable[[Session, Routing, Answer], str]

_UNKNOWN = "The PreviewLocation does not name an open preview of this conversation."


def subject_from_row(row: ProviderPreview) -> edm.Person | edm.LegalPerson | None:
    """The request's subject a preview row keeps (None once the preview is closed)."""
    data = row.subject
    if not isinstance(data, dict):
        return None
    if "natural_person" in data:
        return edm.object_from_json(edm.Person, data["natural_person"])
    return edm.object_from_json(edm.LegalPerson, data["legal_person"])


@dataclass(frozen=True)
class ShownDocument:
    """One document of a preview as the page shows it."""

    position: int
    evidence_id: str
    title: str
    media_type: str
    filename: str
    annex: bool
    content: bytes


class Previews:
    """The preview rows of one provider node (see the module docstring)."""

    def __init__(
        self,
        intake: Intake,
        journal: Journal,
        *,
        base_url: str,
        timeout: dt.timedelta,
        return_origins: Sequence[str],
        clock: Callable[[], dt.datetime],
        retention: dt.timedelta = dt.timedelta(days=7),
    ) -> None:
        self.intake = intake
        self.journal = journal
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        #: How long past its deadline an open preview is kept before :meth:`purge` closes it.
        self.retention = retention
        self.return_origins = tuple(return_origins)
        self.clock = clock
        #: Plain http only on a loopback demo network (the requester must allow it too).
        self.allow_http = self.base_url.startswith("http://") and is_loopback(self.base_url)

    # --- the first request --------------------------------------------------------------------------
    def open(self, session: Session, due: PreviewDue, routing: Routing, *, message_id: str, party: str) -> Answer:
        """Store the rendered evidence and the preview; the ``EDM:ERR:0002`` answer to send."""
        token = new_token()
        key = token_key(token)
        request = due.request
        subject = request.natural_person or request.legal_person
        kind = "natural_person" if request.natural_person is not None else "legal_person"
        now = self.clock()
        row = ProviderPreview(
            key=key,
            state=PreviewState.AWAITING.value,
            conversation_id=routing.conversation_id,
            requester_party=party,
            first_request_id=request.id,
            first_message_id=message_id,
            data_service=due.service.identifier,
            authority=due.service.authority.identifier,
            specification=request.specification.value,
            fingerprint=fingerprint(request),
            match_reason=due.provision.match.reason,
            subject={kind: edm.object_to_json(subject)},
            created_at=now,
            deadline=now + self.timeout,
        )
        session.add(row)
        for n, provided in enumerate(due.provision.evidences):
            doc = provided.document
            session.add(
                ProviderPreviewDocument(
                    preview_key=key,
                    position=n,
                    evidence_id=provided.metadata.identifier,
                    annex=provided.annex,
                    media_type=doc.media_type,
                    filename=doc.filename,
                    title=doc.title,
                    language=doc.language,
                    conforms_to=doc.conforms_to,
                    metadata_json=edm.object_to_json(provided.metadata),
                    content=doc.content,
                )
            )
        session.flush()
        enqueue(session, EXPIRE_JOB, {"preview": key}, key=_expire_key(key), run_at=row.deadline, now=now)
        location = location_of(self.base_url, token)
        return self.intake.preview_required(request, due.service, location, allow_http=self.allow_http)

    # --- the second request -------------------------------------------------------------------------
    def follow_up(
        self, session: Session, follow: PreviewFollowUp, routing: Routing, *, message_id: str, party: str
    ) -> Answer | None:
        """Hold the second request of a preview (``None``), or the error answering it at once."""
        request, service = follow.request, follow.service
        assert request.preview_location is not None
        token = token_from_location(request.preview_location, self.base_url)
        row = self._locked(session, token_key(token)) if token else None
        if (
            row is None
            or row.conversation_id != routing.conversation_id
            or row.requester_party != party
            or row.data_service != service.identifier
            or row.fingerprint != fingerprint(request)
            or (row.authority is not None and row.authority != service.authority.identifier)
        ):
            return self.intake.error("EDM:ERR:0003", request, service, "PREVIEW:UNKNOWN", detail=_UNKNOWN)
        state = PreviewState(row.state)
        now = self.clock()
        if state is PreviewState.EXPIRED or (state in OPEN and now >= row.deadline):
            if state in OPEN:
                self._close(session, row, PreviewState.EXPIRED, "EDM:ERR:0005")
                self._journal(session, row, Event.TIMEOUT, "expired", {"reason": "PREVIEW:TIMEOUT"})
            return self.intake.error(
                "EDM:ERR:0005", request, service, "PREVIEW:TIMEOUT", detail="The preview was not finished in time."
            )
        try:
            new = next_state(state, PreviewEvent.REQUEST)
        except PreviewClosed:
            return self.intake.error(
                "EDM:ERR:0003",
                request,
                service,
                "PREVIEW:USED",
                detail="This PreviewLocation was already used by another request.",
            )
        if request.return_location is not None and allowed_return(request.return_location, self.return_origins) is None:
            self._close(session, row, PreviewState.ANSWERED, "EDM:ERR:0003")
            return self.intake.error(
                "EDM:ERR:0003",
                request,
                service,
                "PREVIEW:RETURN_LOCATION",
                detail="The ReturnLocation is not the address of a requester portal this provider knows.",
            )
        row.state = new.value
        row.held_at = now
        row.request_payload = edm.to_xml(request)
        row.request_message_id = message_id
        row.routing = routing.to_json()
        if request.return_location is not None:
            row.return_location = request.return_location
        if new is PreviewState.READY:
            enqueue(session, ANSWER_JOB, {"preview": row.key}, key=f"{row.key}:answer", now=self.clock())
        return None

    # --- the preview space --------------------------------------------------------------------------
    def find(self, session: Session, token: str) -> ProviderPreview | None:
        """The open preview of ``token`` (None when unknown, closed or past its deadline)."""
        if not valid_token(token):
            return None
        row = session.get(ProviderPreview, token_key(token))
        if row is None or PreviewState(row.state) not in OPEN or self.clock() >= row.deadline:
            return None
        return row

    def documents(self, session: Session, row: ProviderPreview) -> list[ShownDocument]:
        rows = _document_rows(session, row)
        return [
            ShownDocument(d.position, d.evidence_id, d.title, d.media_type, d.filename, d.annex, d.content)
            for d in rows
        ]

    def service_of(self, row: ProviderPreview) -> DataService | None:
        """The preview's data service, issuing as the authority its first request named."""
        service = next((s for s in self.intake.services if s.identifier == row.data_service), None)
        return service.for_provider(row.authority) if service is not None else None

    def remember_return(self, session: Session, token: str, url: str) -> bool:
        """Keep ``url`` as where to send the user back (v1.x: the requester names it on the way in, as
        a ``returnurl`` parameter; a v2.0 ReturnLocation is never replaced). Only allowed portals."""
        allowed = allowed_return(url, self.return_origins)
        row = self._locked(session, token_key(token)) if valid_token(token) and allowed else None
        if row is None or PreviewState(row.state) not in OPEN or row.return_location is not None:
            return False
        row.return_location = allowed
        return True

    def shown(self, session: Session, token: str) -> None:
        """Journal the first time the user sees the evidence."""
        row = self._locked(session, token_key(token))
        if row is None or row.shown_at is not None:
            return
        row.shown_at = self.clock()
        self._journal(session, row, Event.PREVIEW_SHOWN, "shown", {"documents": self._count(session, row)})

    def decide(self, session: Session, token: str, *, accepted: Sequence[str] | None, decision: str) -> ProviderPreview:
        """Record the user's decision (``accepted`` evidence ids); raise PreviewClosed when too late."""
        row = self._locked(session, token_key(token)) if valid_token(token) else None
        if row is None or self.clock() >= row.deadline:
            raise PreviewClosed("this preview is closed", code="closed")
        new = next_state(PreviewState(row.state), PreviewEvent.DECISION)
        row.state = new.value
        row.decision = decision
        row.accepted = list(accepted or [])
        row.decided_at = self.clock()
        self._journal(
            session,
            row,
            Event.PREVIEW_DECISION,
            decision,
            {"accepted": list(accepted or []), "documents": self._count(session, row)},
        )
        if new is PreviewState.READY:
            enqueue(session, ANSWER_JOB, {"preview": row.key}, key=f"{row.key}:answer", now=self.clock())
        return row

    # --- jobs ----------------------------------------------------------------------------------------
    def answer_job(self, send: Sender) -> Callable[[Session, Job], None]:
        def run(session: Session, job: Job) -> None:
            self.answer(session, str(job.payload["preview"]), send)

        return run

    def expire_job(self, send: Sender) -> Callable[[Session, Job], None]:
        def run(session: Session, job: Job) -> None:
            self.expire(session, str(job.payload["preview"]), send)

        return run

    def answer(self, session: Session, key: str, send: Sender) -> None:
        """Answer the held request of a decided preview (the job :data:`ANSWER_JOB`)."""
        row = self._locked(session, key)
        if row is None or row.state != PreviewState.READY.value:
            _requeued_too_late(row)
            return
        request = self._held_request(row)
        service = self.service_of(row)
        routing = Routing.from_json(row.routing or {})
        if request is None or service is None:
            log.error("preview %s: the held request or its data service is gone; closing it", key[:12])
            self._close(session, row, PreviewState.EXPIRED, "lost")
            return
        if row.decision == NOT_THE_SUBJECT:
            answer = self.intake.error(
                "EDM:ERR:0004",
                request,
                service,
                "PREVIEW:NOT_THE_SUBJECT",
                detail="The person who logged in to the preview space is not the person the request is about.",
            )
        else:
            keep = [str(a) for a in row.accepted or []]
            answer = self.intake.evidence(request, service, self._provided(session, row), row.match_reason, keep=keep)
        reply_id = send(session, routing, answer)
        next_state(PreviewState.READY, PreviewEvent.ANSWER)
        self._close(session, row, PreviewState.ANSWERED, answer.code or "evidence")
        self._journal_answer(session, row, routing, answer, reply_id)

    def expire(self, session: Session, key: str, send: Sender) -> None:
        """Close a preview whose deadline passed (the job :data:`EXPIRE_JOB`); a held request gets 0005."""
        row = self._locked(session, key)
        if row is None or PreviewState(row.state) not in OPEN:
            _requeued_too_late(row)
            return
        now = self.clock()
        if now < row.deadline:  # the job ran early (clock skew between processes): try again then
            enqueue(
                session,
                EXPIRE_JOB,
                {"preview": key},
                key=f"{key}:expire:{now.isoformat()}",
                run_at=row.deadline,
            )
            return
        if row.state == PreviewState.READY.value:  # the user decided in time; the answer job was not yet run
            self.answer(session, key, send)
            return
        next_state(PreviewState(row.state), PreviewEvent.TIMEOUT)
        request = self._held_request(row)
        service = self.service_of(row)
        self._journal(session, row, Event.TIMEOUT, "expired", {"reason": "PREVIEW:TIMEOUT"})
        if request is None or service is None or row.routing is None:
            self._close(session, row, PreviewState.EXPIRED, None)
            return
        routing = Routing.from_json(row.routing)
        answer = self.intake.error(
            "EDM:ERR:0005", request, service, "PREVIEW:TIMEOUT", detail="The preview was not finished in time."
        )
        reply_id = send(session, routing, answer)
        self._close(session, row, PreviewState.EXPIRED, "EDM:ERR:0005")
        self._journal_answer(session, row, routing, answer, reply_id)

    def purge(self, session: Session, *, limit: int = PURGE_BATCH) -> list[str]:
        """Close at most ``limit`` previews still open :attr:`retention` after their deadline, unanswered:
        ``expired`` (the timeout, late), outcome :data:`PURGED`, their personal data deleted, a ``timeout``
        entry each (reason ``PREVIEW:RETENTION``). Their keys, oldest deadline first.

        Previews another transaction holds are skipped (PostgreSQL), not waited for: the next run finds them.
        """
        now = self.clock()
        rows = list(
            session.scalars(
                select(ProviderPreview)
                .where(
                    ProviderPreview.state.in_([s.value for s in OPEN]),
                    ProviderPreview.deadline <= now - self.retention,
                )
                .order_by(ProviderPreview.deadline, ProviderPreview.key)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        entries = []
        for row in rows:
            next_state(PreviewState(row.state), PreviewEvent.TIMEOUT)
            entries.append(self._entry(row, Event.TIMEOUT, PURGED, {"reason": "PREVIEW:RETENTION"}))
            self._close(session, row, PreviewState.EXPIRED, PURGED)
        self.journal.append_all(session, entries)
        if rows:
            log.warning(
                "previews: %d open preview(s) past their deadline by more than %g day(s) (the retention) closed "
                "unanswered, their personal data deleted: %s",
                len(rows),
                self.retention / dt.timedelta(days=1),
                ", ".join(row.key[:12] for row in rows),
            )
        return [row.key for row in rows]

    def answer_not_sent(self, session: Session, job: Job, exc: BaseException) -> None:
        """The ``on_dead`` hook of :data:`ANSWER_JOB` and :data:`EXPIRE_JOB`: the held request's answer
        could not be sent (a requester whose certificate is not valid, an error on every attempt, a worker
        that died on the last one). The preview stays as it was, so that the job, requeued once the cause is
        mended, answers it; the failure is journalled and logged with the cause."""
        key = str(job.payload["preview"])
        row = self._locked(session, key)
        if row is None or PreviewState(row.state) not in OPEN:
            return
        reason = error_text(exc)
        details = {"reason": "AS4:NOT_SENT", "error": reason}
        self._journal(session, row, Event.EXCHANGE_FAILED, ANSWER_NOT_SENT, details)
        log.error(
            "preview %s (conversation %s): the answer was not sent and job %s is dead-lettered; the request "
            "stays unanswered until that job is requeued: %s",
            key[:12],
            row.conversation_id,
            job.id,
            reason,
        )

    # --- helpers -------------------------------------------------------------------------------------
    def _locked(self, session: Session, key: str) -> ProviderPreview | None:
        return session.scalars(select(ProviderPreview).where(ProviderPreview.key == key).with_for_update()).first()

    def _count(self, session: Session, row: ProviderPreview) -> int:
        return len(
            session.scalars(
                select(ProviderPreviewDocument.id).where(ProviderPreviewDocument.preview_key == row.key)
            ).all()
        )

    def _held_request(self, row: ProviderPreview) -> edm.QueryRequest | None:
        if row.request_payload is None:
            return None
        try:
            document = edm.parse(row.request_payload)
        except (XmlError, ModelError):
            return None
        return document if isinstance(document, edm.QueryRequest) else None

    def _provided(self, session: Session, row: ProviderPreview) -> list[ProvidedEvidence]:
        rows = _document_rows(session, row)
        return [
            ProvidedEvidence(
                edm.object_from_json(edm.Evidence, d.metadata_json),
                RenderedDocument(d.media_type, d.content, d.filename, d.conforms_to, d.language, d.title),
                annex=d.annex,
            )
            for d in rows
        ]

    def _close(self, session: Session, row: ProviderPreview, state: PreviewState, outcome: str | None) -> None:
        """End the preview and delete what it held about the person.

        Its timeout job is marked done with it (no worker claims it at the deadline only to find the
        preview closed); when that job is the one closing it, or a worker holds it, it is left as it is.
        """
        now = self.clock()
        row.state = state.value
        row.outcome = outcome
        row.closed_at = now
        cancel(session, EXPIRE_JOB, [_expire_key(row.key)], now=now)
        row.subject = null()  # SQL NULL, not the JSON 'null' a None would store
        row.request_payload = None
        session.execute(delete(ProviderPreviewDocument).where(ProviderPreviewDocument.preview_key == row.key))

    def _journal(
        self, session: Session, row: ProviderPreview, event: Event, outcome: str, details: dict[str, Any]
    ) -> None:
        self.journal.append_all(session, [self._entry(row, event, outcome, details)])

    def _entry(self, row: ProviderPreview, event: Event, outcome: str, details: dict[str, Any]) -> Entry:
        routing = row.routing or {}
        return Entry(
            side=Side.PROVIDER,
            event=event,
            exchange_id=routing.get("exchange_id"),
            conversation_id=row.conversation_id,
            message_ids=[m for m in (row.first_message_id, row.request_message_id) if m],
            outcome=outcome,
            details={"data_service": row.data_service, "request_id": row.first_request_id, **details},
        )

    def _journal_answer(
        self, session: Session, row: ProviderPreview, routing: Routing, answer: Answer, reply_id: str
    ) -> None:
        details: dict[str, Any] = {"reason": answer.reason, "data_service": row.data_service}
        if answer.request is not None:
            details["request_id"] = answer.request.id
        message_ids = [m for m in (row.request_message_id, reply_id) if m]
        common: dict[str, Any] = {
            "side": Side.PROVIDER,
            "exchange_id": routing.exchange_id,
            "conversation_id": routing.conversation_id,
            "message_ids": message_ids,
            "subject": answer.subject_identifier,
        }
        if answer.code is None:
            self.journal.append(
                session,
                event=Event.EVIDENCE_SENT,
                outcome="evidence",
                details={**details, "evidences": list(answer.evidence_ids)},
                **common,
            )
        else:
            self.journal.append(session, event=Event.ERROR_SENT, outcome=answer.code, details=details, **common)
        log.info("provider: answered the held preview request with %s (%s)", answer.code or "evidence", answer.reason)


def _expire_key(key: str) -> str:
    """The idempotency key of the timeout job (:data:`EXPIRE_JOB`) of the preview ``key``."""
    return f"{key}:expire"


def _requeued_too_late(row: ProviderPreview | None) -> None:
    """Say so when a dead answer or timeout job, requeued, finds its preview closed by the retention bound."""
    if row is not None and row.outcome == PURGED:
        log.warning("preview %s was closed unanswered past its retention: nothing to answer", row.key[:12])


def _document_rows(session: Session, row: ProviderPreview) -> ScalarResult[ProviderPreviewDocument]:
    """The documents kept for the preview ``row``, in the order they were rendered."""
    return session.scalars(
        select(ProviderPreviewDocument)
        .where(ProviderPreviewDocument.preview_key == row.key)
        .order_by(ProviderPreviewDocument.position)
    )
