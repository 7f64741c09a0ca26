"""The previews of a provider node in its database: open, hold, decide, answer, expire (no network).

Each case drives :class:`oots.provider.previews.Previews` the way the role and the pages do and checks
the exact EDM answer that would be sent (validated by the official rules), what the journal recorded,
and that nothing personal is left once the preview is closed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from oots import edm
from oots.audit.journal import load_journal
from oots.edm import Person, QueryError, QueryResponse
from oots.provider.intake import Answer, Intake, PreviewDue, PreviewFollowUp
from oots.provider.models import ProviderPreview, ProviderPreviewDocument
from oots.provider.preview import PreviewClosed, Routing, token_from_location
from oots.provider.previews import (
    ANSWER_JOB,
    EXPIRE_JOB,
    NOT_THE_SUBJECT,
    PURGED,
    Previews,
)
from oots.provider.samples import sample_data_service, sample_data_services
from oots.settings import QueueSettings, load_settings
from oots.store import Database, open_database
from oots.store.models import QueueJob
from oots.store.queue import Worker
from oots.validation import validate

from .parties import GARCIA, OTHER_AUTHORITY, OTHER_PROVIDER, agent_of, query_request

BASE = "https://ep.example.eu"
PORTAL = "https://portal.example.eu"
T0 = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
PARTY = "urn:t|blue_gw"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


class Desk:
    def __init__(self, db: Database, previews: Previews, clock: Clock) -> None:
        self.db = db
        self.previews = previews
        self.clock = clock
        self.sent: list[tuple[Routing, Answer]] = []

    def send(self, session: object, routing: Routing, answer: Answer) -> str:
        self.sent.append((routing, answer))
        return f"reply-{len(self.sent)}@ep"

    def run_jobs(self, kind: str) -> None:
        with self.db.session(immediate=True) as session:
            keys = [j.payload["preview"] for j in session.scalars(select(QueueJob).where(QueueJob.kind == kind))]
            for key in keys:
                if kind == ANSWER_JOB:
                    self.previews.answer(session, key, self.send)
                else:
                    self.previews.expire(session, key, self.send)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def desk(request: pytest.FixtureRequest, tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Iterator[Desk]:
    config = tmp_path / "node.toml"
    database = ""
    if request.param == "postgres":
        database = f'[database]\nurl = "{request.getfixturevalue("postgres_database")()}"\n'
    config.write_text(f'[node]\nname = "red"\ndata_dir = "{tmp_path.as_posix()}"\n{database}', encoding="utf-8")
    settings = load_settings(config)
    db = open_database(settings)
    clock = Clock()
    intake = Intake(sample_data_services("ES"), clock=clock, preview=True)
    previews = Previews(
        intake,
        load_journal(settings, clock=clock),
        base_url=BASE,
        timeout=dt.timedelta(minutes=20),
        return_origins=(PORTAL,),
        clock=clock,
    )
    yield Desk(db, previews, clock)
    db.dispose()


def first_request(subject: Person = GARCIA, kind: str = "diplomas") -> edm.QueryRequest:
    return query_request(subject, kind=kind, procedure="T3", preview=True, version=edm.Version.EDM_V2, issued=T0)


def routing(conversation: str = "conv-1", ref: str = "m1@blue") -> Routing:
    return Routing(("blue_gw", "urn:t"), ("provider-es", "urn:c"), ("requester-es", "urn:c"), conversation, ref, "x")


def open_preview(desk: Desk, request: edm.QueryRequest | None = None) -> tuple[edm.QueryRequest, str]:
    request = request or first_request()
    result = desk.previews.intake.receive(edm.to_xml(request), sent=T0)
    assert isinstance(result, PreviewDue)
    with desk.db.session(immediate=True) as session:
        answer = desk.previews.open(session, result, routing(), message_id="m1@blue", party=PARTY)
    assert answer.code == "EDM:ERR:0002"
    error = answer.document
    assert isinstance(error, QueryError)
    assert error.preview_required
    assert error.preview_location is not None
    report = validate(answer.payloads[0].data)
    assert report.valid, [f.as_dict() for f in report.findings if f.blocking]
    return request, error.preview_location


def second_request(
    first: edm.QueryRequest,
    location: str,
    *,
    return_location: str | None = f"{PORTAL}/requester/return/e1",
    **changes: object,
) -> edm.QueryRequest:
    again = dataclasses.replace(
        first, id=edm.new_urn_uuid(), preview_location=location, return_location=return_location
    )
    return dataclasses.replace(again, **changes)  # type: ignore[arg-type]


def follow(desk: Desk, request: edm.QueryRequest, *, conversation: str = "conv-1", party: str = PARTY) -> Answer | None:
    result = desk.previews.intake.receive(edm.to_xml(request), sent=desk.clock.now)
    assert isinstance(result, PreviewFollowUp), result
    with desk.db.session(immediate=True) as session:
        return desk.previews.follow_up(
            session, result, routing(conversation, "m2@blue"), message_id="m2@blue", party=party
        )


def decide(desk: Desk, location: str, accept: list[int] | None, decision: str | None = None) -> None:
    token = token_from_location(location, BASE)
    assert token is not None
    with desk.db.session(immediate=True) as session:
        row = desk.previews.find(session, token)
        assert row is not None
        docs = desk.previews.documents(session, row)
        ids = [docs[n].evidence_id for n in accept or []]
        desk.previews.decide(session, token, accepted=ids, decision=decision or ("accepted" if ids else "refused"))


def checked(answer: Answer, request: edm.QueryRequest) -> QueryResponse | QueryError:
    report = validate(answer.payloads[0].data)
    assert report.valid, [f.as_dict() for f in report.findings if f.blocking]
    document = edm.parse(answer.payloads[0].data)
    assert isinstance(document, QueryResponse | QueryError)
    assert document.request_id == request.id
    return document


def nothing_personal_left(desk: Desk) -> None:
    with desk.db.session() as session:
        assert not session.scalars(select(ProviderPreviewDocument)).all()
        for row in session.scalars(select(ProviderPreview)):
            assert row.subject is None
            assert row.request_payload is None


def journal(desk: Desk) -> list[tuple[str, str]]:
    with desk.db.session() as session:
        rows = session.execute(text("SELECT event, outcome, details FROM audit_entries ORDER BY seq")).all()
    text_of_all = " ".join(str(r) for r in rows)
    assert "García" not in text_of_all
    return [(r[0], r[1]) for r in rows]


def test_held_then_one_accepted_one_refused(desk: Desk) -> None:
    first, location = open_preview(desk)
    assert location.startswith(f"{BASE}/preview/")
    second = second_request(first, location)
    assert follow(desk, second) is None  # held, not answered
    desk.run_jobs(ANSWER_JOB)
    assert desk.sent == []
    decide(desk, location, accept=[0])
    desk.run_jobs(ANSWER_JOB)
    ((routed, answer),) = desk.sent
    assert routed.ref_to_message_id == "m2@blue"  # the answer goes to the second request
    document = checked(answer, second)
    assert isinstance(document, QueryResponse)
    (evidence,) = document.evidences
    assert len(answer.payloads) == 2
    assert answer.payloads[1].data.startswith(b"%PDF")
    assert evidence.metadata.is_about.natural_person is not None
    nothing_personal_left(desk)
    events = journal(desk)
    assert ("preview_decision", "accepted") in events
    assert ("evidence_sent", "evidence") in events
    desk.run_jobs(ANSWER_JOB)  # a job run twice sends nothing twice
    assert len(desk.sent) == 1


def test_a_preview_keeps_the_authority_its_first_request_named(desk: Desk) -> None:
    rectorate = OTHER_AUTHORITY
    diplomas = sample_data_service("ES", "diplomas").identifier
    services = [
        dataclasses.replace(s, other_authorities=(rectorate,)) if s.identifier == diplomas else s
        for s in sample_data_services("ES")
    ]
    desk.previews.intake = Intake(services, clock=desk.clock, preview=True)
    first = query_request(
        GARCIA,
        kind="diplomas",
        procedure="T3",
        preview=True,
        version=edm.Version.EDM_V2,
        issued=T0,
        provider=OTHER_PROVIDER,
    )
    first, location = open_preview(desk, first)
    token = token_from_location(location, BASE)
    assert token is not None
    with desk.db.session() as session:
        row = desk.previews.find(session, token)
        assert row is not None
        assert row.authority == rectorate.identifier
        service = desk.previews.service_of(row)  # what the preview page names
        assert service is not None
        assert service.authority == rectorate
    # a second request that names another authority of the service than the first does not fit the preview
    own = agent_of(sample_data_service("ES", "diplomas").authority)
    elsewhere = follow(desk, second_request(first, location, evidence_provider=own))
    assert elsewhere is not None
    assert elsewhere.reason == "PREVIEW:UNKNOWN"
    second = second_request(first, location)
    assert follow(desk, second) is None
    decide(desk, location, accept=[0, 1])
    desk.run_jobs(ANSWER_JOB)
    ((_, answer),) = desk.sent
    document = checked(answer, second)
    assert isinstance(document, QueryResponse)
    assert {e.metadata.issuing_authority.identifier.value for e in document.evidences} == {rectorate.identifier}
    assert document.evidence_provider[0].identifier.value == rectorate.identifier


def test_the_user_can_decide_before_the_second_request(desk: Desk) -> None:
    first, location = open_preview(desk)
    decide(desk, location, accept=[0, 1])
    second = second_request(first, location)
    assert follow(desk, second) is None
    desk.run_jobs(ANSWER_JOB)
    ((_, answer),) = desk.sent
    document = checked(answer, second)
    assert isinstance(document, QueryResponse)
    assert len(document.evidences) == 2  # the diploma and its supplement


def test_refusing_everything_sends_an_empty_response(desk: Desk) -> None:
    first, location = open_preview(desk)
    second = second_request(first, location)
    follow(desk, second)
    decide(desk, location, accept=[])
    desk.run_jobs(ANSWER_JOB)
    ((_, answer),) = desk.sent
    document = checked(answer, second)
    assert isinstance(document, QueryResponse)
    assert document.evidences == ()
    assert len(answer.payloads) == 1
    assert ("preview_decision", "refused") in journal(desk)


def test_someone_else_logged_in(desk: Desk) -> None:
    first, location = open_preview(desk)
    second = second_request(first, location)
    follow(desk, second)
    decide(desk, location, accept=None, decision=NOT_THE_SUBJECT)
    desk.run_jobs(ANSWER_JOB)
    ((_, answer),) = desk.sent
    document = checked(answer, second)
    assert isinstance(document, QueryError)
    assert document.code == "EDM:ERR:0004"
    assert "García" not in (document.detail or "")


def test_deadline_passed_with_a_held_request(desk: Desk) -> None:
    first, location = open_preview(desk)
    second = second_request(first, location)
    follow(desk, second)
    desk.run_jobs(EXPIRE_JOB)  # too early: nothing happens
    assert desk.sent == []
    desk.clock.now = T0 + dt.timedelta(minutes=21)
    desk.run_jobs(EXPIRE_JOB)
    ((_, answer),) = desk.sent
    document = checked(answer, second)
    assert isinstance(document, QueryError)
    assert document.code == "EDM:ERR:0005"
    nothing_personal_left(desk)
    assert ("timeout", "expired") in journal(desk)
    with pytest.raises(PreviewClosed):  # the user comes too late
        decide_closed(desk, location)


def decide_closed(desk: Desk, location: str) -> None:
    token = token_from_location(location, BASE)
    assert token is not None
    with desk.db.session(immediate=True) as session:
        desk.previews.decide(session, token, accepted=[], decision="refused")


def test_second_request_after_the_deadline(desk: Desk) -> None:
    first, location = open_preview(desk)
    desk.clock.now = T0 + dt.timedelta(minutes=21)
    desk.run_jobs(EXPIRE_JOB)
    assert desk.sent == []  # nothing held, nothing to answer
    answer = follow(desk, second_request(first, location))
    assert answer is not None
    assert answer.code == "EDM:ERR:0005"


def test_a_preview_is_used_once(desk: Desk) -> None:
    first, location = open_preview(desk)
    assert follow(desk, second_request(first, location)) is None
    again = follow(desk, second_request(first, location))
    assert again is not None
    assert (again.code, again.reason) == ("EDM:ERR:0003", "PREVIEW:USED")
    decide(desk, location, accept=[0])
    with pytest.raises(PreviewClosed):
        decide_closed(desk, location)


@pytest.mark.parametrize(
    "case",
    ["forged", "other-node", "other-conversation", "other-party", "other-person", "other-service"],
)
def test_second_requests_that_do_not_fit_are_refused_alike(desk: Desk, case: str) -> None:
    first, location = open_preview(desk)
    conversation, party = "conv-1", PARTY
    second = second_request(first, location)
    if case == "forged":
        second = second_request(first, f"{BASE}/preview/{'A' * 43}")
    elif case == "other-node":
        second = second_request(first, location.replace(BASE, "https://other.example.eu"))
    elif case == "other-conversation":
        conversation = "conv-2"
    elif case == "other-party":
        party = "urn:t|green_gw"
    elif case == "other-person":
        other = dataclasses.replace(GARCIA, given_name="María")
        second = dataclasses.replace(second, natural_person=other)
    elif case == "other-service":
        births = first_request(kind="births")
        second = dataclasses.replace(
            second, evidence_request=births.evidence_request, evidence_provider=births.evidence_provider
        )
    result = desk.previews.intake.receive(edm.to_xml(second), sent=T0)
    if case == "other-service":
        # births allow a preview but this one never had one: the location is unknown to it
        assert isinstance(result, PreviewFollowUp)
    answer = follow(desk, second, conversation=conversation, party=party)
    assert answer is not None
    assert (answer.code, answer.reason) == ("EDM:ERR:0003", "PREVIEW:UNKNOWN")
    assert answer.document.detail == "The PreviewLocation does not name an open preview of this conversation."
    # the real preview is untouched: its own second request is still held
    assert follow(desk, second_request(first, location)) is None


def test_a_return_location_on_another_origin_closes_the_preview(desk: Desk) -> None:
    first, location = open_preview(desk)
    answer = follow(desk, second_request(first, location, return_location="https://evil.example.eu/x"))
    assert answer is not None
    assert (answer.code, answer.reason) == ("EDM:ERR:0003", "PREVIEW:RETURN_LOCATION")
    nothing_personal_left(desk)
    token = token_from_location(location, BASE)
    assert token is not None
    with desk.db.session() as session:
        assert desk.previews.find(session, token) is None


def test_the_preview_keeps_only_a_hash_of_its_token(desk: Desk) -> None:
    _, location = open_preview(desk)
    token = token_from_location(location, BASE)
    assert token is not None
    with desk.db.session() as session:
        dump = json.dumps([list(map(str, r)) for r in session.execute(text("SELECT * FROM provider_previews"))])
        jobs = json.dumps([str(j.payload) for j in session.scalars(select(QueueJob))])
    assert token not in dump
    assert token not in jobs


def test_a_v1_requester_names_its_return_address_on_the_way_in(desk: Desk) -> None:
    _, location = open_preview(desk)
    token = token_from_location(location, BASE)
    assert token is not None
    with desk.db.session(immediate=True) as session:
        assert not desk.previews.remember_return(session, token, "https://evil.example.eu/x")
        assert not desk.previews.remember_return(session, "A" * 43, f"{PORTAL}/r/1")
        assert desk.previews.remember_return(session, token, f"{PORTAL}/r/1")
        assert not desk.previews.remember_return(session, token, f"{PORTAL}/r/2")  # never replaced
        row = desk.previews.find(session, token)
        assert row is not None
        assert row.return_location == f"{PORTAL}/r/1"


def test_a_decision_in_time_wins_over_the_deadline(desk: Desk) -> None:
    first, location = open_preview(desk)
    second = second_request(first, location)
    follow(desk, second)
    decide(desk, location, accept=[1])
    desk.clock.now = T0 + dt.timedelta(minutes=21)
    desk.run_jobs(EXPIRE_JOB)  # the timeout job runs before the answer job
    desk.run_jobs(ANSWER_JOB)
    ((_, answer),) = desk.sent
    document = checked(answer, second)
    assert isinstance(document, QueryResponse)
    assert len(document.evidences) == 1


def _worker(desk: Desk) -> Worker:
    handlers = {ANSWER_JOB: desk.previews.answer_job(desk.send), EXPIRE_JOB: desk.previews.expire_job(desk.send)}
    return Worker(desk.db, QueueSettings(), handlers=handlers, clock=desk.clock)


def _job_statuses(desk: Desk, kind: str) -> list[str]:
    with desk.db.session() as session:
        return list(session.scalars(select(QueueJob.status).where(QueueJob.kind == kind).order_by(QueueJob.id)))


@pytest.mark.parametrize("ending", ["answered", "refused_return", "late_second_request"])
def test_a_preview_that_closes_takes_its_timeout_job_with_it(desk: Desk, ending: str) -> None:
    # Before, the timeout job stayed queued after the preview closed: at the deadline a worker claimed
    # it, in a transaction of its own, only to find the preview closed.
    first, location = open_preview(desk)
    worker = _worker(desk)
    assert _job_statuses(desk, EXPIRE_JOB) == ["queued"]
    if ending == "answered":
        assert follow(desk, second_request(first, location)) is None
        decide(desk, location, accept=[0])
        assert worker.drain() == 1  # the answer job
    elif ending == "refused_return":
        refused = follow(desk, second_request(first, location, return_location="https://elsewhere.example/r"))
        assert refused is not None
        assert refused.reason == "PREVIEW:RETURN_LOCATION"
    else:  # the second request comes after the deadline, before the timeout job has run
        desk.clock.now = T0 + dt.timedelta(minutes=21)
        late = follow(desk, second_request(first, location))
        assert late is not None
        assert late.code == "EDM:ERR:0005"
    assert _job_statuses(desk, EXPIRE_JOB) == ["done"]
    desk.clock.now = T0 + dt.timedelta(minutes=30)
    assert worker.drain() == 0  # nothing left to claim


def test_a_preview_its_timeout_job_closes_completes_that_job(desk: Desk) -> None:
    first, location = open_preview(desk)
    assert follow(desk, second_request(first, location)) is None
    desk.clock.now = T0 + dt.timedelta(minutes=21)
    assert _worker(desk).drain() == 1  # the job that closes the preview is not cancelled under its worker
    ((_, answer),) = desk.sent
    assert answer.code == "EDM:ERR:0005"
    assert _job_statuses(desk, EXPIRE_JOB) == ["done"]


def test_an_answer_that_cannot_be_sent_is_dead_lettered_at_once_and_answered_once_requeued(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    # Before, the answer job raised the partner's certificate error on every attempt until it was
    # dead-lettered, journalling nothing.
    from oots.errors import CertificateNotValid
    from oots.settings import QueueSettings
    from oots.store import queue

    expired = "the encryption certificate of AS4 partner blue (blue_gw) expired on 2026-11-20 10:00 UTC"

    def refused(session: object, routing: Routing, answer: Answer) -> str:
        raise CertificateNotValid(expired)

    worker = queue.Worker(desk.db, QueueSettings())  # jobs are due on the real clock (enqueued without one)
    worker.register(ANSWER_JOB, desk.previews.answer_job(refused), on_dead=desk.previews.answer_not_sent)
    first, location = open_preview(desk)
    second = second_request(first, location)
    assert follow(desk, second) is None
    decide(desk, location, accept=[0])
    with caplog.at_level("ERROR", logger="oots"):
        worker.drain()
    with desk.db.session() as session:
        (job,) = queue.list_dead(session)
        assert (job.kind, job.attempts, job.last_error) == (ANSWER_JOB, 1, f"CertificateNotValid: {expired}")
        assert session.scalar(select(ProviderPreview.state)) == "ready"  # kept, to be answered once requeued
    assert journal(desk)[-1] == ("exchange_failed", "answer_not_sent")
    said = [r.getMessage() for r in caplog.records if r.name == "oots.provider.previews"]
    assert len(said) == 1
    assert "conv-1" in said[0]
    assert expired in said[0]

    worker.handlers[ANSWER_JOB] = desk.previews.answer_job(desk.send)  # the certificate is replaced
    with desk.db.session() as session:
        queue.requeue(session, job.id)
    worker.drain()
    ((_, answer),) = desk.sent
    assert isinstance(checked(answer, second), QueryResponse)
    assert journal(desk)[-1] == ("evidence_sent", "evidence")
    nothing_personal_left(desk)


def test_an_answer_job_whose_worker_died_on_its_last_attempt_is_journalled_as_not_sent(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    # Before, a job dead-lettered because its lease ran out on its last attempt ran no on_dead hook: the
    # journal said nothing of the answer that was never sent.
    from oots.store import queue
    from oots.store.base import utcnow

    settings = QueueSettings(max_attempts=1)
    first, location = open_preview(desk)
    second = second_request(first, location)
    assert follow(desk, second) is None
    decide(desk, location, accept=[0])
    crashed = queue.Worker(desk.db, settings, worker_id="crashed")  # jobs are due on the real clock
    crashed.register(ANSWER_JOB, desk.previews.answer_job(desk.send), on_dead=desk.previews.answer_not_sent)
    [held] = crashed.claim_batch()  # ...and then the process dies
    assert held.kind == ANSWER_JOB

    later = queue.Worker(desk.db, settings, clock=lambda: utcnow() + dt.timedelta(minutes=1))  # its lease ran out
    later.register(ANSWER_JOB, desk.previews.answer_job(desk.send), on_dead=desk.previews.answer_not_sent)
    with caplog.at_level("ERROR", logger="oots"):
        assert later.drain() == 0
    with desk.db.session() as session:
        (job,) = queue.list_dead(session)
        said = "LeaseExpired: lease expired on attempt 1 (worker crashed never finished it)"
        assert (job.id, job.last_error) == (held.id, said)
        assert session.scalar(select(ProviderPreview.state)) == "ready"  # kept, to be answered once requeued
    assert journal(desk)[-1] == ("exchange_failed", "answer_not_sent")
    logged = [r.getMessage() for r in caplog.records if r.name == "oots.provider.previews"]
    assert len(logged) == 1
    assert said in logged[0]
    assert desk.sent == []

    with desk.db.session() as session:
        queue.requeue(session, job.id)
    assert later.drain() == 1
    ((_, answer),) = desk.sent
    assert isinstance(checked(answer, second), QueryResponse)
    assert journal(desk)[-1] == ("evidence_sent", "evidence")


RETENTION = dt.timedelta(days=7)  # the default of provider.preview_retention_seconds
DEADLINE = T0 + dt.timedelta(minutes=20)


def _state(desk: Desk) -> list[tuple[str, str | None]]:
    with desk.db.session() as session:
        return [tuple(r) for r in session.execute(select(ProviderPreview.state, ProviderPreview.outcome))]  # type: ignore[misc]


def _documents(desk: Desk) -> int:
    with desk.db.session() as session:
        return len(session.scalars(select(ProviderPreviewDocument.id)).all())


def test_an_open_preview_whose_answer_could_not_be_sent_is_closed_once_past_its_retention(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    # Before, a preview whose answer and timeout jobs were dead-lettered (the requester's certificate not
    # valid) kept the person's data - subject, held request, rendered documents - for as long as nobody
    # requeued the jobs: for ever.
    from oots.errors import CertificateNotValid
    from oots.store import queue

    def refused(session: object, routing: Routing, answer: Answer) -> str:
        raise CertificateNotValid("the encryption certificate of AS4 partner blue (blue_gw) expired")

    assert desk.previews.retention == RETENTION
    worker = Worker(desk.db, QueueSettings(), clock=desk.clock)
    on_dead = desk.previews.answer_not_sent
    worker.register(ANSWER_JOB, desk.previews.answer_job(refused), on_dead=on_dead)
    worker.register(EXPIRE_JOB, desk.previews.expire_job(refused), on_dead=on_dead)
    first, location = open_preview(desk)
    assert follow(desk, second_request(first, location)) is None
    decide(desk, location, accept=[0])
    worker.drain()
    desk.clock.now = DEADLINE + dt.timedelta(minutes=1)
    worker.drain()  # the timeout job tries to answer too, and is dead-lettered alike
    assert _job_statuses(desk, ANSWER_JOB) == ["dead"]
    assert _job_statuses(desk, EXPIRE_JOB) == ["dead"]
    assert _state(desk) == [("ready", None)]

    desk.clock.now = DEADLINE + RETENTION - dt.timedelta(seconds=1)
    with desk.db.session(immediate=True) as session:
        assert desk.previews.purge(session) == []  # the hourly purge keeps it: there is still time to requeue
    assert _state(desk) == [("ready", None)]
    assert _documents(desk) == 2
    desk.clock.now = DEADLINE + RETENTION
    with desk.db.session(immediate=True) as session:
        (purged,) = desk.previews.purge(session)  # what the next run does
    assert _state(desk) == [("expired", PURGED)]
    nothing_personal_left(desk)
    with desk.db.session() as session:
        (closed_at,) = session.scalars(select(ProviderPreview.closed_at))
        entry = session.execute(text("SELECT event, outcome, details FROM audit_entries ORDER BY seq DESC")).first()
    assert closed_at == DEADLINE + RETENTION
    assert entry is not None
    assert (entry[0], entry[1]) == ("timeout", "purged")
    details = entry[2] if isinstance(entry[2], dict) else json.loads(entry[2])
    assert details["reason"] == "PREVIEW:RETENTION"
    assert journal(desk).count(("timeout", "purged")) == 1

    # the certificate is replaced at last and the dead jobs requeued: there is nothing left to answer
    worker.handlers[ANSWER_JOB] = desk.previews.answer_job(desk.send)
    worker.handlers[EXPIRE_JOB] = desk.previews.expire_job(desk.send)
    with desk.db.session() as session:
        assert queue.requeue_dead(session) == 2
    caplog.clear()
    with caplog.at_level("WARNING", logger="oots"):
        worker.drain()
    assert desk.sent == []
    assert _job_statuses(desk, ANSWER_JOB) == ["done"]
    assert _job_statuses(desk, EXPIRE_JOB) == ["done"]
    assert _state(desk) == [("expired", PURGED)]
    assert journal(desk)[-1] == ("timeout", "purged")
    said = [r.getMessage() for r in caplog.records if r.name == "oots.provider.previews"]
    assert said == [f"preview {purged[:12]} was closed unanswered past its retention: nothing to answer"] * 2


def _purge(desk: Desk, limit: int) -> int:
    with desk.db.session(immediate=True) as session:
        return len(desk.previews.purge(session, limit=limit))


def test_the_retention_purge_closes_previews_in_batches_each_a_transaction_of_its_own(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(5):  # awaiting, whose timeout jobs were lost
        open_preview(desk)
    desk.clock.now = DEADLINE + RETENTION - dt.timedelta(minutes=1)
    assert _purge(desk, 2) == 0  # not yet
    assert _documents(desk) == 10
    desk.clock.now = DEADLINE + RETENTION + dt.timedelta(hours=1)
    with caplog.at_level("INFO", logger="oots.provider"):
        assert [_purge(desk, 2) for _ in range(4)] == [2, 2, 1, 0]
    assert _state(desk) == [("expired", PURGED)] * 5
    nothing_personal_left(desk)
    assert journal(desk).count(("timeout", "purged")) == 5
    lines = [r for r in caplog.records if r.name == "oots.provider.previews"]
    assert [r.levelname for r in lines] == ["WARNING"] * 3
    assert [r.getMessage().split(" open preview")[0] for r in lines] == ["previews: 2", "previews: 2", "previews: 1"]
    assert "García" not in caplog.text
    with desk.db.session() as session:
        keys = list(session.scalars(select(ProviderPreview.key)))
    assert all(key not in caplog.text for key in keys)  # key prefixes only
    assert all(key[:12] in caplog.text for key in keys)
