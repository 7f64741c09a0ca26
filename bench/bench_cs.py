"""Signed DSD answers per second and latency at 50 concurrent clients against a real `oots cs serve` process.

The server is started as its own process (uvicorn, the demo catalogue, fresh signing keys); 50 clients
on keep-alive connections ask signed (``Accept-Version: oots-cs:v2.0``) DSD queries over the demo
catalogue's evidence types for a fixed time. Every answer must carry the signature headers; a sample is
verified with the client's verifier. Prints answers/s and p50/p99 latency.
Targets: >= 500 signed answers/s, p99 <= 50 ms.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from oots.cs.datafile import load_catalogue
from oots.cs.jades import verify_answer
from oots.cs.keys import TRUST_FILE, generate_pki, write_pki
from oots.cs.queries import DSD_DATA_SERVICES
from oots.cs.trust import TrustStore
from oots.network.local import free_port, oots_process, wait_until_up

DEMO = Path(__file__).resolve().parent.parent / "src" / "oots" / "cs" / "data" / "demo-catalogue.toml"
CLIENTS = 50
SECONDS = float(os.environ.get("OOTS_BENCH_SECONDS", "10"))
WORKERS = int(os.environ.get("OOTS_BENCH_CS_WORKERS", "1"))


def _paths() -> list[str]:
    catalogue = load_catalogue(DEMO)
    paths = []
    for ds in catalogue.data_services:
        country = ds.access_services[0].publisher.jurisdiction.level1
        params = [
            ("queryId", DSD_DATA_SERVICES),
            ("evidence-type-classification", ds.classification),
            ("country-code", country),
        ]
        paths.append("/rest/search?" + urlencode(params))
    return paths


async def _read_response(reader: asyncio.StreamReader) -> tuple[dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 200"):
        raise RuntimeError(lines[0])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return headers, body


async def _client(
    port: int,
    paths: list[str],
    offset: int,
    stop: float,
    latencies: list[float],
    samples: list[tuple[bytes, dict[str, str]]],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    try:
        while time.perf_counter() < stop:
            path = paths[i % len(paths)]
            i += 1
            request = (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/x-ebrs+xml\r\n"
                "Accept-Version: oots-cs:v2.0\r\n\r\n"
            ).encode()
            started = time.perf_counter()
            writer.write(request)
            headers, body = await _read_response(reader)
            latencies.append(time.perf_counter() - started)
            if "oots-response-sig" not in headers or "digest" not in headers:
                raise RuntimeError("an answer came without its signature")
            if len(samples) < 200 and i % 7 == 0:
                samples.append((body, headers))
    finally:
        writer.close()


async def _load(
    port: int, paths: list[str], seconds: float
) -> tuple[list[float], list[tuple[bytes, dict[str, str]]], float]:
    latencies: list[float] = []
    samples: list[tuple[bytes, dict[str, str]]] = []
    started = time.perf_counter()
    stop = started + seconds
    await asyncio.gather(*(_client(port, paths, n * 3, stop, latencies, samples) for n in range(CLIENTS)))
    return latencies, samples, time.perf_counter() - started


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children so far (Linux /proc), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / ticks


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys"
        write_pki(generate_pki(), keys)
        port = free_port()
        proc = oots_process(
            *("cs", "serve", "--data", str(DEMO), "--port", str(port), "--keys", str(keys)),
            *("--workers", str(WORKERS), "--database", f"sqlite:///{tmp}/cs.db"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_until_up(f"http://127.0.0.1:{port}/health", proc, seconds=30)
            paths = _paths()
            asyncio.run(_load(port, paths, 1.0))  # warm up (answer cache, connections)
            cpu_before = _cpu_seconds(proc.pid)
            latencies, samples, elapsed = asyncio.run(_load(port, paths, SECONDS))
            cpu = _cpu_seconds(proc.pid) - cpu_before
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        trust = TrustStore.from_pem_files([keys / TRUST_FILE])
        for body, headers in samples:
            verify_answer(body, headers, trust)
    latencies.sort()
    n = len(latencies)
    p50 = latencies[n // 2] * 1000
    p99 = latencies[min(n - 1, int(n * 0.99))] * 1000
    print(f"   signed DSD answers: {n} in {elapsed:.1f} s with {CLIENTS} clients, {WORKERS} server process(es)")
    print(f"   throughput: {n / elapsed:,.0f} signed answers/s   (target >= 500)")
    print(f"   latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms   (target p99 <= 50 ms)")
    if WORKERS == 1:
        print(f"   server CPU per signed answer: {cpu / n * 1e6:.0f} us (HTTP included; load-independent)")
    print(f"   machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"   {len(samples)} sampled answers verified (signature, digest, chain)")
