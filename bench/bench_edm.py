"""EDM codec throughput on the official evidence request sample (target: >= 2,000 documents/s)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from oots import edm

_SPEC = Path(os.environ.get("OOTS_TEST_SPEC_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "spec"))
SAMPLE = (
    _SPEC
    / "edm-v1.0/samples/Exchange/4.5.4 - OOTS-EDM XML Examples of the Evidence Exchange"
    / "2 Example for requesting a Birth Certificate - natural person"
    / "2.1 Step 1  Evidence Request - Birth - full example.xml"
)


def _rate(label: str, fn: object, seconds: float = 1.5) -> float:
    """Documents per second of CPU time (the machine may be shared), with the wall-clock rate beside."""
    assert callable(fn)
    fn()  # warm up caches
    n, started, cpu_started = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(50):
            fn()
        n += 50
    cpu = time.process_time() - cpu_started
    rate = n / cpu
    print(f"   {label:<26} {rate:>8,.0f} documents/s of CPU ({cpu / n * 1e6:,.0f} µs each; wall {n / elapsed:,.0f}/s)")
    return rate


def run() -> None:
    data = SAMPLE.read_bytes()
    doc = edm.parse(data)
    print(f"   sample: {SAMPLE.name} ({len(data):,} bytes)")
    _rate("parse", lambda: edm.parse(data))
    _rate("to_xml (v1.0)", lambda: edm.to_xml(doc))
    _rate("to_xml (v2.0)", lambda: edm.to_xml(doc, edm.Version.EDM_V2))
    both = _rate("parse + to_xml", lambda: edm.to_xml(edm.parse(data)))
    form = edm.to_json(doc)
    text = json.dumps(form)
    _rate("to_json + json.dumps", lambda: json.dumps(edm.to_json(doc)))
    _rate("json.loads + from_json", lambda: edm.from_json(json.loads(text)))
    print(f"   target parse + serialise >= 2,000/s on one core: {'met' if both >= 2000 else 'NOT met'}")
