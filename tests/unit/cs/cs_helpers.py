"""Helpers shared by the Common Services tests (imported by name: the test folders are not packages)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

#: A time at which the Commission's acceptance chain is valid (its signer expires 2027-10-23).
CAPTURE_TIME = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
CAPTURES = ("eb_requirements_fr", "eb_evidence_types_fr", "dsd_aucun_service_fr")


@dataclass(frozen=True)
class Capture:
    name: str
    body: bytes
    headers: dict[str, str]


def read_headers(path: Path) -> dict[str, str]:
    headers = {}
    for line in path.read_text(encoding="ascii").splitlines():
        name, _, value = line.partition(": ")
        headers[name] = value
    return headers


DEMO = Path(__file__).resolve().parents[3] / "src" / "oots" / "cs" / "data" / "demo-catalogue.toml"
SR = "https://sr.oots.tech.ec.europa.eu"
EB1 = "urn:fdc:oots:eb:ebxml-regrep:queries:requirements-by-procedure-and-jurisdiction"
EB2 = "urn:fdc:oots:eb:ebxml-regrep:queries:evidence-types-by-requirement-and-jurisdiction"
DSD = "urn:fdc:oots:dsd:ebxml-regrep:queries:dataservices-by-evidencetype-and-jurisdiction"
