"""Node configurations for two access points, blue and red, with a development PKI (core keys API)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from oots.network.pair import write_node_configs


def write_pair(directory: Path, *, blue_url: str, red_url: str, now: dt.datetime, extra: str = "") -> dict[str, Path]:
    """Write keys and ``blue.toml`` / ``red.toml`` under ``directory``; return the two config paths."""
    as4 = f"retry_offsets_seconds = [1, 2]\nreceipt_timeout_seconds = 10\n{extra}"
    return write_node_configs(directory, {"blue": blue_url, "red": red_url}, now=now, as4=as4)
