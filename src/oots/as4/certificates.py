"""The certificates a node depends on and when each ends: its own (the AS4 signing certificate, the AS4
encryption certificate when it is another, the mutual-TLS client certificate) and its partners' (the
earlier end of a partner's signing and encryption certificates, and the CA certificates its
certificates chain to: its ``trust_anchors``).

One reading for the places that tell an operator: the warnings at start (and ``oots config check``),
the admin area's partners page and the ``oots_certificate_expiry_timestamp_seconds`` metric.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from oots.as4.keys import KeyPair, load_certificate
from oots.as4.pmode import Partner
from oots.errors import ConfigError
from oots.settings import As4Settings

__all__ = [
    "RENEW_WARNING_DAYS",
    "OwnCertificate",
    "anchors_end",
    "own_certificates",
    "own_notice",
    "partner_end",
    "standing",
    "subject_name",
    "tls_client_certificate",
    "tls_notices",
]

#: The node warns (at start and in ``oots config check``) when one of its own certificates ends within
#: this many days.
RENEW_WARNING_DAYS = 30


def _utc(moment: dt.datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True, slots=True)
class OwnCertificate:
    """One of the node's own certificates: what it is used for, the setting and file it comes from, and
    the certificate itself (None when the file could not be read, ``problem`` saying why)."""

    #: ``signing``, ``encryption``, ``signing and encryption`` (one key pair for both) or ``TLS client``.
    use: str
    setting: str
    path: Path
    certificate: x509.Certificate | None
    problem: str = ""

    @property
    def described(self) -> str:
        """``the node's own signing certificate in /etc/oots/sign.pem``: the start of a warning's sentence."""
        return f"the node's own {self.use} certificate in {self.path}"


def tls_client_certificate(settings: As4Settings) -> OwnCertificate | None:
    """The mutual-TLS client certificate of ``settings`` (``as4.tls_client_certificate``: the one the node
    shows to partners' access points, or to Domibus in Domibus mode), or None when none is configured."""
    path = settings.tls_client_certificate
    if path is None:
        return None
    try:
        return OwnCertificate("TLS client", "as4.tls_client_certificate", path, load_certificate(path))
    except ConfigError as exc:
        return OwnCertificate("TLS client", "as4.tls_client_certificate", path, None, exc.message)


def own_certificates(
    settings: As4Settings, *, sign: KeyPair | None = None, decryption: KeyPair | None = None
) -> list[OwnCertificate]:
    """Every certificate of the node's own: the AS4 signing one (``sign``, None in Domibus mode, where
    Domibus holds the keys), the AS4 encryption one (``decryption``, when it is another key pair) and
    the mutual-TLS client one (read from its file). ``decryption`` counts only when
    ``as4.decryption_key`` is set: without it the signing key pair decrypts too."""
    out: list[OwnCertificate] = []
    separate = settings.decryption_key is not None  # otherwise the signing key pair decrypts too
    if sign is not None and settings.signing_certificate is not None:
        use = "signing" if separate else "signing and encryption"
        out.append(OwnCertificate(use, "as4.signing_certificate", settings.signing_certificate, sign.certificate))
    if separate and decryption is not None and settings.decryption_certificate is not None:
        out.append(
            OwnCertificate(
                "encryption", "as4.decryption_certificate", settings.decryption_certificate, decryption.certificate
            )
        )
    tls = tls_client_certificate(settings)
    return out + ([tls] if tls is not None else [])


def standing(cert: x509.Certificate, now: dt.datetime) -> str:
    """How ``cert`` stands at ``now``, for a page: ``EXPIRED``, ``not yet valid (from …)`` or ``N days left``."""
    if now > cert.not_valid_after_utc:
        return "EXPIRED"
    if now < cert.not_valid_before_utc:
        return f"not yet valid (from {_utc(cert.not_valid_before_utc)})"
    return f"{(cert.not_valid_after_utc - now).days} days left"


def own_notice(own: OwnCertificate, now: dt.datetime, fails: str, renew: str = "") -> str | None:
    """The warning, one plain sentence naming the setting, the file and the date, when ``own`` cannot be
    read, is not valid yet, has expired or ends within :data:`RENEW_WARNING_DAYS` days (None when it is
    fine). ``fails`` says what fails without a valid one (``connections to Domibus fail``), ``renew``
    what to do when it ends soon (by default: renew it before then, as after that ``fails``)."""
    cert = own.certificate
    if cert is None:
        return f"{own.setting}: {own.described} cannot be used ({own.problem}): {fails}"
    if now > cert.not_valid_after_utc:
        return (
            f"{own.setting}: {own.described} expired on {_utc(cert.not_valid_after_utc)}: "
            f"{fails} until a new one is configured"
        )
    if now < cert.not_valid_before_utc:
        return (
            f"{own.setting}: {own.described} is not valid before {_utc(cert.not_valid_before_utc)}: {fails} until then"
        )
    if now + dt.timedelta(days=RENEW_WARNING_DAYS) > cert.not_valid_after_utc:
        days = (cert.not_valid_after_utc - now).days
        renew = renew or f"renew it before then: after that, {fails}"
        return f"{own.setting}: {own.described} expires on {_utc(cert.not_valid_after_utc)} (in {days} day(s)): {renew}"
    return None


def tls_notices(settings: As4Settings, now: dt.datetime, fails: str) -> list[str]:
    """The warnings about the node's TLS files: its mutual-TLS client certificate
    (``as4.tls_client_certificate``) when it cannot be read, is not valid yet, has expired or ends within
    :data:`RENEW_WARNING_DAYS` days; the key of that certificate (``as4.tls_client_key``) and the CA bundle
    (``as4.tls_ca_file``) when they cannot be read or used. ``fails`` says what fails without a valid
    one. They are never refused: the node still receives."""
    own = tls_client_certificate(settings)
    notice = None if own is None else own_notice(own, now, fails)
    notices = [notice] if notice is not None else []
    if settings.tls_ca_file is not None:
        problem = _tls_problem(lambda: ssl.create_default_context(cafile=str(settings.tls_ca_file)))
        if problem:
            notices.append(f"as4.tls_ca_file: the CA bundle {settings.tls_ca_file} cannot be used ({problem}): {fails}")
    key = settings.tls_client_key
    if key is not None and own is not None and own.certificate is not None:
        # An encrypted key is refused here too (no password is given for it): unattended, it cannot be used.
        problem = _tls_problem(
            lambda: ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(str(own.path), str(key), password="")
        )
        if problem:
            notices.append(f"as4.tls_client_key: the TLS client key {key} cannot be used ({problem}): {fails}")
    return notices


def _tls_problem(load: Callable[[], object]) -> str:
    """Why ``load`` (reading TLS files) failed, or an empty string when it did not."""
    try:
        load()
    except ssl.SSLError as exc:
        return f"OpenSSL: {exc.reason or exc}"
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""


def partner_end(partner: Partner) -> tuple[str, x509.Certificate] | None:
    """Which of ``partner``'s certificates ends first (``signing``, ``encryption``, or ``signing and
    encryption`` when both end together) and that certificate; None when it has neither."""
    pairs = [
        (what, c)
        for what, c in (("signing", partner.signing_certificate), ("encryption", partner.encryption_certificate))
        if c is not None
    ]
    if not pairs:
        return None
    first = min(c.not_valid_after_utc for _, c in pairs)
    which = [what for what, c in pairs if c.not_valid_after_utc == first]
    cert = next(c for _, c in pairs if c.not_valid_after_utc == first)
    return " and ".join(which), cert


def subject_name(cert: x509.Certificate) -> str:
    """The common name (CN) of ``cert``'s subject, or its whole subject (RFC 4514) when it has none."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if names:
        value = names[0].value
        return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return cert.subject.rfc4514_string() or f"serial {cert.serial_number:x}"


def anchors_end(partner: Partner) -> x509.Certificate | None:
    """Which of ``partner``'s trust anchors (``[[as4.partners]] trust_anchors``) ends first; None when it has none."""
    return min(partner.trust_anchors, key=lambda c: c.not_valid_after_utc, default=None)
