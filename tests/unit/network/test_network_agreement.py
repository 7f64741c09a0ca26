"""``journal_agreement``: the requester's AS4 records and journal against the provider's journal, message by message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from oots.audit.journal import Event, Journal, Side, load_journal
from oots.network.load import journal_agreement
from oots.settings import Settings
from oots.store import Database, open_database
from stored_rows import exchange_row, inbound_row, outbound_row


def _node(directory: Path, name: str) -> tuple[Database, Journal]:
    settings = Settings(node={"name": name, "data_dir": str(directory / name)})
    return open_database(settings), load_journal(settings)


class Pair:
    """A requester database and a provider database filled as the two roles fill them."""

    def __init__(self, directory: Path) -> None:
        self.requester, self.r_journal = _node(directory, "be")
        self.provider, self.p_journal = _node(directory, "fr")
        self.n = 0

    def on(self, db: Database, step: Callable[[Session], None]) -> None:
        with db.session() as session:
            step(session)

    def exchange(
        self,
        *,
        answer: str = "evidence",
        provider_sees: int = 1,
        requester_journals_request: bool = True,
        arrives: bool = True,
        requester_outcome: str | None = None,
    ) -> tuple[str, str]:
        self.n += 1
        request, reply, ex = f"req{self.n}@be", f"ans{self.n}@fr", f"ex{self.n}"

        def requester_side(session: Session) -> None:
            session.add(exchange_row(ex))
            session.add(outbound_row(request, partner="fr"))
            if requester_journals_request:
                self.r_journal.append(session, side=Side.REQUESTER, event=Event.REQUEST_SENT, message_ids=[request])
            if arrives:
                session.add(inbound_row(reply, partner="fr"))
                event = {"evidence": Event.EVIDENCE_RECEIVED, "EDM:ERR:0002": Event.PREVIEW_REQUIRED}.get(
                    answer, Event.ERROR_RECEIVED
                )
                self.r_journal.append(
                    session,
                    side=Side.REQUESTER,
                    event=event,
                    message_ids=[reply, request],
                    outcome=requester_outcome or answer,
                )

        def provider_side(session: Session) -> None:
            for _ in range(provider_sees):
                self.p_journal.append(session, side=Side.PROVIDER, event=Event.REQUEST_RECEIVED, message_ids=[request])
            if provider_sees:
                event = {"evidence": Event.EVIDENCE_SENT, "EDM:ERR:0002": Event.PREVIEW_REQUIRED}.get(
                    answer, Event.ERROR_SENT
                )
                self.p_journal.append(
                    session, side=Side.PROVIDER, event=event, message_ids=[request, reply], outcome=answer
                )

        self.on(self.requester, requester_side)
        self.on(self.provider, provider_side)
        return request, reply


@pytest.fixture
def pair(tmp_path: Path) -> Pair:
    return Pair(tmp_path)


def test_two_journals_that_agree(pair: Pair) -> None:
    pair.exchange()
    pair.exchange(answer="EDM:ERR:0004")
    agreement = journal_agreement(pair.requester, pair.provider)
    assert agreement.ok, agreement
    assert (agreement.exchanges, agreement.requests_sent, agreement.requests_journaled) == (2, 2, 2)


def test_a_preview_asked_for_is_an_answer_too(pair: Pair) -> None:
    pair.exchange(answer="EDM:ERR:0002")
    assert journal_agreement(pair.requester, pair.provider).ok
    _, reply = pair.exchange(answer="EDM:ERR:0002", requester_outcome="EDM:ERR:0004")
    agreement = journal_agreement(pair.requester, pair.provider)
    assert agreement.outcome_mismatches == [(reply, "EDM:ERR:0002", "EDM:ERR:0004")]


def test_a_request_the_provider_never_journaled(pair: Pair) -> None:
    pair.exchange()
    request, _ = pair.exchange(provider_sees=0, arrives=False)
    agreement = journal_agreement(pair.requester, pair.provider)
    assert not agreement.ok
    assert agreement.missing_or_duplicated == [request]


def test_a_request_the_provider_journaled_twice(pair: Pair) -> None:
    request, _ = pair.exchange(provider_sees=2)
    agreement = journal_agreement(pair.requester, pair.provider)
    assert agreement.missing_or_duplicated == [request]
    assert not agreement.ok


def test_a_request_sent_that_the_requester_did_not_journal(pair: Pair) -> None:
    request, _ = pair.exchange(requester_journals_request=False)
    agreement = journal_agreement(pair.requester, pair.provider)
    assert agreement.sent_not_journaled == [request]
    assert not agreement.ok


def test_an_answer_that_never_arrived(pair: Pair) -> None:
    _, reply = pair.exchange(arrives=False)
    agreement = journal_agreement(pair.requester, pair.provider)
    assert agreement.answers_not_received == [reply]
    assert agreement.answers_not_journaled == [reply]
    assert not agreement.ok


def test_the_two_sides_disagree_on_the_outcome(pair: Pair) -> None:
    _, reply = pair.exchange(answer="EDM:ERR:0004", requester_outcome="evidence")
    agreement = journal_agreement(pair.requester, pair.provider)
    assert agreement.outcome_mismatches == [(reply, "EDM:ERR:0004", "evidence")]
    assert not agreement.ok
