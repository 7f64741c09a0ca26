"""Trust roots and certificate path checks for signed Common Services answers.

The signer of an ``oots-cs:v2.0`` answer sends its chain in the JWS ``x5c`` header (leaf first). A
chain is accepted when every certificate is issued by the next one, each is valid at the checking
time, each issuer is a CA, and the chain ends at (or is issued by) one of the configured roots. The
Commission's acceptance and production roots ship with the package (:func:`commission_roots`).

A root vouches for many certificates; only some of them may sign registry answers. The signer (the
chain's first certificate) must therefore also be an allowed signer: one of ``TrustStore.signers`` when
given (subject patterns or SHA-256 fingerprints, see :func:`signer_allowed`), else, under the
Commission's roots, its OOTS Common Services signer (:data:`COMMISSION_SIGNERS`: ``OU=OOTS`` and a
``CN`` starting ``EC-OOTS-CS-``). Under other roots (a local instance's own PKI, whose root signs
nothing else) any certificate for signatures may sign.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding

from oots.errors import ConfigError, SecurityError

__all__ = [
    "COMMISSION_SIGNERS",
    "TrustStore",
    "commission_roots",
    "load_pem_certificates",
    "signer_allowed",
    "validate_chain",
]

#: Longest chain accepted (leaf, intermediates, root).
MAX_CHAIN = 6
#: Who signs answers under the Commission's roots (``CN=EC-OOTS-CS-ACC,O=European Commission,OU=OOTS,C=BE``).
COMMISSION_SIGNERS = ("OU=OOTS,CN=EC-OOTS-CS-*",)
_FINGERPRINT = re.compile(r"(?:sha256:)?((?:[0-9a-f]{2}:?){31}[0-9a-f]{2})", re.IGNORECASE)


@cache
def _rule(text: str) -> bytes | x509.Name:
    """An allowed-signer entry: a SHA-256 fingerprint (bytes) or a subject pattern (a name)."""
    found = _FINGERPRINT.fullmatch(text.strip())
    if found:
        return bytes.fromhex(found.group(1).replace(":", ""))
    try:
        name = x509.Name.from_rfc4514_string(text.strip())
    except ValueError:
        name = x509.Name([])
    if not len(name):
        raise ConfigError(
            f"allowed signer {text!r} is neither a SHA-256 fingerprint nor a subject such as "
            "'OU=OOTS,CN=EC-OOTS-CS-*' (attributes the signer must have; a value ending in * is a prefix)"
        )
    return name


def signer_allowed(cert: x509.Certificate, rules: Sequence[str]) -> bool:
    """Whether ``cert`` matches one of ``rules``.

    A rule is the SHA-256 fingerprint of the certificate (hex, colons allowed, ``sha256:`` prefix
    allowed) or a subject pattern in RFC 4514 form: every attribute it names must be in the subject
    with that value (``*`` at the end of a value: any value starting so), in any order.
    """
    for text in rules:
        rule = _rule(text)
        if isinstance(rule, bytes):
            if rule == hashlib.sha256(cert.public_bytes(Encoding.DER)).digest():
                return True
        elif all(_has(cert.subject, attr.oid, str(attr.value)) for attr in rule):
            return True
    return False


def _has(subject: x509.Name, oid: x509.ObjectIdentifier, wanted: str) -> bool:
    for attr in subject.get_attributes_for_oid(oid):
        value = str(attr.value)
        if value == wanted or (wanted.endswith("*") and value.startswith(wanted[:-1])):
            return True
    return False


def load_pem_certificates(data: bytes, *, source: str = "PEM data") -> list[x509.Certificate]:
    """Every certificate in a PEM bundle; :class:`ConfigError` when there is none or one is broken."""
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ConfigError(f"{source} holds no readable PEM certificate: {exc}") from None
    return certs


@dataclass(frozen=True)
class TrustStore:
    """A set of root certificates that may end a signer's chain, and who may sign under them.

    ``signers``: allowed signers (see :func:`signer_allowed`); empty means the Commission's OOTS signers
    under the Commission's roots and any signer under other roots.
    """

    roots: tuple[x509.Certificate, ...]
    signers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for text in self.signers:
            _rule(text)  # a malformed entry is a configuration error now, not a refusal later

    def signer_rules(self, root: x509.Certificate) -> tuple[str, ...]:
        """The allowed signers under ``root`` (empty: any)."""
        if self.signers:
            return self.signers
        return COMMISSION_SIGNERS if root.public_bytes(_DER) in _commission_ders() else ()

    def with_signers(self, signers: Iterable[str]) -> TrustStore:
        return TrustStore(self.roots, tuple(signers))

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


@cache
def _commission_ders() -> frozenset[bytes]:
    roots = commission_roots("acc").roots + commission_roots("prod").roots
    return frozenset(root.public_bytes(_DER) for root in roots)


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


def _check_signer(leaf: x509.Certificate, rules: tuple[str, ...]) -> None:
    if rules and not signer_allowed(leaf, rules):
        raise SecurityError(
            f"{leaf.subject.rfc4514_string()} is not an allowed signer of Common Services answers "
            f"(allowed: {'; '.join(rules)}; set common_services.allowed_signers to change it)",
            code="untrusted-signer",
        )


def validate_chain(chain: Sequence[x509.Certificate], trust: TrustStore, *, at: dt.datetime) -> x509.Certificate:
    """Check ``chain`` (leaf first) against ``trust`` at time ``at``; return the leaf.

    Raises :class:`SecurityError` (``code="untrusted-chain"``, ``"certificate-expired"`` or
    ``"untrusted-signer"``: the chain holds but its first certificate may not sign answers).
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
            _check_signer(leaf, trust.signer_rules(root))
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
