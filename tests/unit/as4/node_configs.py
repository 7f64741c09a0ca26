"""Node configurations for two access points, blue and red, with a development PKI (core keys API)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from oots.as4.keys import init_dev_pki


def write_pair(directory: Path, *, blue_url: str, red_url: str, now: dt.datetime, extra: str = "") -> dict[str, Path]:
    """Write keys and ``blue.toml`` / ``red.toml`` under ``directory``; return the two config paths."""
    pki = init_dev_pki(directory / "pki", ["blue", "red"], now=now)
    paths = {}
    for own, other, other_url in (("blue", "red", red_url), ("red", "blue", blue_url)):
        mine, theirs = pki.access_points[own], pki.access_points[other]
        config = directory / f"{own}.toml"
        config.write_text(
            f"""
[node]
name = "{own}"
data_dir = "{(directory / own).as_posix()}"

[as4]
party_id = "{own}_gw"
signing_key = "{mine["sign_key"].as_posix()}"
signing_certificate = "{mine["sign_cert"].as_posix()}"
decryption_key = "{mine["encrypt_key"].as_posix()}"
decryption_certificate = "{mine["encrypt_cert"].as_posix()}"
retry_offsets_seconds = [1, 2]
receipt_timeout_seconds = 10
{extra}

[[as4.partners]]
name = "{other}"
party_id = "{other}_gw"
endpoint = "{other_url}"
signing_certificate = "{theirs["sign_cert"].as_posix()}"
encryption_certificate = "{theirs["encrypt_cert"].as_posix()}"
trust_anchors = ["{pki.ca_certificate.as_posix()}"]
""",
            encoding="utf-8",
        )
        paths[own] = config
    return paths
