"""Validation throughput: the official evidence request sample, XSD + EDM-REQ-S + EDM-REQ-C, one core.

Prints messages/s for the full validation (``Validator.validate``: hardened parse, kind detection, XSD,
both Schematron files in one compiled stylesheet, code lists) and, to see where the time goes, for its
parts: the hardened lxml parse, the XSD layer, the Saxon parse, and the compiled Schematron run alone.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from oots.validation import Validator, detect
from oots.xmlsafe import parse_tree

SPEC = Path(os.environ.get("OOTS_TEST_SPEC_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "spec"))
SAMPLE = (
    SPEC / "edm-v1.0/samples/Exchange/4.5.4 - OOTS-EDM XML Examples of the Evidence Exchange/"
    "2 Example for requesting a Birth Certificate - natural person/"
    "2.1 Step 1  Evidence Request - Birth - full example.xml"
)


def _rate(fn: Callable[[], object], seconds: float = 3.0) -> float:
    for _ in range(50):  # warm up (JIT-free native Saxon, but caches and allocators)
        fn()
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(50):
            fn()
        count += 50
    return count / (time.perf_counter() - started)


def run() -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    data = SAMPLE.read_bytes()
    validator = Validator()
    report = validator.validate(data)
    assert report.valid, report.findings
    tree = parse_tree(data)
    detected = detect(tree.getroot())
    ruleset = validator.ruleset_for(detected)
    assert ruleset is not None
    schema = ruleset.schema
    assert schema is not None
    executable = validator.executable(ruleset, detected.kind)
    assert executable is not None
    from oots.validation.validator import _Saxon

    processor = _Saxon.processor()
    text = data.decode("utf-8")
    node = processor.parse_xml(xml_text=text)

    print(f"   sample: {SAMPLE.name} ({len(data):,} bytes), rules: {', '.join(report.rule_sets)}")
    print(f"   hardened parse (lxml)         {_rate(lambda: parse_tree(data)):8.0f} /s")
    print(f"   XSD layer (lxml)              {_rate(lambda: schema.validate(tree)):8.0f} /s")
    print(f"   Saxon parse                   {_rate(lambda: processor.parse_xml(xml_text=text)):8.0f} /s")
    print(f"   Schematron run (both files)   {_rate(lambda: executable.run(node)):8.0f} /s")
    full = _rate(lambda: validator.validate(data))
    print(f"   full validation               {full:8.0f} messages/s  (target >= 450)")
