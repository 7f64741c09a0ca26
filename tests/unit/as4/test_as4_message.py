"""Round trips, receipts and forgeries: each forgery answered with its ebMS error, nothing delivered."""

from __future__ import annotations

import base64
import dataclasses
import os
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from as4_helpers import NOW, Pki, oots_message_fixture, pki_fixture, rng_fixture  # noqa: F401 - fixtures
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oots import ns
from oots.as4 import compression, message, mime, model, wss
from oots.as4.errors import error_for
from oots.as4.trust import TrustStore
from oots.errors import OotsError, RemoteProtocolError, SecurityError

Rng = Callable[[int], bytes]
REGREP = (
    b'<?xml version="1.0" encoding="UTF-8"?><query:QueryRequest xmlns:query="urn:q">'
    + b"x" * 3000
    + b"</query:QueryRequest>"
)
PDF = b"%PDF-1.7\r\n" + bytes(range(256)) * 20 + b"\r\n--\r\n%%EOF"


def _payloads() -> list[model.Payload]:
    return [
        model.Payload("regrep@sender.example", "application/x-ebrs+xml", REGREP),
        model.Payload("evidence@sender.example", "application/pdf", PDF, (model.Property("PayloadName", "a.pdf"),)),
    ]


@pytest.fixture
def packed(pki: Pki, rng: Rng, oots_message: Callable[..., model.UserMessage]) -> message.OutboundMessage:
    return message.pack(
        oots_message(), _payloads(), sign=pki.sender_sign, encrypt_for=pki.receiver_encrypt.certificate, random=rng
    )


def _receive(
    pki: Pki, content_type: str, body: bytes, **kw: Any
) -> message.VerifiedUserMessage | message.VerifiedSignalMessage:
    kw.setdefault("trust", pki.trust)
    kw.setdefault("now", NOW)
    kw.setdefault("decryption", pki.receiver_encrypt)
    return message.receive(content_type, body, **kw)


def _expect(code: str, pki: Pki, content_type: str, body: bytes, **kw: Any) -> OotsError:
    with pytest.raises((RemoteProtocolError, SecurityError)) as info:
        _receive(pki, content_type, body, **kw)
    exc = info.value
    assert exc.code == code, exc.message
    assert error_for(exc).error_code == code
    return exc


def test_round_trip(pki: Pki, packed: message.OutboundMessage, oots_message: Callable[..., model.UserMessage]) -> None:
    verified = _receive(pki, packed.content_type, packed.body, require_encryption=True)
    assert isinstance(verified, message.VerifiedUserMessage)
    sent = oots_message()
    got = verified.user_message
    assert got.message_info == sent.message_info
    assert got.party_info == sent.party_info
    assert got.collaboration_info == sent.collaboration_info
    assert got.message_properties == sent.message_properties
    assert [p.data for p in verified.payloads] == [REGREP, PDF]
    assert [p.mime_type for p in verified.payloads] == ["application/x-ebrs+xml", "application/pdf"]
    regrep, pdf = verified.payloads
    assert regrep.property("CharacterSet") == model.Property("CharacterSet", "utf-8")
    assert regrep.property("CompressionType") is None  # never passed to the consumer
    assert pdf.property("PayloadName") == model.Property("PayloadName", "a.pdf")
    part = got.part_info("regrep@sender.example")
    assert part is not None
    assert part.property("CompressionType") == model.Property("CompressionType", "application/gzip")
    assert verified.signer == pki.sender_sign.certificate
    assert set(verified.references) == set(packed.references)
    assert len(packed.references) == 4  # Body, Messaging, two parts


def test_wire_layout(packed: message.OutboundMessage) -> None:
    media, params = mime.header_params(packed.content_type)
    assert media == "multipart/related"
    assert params["type"] == params["start-info"] == "application/soap+xml"
    related = mime.split_related(packed.content_type, packed.body)
    env = related.root.body
    assert b"<env:Body " in env
    assert env.count(b"<xenc:EncryptedData ") == 2
    assert b"AgreementRef" not in env
    assert REGREP[:40] not in packed.body
    assert PDF[:40] not in packed.body
    assert all(p.content_type == "application/octet-stream" for p in related.attachments)


