from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from asgi_sync import SyncASGITransport
from msh_world import MemoryInbox
from node_configs import write_pair

from oots.as4 import http, msh, service
from oots.cli import main
from oots.errors import ConfigError
from oots.settings import load_settings

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def configs(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> dict[str, Path]:
    return write_pair(tmp_path, blue_url="http://blue.test/as4", red_url="http://red.test/as4", now=NOW)


def test_ping_gets_a_receipt_and_nothing_is_delivered(configs: dict[str, Path]) -> None:
    blue = service.load_access_point(load_settings(configs["blue"]))
    red = service.load_access_point(load_settings(configs["red"]))
    inbox = MemoryInbox()
    app = http.as4_app(lambda: red.receiver(inbox.seen), inbox, clock=red.clock, max_bytes=1_000_000)
    blue.sender.transport = SyncASGITransport(app)
    record = service.ping(blue, "red")
    assert record.state is msh.OutboundState.RECEIPT, record.error_detail
    (kept,) = inbox.records.values()
    assert not kept.deliver  # the test service is never delivered
    assert kept.message.user_message.party_info.from_party.party_id.value == "blue_gw"


def test_ping_command_reports_an_unreachable_partner(
    configs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    text = configs["blue"].read_text(encoding="utf-8").replace("http://red.test/as4", "http://127.0.0.1:9/as4")
    configs["blue"].write_text(text, encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["as4", "ping", "red", "--config", str(configs["blue"])])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "no receipt" in err
    assert "EBMS:0005" in err  # ConnectionFailure (a ping is one attempt)


def test_ping_command_names_an_unknown_partner_a_configuration_error(
    configs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["as4", "ping", "nosuch", "--config", str(configs["blue"])])
    assert info.value.code == 2  # docs/cli.md: 2 configuration
    err = capsys.readouterr().err
    assert "no AS4 partner 'nosuch' is configured (partners in [as4]: red)" in err


def test_missing_keys_are_a_config_error(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="signing_key"):
        service.load_access_point(load_settings())
