"""The phase4 golden message: a signed and encrypted UserMessage from a real Java access point."""

from __future__ import annotations

from pathlib import Path

import pytest
from as4_helpers import NOW, Pki, pki_fixture  # noqa: F401 - fixtures

from oots.as4 import message, mime, model
from oots.errors import SecurityError


@pytest.fixture
def golden(spec_dir: Path) -> tuple[str, bytes]:
    headers, body = mime.read_message_file(
        (spec_dir / "edelivery" / "phase4-signed-encrypted-usermessage.as4out").read_bytes()
    )
    return headers["content-type"], body


def test_signature_verifies_over_messaging_and_body(golden: tuple[str, bytes]) -> None:
    report, header = message.inspect(*golden)
    assert report.signature_valid
    statuses = {c.uri.split("-")[0]: c.status for c in report.checks}
    assert statuses == {"#phase4": "ok", "#id": "ok", "cid:phase4": "encrypted"}
    assert report.problems == ()
    assert report.signer is not None
    assert "POP000306" in report.signer.subject.rfc4514_string()
    assert isinstance(header, model.UserMessage)
    assert header.message_info.message_id == "17a7c374-efe3-41e2-ac0d-8a8f47529e47@phase4"
    assert header.collaboration_info.service.type == "cenbii-procid-ubl"
    prop = header.property("originalSender")
    assert prop is not None
    assert (prop.value, prop.type) == ("9915:phase4-test-sender", "iso6523-actorid-upis")


def test_payload_is_encrypted_to_a_key_nobody_here_has(golden: tuple[str, bytes]) -> None:
    """Its attachment is encrypted for the Peppol test AP; we cannot and do not pretend to decrypt it."""
    report, _ = message.inspect(*golden)
    assert report.undecrypted == {"phase4-att-ff0f8ad5-f982-48ba-b8e2-26997600f496@cid"}
    assert not report.holds


def test_one_flipped_header_byte_breaks_it(golden: tuple[str, bytes]) -> None:
    content_type, body = golden
    forged = body.replace(b"9915:helger", b"9915:helgeR")
    report, _ = message.inspect(content_type, forged)
    assert [c.status for c in report.checks][:2] == ["mismatch", "ok"]


def test_receive_refuses_it_without_the_key(golden: tuple[str, bytes], pki: Pki) -> None:
    with pytest.raises(SecurityError) as info:
        message.receive(*golden, trust=pki.trust, now=NOW)
    assert info.value.code == "EBMS:0102"
