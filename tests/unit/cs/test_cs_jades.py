"""The detached JAdES signature and digest of Common Services answers, against the real captures."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from cs.cs_helpers import CAPTURE_TIME, Capture
from oots.cs.jades import DIGEST_HEADER, SIGNATURE_HEADER, AnswerSigner, issuer_serial_kid, verify_answer
from oots.cs.keys import CsPki
from oots.cs.trust import COMMISSION_SIGNERS, TrustStore, commission_roots
from oots.errors import SecurityError


def _flip(text: str, index: int) -> str:
    """``text`` with one character changed to another of the same alphabet (stays decodable)."""
    c = text[index]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    replacement = alphabet[(alphabet.index(c) + 1) % len(alphabet)] if c in alphabet else "A"
    return text[:index] + replacement + text[index + 1 :]


def test_real_acceptance_answers_verify(captures: list[Capture]) -> None:
    trust = commission_roots("acc")
    for capture in captures:
        verified = verify_answer(capture.body, capture.headers, trust, at=capture.received_at)
        assert verified.body == capture.body
        assert "CN=EC-OOTS-CS-ACC" in verified.signer_name
        assert verified.signed_at is not None
        assert verified.signed_at.year == 2026
        assert len(verified.chain) == 3


def test_header_names_are_case_insensitive(captures: list[Capture]) -> None:
    capture = captures[0]
    upper = {k.upper(): v for k, v in capture.headers.items()}
    verify_answer(capture.body, upper, commission_roots("acc"), at=capture.received_at)


def test_production_root_refuses_acceptance_answers(captures: list[Capture]) -> None:
    with pytest.raises(SecurityError) as info:
        verify_answer(captures[0].body, captures[0].headers, commission_roots("prod"), at=captures[0].received_at)
    assert info.value.code == "untrusted-chain"


@pytest.mark.parametrize("index", [0, 1, 200, 1000, -40, -2])
def test_each_flipped_body_byte_is_refused(captures: list[Capture], index: int) -> None:
    for capture in captures:
        body = bytearray(capture.body)
        body[index] ^= 0x01
        with pytest.raises(SecurityError) as info:
            verify_answer(bytes(body), capture.headers, commission_roots("acc"), at=capture.received_at)
        assert info.value.code == "bad-digest"


def test_every_flipped_digest_character_is_refused(captures: list[Capture]) -> None:
    capture = captures[2]
    digest = capture.headers[DIGEST_HEADER]
    for index in range(len("SHA-256="), len(digest) - 1):
        headers = {**capture.headers, DIGEST_HEADER: _flip(digest, index)}
        with pytest.raises(SecurityError) as info:
            verify_answer(capture.body, headers, commission_roots("acc"), at=capture.received_at)
        assert info.value.code in {"bad-signature", "bad-digest"}


def test_every_flipped_signature_character_is_refused(captures: list[Capture]) -> None:
    capture = captures[0]
    token = capture.headers[SIGNATURE_HEADER]
    signature_start = token.rindex(".") + 1
    for index in range(signature_start, len(token) - 1):
        headers = {**capture.headers, SIGNATURE_HEADER: _flip(token, index)}
        with pytest.raises(SecurityError):
            verify_answer(capture.body, headers, commission_roots("acc"), at=capture.received_at)


@pytest.mark.parametrize("index", [0, 7, 100, 500, 3000, 8000])
def test_flipped_protected_header_is_refused(captures: list[Capture], index: int) -> None:
    capture = captures[1]
    headers = {**capture.headers, SIGNATURE_HEADER: _flip(capture.headers[SIGNATURE_HEADER], index)}
    with pytest.raises(SecurityError):
        verify_answer(capture.body, headers, commission_roots("acc"), at=capture.received_at)


def test_unsigned_answer_is_refused(captures: list[Capture]) -> None:
    headers = {k: v for k, v in captures[0].headers.items() if k != SIGNATURE_HEADER}
    with pytest.raises(SecurityError) as info:
        verify_answer(captures[0].body, headers, commission_roots("acc"), at=captures[0].received_at)
    assert info.value.code == "unsigned"


def test_missing_digest_is_refused(captures: list[Capture]) -> None:
    headers = {k: v for k, v in captures[0].headers.items() if k != DIGEST_HEADER}
    with pytest.raises(SecurityError) as info:
        verify_answer(captures[0].body, headers, commission_roots("acc"), at=captures[0].received_at)
    assert info.value.code == "unsigned"


def test_a_capture_checked_days_after_it_was_signed_is_refused(captures: list[Capture]) -> None:
    """The captures were signed days before CAPTURE_TIME: replayed then, they are old answers."""
    for capture in captures:
        with pytest.raises(SecurityError) as info:
            verify_answer(capture.body, capture.headers, commission_roots("acc"), at=CAPTURE_TIME)
        assert info.value.code == "signing-time"
        assert "signed at 2026-07-" in info.value.message
        generous = dt.timedelta(days=30)
        verify_answer(capture.body, capture.headers, commission_roots("acc"), at=CAPTURE_TIME, max_age=generous)


def test_signing_time_is_bounded(pki: CsPki) -> None:
    trust = TrustStore((pki.root,))
    now = dt.datetime.now(dt.UTC)
    for signed, ok in (
        (now - dt.timedelta(minutes=59), True),
        (now - dt.timedelta(minutes=61), False),
        (now + dt.timedelta(minutes=4), True),
        (now + dt.timedelta(minutes=6), False),
    ):
        headers = pki.signer().headers(b"<x/>", now=signed)
        if ok:
            assert verify_answer(b"<x/>", headers, trust, at=now).signed_at == signed.replace(microsecond=0)
            continue
        with pytest.raises(SecurityError) as info:
            verify_answer(b"<x/>", headers, trust, at=now)
        assert info.value.code == "signing-time"
    old = pki.signer().headers(b"<x/>", now=now - dt.timedelta(hours=5))
    verify_answer(b"<x/>", old, trust, at=now, max_age=dt.timedelta(hours=6))
    ahead = pki.signer().headers(b"<x/>", now=now + dt.timedelta(minutes=20))
    verify_answer(b"<x/>", ahead, trust, at=now, clock_skew=dt.timedelta(minutes=30))


def test_expired_chain_is_refused(captures: list[Capture]) -> None:
    later = dt.datetime(2028, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(SecurityError) as info:
        verify_answer(captures[0].body, captures[0].headers, commission_roots("acc"), at=later)
    assert info.value.code == "certificate-expired"


def test_kid_is_the_issuer_serial_the_commission_writes(captures: list[Capture]) -> None:
    from cryptography import x509

    token = captures[0].headers[SIGNATURE_HEADER]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    assert issuer_serial_kid(leaf) == header["kid"]


def _header(token: str) -> dict[str, object]:
    return json.loads(base64.urlsafe_b64decode(token.split(".", maxsplit=1)[0] + "=="))  # type: ignore[no-any-return]


def test_own_signature_has_the_commission_shape(captures: list[Capture], pki: CsPki) -> None:
    body = captures[0].body
    headers = pki.signer().headers(body)
    ours = _header(headers[SIGNATURE_HEADER])
    theirs = _header(captures[0].headers[SIGNATURE_HEADER])
    assert list(ours) == list(theirs)
    for name in ("alg", "typ", "b64", "sigD", "crit"):
        assert ours[name] == theirs[name]
    assert headers[DIGEST_HEADER] == captures[0].headers[DIGEST_HEADER]
    verified = verify_answer(body, headers, TrustStore((pki.root,)))
    assert verified.signer == pki.chain[0]


def test_own_signature_refused_under_another_root(pki: CsPki, other_pki: CsPki) -> None:
    headers = pki.signer().headers(b"<x/>")
    with pytest.raises(SecurityError) as info:
        verify_answer(b"<x/>", headers, TrustStore((other_pki.root,)))
    assert info.value.code == "untrusted-chain"
    with pytest.raises(SecurityError):
        verify_answer(b"<x/>", headers, commission_roots("acc"))


def test_chain_swapped_for_another_signer_is_refused(pki: CsPki, other_pki: CsPki) -> None:
    """A signature made with one key but carrying another trusted chain does not verify."""
    token = pki.signer().headers(b"<x/>")[SIGNATURE_HEADER]
    forged = AnswerSigner(other_pki.signer_key, other_pki.chain).headers(b"<x/>")[SIGNATURE_HEADER]
    mixed = forged.split(".")[0] + ".." + token.split(".")[2]
    with pytest.raises(SecurityError) as info:
        verify_answer(
            b"<x/>",
            {"digest": pki.signer().headers(b"<x/>")["digest"], SIGNATURE_HEADER: mixed},
            TrustStore((other_pki.root,)),
        )
    assert info.value.code == "bad-signature"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"alg": "none"}, "bad-algorithm"),
        ({"alg": "HS256"}, "bad-algorithm"),
        ({"b64": True}, "malformed-signature"),
        ({"crit": ["b64"]}, "malformed-signature"),
        ({"sigD": {"mId": "http://uri.etsi.org/19182/ObjectIdByURI", "pars": ["digest"]}}, "malformed-signature"),
        ({"sigD": {"mId": "http://uri.etsi.org/19182/HttpHeaders", "pars": ["content-type"]}}, "malformed-signature"),
        ({"x5c": []}, "untrusted-chain"),
        ({"x5c": ["!!"]}, "untrusted-chain"),
        ({"iat": None}, "malformed-signature"),
        ({"iat": "1785315710"}, "malformed-signature"),
        ({"iat": 1.5}, "malformed-signature"),
    ],
)
def test_header_profile_is_enforced(pki: CsPki, change: dict[str, object], code: str) -> None:
    headers = pki.signer().headers(b"<x/>")
    header = {**_header(headers[SIGNATURE_HEADER]), **change}
    protected = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    token = protected + ".." + headers[SIGNATURE_HEADER].split(".")[2]
    with pytest.raises(SecurityError) as info:
        verify_answer(b"<x/>", {**headers, SIGNATURE_HEADER: token}, TrustStore((pki.root,)))
    assert info.value.code == code


@pytest.mark.parametrize("token", ["", "a.b.c", "x..y", "..", "e30..AAAA", "a" * 70000])
def test_garbage_signature_header_is_refused(pki: CsPki, token: str) -> None:
    headers = {**pki.signer().headers(b"<x/>"), SIGNATURE_HEADER: token}
    with pytest.raises(SecurityError):
        verify_answer(b"<x/>", headers, TrustStore((pki.root,)))


def test_a_ca_certificate_cannot_sign_answers(pki: CsPki) -> None:
    """The issuing CA's key is for certificates only (key usage): a chain starting with it is refused."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from oots.cs.trust import validate_chain

    assert isinstance(pki.signer_key, ec.EllipticCurvePrivateKey)
    with pytest.raises(SecurityError) as info:
        validate_chain(pki.chain[1:], TrustStore((pki.root,)), at=pki.chain[0].not_valid_before_utc)
    assert info.value.code == "untrusted-chain"


