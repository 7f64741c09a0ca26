"""Configurations of access points that know each other: valid settings, every partner, per-node extras."""

from __future__ import annotations

from pathlib import Path

import pytest

from oots.as4.service import load_access_point
from oots.network.pair import write_node_configs
from oots.settings import load_settings


def test_three_nodes_know_each_other(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    endpoints = {name: f"http://{name}.test/as4" for name in ("blue", "red", "green")}
    paths = write_node_configs(
        tmp_path,
        endpoints,
        node={"red": 'country = "ES"\nroles = ["provider"]'},
        queue="poll_interval_seconds = 0.05",
        as4="receipt_timeout_seconds = 7",
        tables={"red": "[provider]\nsamples = true"},
    )
    assert set(paths) == set(endpoints)
    for name, path in paths.items():
        settings = load_settings(path)
        assert settings.node.name == name
        assert settings.as4.party_id == f"{name}_gw"
        assert settings.as4.receipt_timeout_seconds == 7
        assert settings.queue.poll_interval_seconds == 0.05
        partners = {p.name: p.endpoint for p in settings.as4.partners}
        assert partners == {other: url for other, url in endpoints.items() if other != name}
        load_access_point(settings)  # the keys and certificates named are there and fit together
    red = load_settings(paths["red"])
    assert red.node.country == "ES"
    assert red.node.roles == ("provider",)
    assert red.provider.samples
    assert load_settings(paths["blue"]).node.roles == ()
