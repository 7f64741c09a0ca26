"""Fixtures for the AS4 message handler tests: a small generated PKI and a pinned clock."""

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
