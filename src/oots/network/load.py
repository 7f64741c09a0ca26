"""Load on a running network: many exchanges through a requester node's portal API, and the checks after.

:func:`run_exchanges` drives ``count`` exchanges (``concurrency`` at a time) with the same driver as
``oots request``; :func:`journal_agreement` compares, message by message, the requester node's AS4
records and audit journal with what the provider node's audit journal says it received and answered;
:func:`exchange_stages` splits each exchange's time into its stages, from the same records.
Used by the load tests and ``bench/bench_network.py``.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import socket
import ssl
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from oots.as4.models import As4Inbound, As4Outbound
from oots.audit.models import AuditEntry
from oots.errors import OotsError
from oots.network.balancer import Balancer
from oots.network.plan import NetworkPlan, ServiceSpec, plan
from oots.network.supervisor import Supervisor
from oots.network.topology import load_topology
from oots.requester.cli_driver import WAIT_SECONDS, RequestOptions, drive
from oots.requester.models import RequesterExchange
from oots.store.database import Database

__all__ = [
    "STAGES",
    "Agreement",
    "LoadResult",
    "Pair",
    "ProcessTimes",
    "ScaleOut",
    "Stages",
    "command_cpu_seconds",
    "exchange_stages",
    "journal_agreement",
    "machine_cpu_seconds",
    "peak_memory_mb",
    "process_times",
    "requester_provider_pair",
    "run_exchanges",
    "sample_person",
]


@dataclass
class LoadResult:
    """What a load run gave: per exchange its end and how long it took (seconds)."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run_exchanges(
    base_url: str,
    api_key: str,
    *,
    count: int,
    concurrency: int,
    procedure: str,
    country: str,
    person: dict[str, Any],
    timeout: float = 300.0,
    on_progress: Callable[[int], None] | None = None,
    rate: float | None = None,
) -> LoadResult:
    """Run ``count`` exchanges without preview, ``concurrency`` at a time; every one is waited for.

    With ``rate`` (exchanges per second) the load is open: exchange *i* is due ``i / rate`` seconds after
    the start whether or not earlier ones have finished (``concurrency`` still caps how many are in
    flight), and its latency counts from when it was due, so time spent waiting for a free slot is
    not hidden.
    """
    result = LoadResult()
    lock = threading.Lock()
    done = 0
    local = threading.local()
    clients: list[httpx.Client] = []
    # one TLS context for every thread's client: building one (the CA bundle read and parsed) costs tens
    # of milliseconds, which 50 clients would spend at the start of every run
    tls = ssl.create_default_context()

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(
                base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30.0, verify=tls
            )
            with lock:
                clients.append(local.client)
        http: httpx.Client = local.client
        return http

    def one(out: Path, due: float | None) -> None:
        nonlocal done
        if due is not None:
            time.sleep(max(0.0, due - time.perf_counter()))
        started = time.perf_counter() if due is None else due
        opts = RequestOptions(procedure, country, person, out, preview=False, timeout=timeout)
        try:
            drive(client(), opts, say=lambda _: None, sleep=lambda s: time.sleep(min(s, 0.1)), wait=WAIT_SECONDS)
        except (OotsError, httpx.HTTPError) as exc:
            with lock:
                result.failures.append(f"{type(exc).__name__}: {exc}")
        else:
            with lock:
                result.latencies.append(time.perf_counter() - started)
        with lock:
            done += 1
            if on_progress is not None:
                on_progress(done)

    with tempfile.TemporaryDirectory(prefix="oots-load-") as tmp:
        begin = time.perf_counter()
        try:
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                dues = [None if rate is None else begin + i / rate for i in range(count)]
                for future in [pool.submit(one, Path(tmp) / str(i), dues[i]) for i in range(count)]:
                    future.result()
        finally:
            for http in clients:
                http.close()
        result.seconds = time.perf_counter() - begin
    return result


