"""Apache Santuario (the XML security library inside WSS4J, phase4 and Domibus) as an oracle.

A small Java program (``santuario/As4Oracle.java``) is compiled at test time. It verifies and
decrypts what oots produces (messages and receipts), and it signs and encrypts a message that oots
must verify and decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from oots import ns
from oots.as4 import compression, envelope, keys, message, mime, model, profile
from oots.as4.trust import TrustStore
from oots.errors import SecurityError

pytestmark = pytest.mark.interop

HERE = Path(__file__).parent / "santuario"
JARS = ["xmlsec.jar", "commons-codec.jar", "slf4j-api.jar", "slf4j-nop.jar"]
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _classpath() -> str:
    missing = [j for j in JARS if not (Path("/usr/share/java") / j).is_file()]
    if missing or shutil.which("javac") is None or shutil.which("java") is None:
        pytest.skip(
            f"Java or Apache Santuario is missing ({', '.join(missing) or 'javac/java'}); run scripts/sysdeps.sh"
        )
    return ":".join(str(Path("/usr/share/java") / j) for j in JARS)


@dataclass(frozen=True)
class Oracle:
    classes: Path
    classpath: str

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["java", "-cp", f"{self.classes}:{self.classpath}", "As4Oracle", *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Oracle:
    classpath = _classpath()
    classes = tmp_path_factory.mktemp("santuario")
    done = subprocess.run(
        ["javac", "-cp", classpath, "-d", str(classes), str(HERE / "As4Oracle.java")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return Oracle(classes, classpath)


@dataclass(frozen=True)
class Pki:
    ca: keys.KeyPair
    sender: keys.KeyPair
    receiver_sign: keys.KeyPair
    receiver_encrypt: keys.KeyPair
    files: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    start = NOW - timedelta(days=1)
    ca = keys.make_ca("interop CA", now=start)
    pki = Pki(
        ca,
        keys.issue(ca, "sender", now=start, purpose="sign"),
        keys.issue(ca, "receiver sign", now=start, purpose="sign"),
        keys.issue(ca, "receiver encrypt", now=start, purpose="encrypt"),
        tmp_path_factory.mktemp("keys"),
    )
    for name in ("sender", "receiver_sign", "receiver_encrypt"):
        pair: keys.KeyPair = getattr(pki, name)
        (pki.files / f"{name}.pk8").write_bytes(
            pair.private_key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (pki.files / f"{name}.der").write_bytes(pair.certificate.public_bytes(serialization.Encoding.DER))
    return pki


def _message() -> model.UserMessage:
    return profile.user_message(
        message_id="interop-1@oots",
        timestamp=NOW,
        from_party=model.PartyId("sender-ap", profile.PARTY_ID_TYPE),
        to_party=model.PartyId("receiver-ap", profile.PARTY_ID_TYPE),
        original_sender=model.PartyId("C1", "urn:oasis:names:tc:ebcore:partyid-type:unregistered:BE"),
        final_recipient=model.PartyId("C4", "urn:cef.eu:names:identifier:EAS:9930"),
        conversation_id="3f3c1c2e-8f5b-4c8e-9a77-3b2d1e0f9a10",
        exchange_id="2c9b7c1d-0e4f-4a2b-8c3d-1e2f3a4b5c6d",
        specification_id=profile.SPECIFICATION_ID_V2,
    )


PAYLOADS = [
    model.Payload(
        "regrep@oots",
        "application/x-ebrs+xml",
        b'<?xml version="1.0"?><q:QueryRequest xmlns:q="urn:q">' + b"r" * 5000 + b"</q:QueryRequest>",
    ),
    model.Payload("evidence@oots", "application/pdf", os.urandom(20_000)),
]


def _export(out: message.OutboundMessage, directory: Path) -> dict[str, bytes]:
    related = mime.split_related(out.content_type, out.body)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "envelope.xml").write_bytes(related.root.body)
    (directory / "parts").mkdir(exist_ok=True)
    wire = {}
    for part in related.attachments:
        assert part.content_id is not None
        (directory / "parts" / part.content_id.encode().hex()).write_bytes(part.body)
        wire[part.content_id] = part.body
    return wire


def _sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_santuario_verifies_and_decrypts_our_message(oracle: Oracle, pki: Pki, tmp_path: Path) -> None:
    out = message.pack(
        _message(), PAYLOADS, sign=pki.sender, encrypt_for=pki.receiver_encrypt.certificate, random=os.urandom
    )
    _export(out, tmp_path / "m")
    done = oracle.run("verify", str(tmp_path / "m"), str(pki.files / "receiver_encrypt.pk8"))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "SIGNATURE VALID" in lines
    assert sum(line.startswith("REFERENCE ") and line.endswith(" OK") for line in lines) == 4
    for payload in PAYLOADS:  # Santuario's plaintext is our gzip member of the payload
        assert f"DECRYPTED {payload.content_id} {_sha(compression.compress(payload.data))}" in lines


def test_santuario_verifies_our_receipt(oracle: Oracle, pki: Pki, tmp_path: Path) -> None:
    out = message.pack(
        _message(), PAYLOADS, sign=pki.sender, encrypt_for=pki.receiver_encrypt.certificate, random=os.urandom
    )
    verified = message.receive(
        out.content_type, out.body, trust=TrustStore.of([pki.ca.certificate]), now=NOW, decryption=pki.receiver_encrypt
    )
    assert isinstance(verified, message.VerifiedUserMessage)
    receipt = message.pack_signal(
        message.receipt_for(verified, message_id="receipt-1@oots", timestamp=NOW),
        sign=pki.receiver_sign,
        random=os.urandom,
    )
    _export(receipt, tmp_path / "r")
    done = oracle.run("verify", str(tmp_path / "r"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SIGNATURE VALID" in done.stdout.splitlines()


def test_santuario_rejects_a_forged_header(oracle: Oracle, pki: Pki, tmp_path: Path) -> None:
    """The oracle can say no: one changed header value and Santuario finds the Messaging digest wrong."""
    out = message.pack(_message(), PAYLOADS[:1], sign=pki.sender, encrypt_for=None, random=os.urandom)
    _export(out, tmp_path / "f")
    env = tmp_path / "f" / "envelope.xml"
    env.write_bytes(env.read_bytes().replace(b">C4</eb:Property>", b">C5</eb:Property>"))
    done = oracle.run("verify", str(tmp_path / "f"))
    assert done.returncode == 1
    assert "SIGNATURE INVALID" in done.stdout


def test_oots_verifies_and_decrypts_what_santuario_produced(oracle: Oracle, pki: Pki, tmp_path: Path) -> None:
    um = _message()
    parts = []
    for payload in PAYLOADS:
        parts.append(
            model.PartInfo(
                payload.href,
                (model.Property("MimeType", payload.mime_type), model.Property("CompressionType", compression.GZIP)),
            )
        )
    um = model.UserMessage(um.message_info, um.party_info, um.collaboration_info, um.message_properties, tuple(parts))
    template = (
        f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{ns.S12}"><env:Header>'
        f'<wsse:Security xmlns:wsse="{ns.WSSE}" xmlns:wsu="{ns.WSU}" env:mustUnderstand="true"></wsse:Security>'
        f"{envelope.messaging_xml(um, wsu_id='msg-java')}</env:Header>"
        f'<env:Body xmlns:wsu="{ns.WSU}" wsu:Id="body-java"></env:Body></env:Envelope>'
    )
    work = tmp_path / "p"
    (work / "parts").mkdir(parents=True)
    (work / "template.xml").write_text(template, encoding="utf-8")
    for payload in PAYLOADS:
        (work / "parts" / payload.content_id.encode().hex()).write_bytes(compression.compress(payload.data))
    done = oracle.run(
        "produce",
        str(work),
        str(pki.files / "sender.pk8"),
        str(pki.files / "sender.der"),
        str(pki.files / "receiver_encrypt.der"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    mime_parts = [
        mime.MimePart(
            (("content-type", "application/soap+xml; charset=UTF-8"), ("content-id", "<root@java>")),
            (work / "out" / "envelope.xml").read_bytes(),
        )
    ]
    for payload in PAYLOADS:
        wire = (work / "out" / payload.content_id.encode().hex()).read_bytes()
        mime_parts.append(
            mime.MimePart(
                (("content-type", "application/octet-stream"), ("content-id", f"<{payload.content_id}>")), wire
            )
        )
    content_type, body = mime.build_related(mime_parts, boundary="java-" + os.urandom(8).hex())
    verified = message.receive(
        content_type, body, trust=TrustStore.of([pki.ca.certificate]), now=NOW, decryption=pki.receiver_encrypt,
        require_encryption=True,
    )  # fmt: skip
    assert isinstance(verified, message.VerifiedUserMessage)
    assert [p.data for p in verified.payloads] == [p.data for p in PAYLOADS]
    assert verified.signer == pki.sender.certificate
    assert verified.user_message.collaboration_info == um.collaboration_info
    # and one flipped ciphertext byte is caught
    forged = body.replace(wire[-40:], bytes([wire[-40] ^ 1]) + wire[-39:])
    with pytest.raises(SecurityError) as info:
        message.receive(
            content_type, forged, trust=TrustStore.of([pki.ca.certificate]), now=NOW, decryption=pki.receiver_encrypt
        )
    assert info.value.code == "EBMS:0102"
