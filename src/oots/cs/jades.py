"""Signed Common Services answers: the ``digest`` header and the detached JAdES ``oots-response-sig``.

An ``oots-cs:v2.0`` answer carries two HTTP headers besides its XML body:

* ``digest: SHA-256=<base64 of SHA-256(body)>`` (RFC 3230 instance digest);
* ``oots-response-sig: <protected>..<signature>``: a JWS in compact form with a detached, unencoded
  payload (ETSI TS 119 182-1 JAdES, ``b64: false``). The protected header names the signed HTTP
  headers with ``sigD`` (``mId`` ``http://uri.etsi.org/19182/HttpHeaders``, ``pars: ["digest"]``); the
  signing input is ``<protected>.`` followed by the signed headers written as ``name: value`` lines
  joined by ``\\n``. The signer's chain is in ``x5c``, the signer is also named by ``kid`` (DER
  IssuerSerial, base64) and ``x5t#o`` (SHA-512 of the signer's certificate).

So the signature covers the digest header and the digest covers the body. :func:`verify_answer` checks
all three links, the chain to a configured root and the signing time (``iat``: not in the future, not
older than a maximum age, so an old answer cannot be replayed for ever), and returns the body only once
they hold ("use only what was signed"). :class:`AnswerSigner` produces the same headers as the Commission's
services, byte for byte in shape.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

from oots.cs.trust import TrustStore, validate_chain
from oots.errors import SecurityError

__all__ = [
    "DEFAULT_CLOCK_SKEW",
    "DEFAULT_MAX_AGE",
    "DIGEST_HEADER",
    "HTTP_HEADERS_MID",
    "SIGNATURE_HEADER",
    "AnswerSigner",
    "VerifiedAnswer",
    "digest_value",
    "verify_answer",
]

DIGEST_HEADER = "digest"
SIGNATURE_HEADER = "oots-response-sig"
HTTP_HEADERS_MID = "http://uri.etsi.org/19182/HttpHeaders"
#: Largest signature header accepted (a chain of a few certificates is ~8 KiB).
MAX_SIGNATURE_CHARS = 64 * 1024
#: How old a signed answer may be when it is checked. The registries sign every answer as they send
#: it, so a live answer is seconds old; an hour leaves room for a slow path and drifting clocks.
DEFAULT_MAX_AGE = dt.timedelta(hours=1)
#: How far in the future a signing time may be (the signer's clock ahead of ours).
DEFAULT_CLOCK_SKEW = dt.timedelta(minutes=5)

#: JWS algorithm → (curve, hash, size of r and s in bytes). ES256 is what the Commission uses.
_ALGORITHMS: dict[str, tuple[type[ec.EllipticCurve], hashes.HashAlgorithm, int]] = {
    "ES256": (ec.SECP256R1, hashes.SHA256(), 32),
    "ES384": (ec.SECP384R1, hashes.SHA384(), 48),
    "ES512": (ec.SECP521R1, hashes.SHA512(), 66),
}
_CURVE_ALG = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_DIGESTS = {"SHA-256": hashlib.sha256, "SHA-512": hashlib.sha512}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str, what: str) -> bytes:
    if not text or any(c not in _URLSAFE for c in text):
        raise SecurityError(f"the signature's {what} is not base64url", code="malformed-signature")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SecurityError(f"the signature's {what} is not base64url", code="malformed-signature") from None


_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def digest_value(body: bytes) -> str:
    """The ``digest`` header value of ``body``: ``SHA-256=<base64>``."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def issuer_serial_kid(cert: x509.Certificate) -> str:
    """``kid`` as the Commission writes it: base64 of the DER ``IssuerSerial`` of the signer."""
    name = cert.issuer.public_bytes()
    general_names = _der(0x30, _der(0xA4, name))
    serial = cert.serial_number
    raw = serial.to_bytes(serial.bit_length() // 8 + 1, "big", signed=False)
    return base64.b64encode(_der(0x30, general_names + _der(0x02, raw))).decode("ascii")


def _x5t_o(cert: x509.Certificate) -> dict[str, str]:
    return {"digAlg": "S512", "digVal": _b64url(hashlib.sha512(cert.public_bytes(Encoding.DER)).digest())}


def _signing_input(protected: str, headers: Mapping[str, str], names: Sequence[str]) -> bytes:
    lines = "\n".join(f"{name}: {headers[name]}" for name in names)
    return f"{protected}.{lines}".encode()


@dataclass(frozen=True)
class AnswerSigner:
    """Signs answer bodies with an EC key and its chain (leaf first) as the Commission's services do."""

    key: ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...]
    _static: dict[str, Any] = field(init=False, repr=False, compare=False)
    _alg: str = field(init=False, repr=False, compare=False)
    #: Signatures made in the current second, by digest: the same body signed in the same second gets
    #: the same (valid) signature again instead of a new ECDSA operation.
    _memo: dict[tuple[int, str], dict[str, str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.chain:
            raise SecurityError("a signing key needs its certificate chain", code="no-chain")
        leaf_key = self.chain[0].public_key()
        if not isinstance(leaf_key, ec.EllipticCurvePublicKey) or leaf_key.public_numbers() != (
            self.key.public_key().public_numbers()
        ):
            raise SecurityError("the signing key does not match the first certificate of the chain", code="no-chain")
        alg = _CURVE_ALG.get(self.key.curve.name)
        if alg is None:
            raise SecurityError(f"unsupported curve {self.key.curve.name}", code="bad-key")
        leaf = self.chain[0]
        static = {
            "alg": alg,
            "kid": issuer_serial_kid(leaf),
            "x5t#o": _x5t_o(leaf),
            "x5c": [base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii") for c in self.chain],
            "typ": "jose",
            "b64": False,
        }
        object.__setattr__(self, "_memo", {})
        object.__setattr__(self, "_static", static)
        object.__setattr__(self, "_alg", alg)

    def headers(self, body: bytes, *, now: dt.datetime | None = None) -> dict[str, str]:
        """The ``digest`` and ``oots-response-sig`` headers for ``body``."""
        digest = digest_value(body)
        issued = now or dt.datetime.now(dt.UTC)
        iat = int(issued.timestamp())
        memo = self._memo
        known = memo.get((iat, digest))
        if known is not None:
            return dict(known)
        header = {
            **self._static,
            "iat": iat,
            "sigD": {"mId": HTTP_HEADERS_MID, "pars": [DIGEST_HEADER]},
            "crit": ["b64", "sigD"],
        }
        protected = _b64url(json.dumps(header, separators=(",", ":")).encode())
        _, hash_alg, size = _ALGORITHMS[self._alg]
        der = self.key.sign(_signing_input(protected, {DIGEST_HEADER: digest}, [DIGEST_HEADER]), ec.ECDSA(hash_alg))
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        result = {DIGEST_HEADER: digest, SIGNATURE_HEADER: f"{protected}..{_b64url(signature)}"}
        if len(memo) > 4096 or any(k[0] != iat for k in list(memo)[:1]):
            memo.clear()
        memo[(iat, digest)] = result
        return dict(result)


@dataclass(frozen=True)
class VerifiedAnswer:
    """An answer whose signature, digest and chain held: use ``body`` and nothing else."""

    body: bytes
    signer: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    signed_at: dt.datetime

    @property
    def signer_name(self) -> str:
        return self.signer.subject.rfc4514_string()


def _header_json(protected: str) -> dict[str, Any]:
    raw = _unb64url(protected, "protected header")
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SecurityError("the signature's protected header is not JSON", code="malformed-signature") from None
    if not isinstance(header, dict):
        raise SecurityError("the signature's protected header is not a JSON object", code="malformed-signature")
    return header


def _check_header(header: Mapping[str, Any]) -> list[str]:
    """Check the JAdES header profile; return the names of the signed HTTP headers."""
    alg = header.get("alg")
    if alg not in _ALGORITHMS:
        raise SecurityError(f"signature algorithm {alg!r} is not accepted", code="bad-algorithm")
    crit = header.get("crit")
    if not isinstance(crit, list) or set(crit) != {"b64", "sigD"}:
        raise SecurityError("the signature's crit must name exactly b64 and sigD", code="malformed-signature")
    if header.get("b64") is not False:
        raise SecurityError(
            "the signature must use an unencoded detached payload (b64 false)", code="malformed-signature"
        )
    sigd = header.get("sigD")
    if not isinstance(sigd, dict) or sigd.get("mId") != HTTP_HEADERS_MID:
        raise SecurityError("the signature does not sign HTTP headers (sigD mId)", code="malformed-signature")
    pars = sigd.get("pars")
    if not isinstance(pars, list) or not pars or not all(isinstance(p, str) and p for p in pars):
        raise SecurityError("the signature's sigD names no headers", code="malformed-signature")
    names = [p.lower() for p in pars]
    if DIGEST_HEADER not in names:
        raise SecurityError("the signature does not cover the digest header", code="malformed-signature")
    return names


def _chain(header: Mapping[str, Any]) -> tuple[x509.Certificate, ...]:
    x5c = header.get("x5c")
    if not isinstance(x5c, list) or not x5c or not all(isinstance(c, str) for c in x5c):
        raise SecurityError("the signature carries no x5c certificate chain", code="untrusted-chain")
    certs = []
    for text in x5c:
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode(text, validate=True)))
        except (binascii.Error, ValueError):
            raise SecurityError("a certificate in x5c cannot be read", code="untrusted-chain") from None
    return tuple(certs)


def _check_digest(body: bytes, value: str) -> None:
    matched = False
    for part in value.split(","):
        algorithm, sep, encoded = part.strip().partition("=")
        func = _DIGESTS.get(algorithm.upper())
        if not sep or func is None:
            continue
        try:
            expected = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise SecurityError("the digest header is not base64", code="bad-digest") from None
        if not hmac.compare_digest(expected, func(body).digest()):
            raise SecurityError("the body does not match the digest header", code="bad-digest")
        matched = True
    if not matched:
        raise SecurityError("the digest header names no SHA-256 or SHA-512 digest", code="bad-digest")


def _signing_time(header: Mapping[str, Any]) -> dt.datetime:
    iat = header.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int) or not 0 <= iat < 2**37:
        raise SecurityError("the signature names no signing time (iat)", code="malformed-signature")
    return dt.datetime.fromtimestamp(iat, dt.UTC)


