"""WS-Security 1.1.1 for AS4: sign-then-encrypt on the way out, decrypt-then-verify on the way in.

What the eDelivery AS4 1.15 profile asks for (§1.4.2.6), and nothing looser:

- XML Signature over ``eb:Messaging``, ``env:Body`` (``#wsu:Id`` references, exclusive c14n) and
  every payload part (``cid:`` references with the SwA ``Attachment-Content-Signature-Transform``),
  RSA-SHA256, SHA-256 digests; the signer's certificate as a BinarySecurityToken.
- XML Encryption of the payload parts only: one AES-128-GCM content key, one ``xenc:EncryptedData``
  per part (``Attachment-Content-Only``, ``CipherReference`` to the part with the
  ``Attachment-Ciphertext-Transform``; the part holds IV ‖ ciphertext ‖ tag), the key transported
  with RSA-OAEP (xmlenc 1.1, MGF1-SHA256, SHA-256) to the receiver's certificate.

On the way in, :func:`open_security` decrypts the parts it has a key for, checks the signature
value, then every reference, and makes sure the references resolve to *the* ``eb:Messaging`` and
*the* Body of this envelope and cover every payload part. It reports each reference; the caller
(:mod:`oots.as4.message`) turns the report into a verified message or an ebMS error.

Algorithms are looked up by URI through a :class:`SecuritySuite`, so eDelivery AS4 2.0
(Ed25519 / X25519) can be added as another suite.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from lxml import etree

from oots import ns
from oots.as4.envelope import attr, read_reference, reference_xml
from oots.as4.keys import KeyPair
from oots.as4.mime import Buffer, content_id_of
from oots.as4.model import Reference, Transform
from oots.as4.profile import Random
from oots.errors import LocalProtocolError, RemoteProtocolError, SecurityError

__all__ = [
    "AES128_GCM",
    "EDELIVERY_AS4_1_15",
    "EXC_C14N",
    "RSA_OAEP",
    "RSA_SHA256",
    "SHA256",
    "SWA_CONTENT_SIGNATURE",
    "EncryptedPart",
    "ReferenceCheck",
    "SecuredEnvelope",
    "SecurityReport",
    "SecuritySuite",
    "open_security",
    "secure_envelope",
]

# --------------------------------------------------------------------------------- algorithm URIs

RSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA384: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
RSA_SHA512: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
SHA1: Final = "http://www.w3.org/2000/09/xmldsig#sha1"
SHA256: Final = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA384: Final = "http://www.w3.org/2001/04/xmldsig-more#sha384"
SHA512: Final = "http://www.w3.org/2001/04/xmlenc#sha512"
EXC_C14N: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
AES128_GCM: Final = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
AES192_GCM: Final = "http://www.w3.org/2009/xmlenc11#aes192-gcm"
AES256_GCM: Final = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
RSA_OAEP: Final = "http://www.w3.org/2009/xmlenc11#rsa-oaep"
RSA_OAEP_MGF1P: Final = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
MGF1_SHA1: Final = "http://www.w3.org/2009/xmlenc11#mgf1sha1"
MGF1_SHA256: Final = "http://www.w3.org/2009/xmlenc11#mgf1sha256"
MGF1_SHA384: Final = "http://www.w3.org/2009/xmlenc11#mgf1sha384"
MGF1_SHA512: Final = "http://www.w3.org/2009/xmlenc11#mgf1sha512"
_SWA: Final = "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#"
SWA_CONTENT_SIGNATURE: Final = _SWA + "Attachment-Content-Signature-Transform"
SWA_CIPHERTEXT: Final = _SWA + "Attachment-Ciphertext-Transform"
SWA_CONTENT_ONLY: Final = _SWA + "Attachment-Content-Only"
_X509_PROFILE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#"
X509V3: Final = _X509_PROFILE + "X509v3"
X509_SKI: Final = _X509_PROFILE + "X509SubjectKeyIdentifier"
BASE64_BINARY: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
ENCRYPTED_KEY_TOKEN: Final = "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#EncryptedKey"  # noqa: S105

_HASHES: Final[Mapping[str, type[hashes.HashAlgorithm]]] = {
    SHA1: hashes.SHA1,
    SHA256: hashes.SHA256,
    SHA384: hashes.SHA384,
    SHA512: hashes.SHA512,
}
_MGF_HASHES: Final[Mapping[str, type[hashes.HashAlgorithm]]] = {
    MGF1_SHA1: hashes.SHA1,
    MGF1_SHA256: hashes.SHA256,
    MGF1_SHA384: hashes.SHA384,
    MGF1_SHA512: hashes.SHA512,
}
#: The digest functions by URI (the constructors themselves: ``hashlib.new`` looks the name up per call).
_DIGESTS: Final[Mapping[str, Callable[[Buffer], hashlib._Hash]]] = {
    SHA256: hashlib.sha256,
    SHA384: hashlib.sha384,
    SHA512: hashlib.sha512,
}
_SIGNATURE_HASHES: Final[Mapping[str, type[hashes.HashAlgorithm]]] = {
    RSA_SHA256: hashes.SHA256,
    RSA_SHA384: hashes.SHA384,
    RSA_SHA512: hashes.SHA512,
}
_GCM_KEY_BYTES: Final[Mapping[str, int]] = {AES128_GCM: 16, AES192_GCM: 24, AES256_GCM: 32}
_IV_BYTES: Final = 12
#: References a signature may carry beyond one per part: Messaging, Body and a few more (a
#: timestamp, a token) that some implementations sign; more is refused before any digest is computed.
_EXTRA_REFERENCES: Final = 6
_TAG_BYTES: Final = 16


@dataclass(frozen=True, slots=True)
class SecuritySuite:
    """The algorithms of one security profile, by URI: what is written, and what is accepted."""

    name: str
    signature_method: str
    digest_method: str
    canonicalization: str
    data_encryption: str
    key_transport: str
    key_transport_digest: str
    key_transport_mgf: str
    accepted_signature_methods: frozenset[str]
    accepted_digest_methods: frozenset[str]
    accepted_data_encryption: frozenset[str]
    accepted_key_transport: frozenset[str]

    def __post_init__(self) -> None:
        for uri in (self.signature_method, *self.accepted_signature_methods):
            if uri not in _SIGNATURE_HASHES:
                raise LocalProtocolError(f"signature method {uri} is not implemented")
        for uri in (self.digest_method, *self.accepted_digest_methods):
            if uri not in _DIGESTS:
                raise LocalProtocolError(f"digest method {uri} is not implemented")
        for uri in (self.data_encryption, *self.accepted_data_encryption):
            if uri not in _GCM_KEY_BYTES:
                raise LocalProtocolError(f"data encryption {uri} is not implemented")
        for uri in (self.key_transport, *self.accepted_key_transport):
            if uri not in (RSA_OAEP, RSA_OAEP_MGF1P):
                raise LocalProtocolError(f"key transport {uri} is not implemented")


#: eDelivery AS4 1.15 Common Profile. Inbound it also accepts the SHA-2 variants and, as the
#: profile allows for older peers, ``rsa-oaep-mgf1p`` key transport.
EDELIVERY_AS4_1_15: Final = SecuritySuite(
    name="eDelivery AS4 1.15",
    signature_method=RSA_SHA256,
    digest_method=SHA256,
    canonicalization=EXC_C14N,
    data_encryption=AES128_GCM,
    key_transport=RSA_OAEP,
    key_transport_digest=SHA256,
    key_transport_mgf=MGF1_SHA256,
    accepted_signature_methods=frozenset({RSA_SHA256, RSA_SHA384, RSA_SHA512}),
    accepted_digest_methods=frozenset({SHA256, SHA384, SHA512}),
    accepted_data_encryption=frozenset({AES128_GCM, AES192_GCM, AES256_GCM}),
    accepted_key_transport=frozenset({RSA_OAEP, RSA_OAEP_MGF1P}),
)

_DS: Final = "{" + ns.DS + "}"
_XENC: Final = "{" + ns.XENC + "}"
_XENC11: Final = "{" + ns.XENC11 + "}"
_WSSE: Final = "{" + ns.WSSE + "}"
_WSU_ID: Final = "{" + ns.WSU + "}Id"
_S12: Final = "{" + ns.S12 + "}"
_EB: Final = "{" + ns.EB + "}"
_EC: Final = "{" + ns.EC + "}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


@lru_cache(maxsize=64)
def _token_value(cert: x509.Certificate) -> str:
    """The base64 DER of one of our certificates, as a BinarySecurityToken carries it (the same few
    certificates go into every message: encoded once each)."""
    return _b64(_der(cert))


def _new_id(prefix: str, random: Random) -> str:
    return f"{prefix}-{random(16).hex()}"


# ------------------------------------------------------------------------------------- outbound


@dataclass(frozen=True, slots=True)
class EncryptedPart:
    """A payload part as it goes on the wire after encryption (or in the clear when not encrypted)."""

    content_id: str
    content_type: str
    data: bytes | bytearray = field(repr=False)


@dataclass(frozen=True, slots=True)
class SecuredEnvelope:
    """The signed (and encrypted) SOAP envelope, the parts to attach and what the signature covers."""

    envelope: bytes = field(repr=False)
    parts: tuple[EncryptedPart, ...]
    references: tuple[Reference, ...]


def _bst(cert: x509.Certificate, wsu_id: str) -> str:
    return (
        f'<wsse:BinarySecurityToken EncodingType="{BASE64_BINARY}" ValueType="{X509V3}" '
        f'wsu:Id="{wsu_id}">{_token_value(cert)}</wsse:BinarySecurityToken>'
    )


def _str_reference(target_id: str) -> str:
    return (
        f'<wsse:SecurityTokenReference><wsse:Reference URI="#{target_id}" ValueType="{X509V3}"/>'
        "</wsse:SecurityTokenReference>"
    )


def _encrypt_parts(
    parts: Sequence[tuple[str, str, bytes]],
    recipient: x509.Certificate,
    suite: SecuritySuite,
    random: Random,
) -> tuple[str, tuple[EncryptedPart, ...]]:
    """Encrypt each ``(content id, media type, bytes)``; return the header XML and the wire parts."""
    public_key = recipient.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise LocalProtocolError("the receiver's encryption certificate does not hold an RSA key")
    cek = random(_GCM_KEY_BYTES[suite.data_encryption])
    aes = AESGCM(cek)
    bst_id, ek_id = _new_id("X509", random), _new_id("EK", random)
    data_ids = [_new_id("ED", random) for _ in parts]
    wrapped = public_key.encrypt(
        cek,
        padding.OAEP(
            mgf=padding.MGF1(_MGF_HASHES[suite.key_transport_mgf]()),
            algorithm=_HASHES[suite.key_transport_digest](),
            label=None,
        ),
    )
    data_refs = "".join(f'<xenc:DataReference URI="#{d}"/>' for d in data_ids)
    mgf = "" if suite.key_transport == RSA_OAEP_MGF1P else f'<xenc11:MGF Algorithm="{suite.key_transport_mgf}"/>'
    xml = [
        _bst(recipient, bst_id),
        f'<xenc:EncryptedKey Id="{ek_id}"><xenc:EncryptionMethod Algorithm="{suite.key_transport}">'
        f'<ds:DigestMethod Algorithm="{suite.key_transport_digest}"/>{mgf}</xenc:EncryptionMethod>'
        f"<ds:KeyInfo>{_str_reference(bst_id)}</ds:KeyInfo>"
        f"<xenc:CipherData><xenc:CipherValue>{_b64(wrapped)}</xenc:CipherValue></xenc:CipherData>"
        f"<xenc:ReferenceList>{data_refs}</xenc:ReferenceList></xenc:EncryptedKey>",
    ]
    out: list[EncryptedPart] = []
    for (content_id, media_type, data), data_id in zip(parts, data_ids, strict=True):
        iv = random(_IV_BYTES)
        sealed = bytearray(_IV_BYTES + len(data) + _TAG_BYTES)  # IV ‖ ciphertext ‖ tag, one buffer
        sealed[:_IV_BYTES] = iv
        aes.encrypt_into(iv, data, None, memoryview(sealed)[_IV_BYTES:])
        out.append(EncryptedPart(content_id, "application/octet-stream", sealed))
        xml.append(
            f'<xenc:EncryptedData Id="{data_id}" MimeType="{attr(media_type)}" Type="{SWA_CONTENT_ONLY}">'
            f'<xenc:EncryptionMethod Algorithm="{suite.data_encryption}"/>'
            f'<ds:KeyInfo><wsse:SecurityTokenReference wsse11:TokenType="{ENCRYPTED_KEY_TOKEN}">'
            f'<wsse:Reference URI="#{ek_id}"/></wsse:SecurityTokenReference></ds:KeyInfo>'
            f'<xenc:CipherData><xenc:CipherReference URI="cid:{attr(content_id)}"><xenc:Transforms>'
            f'<ds:Transform Algorithm="{SWA_CIPHERTEXT}"/></xenc:Transforms></xenc:CipherReference>'
            "</xenc:CipherData></xenc:EncryptedData>"
        )
    return "".join(xml), tuple(out)


def _sign(key: rsa.RSAPrivateKey, method: str, data: bytes) -> bytes:
    return key.sign(data, padding.PKCS1v15(), _SIGNATURE_HASHES[method]())


def secure_envelope(
    messaging: str,
    parts: Sequence[tuple[str, str, bytes]],
    *,
    sign: KeyPair,
    encrypt_for: x509.Certificate | None,
    random: Random,
    messaging_id: str,
    suite: SecuritySuite = EDELIVERY_AS4_1_15,
) -> SecuredEnvelope:
    """Sign ``messaging`` (canonical ``eb:Messaging`` text with ``wsu:Id=messaging_id``), the Body and
    every part ``(content id, media type, bytes)``, then encrypt the parts for ``encrypt_for``."""
    digest = _DIGESTS[suite.digest_method]
    body_id = _new_id("body", random)
    body = f'<env:Body xmlns:env="{ns.S12}" xmlns:wsu="{ns.WSU}" wsu:Id="{body_id}"></env:Body>'
    c14n = (Transform(EXC_C14N),)
    references = [
        Reference("#" + body_id, suite.digest_method, digest(body.encode()).digest(), c14n),
        Reference(
            "#" + messaging_id,
            suite.digest_method,
            digest(messaging.encode("utf-8")).digest(),
            c14n,
        ),
    ]
    swa = (Transform(SWA_CONTENT_SIGNATURE),)
    for content_id, _media_type, data in parts:
        references.append(Reference("cid:" + content_id, suite.digest_method, digest(data).digest(), swa))
    signed_info = (
        f'<ds:SignedInfo xmlns:ds="{ns.DS}" xmlns:env="{ns.S12}">'
        f'<ds:CanonicalizationMethod Algorithm="{EXC_C14N}"><ec:InclusiveNamespaces xmlns:ec="{ns.EC}" '
        'PrefixList="env"></ec:InclusiveNamespaces></ds:CanonicalizationMethod>'
        f'<ds:SignatureMethod Algorithm="{suite.signature_method}"></ds:SignatureMethod>'
        + "".join(reference_xml(r, declare=False) for r in references)
        + "</ds:SignedInfo>"
    )
    signature_value = _sign(sign.private_key, suite.signature_method, signed_info.encode("utf-8"))
    sign_bst_id = _new_id("X509", random)
    security = [
        f'<wsse:Security xmlns:wsse="{ns.WSSE}" xmlns:wsse11="{ns.WSSE11}" xmlns:wsu="{ns.WSU}" '
        f'xmlns:ds="{ns.DS}" xmlns:xenc="{ns.XENC}" xmlns:xenc11="{ns.XENC11}" env:mustUnderstand="true">'
    ]
    wire_parts: tuple[EncryptedPart, ...]
    if encrypt_for is not None and parts:
        enc_xml, wire_parts = _encrypt_parts(parts, encrypt_for, suite, random)
        security.append(enc_xml)
    else:
        wire_parts = tuple(EncryptedPart(cid, media, data) for cid, media, data in parts)
    security.append(_bst(sign.certificate, sign_bst_id))
    security.append(
        f'<ds:Signature Id="{_new_id("SIG", random)}">{signed_info}'
        f"<ds:SignatureValue>{_b64(signature_value)}</ds:SignatureValue>"
        f"<ds:KeyInfo>{_str_reference(sign_bst_id)}</ds:KeyInfo></ds:Signature></wsse:Security>"
    )
    envelope = (
        f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{ns.S12}"><env:Header>'
        + "".join(security)
        + messaging
        + "</env:Header>"
        + body
        + "</env:Envelope>"
    )
    return SecuredEnvelope(envelope.encode("utf-8"), wire_parts, tuple(references))


# -------------------------------------------------------------------------------------- inbound


@dataclass(frozen=True, slots=True)
class ReferenceCheck:
    """The outcome for one ``ds:Reference``: ``ok``, ``mismatch``, ``unresolved``, ``encrypted``
    (a part we hold no key for) or ``refused`` (an algorithm or target not allowed)."""

    uri: str
    status: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SecurityReport:
    """What :func:`open_security` found. Only a report with :attr:`holds` may be used."""

    signer: x509.Certificate | None
    signature_valid: bool
    checks: tuple[ReferenceCheck, ...]
    references: tuple[Reference, ...]
    messaging: etree._Element
    parts: Mapping[str, tuple[str, Buffer]]  # content id -> (media type, bytes), decrypted where possible
    encrypted: frozenset[str]  # content ids that were encrypted on the wire
    undecrypted: frozenset[str]  # content ids still encrypted (no key given)
    problems: tuple[tuple[str, str], ...]  # (EBMS code, sentence), in the order found

    @property
    def holds(self) -> bool:
        return self.signature_valid and not self.problems and all(c.status == "ok" for c in self.checks)


def _fail(message: str) -> SecurityError:
    return SecurityError(message, code="EBMS:0101")


def _canonical(el: etree._Element, prefixes: Sequence[str]) -> bytes:
    return etree.tostring(
        el, method="c14n", exclusive=True, with_comments=False, inclusive_ns_prefixes=list(prefixes) or None
    )


def _prefix_list(parent: etree._Element) -> tuple[str, ...]:
    found = [c for c in parent if c.tag == _EC + "InclusiveNamespaces"]
    if not found:
        return ()
    return tuple(str(found[0].get("PrefixList") or "").split())


_ID_ATTRIBUTES: Final = etree.XPath("//@wsu:Id | //@Id", namespaces={"wsu": ns.WSU})


def _ids(root: etree._Element) -> dict[str, etree._Element]:
    """Every ``wsu:Id``/``Id`` in the document; an id used twice is refused (signature wrapping)."""
    table: dict[str, etree._Element] = {}
    for value in _ID_ATTRIBUTES(root):
        el = value.getparent()
        key = str(value)
        if key in table and table[key] is not el:
            raise _fail(f"the id {key!r} is used by two elements (a signature wrapping attempt?)")
        table[key] = el
    return table


class _KnownCertificates:
    """The message's BinarySecurityTokens and the caller's certificates, decoded on first use only
    (the usual direct BST reference never needs them)."""

    def __init__(self, security: etree._Element, extra: Iterable[x509.Certificate]) -> None:
        self._security = security
        self._extra = extra
        self._certs: list[x509.Certificate] | None = None

    def __iter__(self) -> Iterator[x509.Certificate]:
        if self._certs is None:
            tokens = [c for c in self._security if c.tag == _WSSE + "BinarySecurityToken"]
            self._certs = [*(_bst_certificate(t) for t in tokens), *self._extra]
        return iter(self._certs)


def _certificate_from_str(
    str_el: etree._Element,
    ids: Mapping[str, etree._Element],
    known: Iterable[x509.Certificate],
) -> x509.Certificate:
    """Resolve a ``wsse:SecurityTokenReference`` (BST reference, SubjectKeyIdentifier or IssuerSerial)."""
    ref = str_el.find(_WSSE + "Reference")
    if ref is not None:
        uri = str(ref.get("URI") or "")
        target = ids.get(uri[1:]) if uri.startswith("#") else None
        if target is None or target.tag != _WSSE + "BinarySecurityToken":
            raise _fail("the key reference does not point at a BinarySecurityToken in this message")
        return _bst_certificate(target)
    key_id = str_el.find(_WSSE + "KeyIdentifier")
    if key_id is not None:
        if key_id.get("ValueType") != X509_SKI:
            raise _fail(f"key identifier type {key_id.get('ValueType')} is not supported")
        try:
            wanted = base64.b64decode("".join((key_id.text or "").split()), validate=True)
        except ValueError:
            raise _fail("a KeyIdentifier is not base64") from None
        for cert in known:
            if _ski(cert) == wanted:
                return cert
        raise _fail("no known certificate has the referenced subject key identifier")
    serial_el = str_el.find(f"{_DS}X509Data/{_DS}X509IssuerSerial")
    if serial_el is not None:
        issuer = (serial_el.findtext(_DS + "X509IssuerName") or "").strip()
        try:
            serial = int((serial_el.findtext(_DS + "X509SerialNumber") or "").strip())
        except ValueError:
            raise _fail("an X509SerialNumber is not a number") from None
        for cert in known:
            if cert.serial_number == serial and _same_name(cert.issuer, issuer):
                return cert
        raise _fail("no known certificate has the referenced issuer and serial number")
    raise _fail("the key reference is of an unsupported kind")


def _same_name(name: x509.Name, text: str) -> bool:
    def norm(value: str) -> str:
        return ",".join(p.strip().lower() for p in value.replace(", ", ",").split(","))

    return norm(name.rfc4514_string()) == norm(text)


def _ski(cert: x509.Certificate) -> bytes:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def _bst_certificate(bst: etree._Element) -> x509.Certificate:
    value_type = bst.get("ValueType")
    if value_type != X509V3:
        raise _fail(f"BinarySecurityToken of type {value_type} is not supported")
    try:
        return _token_certificate(bst.text or "")
    except ValueError:
        raise _fail("a BinarySecurityToken does not hold a certificate") from None


@lru_cache(maxsize=256)
def _token_certificate(text: str) -> x509.Certificate:
    """The certificate in a BinarySecurityToken's text (the same few partners sign every message:
    decoded once each; a token that is not a certificate raises ``ValueError`` and is not kept)."""
    return x509.load_der_x509_certificate(base64.b64decode("".join(text.split())))


def _decrypt_error(message: str) -> SecurityError:
    return SecurityError(message, code="EBMS:0102")


def _unwrap(
    ek: etree._Element,
    key: KeyPair,
    ids: Mapping[str, etree._Element],
    suite: SecuritySuite,
    known: Iterable[x509.Certificate],
) -> bytes:
    method = ek.find(_XENC + "EncryptionMethod")
    algorithm = None if method is None else method.get("Algorithm")
    if method is None or algorithm not in suite.accepted_key_transport:
        raise _decrypt_error(f"key transport {algorithm} is not accepted")
    digest_uri = method.find(_DS + "DigestMethod")
    digest = SHA1 if digest_uri is None else str(digest_uri.get("Algorithm"))
    mgf_el = method.find(_XENC11 + "MGF")
    mgf = MGF1_SHA1 if (mgf_el is None or algorithm == RSA_OAEP_MGF1P) else str(mgf_el.get("Algorithm"))
    if digest not in _HASHES or mgf not in _MGF_HASHES:
        raise _decrypt_error("the key transport digest or mask generation function is not supported")
    label_el = method.find(_XENC + "OAEPparams")
    try:
        label = (
            base64.b64decode("".join((label_el.text or "").split()), validate=True) if label_el is not None else None
        )
    except ValueError:
        raise _decrypt_error("the OAEPparams of an EncryptedKey are not base64") from None
    str_el = ek.find(f"{_DS}KeyInfo/{_WSSE}SecurityTokenReference")
    if str_el is not None:
        try:
            target = _certificate_from_str(str_el, ids, itertools.chain([key.certificate], known))
        except SecurityError as exc:
            raise _decrypt_error(f"the content key is for an unknown certificate: {exc.message}") from None
        if target != key.certificate:
            raise _decrypt_error("the content key is encrypted for another certificate than ours")
    cipher_value = ek.findtext(f"{_XENC}CipherData/{_XENC}CipherValue")
    if not cipher_value:
        raise _decrypt_error("an EncryptedKey has no CipherValue")
    try:
        return key.private_key.decrypt(
            base64.b64decode("".join(cipher_value.split()), validate=True),
            padding.OAEP(mgf=padding.MGF1(_MGF_HASHES[mgf]()), algorithm=_HASHES[digest](), label=label),
        )
    except ValueError:
        raise _decrypt_error("the content key could not be decrypted") from None


def _decrypt_parts(
    security: etree._Element,
    ids: Mapping[str, etree._Element],
    *,
    parts: dict[str, tuple[str, Buffer]],
    key: KeyPair | None,
    suite: SecuritySuite,
    known: Iterable[x509.Certificate],
) -> tuple[frozenset[str], frozenset[str]]:
    """Decrypt the parts named by ``xenc:EncryptedData`` in place; return (encrypted, still encrypted)."""
    encrypted: set[str] = set()
    pending: set[str] = set()
    keys: dict[int, bytes] = {}
    key_for_data: dict[str, etree._Element] = {}
    for ek in security.iter(_XENC + "EncryptedKey"):
        for dr in ek.iter(_XENC + "DataReference"):
            uri = str(dr.get("URI") or "")
            if uri.startswith("#"):
                key_for_data[uri[1:]] = ek
    for ed in security.iter(_XENC + "EncryptedData"):
        if ed.get("Type") != SWA_CONTENT_ONLY:
            raise _decrypt_error(f"EncryptedData of type {ed.get('Type')} is not supported")
        ref = ed.find(f"{_XENC}CipherData/{_XENC}CipherReference")
        uri = "" if ref is None else str(ref.get("URI") or "")
        if not uri.startswith("cid:"):
            raise _decrypt_error("an EncryptedData does not reference a MIME part")
        cid = content_id_of(uri)
        if cid not in parts:
            raise RemoteProtocolError(f"the encrypted part {cid} is not in the message", code="EBMS:0007")
        if cid in encrypted:
            raise _decrypt_error(f"the part {cid} is named by two EncryptedData elements")
        transforms = [] if ref is None else [t.get("Algorithm") for t in ref.iter(_DS + "Transform")]
        if transforms != [SWA_CIPHERTEXT]:
            raise _decrypt_error("an attachment CipherReference needs the Attachment-Ciphertext-Transform")
        encrypted.add(cid)
        method = ed.find(_XENC + "EncryptionMethod")
        algorithm = None if method is None else method.get("Algorithm")
        if algorithm not in suite.accepted_data_encryption:
            raise _decrypt_error(f"data encryption {algorithm} is not accepted")
        if key is None:
            pending.add(cid)
            continue
        ek = _find_encrypted_key(ed, ids, key_for_data)
        if id(ek) not in keys:
            keys[id(ek)] = _unwrap(ek, key, ids, suite, known)
        cek = keys[id(ek)]
        if len(cek) != _GCM_KEY_BYTES[str(algorithm)]:
            raise _decrypt_error("the content key has the wrong length for its algorithm")
        data = parts[cid][1]
        if len(data) < _IV_BYTES + _TAG_BYTES:
            raise _decrypt_error(f"the encrypted part {cid} is too short")
        try:
            plain = AESGCM(cek).decrypt(data[:_IV_BYTES], memoryview(data)[_IV_BYTES:], None)
        except InvalidTag:
            raise _decrypt_error(f"the encrypted part {cid} fails its integrity check") from None
        parts[cid] = (str(ed.get("MimeType") or "application/octet-stream").lower(), plain)
    return frozenset(encrypted), frozenset(pending)


def _find_encrypted_key(
    ed: etree._Element, ids: Mapping[str, etree._Element], key_for_data: Mapping[str, etree._Element]
) -> etree._Element:
    ref = ed.find(f"{_DS}KeyInfo/{_WSSE}SecurityTokenReference/{_WSSE}Reference")
    if ref is not None:
        uri = str(ref.get("URI") or "")
        target = ids.get(uri[1:]) if uri.startswith("#") else None
        if target is None or target.tag != _XENC + "EncryptedKey":
            raise _decrypt_error("an EncryptedData names a key that is not in the message")
        return target
    ek = key_for_data.get(str(ed.get("Id") or ""))
    if ek is None:
        raise _decrypt_error("no EncryptedKey is given for an EncryptedData")
    return ek


def _verify_signature_value(cert: x509.Certificate, method: str, signature: bytes, data: bytes) -> bool:
    public_key = cert.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        return False
    try:
        public_key.verify(signature, data, padding.PKCS1v15(), _SIGNATURE_HASHES[method]())
    except InvalidSignature:
        return False
    return True


def open_security(
    root: etree._Element,
    attachments: Mapping[str, tuple[str, Buffer]],
    *,
    decryption: KeyPair | None = None,
    known_certificates: Sequence[x509.Certificate] = (),
    suite: SecuritySuite = EDELIVERY_AS4_1_15,
) -> SecurityReport:
    """Decrypt what can be decrypted and check the signature of a parsed SOAP envelope.

    ``attachments`` maps each MIME part's content id to ``(media type, bytes)`` as received.
    Structural faults (no signature, ambiguous ids, refused algorithms, a failed decryption) raise
    ``SecurityError`` (``EBMS:0101``/``0102``/``0103``) or ``RemoteProtocolError`` (``EBMS:0009``);
    per-reference results and coverage problems are in the returned report.
    """
    if root.tag != _S12 + "Envelope":
        raise RemoteProtocolError("the root part is not a SOAP 1.2 envelope", code="EBMS:0009")
    headers = [c for c in root if c.tag == _S12 + "Header"]
    bodies = [c for c in root if c.tag == _S12 + "Body"]
    if len(headers) != 1 or len(bodies) != 1:
        raise RemoteProtocolError("the envelope needs exactly one Header and one Body", code="EBMS:0009")
    header, body = headers[0], bodies[0]
    messagings = [c for c in header if c.tag == _EB + "Messaging"]
    if len(messagings) != 1:
        raise RemoteProtocolError(f"the header has {len(messagings)} eb:Messaging elements", code="EBMS:0009")
    messaging = messagings[0]
    securities = [c for c in header if c.tag == _WSSE + "Security"]
    if not securities:
        raise SecurityError("the message is not signed (no wsse:Security header)", code="EBMS:0103")
    if len(securities) > 1:
        raise _fail("the message has more than one wsse:Security header")
    security = securities[0]
    ids = _ids(root)
    known = _KnownCertificates(security, known_certificates)

    wrapped_keys = sum(1 for _ in root.iter(_XENC + "EncryptedKey"))
    if wrapped_keys > 1:  # each would cost an RSA decryption before the signature is checked
        raise _decrypt_error(
            f"the message has {wrapped_keys} EncryptedKey elements; the eDelivery AS4 profile uses one for all parts"
        )
    parts = dict(attachments)
    encrypted, undecrypted = _decrypt_parts(security, ids, parts=parts, key=decryption, suite=suite, known=known)

    signatures = [c for c in security if c.tag == _DS + "Signature"]
    if len(signatures) != 1:
        raise SecurityError(f"the Security header holds {len(signatures)} signatures, expected one", code="EBMS:0103")
    signature = signatures[0]
    signed_info = signature.find(_DS + "SignedInfo")
    if signed_info is None:
        raise _fail("the signature has no SignedInfo")
    c14n_el = signed_info.find(_DS + "CanonicalizationMethod")
    if c14n_el is None or c14n_el.get("Algorithm") != EXC_C14N:
        raise _fail("SignedInfo must be canonicalised with exclusive c14n")
    method_el = signed_info.find(_DS + "SignatureMethod")
    method = None if method_el is None else method_el.get("Algorithm")
    if method not in suite.accepted_signature_methods:
        raise _fail(f"signature method {method} is not accepted")
    str_el = signature.find(f"{_DS}KeyInfo/{_WSSE}SecurityTokenReference")
    if str_el is None:
        raise _fail("the signature does not say which certificate made it")
    signer = _certificate_from_str(str_el, ids, known)
    value_text = signature.findtext(_DS + "SignatureValue") or ""
    try:
        signature_value = base64.b64decode("".join(value_text.split()), validate=True)
    except ValueError:
        raise _fail("the SignatureValue is not base64") from None
    signature_valid = _verify_signature_value(
        signer, str(method), signature_value, _canonical(signed_info, _prefix_list(c14n_el))
    )

    checks: list[ReferenceCheck] = []
    references: list[Reference] = []
    covered: set[str] = set()
    messaging_refs = body_refs = 0
    ref_elements = list(signed_info.iterchildren(_DS + "Reference"))
    if len(ref_elements) > len(parts) + _EXTRA_REFERENCES:
        raise _fail(f"the signature has {len(ref_elements)} references for {len(parts)} parts; refused")
    for ref_el in ref_elements:
        try:
            ref = read_reference(ref_el)
        except RemoteProtocolError as exc:
            raise _fail(exc.message) from None
        references.append(ref)
        checks.append(
            _check_reference(
                ref, ids, messaging=messaging, body=body, parts=parts, undecrypted=undecrypted, suite=suite
            )
        )
        if ref.uri.startswith("cid:"):
            cid = content_id_of(ref.uri)
            if cid in covered:
                checks[-1] = ReferenceCheck(ref.uri, "refused", "the part is referenced twice")
            covered.add(cid)
        elif ref.uri.startswith("#"):
            target = ids.get(ref.uri[1:])
            messaging_refs += target is messaging
            body_refs += target is body
    problems: list[tuple[str, str]] = []
    if messaging_refs != 1:
        problems.append(("EBMS:0101", "the signature does not cover the eb:Messaging header of this message"))
    if body_refs != 1:
        problems.append(("EBMS:0101", "the signature does not cover the SOAP Body of this message"))
    for cid in parts:
        if cid not in covered:
            problems.append(("EBMS:0103", f"the payload part {cid} is not covered by the signature"))
    return SecurityReport(
        signer=signer,
        signature_valid=signature_valid,
        checks=tuple(checks),
        references=tuple(references),
        messaging=messaging,
        parts=parts,
        encrypted=encrypted,
        undecrypted=undecrypted,
        problems=tuple(problems),
    )


def _check_reference(
    ref: Reference,
    ids: Mapping[str, etree._Element],
    *,
    messaging: etree._Element,
    body: etree._Element,
    parts: Mapping[str, tuple[str, Buffer]],
    undecrypted: frozenset[str],
    suite: SecuritySuite,
) -> ReferenceCheck:
    if ref.digest_method not in suite.accepted_digest_methods:
        return ReferenceCheck(ref.uri, "refused", f"digest method {ref.digest_method} is not accepted")
    digest = _DIGESTS[ref.digest_method]
    if ref.uri.startswith("cid:"):
        cid = content_id_of(ref.uri)
        if [t.algorithm for t in ref.transforms] != [SWA_CONTENT_SIGNATURE]:
            return ReferenceCheck(ref.uri, "refused", "an attachment needs the Attachment-Content-Signature-Transform")
        if cid not in parts:
            return ReferenceCheck(ref.uri, "unresolved", "no MIME part has this Content-ID")
        if cid in undecrypted:
            return ReferenceCheck(ref.uri, "encrypted", "the part is encrypted and no decryption key was given")
        data = parts[cid][1]
    elif ref.uri.startswith("#"):
        target = ids.get(ref.uri[1:])
        if target is None:
            return ReferenceCheck(ref.uri, "unresolved", "no element has this id")
        if target is not messaging and target is not body:
            return ReferenceCheck(ref.uri, "refused", "the reference points at neither eb:Messaging nor the Body")
        algorithms = [t.algorithm for t in ref.transforms]
        if algorithms != [EXC_C14N]:
            return ReferenceCheck(ref.uri, "refused", "an XML reference needs exactly one exclusive c14n transform")
        data = _canonical(target, ref.transforms[0].inclusive_prefixes)
    else:
        return ReferenceCheck(ref.uri, "refused", "only #id and cid: references are accepted")
    if digest(data).digest() != ref.digest_value:
        return ReferenceCheck(ref.uri, "mismatch", "the digest does not match the content")
    return ReferenceCheck(ref.uri, "ok")