def test_unencrypted_and_uncompressed(pki: Pki, rng: Rng, oots_message: Callable[..., model.UserMessage]) -> None:
    out = message.pack(oots_message(), _payloads(), sign=pki.sender_sign, encrypt_for=None, random=rng, compress=False)
    verified = _receive(pki, out.content_type, out.body, decryption=None)
    assert isinstance(verified, message.VerifiedUserMessage)
    assert [p.data for p in verified.payloads] == [REGREP, PDF]
    _expect("EBMS:0103", pki, out.content_type, out.body, require_encryption=True)


def test_no_payloads(pki: Pki, rng: Rng, oots_message: Callable[..., model.UserMessage]) -> None:
    out = message.pack(
        oots_message(), [], sign=pki.sender_sign, encrypt_for=pki.receiver_encrypt.certificate, random=rng
    )
    verified = _receive(pki, out.content_type, out.body)
    assert isinstance(verified, message.VerifiedUserMessage)
    assert verified.payloads == ()


def test_receipt_round_trip(pki: Pki, rng: Rng, packed: message.OutboundMessage) -> None:
    verified = _receive(pki, packed.content_type, packed.body)
    assert isinstance(verified, message.VerifiedUserMessage)
    receipt = message.receipt_for(verified, message_id="r-1@receiver.example", timestamp=NOW)
    out = message.pack_signal(receipt, sign=pki.receiver_sign, random=rng)
    got = _receive(pki, out.content_type, out.body, decryption=None)
    assert isinstance(got, message.VerifiedSignalMessage)
    assert got.signer == pki.receiver_sign.certificate
    assert message.check_receipt(got, packed).references == verified.references
    env = mime.split_related(out.content_type, out.body).root.body
    assert env.count(b"<ebbp:MessagePartNRInformation>") == 4


def test_receipt_checks(pki: Pki, rng: Rng, packed: message.OutboundMessage) -> None:
    verified = _receive(pki, packed.content_type, packed.body)
    assert isinstance(verified, message.VerifiedUserMessage)
    other = message.VerifiedUserMessage(
        verified.user_message, verified.payloads, verified.signer, verified.references[:-1]
    )
    for bad in (
        message.receipt_for(other, message_id="r@x", timestamp=NOW),
        model.SignalMessage(model.MessageInfo("r@x", NOW, "someone-else@x"), model.Receipt(verified.references)),
        message.error_signal(
            RemoteProtocolError("x", code="EBMS:0004"),
            message_id="e@x",
            timestamp=NOW,
            ref_to_message_id=packed.message_id,
        ),
    ):
        out = message.pack_signal(bad, sign=pki.receiver_sign, random=rng)
        got = _receive(pki, out.content_type, out.body)
        assert isinstance(got, message.VerifiedSignalMessage)
        with pytest.raises(RemoteProtocolError) as info:
            message.check_receipt(got, packed)
        assert info.value.code == "EBMS:0302"


def test_error_signal_round_trip(pki: Pki, rng: Rng) -> None:
    signal = message.error_signal(
        RemoteProtocolError("a part failed to decompress", code="EBMS:0303"),
        message_id="e-1@x",
        timestamp=NOW,
        ref_to_message_id="m-1@x",
    )
    out = message.pack_signal(signal, sign=pki.receiver_sign, random=rng)
    got = _receive(pki, out.content_type, out.body)
    assert isinstance(got, message.VerifiedSignalMessage)
    (err,) = got.signal_message.errors
    assert (err.error_code, err.short_description, err.category, err.ref_to_message_in_error) == (
        "EBMS:0303", "DecompressionFailure", "Communication", "m-1@x",
    )  # fmt: skip


