"""Configurations of access points that know each other, for tests, benchmarks and experiments.

:func:`write_node_configs` makes a development PKI (:func:`oots.as4.keys.init_dev_pki`) and writes one
``<name>.toml`` per node: ``[node]``, an optional ``[queue]``, ``[as4]`` with the node's own keys
(party id ``<name>_gw``) and an ``[[as4.partners]]`` entry for every other node, trusting the one CA.
What differs between users goes in as TOML text: keys for every node's ``[queue]`` or ``[as4]``,
per-node keys for ``[node]``, per-node tables at the end. ``oots demo`` writes its richer network
configurations with :func:`oots.network.plan`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

from oots.as4.keys import init_dev_pki

__all__ = ["write_node_configs"]


def _q(path: Path) -> str:
    return '"' + path.as_posix() + '"'


def write_node_configs(
    directory: Path,
    endpoints: Mapping[str, str],
    *,
    now: dt.datetime | None = None,
    node: Mapping[str, str] | None = None,
    queue: str = "",
    as4: str = "",
    tables: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Write keys under ``directory/pki`` and ``directory/<name>.toml`` for each node; return the paths.

    ``endpoints`` maps each node's name to the AS4 endpoint its partners send to. ``node`` adds
    per-node lines to ``[node]``, ``queue`` the lines of a ``[queue]`` table for every node, ``as4``
    more ``[as4]`` lines for every node, ``tables`` per-node TOML tables after the partners.
    """
    names = list(endpoints)
    pki = init_dev_pki(directory / "pki", names, now=now or dt.datetime.now(dt.UTC))
    paths: dict[str, Path] = {}
    for own in names:
        mine = pki.access_points[own]
        lines = ["[node]", f'name = "{own}"', f"data_dir = {_q(directory / own)}", (node or {}).get(own, ""), ""]
        if queue:
            lines += ["[queue]", queue, ""]
        lines += [
            "[as4]",
            f'party_id = "{own}_gw"',
            f"signing_key = {_q(mine['sign_key'])}",
            f"signing_certificate = {_q(mine['sign_cert'])}",
            f"decryption_key = {_q(mine['encrypt_key'])}",
            f"decryption_certificate = {_q(mine['encrypt_cert'])}",
            as4,
        ]
        for other in names:
            if other == own:
                continue
            theirs = pki.access_points[other]
            lines += [
                "",
                "[[as4.partners]]",
                f'name = "{other}"',
                f'party_id = "{other}_gw"',
                f'endpoint = "{endpoints[other]}"',
                f"signing_certificate = {_q(theirs['sign_cert'])}",
                f"encryption_certificate = {_q(theirs['encrypt_cert'])}",
                f"trust_anchors = [{_q(pki.ca_certificate)}]",
            ]
        lines += ["", (tables or {}).get(own, ""), ""]
        path = directory / f"{own}.toml"
        path.write_text("\n".join(lines), encoding="utf-8")
        paths[own] = path
    return paths
