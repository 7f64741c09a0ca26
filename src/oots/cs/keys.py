"""Signing keys of a local Common Services instance: a small PKI shaped like the Commission's.

``generate_pki`` makes a root CA, an issuing CA and an ES256 signer certificate (the same three
levels as the real chain ``European Commission Root CA - 2`` → ``CommisSign - 2`` →
``EC-OOTS-CS-ACC``). ``write_pki`` stores the signer's key, its chain (leaf first) and the root (the
trust anchor clients configure); ``load_signer`` reads key and chain back into an
:class:`~oots.cs.jades.AnswerSigner`. The root's private key is not kept: a new chain means a new PKI.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from oots.cs.jades import AnswerSigner
from oots.cs.trust import load_pem_certificates
from oots.errors import ConfigError, SecurityError

__all__ = ["CHAIN_FILE", "KEY_FILE", "TRUST_FILE", "CsPki", "generate_pki", "load_signer", "write_pki"]

KEY_FILE = "cs-signing-key.pem"
CHAIN_FILE = "cs-signing-chain.pem"
TRUST_FILE = "cs-trust.pem"


@dataclass(frozen=True)
class CsPki:
    """A root, an issuing CA and a signer; ``chain`` is leaf first (what goes into ``x5c``)."""

    root: x509.Certificate
    signer_key: ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...]

    def signer(self) -> AnswerSigner:
        return AnswerSigner(self.signer_key, self.chain)


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    signing_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    not_before: dt.datetime,
    days: int,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=not ca,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    return builder.sign(signing_key, hashes.SHA256())


def generate_pki(
    *,
    organisation: str = "oots local network",
    signer_name: str = "OOTS-CS-LOCAL",
    now: dt.datetime | None = None,
    days: int = 730,
) -> CsPki:
    """A fresh root → issuing CA → ES256 signer PKI for a local Common Services instance."""
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)
    root_key = ec.generate_private_key(ec.SECP256R1())
    ca_key = ec.generate_private_key(ec.SECP256R1())
    signer_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(f"{organisation} Common Services Root CA", organisation)
    ca_name = _name(f"{organisation} Common Services Issuing CA", organisation)
    root = _cert(root_name, root_name, root_key.public_key(), root_key, ca=True, not_before=start, days=days * 5)
    ca = _cert(ca_name, root_name, ca_key.public_key(), root_key, ca=True, not_before=start, days=days * 2)
    leaf = _cert(
        _name(signer_name, organisation),
        ca_name,
        signer_key.public_key(),
        ca_key,
        ca=False,
        not_before=start,
        days=days,
    )
    return CsPki(root=root, signer_key=signer_key, chain=(leaf, ca, root))


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_pki(pki: CsPki, directory: str | Path, *, overwrite: bool = False) -> dict[str, Path]:
    """Write key (mode 0600), chain and trust anchor into ``directory``; return the paths by role."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"key": out / KEY_FILE, "chain": out / CHAIN_FILE, "trust": out / TRUST_FILE}
    if not overwrite:
        existing = [str(p) for p in paths.values() if p.exists()]
        if existing:
            raise ConfigError(f"{existing[0]} exists already (use --force to replace the keys)")
    key_pem = pki.signer_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(paths["key"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_pem)
    paths["chain"].write_bytes(b"".join(_pem(c) for c in pki.chain))
    paths["trust"].write_bytes(_pem(pki.root))
    return paths


def load_signer(key_file: str | Path, chain_file: str | Path) -> AnswerSigner:
    """Read an EC private key (PEM, unencrypted) and its chain (PEM, leaf first) into a signer."""
    try:
        key_data = Path(key_file).read_bytes()
        chain_data = Path(chain_file).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the Common Services signing key or chain: {exc}") from None
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{key_file} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{key_file} is not an EC key (Common Services answers are signed with ES256)")
    chain = tuple(load_pem_certificates(chain_data, source=str(chain_file)))
    try:
        return AnswerSigner(key, chain)
    except SecurityError as exc:
        raise ConfigError(f"{key_file} and {chain_file} do not belong together: {exc}") from None