# ------------------------------------------------------------------------------------- forgeries


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def _rebuild(
    out: message.OutboundMessage, change: Callable[[bytes, list[mime.MimePart]], tuple[bytes, list[mime.MimePart]]]
) -> tuple[str, bytes]:
    related = mime.split_related(out.content_type, out.body)
    env, parts = change(related.root.body, list(related.attachments))
    root = mime.MimePart(related.root.headers, env)
    return mime.build_related([root, *parts], boundary="forged-" + os.urandom(8).hex())


def test_flipped_payload_byte(pki: Pki, packed: message.OutboundMessage) -> None:
    def change(env: bytes, parts: list[mime.MimePart]) -> tuple[bytes, list[mime.MimePart]]:
        parts[1] = mime.MimePart(parts[1].headers, _flip(parts[1].body, len(parts[1].body) // 2))
        return env, parts

    _expect("EBMS:0102", pki, *_rebuild(packed, change))  # AES-GCM tag


def test_more_than_one_encrypted_key_is_refused_before_any_is_decrypted(
    pki: Pki, packed: message.OutboundMessage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def change(env: bytes, parts: list[mime.MimePart]) -> tuple[bytes, list[mime.MimePart]]:
        found = re.search(rb"<xenc:EncryptedKey .*?</xenc:EncryptedKey>", env, re.S)
        assert found is not None
        copies = b"".join(re.sub(rb'Id="[^"]*"', f'Id="ek-copy-{i}"'.encode(), found.group(0)) for i in range(3))
        return env[: found.end()] + copies + env[found.end() :], parts

    unwrapped: list[object] = []
    real_unwrap = wss._unwrap
    monkeypatch.setattr(wss, "_unwrap", lambda *a: unwrapped.append(a) or real_unwrap(*a))
    exc = _expect("EBMS:0102", pki, *_rebuild(packed, change))
    assert "4 EncryptedKey elements" in exc.message
    assert unwrapped == []


def test_a_part_without_mime_type_is_refused(
    pki: Pki, rng: Rng, oots_message: Callable[..., model.UserMessage]
) -> None:
    """MimeType is REQUIRED by the profile: the part's own Content-Type is not signed, so it is not used."""
    um = dataclasses.replace(oots_message(), payload_info=(model.PartInfo("cid:doc@sender.example"),))
    out = message._pack(
        um,
        [("doc@sender.example", "application/pdf", PDF)],
        sign=pki.sender_sign,
        encrypt_for=pki.receiver_encrypt.certificate,
        random=rng,
        suite=wss.EDELIVERY_AS4_1_15,
    )
    exc = _expect("EBMS:0009", pki, out.content_type, out.body)
    assert "no MimeType" in exc.message


def test_flipped_payload_byte_unencrypted(pki: Pki, rng: Rng, oots_message: Callable[..., model.UserMessage]) -> None:
    out = message.pack(oots_message(), _payloads(), sign=pki.sender_sign, encrypt_for=None, random=rng)

    def change(env: bytes, parts: list[mime.MimePart]) -> tuple[bytes, list[mime.MimePart]]:
        parts[0] = mime.MimePart(parts[0].headers, _flip(parts[0].body, 30))
        return env, parts

    exc = _expect("EBMS:0101", pki, *_rebuild(out, change))
    assert "cid:regrep@sender.example" in exc.message


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"<eb:Action>ExecuteQueryRequest</eb:Action>", b"<eb:Action>ExecuteQueryResponse</eb:Action>"),
        (b">C4</eb:Property>", b">C5</eb:Property>"),
        (b"<eb:MessageId>m-1@", b"<eb:MessageId>m-2@"),
    ],
)
def test_changed_header(pki: Pki, packed: message.OutboundMessage, old: bytes, new: bytes) -> None:
    def change(env: bytes, parts: list[mime.MimePart]) -> tuple[bytes, list[mime.MimePart]]:
        assert old in env
        return env.replace(old, new), parts

    exc = _expect("EBMS:0101", pki, *_rebuild(packed, change))
    assert "#msg-" in exc.message


