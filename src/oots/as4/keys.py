"""Keys and certificates of an access point: loading them (PEM, PKCS#12) and a development PKI.

An access point has a signing key pair and an encryption (decryption) key pair, each an RSA key
with its X.509 certificate. Production keys come from the operator as PKCS#12 or PEM files;
:func:`init_dev_pki` makes a small CA and per-access-point keys for local networks and tests.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from oots.errors import ConfigError, SecurityError

__all__ = [
    "DevPki",
    "KeyPair",
    "init_dev_pki",
    "load_certificate",
    "load_certificates",
    "load_key_pair",
    "load_pkcs12",
]


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A private key, its certificate and the certificates that chain it (leaf first, excluded)."""

    private_key: rsa.RSAPrivateKey = field(repr=False)
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.private_key, rsa.RSAPrivateKey):
            raise SecurityError("only RSA keys are supported by the eDelivery AS4 1.15 suite")
        if self.private_key.public_key().public_numbers() != self.certificate.public_key().public_numbers():  # type: ignore[union-attr]
            raise SecurityError("the private key does not belong to the certificate")


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM file (or one DER certificate)."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise ConfigError(f"not a certificate file ({exc})") from None


def load_certificate(path: Path) -> x509.Certificate:
    """The first certificate of a PEM or DER file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    return load_certificates(data)[0]


def load_key_pair(key_path: Path, cert_path: Path, *, password: bytes | None = None) -> KeyPair:
    """A key pair from a PEM private key and a PEM certificate file (leaf first, then its chain)."""
    try:
        key_data, cert_data = key_path.read_bytes(), cert_path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {exc.filename}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(key_data, password=password)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{key_path} is not a usable PEM private key ({exc})") from None
    certs = load_certificates(cert_data)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{key_path} is not an RSA key")
    return KeyPair(key, certs[0], tuple(certs[1:]))


def load_pkcs12(path: Path, *, password: bytes | None = None) -> KeyPair:
    """A key pair from a PKCS#12 file (``.p12``/``.pfx``) holding one key and its certificate."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password)
    except ValueError as exc:
        raise ConfigError(f"{path} is not a readable PKCS#12 file ({exc})") from None
    if key is None or cert is None:
        raise ConfigError(f"{path} holds no private key with a certificate")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{path} does not hold an RSA key")
    return KeyPair(key, cert, tuple(extra))


# ------------------------------------------------------------------------------ development PKI


@dataclass(frozen=True, slots=True)
class DevPki:
    """Where :func:`init_dev_pki` wrote its files."""

    ca_certificate: Path
    ca_key: Path
    access_points: dict[str, dict[str, Path]]


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "EU"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "oots development PKI (not for production)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def make_ca(common_name: str, *, now: datetime, days: int = 3650, bits: int = 2048) -> KeyPair:
    """A self-signed CA key pair."""
    key = _key(bits)
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(key, cert)


def issue(
    ca: KeyPair,
    common_name: str,
    *,
    now: datetime,
    purpose: str,
    days: int = 825,
    bits: int = 2048,
    not_before: datetime | None = None,
) -> KeyPair:
    """An end-entity key pair signed by ``ca``; ``purpose`` is ``sign`` or ``encrypt``."""
    key = _key(bits)
    if purpose == "sign":
        usage = x509.KeyUsage(True, True, False, False, False, False, False, False, False)
    elif purpose == "encrypt":
        usage = x509.KeyUsage(False, False, True, False, False, False, False, False, False)
    else:
        raise ValueError(f"unknown purpose {purpose!r}")
    start = not_before if not_before is not None else now - timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.private_key.public_key()), critical=False)
        .sign(ca.private_key, hashes.SHA256())
    )
    return KeyPair(key, cert, (ca.certificate,))


def _write(path: Path, data: bytes, *, secret: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if secret:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def init_dev_pki(directory: Path, names: Sequence[str], *, now: datetime, days: int = 825) -> DevPki:
    """Create ``ca.pem``/``ca.key.pem`` (kept if present) and, per name, ``<name>/sign.{key.,}pem`` and
    ``<name>/encrypt.{key.,}pem`` under ``directory``. Private keys are written with mode 0600."""
    for name in names:
        if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
            raise ConfigError(f"access point name {name!r}: use letters, digits, '-', '_' and '.'")
    ca_cert_path, ca_key_path = directory / "ca.pem", directory / "ca.key.pem"
    if ca_cert_path.exists() and ca_key_path.exists():
        ca = load_key_pair(ca_key_path, ca_cert_path)
    else:
        ca = make_ca("oots development CA", now=now)
        _write(ca_key_path, _pem_key(ca.private_key), secret=True)
        _write(ca_cert_path, _pem_cert(ca.certificate), secret=False)
    result: dict[str, dict[str, Path]] = {}
    for name in names:
        paths: dict[str, Path] = {}
        for purpose in ("sign", "encrypt"):
            pair = issue(ca, f"{name} {purpose}", now=now, purpose=purpose, days=days)
            key_path, cert_path = directory / name / f"{purpose}.key.pem", directory / name / f"{purpose}.pem"
            _write(key_path, _pem_key(pair.private_key), secret=True)
            _write(cert_path, _pem_cert(pair.certificate) + _pem_cert(ca.certificate), secret=False)
            paths[f"{purpose}_key"], paths[f"{purpose}_cert"] = key_path, cert_path
        result[name] = paths
    return DevPki(ca_cert_path, ca_key_path, result)