@dataclass
class Agreement:
    """How the two sides' records compare (every list empty and the counts equal: they agree)."""

    exchanges: int
    requests_sent: int
    requests_journaled: int
    #: Request message ids the requester sent that the provider's journal never received (or twice).
    missing_or_duplicated: list[str]
    #: Answers the provider journaled as sent that never arrived at the requester's access point.
    answers_not_received: list[str]
    states: dict[str, int]
    #: Requests the requester's access point sent that its own journal has no ``request_sent`` for (or two).
    sent_not_journaled: list[str] = field(default_factory=list)
    #: Answers the provider journaled as sent that the requester's journal has no entry for (or two).
    answers_not_journaled: list[str] = field(default_factory=list)
    #: Answers whose outcome the two journals disagree on: ``(message id, provider's, requester's)``.
    outcome_mismatches: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.missing_or_duplicated
            and not self.answers_not_received
            and not self.sent_not_journaled
            and not self.answers_not_journaled
            and not self.outcome_mismatches
            and self.requests_sent == self.requests_journaled
        )


#: Requester journal events that record an answer as it arrived (its message id first).
_ANSWER_EVENTS = ("evidence_received", "error_received", "preview_required", "answer_dropped")


def journal_agreement(requester: Database, provider: Database, *, partner: str | None = None) -> Agreement:
    """Compare the two nodes' records message by message.

    Each request the requester's access point sent is in the requester's journal once (``request_sent``)
    and in the provider's journal once (``request_received``); each answer the provider journaled as
    sent arrived at the requester's access point and is in the requester's journal once, with the same
    outcome (``evidence`` or the error code, ``EDM:ERR:0002`` for a preview asked for). With ``partner``,
    only the requests sent to that AS4 partner (the provider's access point) count."""
    with requester.session() as session:
        states = Counter(session.scalars(select(RequesterExchange.state)))
        outbound = select(As4Outbound.message_id)
        if partner is not None:
            outbound = outbound.where(As4Outbound.partner == partner)
        sent = list(session.scalars(outbound))
        received = set(session.scalars(select(As4Inbound.message_id)))
        mine = list(
            session.execute(
                select(AuditEntry.event, AuditEntry.message_ids, AuditEntry.outcome).where(
                    AuditEntry.side == "requester"
                )
            )
        )
    with provider.session() as session:
        entries = list(
            session.execute(
                select(AuditEntry.event, AuditEntry.message_ids, AuditEntry.outcome).where(
                    AuditEntry.side == "provider"
                )
            )
        )
    got = Counter(ids[0] for event, ids, _ in entries if event == "request_received" and ids)
    answered = {
        ids[1]: outcome or ""
        for event, ids, outcome in entries
        if event in ("evidence_sent", "error_sent", "preview_required") and len(ids) > 1
    }
    journaled_sent = Counter(ids[0] for event, ids, _ in mine if event == "request_sent" and ids)
    arrived: dict[str, list[str]] = {}
    for event, ids, outcome in mine:
        if event in _ANSWER_EVENTS and ids:
            arrived.setdefault(ids[0], []).append(outcome or "")
    mismatches = sorted(
        (m, theirs, arrived[m][0])
        for m, theirs in answered.items()
        if len(arrived.get(m, ())) == 1 and arrived[m][0] not in (theirs, "late", "unmatched")
    )
    return Agreement(
        exchanges=sum(states.values()),
        requests_sent=len(sent),
        requests_journaled=sum(got.values()),
        missing_or_duplicated=sorted(m for m in sent if got.get(m, 0) != 1),
        answers_not_received=sorted(m for m in answered if m not in received),
        states=dict(states),
        sent_not_journaled=sorted(m for m in sent if journaled_sent.get(m, 0) != 1),
        answers_not_journaled=sorted(m for m in answered if len(arrived.get(m, ())) != 1),
        outcome_mismatches=mismatches,
    )


