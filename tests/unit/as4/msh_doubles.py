"""Test doubles and fixtures for the message handler tests: a small generated PKI, a pinned clock and a
test double of the core's wire codec. Test modules import the fixtures they use (no conftest here, so
that no other package's ``from conftest import ...`` finds this one)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def make_certificate(
    name: str, *, not_before: dt.datetime | None = None, days: int = 365
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A self-signed RSA-2048 certificate for ``name``, valid from ``not_before`` for ``days`` days."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = not_before or NOW - dt.timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return key, cert


@pytest.fixture(scope="session")
def make_cert() -> object:
    """The certificate factory, for tests that need their own (expired, other names)."""
    return make_certificate


@pytest.fixture
def now() -> dt.datetime:
    """The pinned time of these tests."""
    return NOW


@pytest.fixture(scope="session")
def partner_cert() -> x509.Certificate:
    return make_certificate("red_gw")[1]


@pytest.fixture
def cert_file(tmp_path: Path, partner_cert: x509.Certificate) -> Path:
    path = tmp_path / "red_gw.crt.pem"
    path.write_bytes(partner_cert.public_bytes(serialization.Encoding.PEM))
    return path


# -- a test double of the AS4 core's wire codec --------------------------------------------------------
#
# The message handler is tested apart from the real SOAP/WS-Security codec (``oots.as4`` core, tested
# on its own and in the flow tests): this double hands out opaque tokens as "wire bytes" and keeps the
# values behind them, like httpx's MockTransport keeps requests. A token it did not issue fails to parse
# (EBMS:0009), a partner whose certificate is not the signer's fails to verify (EBMS:0101).


class TokenCodec:
    def __init__(self, signer: x509.Certificate) -> None:
        from itertools import count

        self.signer = signer
        self.sent: dict[bytes, tuple[object, ...]] = {}
        self._ids = count(1)
        self.refuse_decrypt = False

    def _token(self, kind: str, *value: object) -> bytes:
        token = f"{kind}:{next(self._ids)}".encode()
        self.sent[token] = (kind, *value)
        return token

    def pack_user_message(self, message, payloads, pmode, now):
        from oots.as4.model import Reference
        from oots.as4.msh import Packed

        refs = (Reference("#messaging", "sha256", message.message_info.message_id.encode()),)
        return Packed("multipart/related", self._token("user", message, tuple(payloads), self.signer), refs)

    def parse(self, content_type, body):
        from oots.as4.msh import Parsed
        from oots.errors import RemoteProtocolError

        entry = self.sent.get(body)
        if entry is None:
            raise RemoteProtocolError("not an AS4 message", code="EBMS:0009")
        return Parsed(entry[1].message_info.message_id, entry)

    def verify(self, parsed, pmodes, now):
        from oots.as4.model import Reference
        from oots.as4.msh import VerifiedMessage
        from oots.errors import NotFound, RemoteProtocolError, SecurityError

        kind, message, *rest = parsed.handle
        if kind != "user":
            raise RemoteProtocolError("the request carries no UserMessage", code="EBMS:0009")
        payloads, signer = rest
        if self.refuse_decrypt:
            raise SecurityError("cannot decrypt", code="EBMS:0102")
        sender = message.party_info.from_party.party_id
        try:
            partner = pmodes.partner(sender.value, sender.type)
        except NotFound:
            raise RemoteProtocolError("unknown sender", code="EBMS:0010") from None
        if partner.signing_certificate != signer:
            raise SecurityError("the signer is not the partner's certificate", code="EBMS:0101")
        refs = (Reference("#messaging", "sha256", message.message_info.message_id.encode()),)
        return VerifiedMessage(message, payloads, signer, refs)

    def pack_receipt(self, message, message_id, now):
        from oots.as4.model import MessageInfo, Receipt, SignalMessage
        from oots.as4.msh import Packed

        signal = SignalMessage(MessageInfo(message_id, now, message.message_id), Receipt(message.references))
        return Packed("application/soap+xml", self._token("signal", signal))

    def pack_errors(self, errors, ref_to_message_id, message_id, now):
        from oots.as4.model import MessageInfo, SignalMessage
        from oots.as4.msh import Packed

        signal = SignalMessage(MessageInfo(message_id, now, ref_to_message_id), errors=tuple(errors))
        return Packed("application/soap+xml", self._token("signal", signal))

    def read_signal(self, content_type, body, partner, now):
        from oots.errors import RemoteProtocolError

        entry = self.sent.get(body)
        if entry is None or entry[0] != "signal":
            raise RemoteProtocolError("not a signal message", code="EBMS:0302")
        return entry[1]


@pytest.fixture
def token_codec(partner_cert: x509.Certificate) -> TokenCodec:
    return TokenCodec(partner_cert)
