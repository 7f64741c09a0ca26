"""The test identity provider's signing key and certificate (RSA 2048, self-signed).

Generated on first start into the data directory (``idp-key.pem``, ``idp-cert.pem``) or read from
files given in its configuration. One key signs both ID tokens (RS256) and SAML assertions.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from oots.errors import ConfigError

__all__ = ["SigningKey", "generate_key_files", "load_or_create"]


@dataclass(frozen=True)
class SigningKey:
    key_file: Path
    cert_file: Path
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def kid(self) -> str:
        der = self.certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:12]).decode("ascii").rstrip("=")

    @property
    def cert_base64(self) -> str:
        return base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")

    def jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()

        def b64(n: int) -> str:
            raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
            return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": b64(numbers.n), "e": b64(numbers.e)}


def generate_key_files(key_file: Path, cert_file: Path, common_name: str = "oots test identity provider") -> None:
    """Write a fresh RSA key (mode 0600) and a self-signed certificate valid for ten years."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_file.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def load_or_create(data_dir: Path, key_file: Path | None = None, cert_file: Path | None = None) -> SigningKey:
    """The signing key from the given files, else from ``data_dir`` (generated there on first start)."""
    if (key_file is None) != (cert_file is None):
        raise ConfigError("give both the key file and the certificate file, or neither")
    if key_file is None or cert_file is None:
        key_file, cert_file = data_dir / "idp-key.pem", data_dir / "idp-cert.pem"
        if not key_file.exists():
            generate_key_files(key_file, cert_file)
    try:
        private = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read the identity provider's key or certificate: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"the identity provider's key or certificate is not usable PEM: {exc}") from None
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ConfigError("the identity provider's key must be an RSA key")
    return SigningKey(key_file, cert_file, private, cert)