def test_chain_with_a_wrong_link_is_refused(pki: CsPki, other_pki: CsPki) -> None:
    from oots.cs.trust import validate_chain

    mixed = (pki.chain[0], other_pki.chain[1], pki.root)
    with pytest.raises(SecurityError) as info:
        validate_chain(mixed, TrustStore((pki.root,)), at=pki.chain[0].not_valid_before_utc)
    assert info.value.code == "untrusted-chain"


def test_under_the_commission_roots_only_its_oots_signers_sign(
    captures: list[Capture], pki: CsPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oots.cs import trust as trust_module

    capture = captures[0]
    acc = commission_roots("acc")
    assert acc.signer_rules(acc.roots[0]) == trust_module.COMMISSION_SIGNERS
    verify_answer(capture.body, capture.headers, acc, at=capture.received_at)
    # another certificate for signatures under the same root is not a Common Services signer: shown with
    # the local PKI's root taken for one of the Commission's (its signer is CN=OOTS-CS-LOCAL, no OU=OOTS)
    headers = pki.signer().headers(b"<x/>")
    own = TrustStore((pki.root,))
    verify_answer(b"<x/>", headers, own)
    commission = trust_module._commission_ders() | {pki.root.public_bytes(trust_module.Encoding.DER)}
    monkeypatch.setattr(trust_module, "_commission_ders", lambda: commission)
    with pytest.raises(SecurityError) as info:
        verify_answer(b"<x/>", headers, own)
    assert info.value.code == "untrusted-signer"
    assert "CN=OOTS-CS-LOCAL" in info.value.message
    assert "allowed_signers" in info.value.message


def test_allowed_signers_pin_the_signer(captures: list[Capture], pki: CsPki) -> None:
    import hashlib

    from cryptography.hazmat.primitives.serialization import Encoding

    from oots.cs.trust import signer_allowed

    capture = captures[0]
    acc = commission_roots("acc")
    with pytest.raises(SecurityError) as info:
        verify_answer(capture.body, capture.headers, acc.with_signers(["CN=EC-OOTS-CS-PROD"]), at=capture.received_at)
    assert info.value.code == "untrusted-signer"
    exact = "CN=EC-OOTS-CS-ACC,O=European Commission,OU=OOTS,C=BE"
    verify_answer(capture.body, capture.headers, acc.with_signers([exact]), at=capture.received_at)

    leaf = pki.chain[0]
    fingerprint = hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest()
    assert signer_allowed(leaf, ["CN=OOTS-CS-LOCAL"])
    assert signer_allowed(leaf, ["O=oots local network,CN=OOTS-*"])
    assert signer_allowed(leaf, [fingerprint.upper()])
    assert signer_allowed(leaf, ["sha256:" + ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2))])
    assert not signer_allowed(leaf, ["CN=OOTS-CS-LOCAL,OU=OOTS"])
    assert not signer_allowed(leaf, list(COMMISSION_SIGNERS))
    assert not signer_allowed(leaf, ["0" * 64])
    headers = pki.signer().headers(b"<x/>")
    with pytest.raises(SecurityError) as info:
        verify_answer(b"<x/>", headers, TrustStore((pki.root,), ("CN=someone else",)))
    assert info.value.code == "untrusted-signer"
    verify_answer(b"<x/>", headers, TrustStore((pki.root,), (fingerprint,)))


@pytest.mark.parametrize("entry", ["", "EC-OOTS-CS-ACC", "XX=1", "abc123"])
def test_a_malformed_allowed_signer_is_a_configuration_error(pki: CsPki, entry: str) -> None:
    from oots.errors import ConfigError

    with pytest.raises(ConfigError, match="allowed signer"):
        TrustStore((pki.root,), (entry,))
