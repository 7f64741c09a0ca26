"""Trust roots and certificate path checks for signed Common Services answers.

The signer of an ``oots-cs:v2.0`` answer sends its chain in the JWS ``x5c`` header (leaf first). A
chain is accepted when every certificate is issued by the next one, each is valid at the checking
time, each issuer is a CA, and the chain ends at (or is issued by) one of the configured roots. The
Commission's acceptance and production roots ship with the package (:func:`commission_roots`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding

from oots.errors import ConfigError, SecurityError

__all__ = ["TrustStore", "commission_roots", "load_pem_certificates", "validate_chain"]

#: Longest chain accepted (leaf, intermediates, root).
MAX_CHAIN = 6


def load_pem_certificates(data: bytes, *, source: str = "PEM data") -> list[x509.Certificate]:
    """Every certificate in a PEM bundle; :class:`ConfigError` when there is none or one is broken."""
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ConfigError(f"{source} holds no readable PEM certificate: {exc}") from None
    return certs


@dataclass(frozen=True)
class TrustStore:
    """A set of root certificates that may end a signer's chain."""

    roots: tuple[x509.Certificate, ...]

    @classmethod
    def from_pem_files(cls, paths: Iterable[str | Path]) -> TrustStore:
        roots: list[x509.Certificate] = []
        for path in paths:
            try:
                data = Path(path).read_bytes()
            except OSError as exc:
                raise ConfigError(f"cannot read the trust roots {path}: {exc.strerror}") from None
            roots.extend(load_pem_certificates(data, source=str(path)))
        if not roots:
            raise ConfigError("no trust roots given")
        return cls(tuple(roots))

    @classmethod
    def from_pem(cls, data: bytes) -> TrustStore:
        return cls(tuple(load_pem_certificates(data)))

    def find_issuer(self, cert: x509.Certificate) -> x509.Certificate | None:
        """The root that is ``cert`` itself or that signed it, if any."""
        der = cert.public_bytes(_DER)
        for root in self.roots:
            if root.public_bytes(_DER) == der:
                return root
        for root in self.roots:
            if root.subject == cert.issuer and _signed_by(cert, root):
                return root
        return None


def commission_roots(environment: Literal["acc", "prod"]) -> TrustStore:
    """The Commission's root for its acceptance (``acc``) or production (``prod``) Common Services."""
    name = f"ec-cs-{environment}-trust.pem"
    data = resources.files("oots.cs").joinpath("trust").joinpath(name).read_bytes()
    return TrustStore.from_pem(data)


_DER = Encoding.DER


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _check_time(cert: x509.Certificate, at: dt.datetime, role: str) -> None:
    if at < cert.not_valid_before_utc or at > cert.not_valid_after_utc:
        raise SecurityError(
            f"the {role} certificate {cert.subject.rfc4514_string()} is not valid at {at.isoformat()}",
            code="certificate-expired",
        )


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        # Old self-signed roots may omit basic constraints; only a configured root is trusted that way.
        return False
    return bool(bc.ca)


def _check_signer_usage(leaf: x509.Certificate) -> None:
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not (usage.digital_signature or usage.content_commitment):
        raise SecurityError(
            f"the certificate of {leaf.subject.rfc4514_string()} is not for signatures (key usage)",
            code="untrusted-chain",
        )


def validate_chain(chain: Sequence[x509.Certificate], trust: TrustStore, *, at: dt.datetime) -> x509.Certificate:
    """Check ``chain`` (leaf first) against ``trust`` at time ``at``; return the leaf.

    Raises :class:`SecurityError` (``code="untrusted-chain"`` or ``"certificate-expired"``).
    """
    if not chain:
        raise SecurityError("the signature carries no certificate chain", code="untrusted-chain")
    if len(chain) > MAX_CHAIN:
        raise SecurityError(f"the certificate chain is longer than {MAX_CHAIN}", code="untrusted-chain")
    leaf = chain[0]
    _check_signer_usage(leaf)
    for index, cert in enumerate(chain):
        role = "signer" if index == 0 else "issuing"
        root = trust.find_issuer(cert)
        if root is not None:
            _check_time(cert, at, role)
            if root is not cert and root.public_bytes(_DER) != cert.public_bytes(_DER):
                _check_time(root, at, "root")
            return leaf
        _check_time(cert, at, role)
        if index + 1 == len(chain):
            break
        issuer = chain[index + 1]
        if issuer.subject != cert.issuer or not _signed_by(cert, issuer):
            raise SecurityError(
                f"{cert.subject.rfc4514_string()} is not issued by the next certificate of the chain",
                code="untrusted-chain",
            )
        if not _is_ca(issuer):
            raise SecurityError(
                f"{issuer.subject.rfc4514_string()} signs certificates but is not a CA", code="untrusted-chain"
            )
    raise SecurityError(
        f"the chain of {leaf.subject.rfc4514_string()} does not end at a trusted root", code="untrusted-chain"
    )