#: The stages of an exchange answered with evidence, each from one recorded moment to the next (see
#: :func:`exchange_stages`): a stage's name, and what it covers.
STAGES: tuple[tuple[str, str], ...] = (
    ("portal", "exchange created to explicit request given: discovery and the portal's turn"),
    ("requester sends", "explicit request given to the request's first send: packing and a free sender"),
    ("request travels", "first send to stored by the provider's access point: HTTP, decryption, signature"),
    ("provider answers", "stored to answered: the provider's queue, validation, matching, rendering, packing"),
    ("provider sends", "answered to the answer's first send: a free sender"),
    ("answer travels", "first send to stored by the requester's access point: HTTP, decryption, signature"),
    ("requester takes it", "stored to evidence received: the requester's queue and its step"),
)


@dataclass
class Stages:
    """Per stage of :data:`STAGES`, how long each request answered with evidence spent in it (seconds,
    in the order of ``STAGES``); ``incomplete``: requests with a moment missing (not answered with
    evidence, or an answer still on its way), left out."""

    seconds: dict[str, list[float]]
    incomplete: int = 0

    def percentile(self, stage: str, p: float) -> float:
        values = sorted(self.seconds[stage])
        return values[min(len(values) - 1, int(len(values) * p / 100))] if values else 0.0


def _instant(moment: datetime | None) -> float | None:
    """Seconds since the epoch of a stored moment (a naive one is UTC, as every node stores them)."""
    if moment is None:
        return None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


def exchange_stages(
    requester: Database, provider: Database, *, created_within: tuple[float, float] | None = None
) -> Stages:
    """Where each exchange's time went, from the two nodes' records: the exchange's creation and the
    requester's journal, both access points' records of the request and its answer (first send,
    arrival) and the provider's journal, joined by message id. Both nodes must share one clock (one
    machine), as the load runs do. ``created_within`` (seconds since the epoch, from and until): only
    the exchanges created then, e.g. one load of several."""
    with requester.session() as session:
        created = dict(session.execute(select(RequesterExchange.id, RequesterExchange.created_at)).all())
        journal = list(
            session.execute(
                select(AuditEntry.event, AuditEntry.exchange_id, AuditEntry.message_ids, AuditEntry.recorded_at).where(
                    AuditEntry.side == "requester",
                    AuditEntry.event.in_(("explicit_request_given", "request_sent", "evidence_received")),
                )
            ).all()
        )
        sent = dict(session.execute(select(As4Outbound.message_id, As4Outbound.first_sent_at)).all())
        arrived = dict(session.execute(select(As4Inbound.message_id, As4Inbound.received_at)).all())
    with provider.session() as session:
        theirs = list(
            session.execute(
                select(AuditEntry.event, AuditEntry.message_ids, AuditEntry.recorded_at).where(
                    AuditEntry.side == "provider", AuditEntry.event.in_(("request_received", "evidence_sent"))
                )
            ).all()
        )
        their_sent = dict(session.execute(select(As4Outbound.message_id, As4Outbound.first_sent_at)).all())
        their_arrived = dict(session.execute(select(As4Inbound.message_id, As4Inbound.received_at)).all())
    given = {ex: at for event, ex, _, at in journal if event == "explicit_request_given"}
    received = {ids[0]: at for event, _, ids, at in journal if event == "evidence_received" and ids}
    taken = {ids[0]: at for event, ids, at in theirs if event == "request_received" and ids}
    # the answer is journaled in the transaction that journals the request as received: that is when it was answered
    answers = {ids[0]: ids[1] for event, ids, _ in theirs if event == "evidence_sent" and len(ids) > 1}
    out = Stages({name: [] for name, _ in STAGES})
    for event, ex, ids, _ in journal:
        if event != "request_sent" or not ids:
            continue
        request = ids[0]
        answer = answers.get(request)
        moments = [
            created.get(ex or ""),
            given.get(ex),
            sent.get(request),
            their_arrived.get(request),
            taken.get(request),
            None if answer is None else their_sent.get(answer),
            None if answer is None else arrived.get(answer),
            None if answer is None else received.get(answer),
        ]
        instants = [_instant(m) for m in moments]
        if created_within is not None and not created_within[0] <= (instants[0] or 0.0) <= created_within[1]:
            continue
        known = [i for i in instants if i is not None]
        if len(known) < len(instants):
            out.incomplete += 1
            continue
        for (name, _), (start, end) in zip(STAGES, itertools.pairwise(known), strict=True):
            out.seconds[name].append(end - start)
    return out


