"""AS4 over loopback HTTP: one-way send with receipt, 10 KB and 1 MB payloads, 1 and 8 concurrent senders.

The receiver is a separate process (uvicorn, the built-in access point, its SQLite or PostgreSQL store: each message
is decrypted, verified, stored with its receipt and its delivery job, then answered with a signed
receipt). The sender packs (gzip, sign, encrypt), posts, and verifies the receipt: the figures are the
whole round trip as the sending application sees it. ``python -m bench as4_http``. With
``OOTS_BENCH_POSTGRES_URL`` (or ``OOTS_TEST_POSTGRES_URL``) the rounds run again with the receiver's
store in a scratch PostgreSQL database (created and dropped).

Next to the wall-clock figures, the CPU time per message of each side (the sending process: pack,
HTTP client, receipt check; the receiving process: HTTP server, decrypt, verify, store, receipt) is
printed: on a shared machine the latencies follow the other processes' load, the CPU times much less.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROUNDS = {10 * 1024: (150, 400), 1024 * 1024: (25, 48)}  # messages at 1 and at 8 senders
T = "urn:oasis:names:tc:ebcore:partyid-type:unregistered:oots"
ROLE = "http://sdg.europa.eu/edelivery/gateway"


def _configs(directory: Path, port: int, *, database_url: str = "") -> dict[str, Path]:
    from oots.network.pair import write_node_configs

    url = f"http://127.0.0.1:{port}/as4"
    tables = {"red": f'[database]\nurl = "{database_url}"'} if database_url else None
    return write_node_configs(directory, {"blue": url, "red": url}, as4="max_message_bytes = 50000000", tables=tables)


def serve(config: Path, port: int) -> None:
    """The receiving access point (run in its own process)."""
    import uvicorn

    from oots.as4 import service
    from oots.as4.store import As4Store
    from oots.settings import load_settings
    from oots.store import open_database

    settings = load_settings(config)
    ap = service.load_access_point(settings)
    store = As4Store(open_database(settings), ap.pmodes, clock=ap.clock)
    uvicorn.run(service.create_as4_app(ap, store), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _message(ap, size: int):  # type: ignore[no-untyped-def]
    from oots.as4.model import (
        CollaborationInfo,
        MessageInfo,
        Party,
        PartyId,
        PartyInfo,
        Payload,
        Property,
        Service,
        UserMessage,
    )

    um = UserMessage(
        MessageInfo(ap.new_message_id(), dt.datetime.now(dt.UTC)),
        PartyInfo(Party(PartyId("blue_gw", T), ROLE), Party(PartyId("red_gw", T), ROLE)),
        CollaborationInfo(
            Service("QueryManager", "urn:oasis:names:tc:ebcore:ebrs:ebms:binding:1.0"), "ExecuteQueryRequest", "c-1"
        ),
        (
            Property("originalSender", "BE1", "urn:cef.eu:names:identifier:EAS:0208"),
            Property("finalRecipient", "FR2", "urn:cef.eu:names:identifier:EAS:0009"),
        ),
    )
    # Random bytes (incompressible) so that gzip does not shrink the payload away.
    return um, [Payload("evidence@blue", "application/octet-stream", os.urandom(size))]


def _send(ap, size: int) -> float:  # type: ignore[no-untyped-def]
    from oots.as4 import msh

    um, payloads = _message(ap, size)
    started = time.perf_counter()
    record = msh.create_outbound(ap.codec, um, payloads, ap_mode(ap), dt.datetime.now(dt.UTC))
    record, request = msh.begin_attempt(record, ap_mode(ap), dt.datetime.now(dt.UTC))
    reply = ap.sender.post(request)
    record, _ = msh.on_reply(record, ap_mode(ap), ap.codec, (reply.content_type, reply.body), dt.datetime.now(dt.UTC))
    elapsed = time.perf_counter() - started
    if record.state is not msh.OutboundState.RECEIPT:
        raise RuntimeError(f"no receipt: {record.error_code} {record.error_detail}")
    return elapsed


def ap_mode(ap):  # type: ignore[no-untyped-def]
    pm = ap.pmodes
    return pm.resolve(pm.partner("red"), pm.leg("QueryManager", "ExecuteQueryRequest"))


def _round(ap, size: int, count: int, concurrency: int) -> tuple[list[float], float]:  # type: ignore[no-untyped-def]
    times: list[float] = []
    lock = threading.Lock()
    left = [count]

    def work() -> None:
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            t = _send(ap, size)
            with lock:
                times.append(t)

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return times, time.perf_counter() - started


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _rounds(configs: dict[str, Path], port: int, store: str) -> None:
    """Start the receiver on ``configs["red"]``, run every round against it, print a line per round."""
    from oots.as4 import service
    from oots.settings import load_settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("OOTS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_as4_http", "serve", str(configs["red"]), str(port)],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/as4/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the receiving access point did not start") from None
                time.sleep(0.1)
        ap = service.load_access_point(load_settings(configs["blue"]))
        for _ in range(10):  # warm up: connections, caches
            _send(ap, 10 * 1024)
        for size, (n1, n8) in ROUNDS.items():
            for concurrency, count in ((1, n1), (8, n8)):
                before, server_before = os.times(), _cpu_seconds(proc.pid)
                times, wall = _round(ap, size, count, concurrency)
                after, server_after = os.times(), _cpu_seconds(proc.pid)
                client_cpu = (after.user + after.system - before.user - before.system) / count * 1000
                server_cpu = (
                    f"{(server_after - server_before) / count * 1000:>11.2f}"
                    if server_before is not None and server_after is not None
                    else f"{'-':>11}"
                )
                label = f"{size // 1024} KB" if size < 1024 * 1024 else f"{size // (1024 * 1024)} MB"
                print(
                    f"   {store:>8} {label:>8} {concurrency:>7} {count:>5} {_pct(times, 0.5) * 1000:>8.1f} "
                    f"{_pct(times, 0.99) * 1000:>8.1f} {count / wall:>8.1f} {client_cpu:>11.2f} {server_cpu}",
                    flush=True,
                )
        ap.sender.close()
    finally:
        proc.terminate()
        proc.wait(10)


def run() -> None:
    print(
        f"   {'store':>8} {'payload':>8} {'senders':>7} {'msgs':>5} {'p50 ms':>8} {'p99 ms':>8} {'msgs/s':>8} "
        f"{'send CPU ms':>11} {'recv CPU ms':>11}"
    )
    # OOTS_BENCH_* is no setting: kept out of the environment the settings are read from, meanwhile.
    bench_url = os.environ.pop("OOTS_BENCH_POSTGRES_URL", None)
    try:
        _all_rounds(bench_url or os.environ.get("OOTS_TEST_POSTGRES_URL"))
    finally:
        if bench_url is not None:
            os.environ["OOTS_BENCH_POSTGRES_URL"] = bench_url


def _all_rounds(server: str | None) -> None:
    from bench.postgres import answering
    from oots.network.local import free_port
    from oots.store.scratch import scratch_database

    for store in ("sqlite", "postgres"):
        with tempfile.TemporaryDirectory(prefix="oots-bench-as4-") as tmp, contextlib.ExitStack() as stack:
            directory = Path(tmp)
            url = ""
            if store == "postgres":
                if not answering(server, "postgres") or not server:
                    continue
                url = stack.enter_context(scratch_database(server, prefix="oots_bench_as4"))
            port = free_port()
            _rounds(_configs(directory, port, database_url=url), port, store)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        run()