def test_flipped_signature(pki: Pki, packed: message.OutboundMessage) -> None:
    def change(env: bytes, parts: list[mime.MimePart]) -> tuple[bytes, list[mime.MimePart]]:
        found = re.search(rb"<ds:SignatureValue>([^<]+)<", env)
        assert found
        raw = bytearray(base64.b64decode(found.group(1)))
        raw[10] ^= 0x80
        return env.replace(found.group(1), base64.b64encode(bytes(raw))), parts

    exc = _expect("EBMS:0101", pki, *_rebuild(packed, change))
    assert "signature value" in exc.message


def test_signature_wrapping(
    pki: Pki, rng: Rng, packed: message.OutboundMessage, oots_message: Callable[..., model.UserMessage]
) -> None:
    """Move the signed eb:Messaging into a wrapper and put a forged one (same id) in its place."""

    def change(env: bytes, parts: list[mime.MimePart]) -> tuple[bytes, list[mime.MimePart]]:
        start, end = env.index(b"<eb:Messaging "), env.index(b"</eb:Messaging>") + len(b"</eb:Messaging>")
        signed = env[start:end]
        forged = signed.replace(b"ExecuteQueryRequest", b"ExceptionResponse")
        wrapper = b'<x:Wrapper xmlns:x="urn:evil">' + signed + b"</x:Wrapper>"
        env = env[:start] + forged + env[end:]
        return env.replace(b"</wsse:Security>", wrapper + b"</wsse:Security>"), parts

    exc = _expect("EBMS:0101", pki, *_rebuild(packed, change))
    assert "two elements" in exc.message

    # The same, but the forged header gets a fresh id so no id repeats: the reference then points
    # into the wrapper, which is neither the header's eb:Messaging nor the Body.
    ct, body = _rebuild(packed, change)
    related = mime.split_related(ct, body)
    env = related.root.body
    idx = env.index(b"<eb:Messaging ", env.index(b"</wsse:Security>"))
    env = env[:idx] + env[idx:].replace(b'wsu:Id="msg-', b'wsu:Id="forged-msg-', 1)
    ct, body = mime.build_related([mime.MimePart(related.root.headers, env), *related.attachments], boundary="w2")
    exc = _expect("EBMS:0101", pki, ct, body)
    assert "neither eb:Messaging nor the Body" in exc.message


def test_untrusted_signer(pki: Pki, rng: Rng, oots_message: Callable[..., model.UserMessage]) -> None:
    out = message.pack(
        oots_message(), _payloads(), sign=pki.stranger_sign, encrypt_for=pki.receiver_encrypt.certificate, random=rng
    )
    exc = _expect("EBMS:0101", pki, out.content_type, out.body)
    assert "not trusted" in exc.message


def test_expired_signer(pki: Pki, rng: Rng, oots_message: Callable[..., model.UserMessage]) -> None:
    out = message.pack(
        oots_message(), _payloads(), sign=pki.expired_sign, encrypt_for=pki.receiver_encrypt.certificate, random=rng
    )
    exc = _expect("EBMS:0101", pki, out.content_type, out.body)
    assert "not valid at" in exc.message
    # The same message was acceptable while the certificate was valid.
    ok = _receive(pki, out.content_type, out.body, now=NOW - timedelta(hours=2))
    assert isinstance(ok, message.VerifiedUserMessage)


def test_encrypted_for_someone_else(pki: Pki, rng: Rng, oots_message: Callable[..., model.UserMessage]) -> None:
    out = message.pack(
        oots_message(), _payloads(), sign=pki.sender_sign, encrypt_for=pki.sender_encrypt.certificate, random=rng
    )
    _expect("EBMS:0102", pki, out.content_type, out.body)
    _expect("EBMS:0102", pki, out.content_type, out.body, decryption=None)