@dataclass(frozen=True)
class ScaleOut:
    """Run nodes as docs/deploy.md does: ``web`` ``oots serve`` and ``workers`` ``oots worker`` processes
    per node, on one PostgreSQL database per node (``databases``: country → URL) or, without
    ``databases``, on the node's own SQLite file. Several web processes share the node's port through a
    :class:`Balancer`; one serves it directly. ``countries`` limits this to some nodes (None: all)."""

    databases: Mapping[str, str] | None = None
    web: int = 2
    workers: int = 2
    #: Connections per process (PostgreSQL's ``max_connections`` is shared by every process).
    pool_size: int = 3
    countries: frozenset[str] | None = None


@dataclass
class Pair:
    """A running two-node network: its processes, its plan and the balancers of a scaled-out run."""

    supervisor: Supervisor
    network: NetworkPlan
    balancers: list[Balancer] = field(default_factory=list)

    def stop(self) -> None:
        self.supervisor.stop()
        for balancer in self.balancers:
            balancer.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scale_out(network: NetworkPlan, scale: ScaleOut) -> list[Balancer]:
    """Replace each scaled node's one process by web processes and workers; the balancers to run."""
    balancers = []
    for country, (_, service, _) in network.nodes.items():
        if scale.countries is not None and country not in scale.countries:
            continue
        config = network.directory / f"{service.name}.toml"
        if scale.databases is not None:
            url = scale.databases[country].replace('"', "")
            with config.open("a", encoding="utf-8") as fh:
                fh.write(f'\n[database]\nurl = "{url}"\npool_size = {scale.pool_size}\n')
        network.services.remove(service)
        ports = [service.port] if scale.web == 1 else [_free_port() for _ in range(scale.web)]
        for i, port in enumerate(ports, 1):
            argv = (*service.argv[:3], "serve", str(config), "--port", str(port))
            network.services.append(
                ServiceSpec(
                    f"{service.name}-web{i}", f"{service.title}, web {i}", argv, port, service.log, service.identity
                )
            )
        for i in range(1, scale.workers + 1):
            argv = (*service.argv[:3], "worker", str(config))
            network.services.append(
                ServiceSpec(f"{service.name}-worker{i}", f"{service.title}, worker {i}", argv, 0, service.log)
            )
        if scale.web > 1:
            balancers.append(Balancer(service.port, ports))
    return balancers


def requester_provider_pair(
    directory: Path,
    *,
    base_port: int,
    api_key: str,
    progress: Callable[[str], None] = lambda _: None,
    scale_out: ScaleOut | None = None,
) -> Pair:
    """Plan and start a two-node network (BE requester, FR provider) whose portal API accepts ``api_key``.

    By default every node is one process with its worker on SQLite, as ``oots demo`` runs it; with
    ``scale_out``, nodes are web processes and workers (see :class:`ScaleOut`).
    """
    topology = directory / "topology.toml"
    topology.parent.mkdir(parents=True, exist_ok=True)
    topology.write_text(
        '[[node]]\ncountry = "BE"\nroles = ["requester"]\n\n[[node]]\ncountry = "FR"\nroles = ["provider"]\n',
        encoding="utf-8",
    )
    network = plan(load_topology(topology), directory / "net", base_port=base_port)
    digest = hashlib.sha256(api_key.encode()).hexdigest()
    with (network.directory / "be-node.toml").open("a", encoding="utf-8") as fh:
        fh.write(f'\n[[requester.clients]]\nid = "load"\napi_key_sha256 = "{digest}"\n')
    pair = Pair(Supervisor(network.services, progress=progress), network)
    if scale_out is not None:
        pair.balancers = _scale_out(network, scale_out)
        pair.supervisor.services = list(network.services)
    try:
        for balancer in pair.balancers:
            balancer.start()
        pair.supervisor.start(timeout=120)
    except BaseException:
        pair.stop()
        raise
    return pair


