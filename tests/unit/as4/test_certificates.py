"""The ends of the node's own certificates and its partners' (oots.as4.certificates), as the start
warnings, the admin page and the metric tell them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from msh_doubles import make_certificate

from oots.as4.certificates import (
    OwnCertificate,
    anchors_end,
    own_notice,
    partner_end,
    standing,
    subject_name,
    tls_client_certificate,
    tls_notices,
)
from oots.as4.keys import init_dev_pki
from oots.as4.pmode import Partner, Party
from oots.settings import As4Settings

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
FAILS = "connections to partners' access points that require mutual TLS fail"


def tls(cert: x509.Certificate) -> OwnCertificate:
    return OwnCertificate("TLS client", "as4.tls_client_certificate", Path("/etc/oots/tls.pem"), cert)


def test_a_certificate_stands_expired_not_yet_valid_or_so_many_days_left() -> None:
    _, cert = make_certificate("blue", not_before=NOW - dt.timedelta(days=10), days=20)
    assert standing(cert, NOW) == "10 days left"
    assert standing(cert, NOW + dt.timedelta(days=11)) == "EXPIRED"
    assert standing(cert, NOW - dt.timedelta(days=11)) == "not yet valid (from 2026-11-17 12:00 UTC)"


def test_the_warning_names_the_setting_the_file_and_the_date() -> None:
    _, cert = make_certificate("blue", not_before=NOW - dt.timedelta(days=10), days=40)
    assert own_notice(tls(cert), NOW, FAILS) is None  # 30 days left: not yet within the 30 days
    assert own_notice(tls(cert), NOW + dt.timedelta(days=5), FAILS) == (
        "as4.tls_client_certificate: the node's own TLS client certificate in /etc/oots/tls.pem expires on "
        f"2026-12-27 12:00 UTC (in 25 day(s)): renew it before then: after that, {FAILS}"
    )
    assert own_notice(tls(cert), NOW - dt.timedelta(days=11), FAILS) == (
        "as4.tls_client_certificate: the node's own TLS client certificate in /etc/oots/tls.pem is not valid "
        f"before 2026-11-17 12:00 UTC: {FAILS} until then"
    )
    assert own_notice(tls(cert), NOW + dt.timedelta(days=31), FAILS) == (
        "as4.tls_client_certificate: the node's own TLS client certificate in /etc/oots/tls.pem expired on "
        f"2026-12-27 12:00 UTC: {FAILS} until a new one is configured"
    )


def test_an_unreadable_tls_client_certificate_is_told_not_raised(tmp_path: Path) -> None:
    (tmp_path / "tls.pem").write_text("not a certificate", encoding="utf-8")
    own = tls_client_certificate(As4Settings(tls_client_certificate=tmp_path / "tls.pem"))
    assert own is not None
    assert own.certificate is None
    notice = own_notice(own, NOW, FAILS)
    assert notice is not None
    assert notice.startswith(f"as4.tls_client_certificate: the node's own TLS client certificate in {tmp_path}")
    assert "cannot be used (not a certificate file" in notice
    assert tls_client_certificate(As4Settings()) is None


def test_a_partners_first_end_says_which_certificate_it_is() -> None:
    _, early = make_certificate("red encrypt", not_before=NOW, days=10)
    _, late = make_certificate("red sign", not_before=NOW, days=20)
    party = Party("red_gw")
    assert partner_end(Partner("red", party, "", late, early)) == ("encryption", early)
    assert partner_end(Partner("red", party, "", early, late)) == ("signing", early)
    assert partner_end(Partner("red", party, "", late, late)) == ("signing and encryption", late)
    assert partner_end(Partner("red", party, "")) is None


def test_a_partners_trust_anchors_are_named_by_their_subject_and_the_first_end_is_theirs() -> None:
    _, late = make_certificate("red root CA", not_before=NOW, days=3650)
    _, early = make_certificate("red issuing CA", not_before=NOW, days=30)
    party = Party("red_gw")
    assert anchors_end(Partner("red", party, "", trust_anchors=(late, early))) is early
    assert anchors_end(Partner("red", party, "")) is None
    assert [subject_name(c) for c in (late, early)] == ["red root CA", "red issuing CA"]
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Red"), x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]
    )
    without_cn = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    assert subject_name(without_cn) == "C=FR,O=Red"  # no common name: the whole subject


def test_an_unreadable_tls_ca_file_or_client_key_is_told_not_raised(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    init_dev_pki(pki, ["be"], now=dt.datetime.now(dt.UTC))
    fine = As4Settings(
        tls_ca_file=pki / "ca.pem",
        tls_client_certificate=pki / "be" / "sign.pem",
        tls_client_key=pki / "be" / "sign.key.pem",
    )
    assert tls_notices(fine, dt.datetime.now(dt.UTC), FAILS) == []

    missing = fine.model_copy(update={"tls_ca_file": tmp_path / "nosuch.pem", "tls_client_key": tmp_path / "no.pem"})
    ca, key = tls_notices(missing, dt.datetime.now(dt.UTC), FAILS)
    assert ca == (
        f"as4.tls_ca_file: the CA bundle {tmp_path / 'nosuch.pem'} cannot be used (No such file or directory): {FAILS}"
    )
    assert key.startswith(f"as4.tls_client_key: the TLS client key {tmp_path / 'no.pem'} cannot be used (")

    (tmp_path / "ca.txt").write_text("not a certificate", encoding="utf-8")
    wrong = fine.model_copy(
        update={"tls_ca_file": tmp_path / "ca.txt", "tls_client_key": pki / "be" / "encrypt.key.pem"}
    )
    ca, key = tls_notices(wrong, dt.datetime.now(dt.UTC), FAILS)
    assert ca.startswith(f"as4.tls_ca_file: the CA bundle {tmp_path / 'ca.txt'} cannot be used (OpenSSL: ")
    assert key.startswith("as4.tls_client_key: ")  # not the key of the certificate
    assert "cannot be used (OpenSSL: " in key
