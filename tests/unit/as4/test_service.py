from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from asgi_sync import SyncASGITransport
from msh_world import MemoryInbox
from node_configs import write_pair
from sqlalchemy import select

from oots.as4 import http, msh, service
from oots.as4.keys import init_dev_pki
from oots.as4.models import As4Inbound
from oots.as4.store import As4Store
from oots.cli import main
from oots.errors import ConfigError, SecurityError
from oots.settings import load_settings
from oots.store import open_database
from stored_rows import inbound_row

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


@pytest.fixture
def red_expired(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> dict[str, Path]:
    """blue and red made 800 days ago: blue's certificates end in 25 days, red's ended 770 days ago."""
    long_ago = NOW - dt.timedelta(days=800)
    configs = write_pair(tmp_path, blue_url="http://blue.test/as4", red_url="http://red.test/as4", now=long_ago)
    init_dev_pki(tmp_path / "pki", ["red"], now=long_ago, days=30)  # red's keys again, valid 30 days only
    return configs


def test_an_expired_partner_certificate_is_a_warning_and_fails_only_its_messages(
    red_expired: dict[str, Path],
) -> None:
    blue = service.load_access_point(load_settings(red_expired["blue"]))  # starts
    red_cert = blue.pmodes.partner("red").encryption_certificate
    assert red_cert is not None
    ended = f"{red_cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    assert f"partners[red].encryption_certificate: expired on {ended}: messages to partner red (red_gw) fail" in (
        "\n".join(blue.warnings)
    )
    # blue's own certificates end within 30 days: told, not refused
    pki = red_expired["blue"].parent / "pki"
    for setting, use, file in (("signing", "signing", "sign"), ("decryption", "encryption", "encrypt")):
        told = f"as4.{setting}_certificate: the node's own {use} certificate in {pki / 'blue' / file}.pem expires on "
        assert any(
            w.startswith(told) and w.endswith("renew it and give the partners the new one") for w in blue.warnings
        )
    with pytest.raises(SecurityError, match=f"AS4 partner red \\(red_gw\\) expired on {ended}"):
        service.ping(blue, "red")

    # red, whose own certificates have expired, refuses to start
    with pytest.raises(ConfigError) as info:
        service.load_access_point(load_settings(red_expired["red"]))
    refused = dict(info.value.problems)
    assert refused["as4.signing_certificate"].startswith(f"the node's own signing certificate in {pki / 'red'}")
    assert "sign.pem expired on " in refused["as4.signing_certificate"]
    assert refused["as4.decryption_certificate"].startswith(f"the node's own encryption certificate in {pki / 'red'}")

    # a message red signed while its certificate was valid is refused by blue now, as before
    then = NOW - dt.timedelta(days=790)
    red = service.load_access_point(load_settings(red_expired["red"]), clock=lambda: then)
    inbox = MemoryInbox()
    app = http.as4_app(lambda: blue.receiver(inbox.seen), inbox, clock=blue.clock, max_bytes=1_000_000)
    red.sender.transport = SyncASGITransport(app)
    record = service.ping(red, "blue")
    assert record.state is not msh.OutboundState.RECEIPT
    assert record.error_code == "EBMS:0101", record.error_detail
    assert not inbox.records


def test_config_check_tells_the_certificate_warnings(
    red_expired: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["config", "check", str(red_expired["blue"])])
    assert info.value.code == 0  # warnings only
    err = capsys.readouterr().err
    assert "warning: partners[red].signing_certificate: expired on" in err
    assert "warning: as4.signing_certificate: the node's own signing certificate in " in err
    with pytest.raises(SystemExit) as info:
        main(["config", "check", str(red_expired["red"])])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "as4.signing_certificate: the node's own signing certificate in " in err
    assert "sign.pem expired on " in err


def test_the_standalone_access_point_purges_received_messages_past_the_window(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    configs = write_pair(
        tmp_path,
        blue_url="http://blue.test/as4",
        red_url="http://red.test/as4",
        now=NOW,
        extra="duplicate_window_seconds = 3600\npurge_interval_seconds = 600",
    )
    settings = load_settings(configs["red"])
    red = service.load_access_point(settings)
    db = open_database(settings)
    try:
        with db.session() as session:
            for message_id, age in (("old@blue", 7200), ("young@blue", 60)):
                session.add(inbound_row(message_id, received_at=NOW - dt.timedelta(seconds=age)))
        store = As4Store(db, red.pmodes, clock=red.clock)
        loops = service.background(red, store, lambda session, message: None, settings.queue)
        (purge,) = [loop for loop in loops._loops._loops if loop.name == "as4-inbound-purge"]
        assert purge.poll_seconds == 600  # [as4] purge_interval_seconds, as in a node

        def kept() -> list[str]:
            with db.session() as session:
                return sorted(session.scalars(select(As4Inbound.message_id)))

        loops.start()
        try:
            for _ in range(100):  # the loop's first run is at once
                if kept() == ["young@blue"]:
                    break
                time.sleep(0.05)
            assert kept() == ["young@blue"]  # past [as4] duplicate_window_seconds: forgotten
        finally:
            loops.stop(timeout=5.0)
    finally:
        red.sender.close()
        db.dispose()
