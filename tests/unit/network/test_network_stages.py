"""``exchange_stages``: each exchange's time split into its stages, from the two nodes' records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from oots.audit.journal import Event, Side, load_journal
from oots.network.load import STAGES, exchange_stages
from oots.settings import Settings
from oots.store import Database, open_database
from stored_rows import exchange_row, inbound_row, outbound_row

T0 = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


def _at(ms: float) -> dt.datetime:
    return T0 + dt.timedelta(milliseconds=ms)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


class Nodes:
    """A requester's and a provider's database, filled with one exchange's records at chosen moments."""

    def __init__(self, directory: Path) -> None:
        self.clock = Clock()
        self.dbs: dict[str, Database] = {}
        self.journals = {}
        for name in ("be", "fr"):
            settings = Settings(node={"name": name, "data_dir": str(directory / name)})
            self.dbs[name] = open_database(settings)
            self.journals[name] = load_journal(settings, clock=self.clock)

    def exchange(self, n: int, start: float, *, answered: bool = True) -> None:
        """Exchange ``n`` created at ``start`` ms; its moments then follow 10, 20, 30 ... ms apart."""
        ex, request, answer = f"ex{n}", f"req{n}@be", f"ans{n}@fr"
        r, p = self.journals["be"], self.journals["fr"]
        with self.dbs["be"].session() as session:
            session.add(exchange_row(ex, state="completed" if answered else "waiting", created_at=_at(start)))
            self.clock.now = _at(start + 10)
            r.append(session, side=Side.REQUESTER, event=Event.EXPLICIT_REQUEST_GIVEN, exchange_id=ex)
            r.append(session, side=Side.REQUESTER, event=Event.REQUEST_SENT, exchange_id=ex, message_ids=[request])
            session.add(outbound_row(request, first_sent_at=_at(start + 30)))
            if answered:
                session.add(inbound_row(answer, received_at=_at(start + 150)))
                self.clock.now = _at(start + 200)
                r.append(
                    session,
                    side=Side.REQUESTER,
                    event=Event.EVIDENCE_RECEIVED,
                    exchange_id=ex,
                    message_ids=[answer, request],
                    outcome="evidence",
                )
        with self.dbs["fr"].session() as session:
            session.add(inbound_row(request, received_at=_at(start + 60)))
            if answered:
                self.clock.now = _at(start + 100)
                p.append(session, side=Side.PROVIDER, event=Event.REQUEST_RECEIVED, message_ids=[request])
                p.append(
                    session,
                    side=Side.PROVIDER,
                    event=Event.EVIDENCE_SENT,
                    message_ids=[request, answer],
                    outcome="evidence",
                )
                session.add(outbound_row(answer, first_sent_at=_at(start + 140)))


@pytest.fixture
def nodes(tmp_path: Path) -> Nodes:
    return Nodes(tmp_path)


def test_each_stage_runs_from_one_recorded_moment_to_the_next(nodes: Nodes) -> None:
    nodes.exchange(1, 0)
    stages = exchange_stages(nodes.dbs["be"], nodes.dbs["fr"])
    got = {name: round(1000 * values[0]) for name, values in stages.seconds.items()}
    assert got == {
        "portal": 10,
        "requester sends": 20,
        "request travels": 30,
        "provider answers": 40,
        "provider sends": 40,
        "answer travels": 10,
        "requester takes it": 50,
    }
    assert list(got) == [name for name, _ in STAGES]
    assert stages.incomplete == 0


def test_an_exchange_not_answered_yet_is_counted_apart(nodes: Nodes) -> None:
    nodes.exchange(1, 0)
    nodes.exchange(2, 1000, answered=False)
    stages = exchange_stages(nodes.dbs["be"], nodes.dbs["fr"])
    assert stages.incomplete == 1
    assert all(len(values) == 1 for values in stages.seconds.values())


def test_only_the_exchanges_created_within_the_window(nodes: Nodes) -> None:
    for n in range(1, 5):
        nodes.exchange(n, 1000 * n)
    window = (_at(1500).timestamp(), _at(3500).timestamp())
    stages = exchange_stages(nodes.dbs["be"], nodes.dbs["fr"], created_within=window)
    assert [len(values) for values in stages.seconds.values()] == [2] * len(STAGES)


def test_percentiles(nodes: Nodes) -> None:
    nodes.exchange(1, 0)
    stages = exchange_stages(nodes.dbs["be"], nodes.dbs["fr"])
    stages.seconds["portal"] = [0.001 * n for n in range(1, 101)]
    assert stages.percentile("portal", 50) == pytest.approx(0.051)
    assert stages.percentile("portal", 99) == pytest.approx(0.1)
    stages.seconds["portal"] = []
    assert stages.percentile("portal", 99) == 0.0
