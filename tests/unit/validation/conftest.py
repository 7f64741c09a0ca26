"""Fixtures of the validator tests: one shared validator (compiled rules are reused across tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from oots.validation import Validator

REQUEST = (
    "edm-v1.0/samples/Exchange/4.5.4 - OOTS-EDM XML Examples of the Evidence Exchange/"
    "2 Example for requesting a Birth Certificate - natural person/"
    "2.1 Step 1  Evidence Request - Birth - full example.xml"
)


@pytest.fixture(scope="session")
def validator() -> Validator:
    return Validator()


@pytest.fixture(scope="session")
def samples(spec_dir: Path) -> Path:
    return spec_dir / "edm-v1.0" / "samples"


@pytest.fixture(scope="session")
def request_sample(spec_dir: Path) -> bytes:
    return (spec_dir / REQUEST).read_bytes()