def _check_signing_time(signed_at: dt.datetime, now: dt.datetime, max_age: dt.timedelta, skew: dt.timedelta) -> None:
    when = signed_at.isoformat()
    if signed_at > now + skew:
        raise SecurityError(
            f"the answer says it was signed at {when}, later than now ({now.isoformat()}): "
            "the signer's clock or ours is wrong",
            code="signing-time",
        )
    if now - signed_at > max_age:
        raise SecurityError(
            f"the answer was signed at {when}, more than {int(max_age.total_seconds())} s before "
            f"{now.isoformat()}: an old answer is not used",
            code="signing-time",
        )


def verify_answer(
    body: bytes,
    headers: Mapping[str, str],
    trust: TrustStore,
    *,
    at: dt.datetime | None = None,
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
    clock_skew: dt.timedelta = DEFAULT_CLOCK_SKEW,
) -> VerifiedAnswer:
    """Verify a signed answer: signature over the headers, digest over the body, chain to ``trust``,
    signing time (``iat``) at most ``max_age`` before ``at`` (default: now) and at most ``clock_skew``
    after it.

    ``headers`` may use any letter case. Raises :class:`SecurityError` with a ``code`` naming the link
    that broke (``unsigned``, ``malformed-signature``, ``bad-algorithm``, ``bad-signature``,
    ``bad-digest``, ``untrusted-chain``, ``certificate-expired``, ``signing-time``).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    token = lower.get(SIGNATURE_HEADER)
    if token is None:
        raise SecurityError("the answer is not signed (no oots-response-sig header)", code="unsigned")
    token = token.strip()
    if len(token) > MAX_SIGNATURE_CHARS:
        raise SecurityError("the signature header is too long", code="malformed-signature")
    parts = token.split(".")
    if len(parts) != 3 or parts[1] != "":
        raise SecurityError("the signature is not a detached compact JWS", code="malformed-signature")
    protected, _, encoded_sig = parts
    header = _header_json(protected)
    names = _check_header(header)
    signed_at = _signing_time(header)
    missing = [n for n in names if n not in lower]
    if missing:
        raise SecurityError(f"the signed header {missing[0]} is missing", code="unsigned")
    chain = _chain(header)
    leaf = chain[0]
    curve, hash_alg, size = _ALGORITHMS[header["alg"]]
    public_key = leaf.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(public_key.curve, curve):
        raise SecurityError("the signer's key does not fit the signature algorithm", code="bad-algorithm")
    x5t = header.get("x5t#o")
    if x5t is not None and x5t != _x5t_o(leaf):
        raise SecurityError("x5t#o does not name the signer's certificate", code="bad-signature")
    raw = _unb64url(encoded_sig, "signature value")
    if len(raw) != 2 * size:
        raise SecurityError("the signature value has the wrong length", code="bad-signature")
    der = encode_dss_signature(int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big"))
    try:
        public_key.verify(der, _signing_input(protected, lower, names), ec.ECDSA(hash_alg))
    except InvalidSignature:
        raise SecurityError("the signature does not verify", code="bad-signature") from None
    _check_digest(body, lower[DIGEST_HEADER])
    now = at or dt.datetime.now(dt.UTC)
    validate_chain(chain, trust, at=now)
    _check_signing_time(signed_at, now, max_age, clock_skew)
    return VerifiedAnswer(body=body, signer=leaf, chain=chain, signed_at=signed_at)