def sample_person(country: str, register: str = "births") -> dict[str, Any]:
    """The portal API's JSON for a test person of ``country`` whom its ``register`` knows."""
    from oots.provider.samples import load_people

    person = next(p for p in load_people() if p.register_country == country and register in p.registers)
    return {
        "natural_person": {
            "level_of_assurance": "High",
            "identifier": {"value": person.identifier, "scheme_id": "eidas"},
            "family_name": person.family_name,
            "given_name": person.given_name,
            "date_of_birth": person.date_of_birth.isoformat(),
        }
    }


def _stat_times(pid: int) -> tuple[float, float] | None:
    """User and system CPU seconds of a live process (Linux ``/proc/<pid>/stat``); None when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a live process has used so far, in seconds; 0 when unknown."""
    times = _stat_times(pid)
    return 0.0 if times is None else times[0] + times[1]


def machine_cpu_seconds() -> tuple[float, float]:
    """CPU seconds all cores of this machine have spent busy and in all since boot (Linux ``/proc/stat``);
    zeros when unknown. The busy share over a load says whether the machine's cores were the limit."""
    try:
        line = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0]
    except (OSError, IndexError):
        return 0.0, 0.0
    ticks = [int(v) for v in line.split()[1:9]]  # user nice system idle iowait irq softirq steal
    idle = ticks[3] + ticks[4]
    rate = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / rate, sum(ticks) / rate


def command_cpu_seconds(command: str) -> float:
    """CPU seconds the live processes named ``command`` (e.g. ``postgres``: the server and its backends)
    have used so far; a process that ended meanwhile is not counted."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        name = text[text.find("(") + 1 : text.rfind(")")]
        if name == command:
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@dataclass(frozen=True)
class ProcessTimes:
    """What a process has used so far: CPU seconds in user and system mode, and the context switches of
    its live threads (voluntary: it waited, say for a lock; involuntary: the scheduler took the core)."""

    user: float = 0.0
    system: float = 0.0
    voluntary_switches: int = 0
    involuntary_switches: int = 0

    @property
    def cpu(self) -> float:
        """User and system seconds together."""
        return self.user + self.system

    @property
    def switches(self) -> int:
        """Voluntary and involuntary context switches together."""
        return self.voluntary_switches + self.involuntary_switches

    def __sub__(self, before: ProcessTimes) -> ProcessTimes:
        return ProcessTimes(
            self.user - before.user,
            self.system - before.system,
            self.voluntary_switches - before.voluntary_switches,
            self.involuntary_switches - before.involuntary_switches,
        )


def process_times(pid: int) -> ProcessTimes:
    """:class:`ProcessTimes` of a live process (Linux ``/proc``); zeros when unknown. Switches of threads
    that have ended are not counted."""
    times = _stat_times(pid)
    if times is None:
        return ProcessTimes()
    switches = {"voluntary_ctxt_switches": 0, "nonvoluntary_ctxt_switches": 0}
    for task in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            lines = task.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue  # the thread ended meanwhile
        for line in lines:
            name, _, value = line.partition(":")
            if name in switches:
                switches[name] += int(value)
    return ProcessTimes(
        times[0],
        times[1],
        switches["voluntary_ctxt_switches"],
        switches["nonvoluntary_ctxt_switches"],
    )


def peak_memory_mb(pid: int) -> float:
    """Peak resident memory of a live process (Linux ``VmHWM``), in MB; 0 when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