def test_malformed_mime(pki: Pki, packed: message.OutboundMessage) -> None:
    _expect("EBMS:0007", pki, packed.content_type, packed.body[: len(packed.body) // 2])
    _expect("EBMS:0007", pki, "multipart/related; boundary=nothing", packed.body)


def test_missing_part(pki: Pki, packed: message.OutboundMessage) -> None:
    def change(env: bytes, parts: list[mime.MimePart]) -> tuple[bytes, list[mime.MimePart]]:
        return env, parts[:1]

    _expect("EBMS:0007", pki, *_rebuild(packed, change))


def test_extra_unsigned_part(pki: Pki, packed: message.OutboundMessage) -> None:
    def change(env: bytes, parts: list[mime.MimePart]) -> tuple[bytes, list[mime.MimePart]]:
        extra = mime.MimePart((("content-type", "application/pdf"), ("content-id", "<extra@evil>")), b"%PDF")
        return env, [*parts, extra]

    exc = _expect("EBMS:0103", pki, *_rebuild(packed, change))
    assert "extra@evil" in exc.message


def test_unsigned_message(pki: Pki, packed: message.OutboundMessage) -> None:
    def change(env: bytes, parts: list[mime.MimePart]) -> tuple[bytes, list[mime.MimePart]]:
        start, end = env.index(b"<wsse:Security "), env.index(b"</wsse:Security>") + len(b"</wsse:Security>")
        return env[:start] + env[end:], parts

    _expect("EBMS:0103", pki, *_rebuild(packed, change))


def test_gzip_bomb(pki: Pki, rng: Rng, oots_message: Callable[..., model.UserMessage]) -> None:
    bomb = model.Payload("bomb@sender.example", "application/xml", bytes(8 * 1024 * 1024))
    out = message.pack(
        oots_message(), [bomb], sign=pki.sender_sign, encrypt_for=pki.receiver_encrypt.certificate, random=rng
    )
    assert len(out.body) < 64 * 1024
    _expect("EBMS:0303", pki, out.content_type, out.body, limits=message.Limits(max_decompressed_bytes=1024 * 1024))


def test_decompressed_total_limit(pki: Pki, rng: Rng, oots_message: Callable[..., model.UserMessage]) -> None:
    """Each part under the per-part limit, all of them together over the message's: refused as a whole."""
    parts = [model.Payload(f"p{i}@sender.example", "application/xml", bytes(600 * 1024)) for i in range(3)]
    out = message.pack(
        oots_message(), parts, sign=pki.sender_sign, encrypt_for=pki.receiver_encrypt.certificate, random=rng
    )
    one_mb = 1024 * 1024
    exc = _expect(
        "EBMS:0303",
        pki,
        out.content_type,
        out.body,
        limits=message.Limits(max_decompressed_bytes=one_mb, max_decompressed_total_bytes=one_mb),
    )
    assert "once decompressed" in exc.message
    assert "1,048,576" in exc.message
    roomy = message.Limits(max_decompressed_bytes=one_mb, max_decompressed_total_bytes=3 * 600 * 1024)
    verified = _receive(pki, out.content_type, out.body, limits=roomy)
    assert isinstance(verified, message.VerifiedUserMessage)
    assert [len(p.data) for p in verified.payloads] == [600 * 1024] * 3


def test_xxe(pki: Pki, packed: message.OutboundMessage) -> None:
    def change(env: bytes, parts: list[mime.MimePart]) -> tuple[bytes, list[mime.MimePart]]:
        doctype = b'<!DOCTYPE env:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        env = env.replace(b"?>", b"?>" + doctype, 1).replace(b"<eb:Action>", b"<eb:Action>&xxe;", 1)
        return env, parts

    exc = _expect("EBMS:0009", pki, *_rebuild(packed, change))
    assert "DTD" in exc.message


def test_oversized(pki: Pki, packed: message.OutboundMessage) -> None:
    _expect("EBMS:0004", pki, packed.content_type, packed.body, limits=message.Limits(max_message_bytes=4096))
    _expect("EBMS:0009", pki, packed.content_type, packed.body, limits=message.Limits(max_envelope_bytes=1024))


def test_body_must_be_empty(pki: Pki, packed: message.OutboundMessage) -> None:
    # A payload smuggled into the Body breaks the Body digest first.
    def change(env: bytes, parts: list[mime.MimePart]) -> tuple[bytes, list[mime.MimePart]]:
        return env.replace(b"></env:Body>", b"><evil/></env:Body>"), parts

    _expect("EBMS:0101", pki, *_rebuild(packed, change))


def test_known_certificate_by_ski_and_issuer_serial(pki: Pki, packed: message.OutboundMessage) -> None:
    from cryptography import x509

    cert = pki.sender_sign.certificate
    ski = base64.b64encode(cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest).decode()
    by_ski = (
        '<wsse:SecurityTokenReference><wsse:KeyIdentifier ValueType="http://docs.oasis-open.org/wss/2004/01/'
        f'oasis-200401-wss-x509-token-profile-1.0#X509SubjectKeyIdentifier">{ski}</wsse:KeyIdentifier>'
        "</wsse:SecurityTokenReference>"
    )
    by_serial = (
        f"<wsse:SecurityTokenReference><ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>{cert.issuer.rfc4514_string()}"
        f"</ds:X509IssuerName><ds:X509SerialNumber>{cert.serial_number}</ds:X509SerialNumber></ds:X509IssuerSerial>"
        "</ds:X509Data></wsse:SecurityTokenReference>"
    )
    for replacement in (by_ski, by_serial):

        def change(
            env: bytes, parts: list[mime.MimePart], replacement: str = replacement
        ) -> tuple[bytes, list[mime.MimePart]]:
            sig_key = env.rindex(b"<ds:KeyInfo>")
            end = env.index(b"</ds:KeyInfo>", sig_key)
            env = env[: sig_key + len(b"<ds:KeyInfo>")] + replacement.encode() + env[end:]
            bst = env.rindex(b"<wsse:BinarySecurityToken ")  # the signer's token leaves the message
            return env[:bst] + env[env.index(b"</wsse:BinarySecurityToken>", bst) + 27 :], parts

        ct, body = _rebuild(packed, change)
        with pytest.raises(SecurityError):
            _receive(pki, ct, body)  # the certificate is not in the message and not known
        ok = _receive(pki, ct, body, known_certificates=[cert])
        assert isinstance(ok, message.VerifiedUserMessage)


def test_pinned_partner_certificate(pki: Pki, packed: message.OutboundMessage) -> None:
    ok = _receive(pki, packed.content_type, packed.body, trust=TrustStore.of([pki.sender_sign.certificate]))
    assert isinstance(ok, message.VerifiedUserMessage)
    _expect("EBMS:0101", pki, packed.content_type, packed.body, trust=TrustStore.of([pki.receiver_sign.certificate]))


def test_compression_helper_is_what_goes_on_the_wire(
    pki: Pki, rng: Rng, oots_message: Callable[..., model.UserMessage]
) -> None:
    out = message.pack(oots_message(), _payloads()[:1], sign=pki.sender_sign, encrypt_for=None, random=rng)
    (part,) = mime.split_related(out.content_type, out.body).attachments
    assert part.content_type == "application/gzip"
    assert compression.decompress(part.body) == REGREP
    assert ns.EB  # namespaces come from the one module


def test_too_many_references(pki: Pki, packed: message.OutboundMessage) -> None:
    def change(env: bytes, parts: list[mime.MimePart]) -> tuple[bytes, list[mime.MimePart]]:
        start = env.index(b"<ds:Reference ")
        end = env.index(b"</ds:Reference>", start) + len(b"</ds:Reference>")
        return env[:end] + env[start:end] * 50 + env[end:], parts

    exc = _expect("EBMS:0101", pki, *_rebuild(packed, change))
    assert "references" in exc.message


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    bodies=st.lists(st.binary(max_size=3000), max_size=4),
    compress=st.booleans(),
    encrypt=st.booleans(),
)
def test_any_payloads_round_trip(
    pki: Pki, oots_message: Callable[..., model.UserMessage], bodies: list[bytes], compress: bool, encrypt: bool
) -> None:
    payloads = [model.Payload(f"part-{i}@sender.example", "application/octet-stream", b) for i, b in enumerate(bodies)]
    out = message.pack(
        oots_message(),
        payloads,
        sign=pki.sender_sign,
        encrypt_for=pki.receiver_encrypt.certificate if encrypt else None,
        random=os.urandom,
        compress=compress,
    )
    verified = _receive(pki, out.content_type, out.body, require_encryption=encrypt and bool(bodies))
    assert isinstance(verified, message.VerifiedUserMessage)
    assert [p.data for p in verified.payloads] == bodies
    assert len(verified.references) == 2 + len(bodies)


def _swap_signer_token(env: bytes, token: bytes) -> bytes:
    """``env`` with the text of the signer's BinarySecurityToken (the last one) replaced by ``token``."""
    start = env.index(b">", env.rindex(b"<wsse:BinarySecurityToken ")) + 1
    return env[:start] + token + env[env.index(b"</wsse:BinarySecurityToken>", start) :]


def test_signer_tokens_are_decoded_per_text_even_after_a_good_message(
    pki: Pki, packed: message.OutboundMessage
) -> None:
    """Tokens are decoded once per distinct text (the same partners sign every message): a good message
    first, then the same message whose token is another certificate, or not a certificate at all."""
    assert isinstance(_receive(pki, packed.content_type, packed.body), message.VerifiedUserMessage)
    assert isinstance(_receive(pki, packed.content_type, packed.body), message.VerifiedUserMessage)
    other = base64.b64encode(pki.receiver_sign.certificate.public_bytes(serialization.Encoding.DER))

    def swap(token: bytes) -> Callable[[bytes, list[mime.MimePart]], tuple[bytes, list[mime.MimePart]]]:
        return lambda env, parts: (_swap_signer_token(env, token), parts)

    exc = _expect("EBMS:0101", pki, *_rebuild(packed, swap(other)))
    assert "signature value" in exc.message
    for _ in range(2):  # a token that is no certificate is refused every time, not remembered
        exc = _expect("EBMS:0101", pki, *_rebuild(packed, swap(base64.b64encode(b"not a certificate"))))
        assert "does not hold a certificate" in exc.message
    assert isinstance(_receive(pki, packed.content_type, packed.body), message.VerifiedUserMessage)


def test_our_token_is_the_certificate_we_sign_with(pki: Pki, rng: Rng, packed: message.OutboundMessage) -> None:
    """Our BinarySecurityToken text is encoded once per certificate; each message still carries its signer's."""
    env = mime.split_related(packed.content_type, packed.body).root.body
    ours = base64.b64encode(pki.sender_sign.certificate.public_bytes(serialization.Encoding.DER))
    assert b">" + ours + b"</wsse:BinarySecurityToken>" in env
    signal = message.error_signal(
        SecurityError("x", code="EBMS:0101"), message_id="e-1@receiver.example", timestamp=NOW
    )
    other = message.pack_signal(signal, sign=pki.receiver_sign, random=rng)
    env = mime.split_related(other.content_type, other.body).root.body
    theirs = base64.b64encode(pki.receiver_sign.certificate.public_bytes(serialization.Encoding.DER))
    assert b">" + theirs + b"</wsse:BinarySecurityToken>" in env
    assert ours not in env
