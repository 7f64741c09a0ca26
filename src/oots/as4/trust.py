"""Certificate trust: does a signer's certificate chain to a configured anchor at a given time?

Anchors are CA certificates, or a partner's own certificate pinned directly (as Domibus trust
stores often hold them). Chains are built and checked with ``cryptography``'s X.509 verifier
(signatures, validity at the passed-in time, CA constraints); the end-entity's extensions are not
restricted further, since AS4 certificates in use do not agree on key usages. Failures are
``EBMS:0101`` FailedAuthentication.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.x509 import verification

from oots.errors import SecurityError

__all__ = ["TrustStore"]

_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class TrustStore:
    """Trust anchors (CAs or pinned partner certificates) and optional intermediate CAs."""

    anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    #: Chains already built, by leaf: the window in which the whole chain is valid. A hit inside
    #: the window skips building the chain again (the answer cannot differ: no revocation here).
    _verified: dict[x509.Certificate, tuple[datetime, datetime]] = field(
        default_factory=dict, init=False, compare=False, repr=False, hash=False
    )

    @classmethod
    def of(cls, anchors: Iterable[x509.Certificate], intermediates: Iterable[x509.Certificate] = ()) -> TrustStore:
        return cls(tuple(anchors), tuple(intermediates))

    def verify(self, certificate: x509.Certificate, *, at: datetime, chain: Sequence[x509.Certificate] = ()) -> None:
        """Raise ``SecurityError(EBMS:0101)`` unless ``certificate`` is trusted and valid at ``at``."""
        if not self.anchors:
            raise SecurityError("no trust anchors are configured", code="EBMS:0101")
        at = at.astimezone(UTC)
        if not (certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc):
            raise SecurityError(
                f"the signer's certificate is not valid at {at:%Y-%m-%d %H:%M} UTC "
                f"(valid {certificate.not_valid_before_utc:%Y-%m-%d} to {certificate.not_valid_after_utc:%Y-%m-%d})",
                code="EBMS:0101",
            )
        if certificate in self.anchors:
            return  # pinned partner certificate, valid now
        window = self._verified.get(certificate)
        if window is not None and window[0] <= at <= window[1]:
            return
        verifier = (
            verification.PolicyBuilder()
            .store(verification.Store(list(self.anchors)))
            .time(at.replace(tzinfo=None))
            .extension_policies(
                ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=verification.ExtensionPolicy.permit_all(),
            )
            .build_client_verifier()
        )
        try:
            verified = verifier.verify(certificate, [*chain, *self.intermediates])
        except verification.VerificationError as exc:
            raise SecurityError(
                f"the signer's certificate ({certificate.subject.rfc4514_string()}) is not trusted: {exc}",
                code="EBMS:0101",
            ) from None
        if len(self._verified) >= _CACHE_SIZE:
            self._verified.clear()
        self._verified[certificate] = (
            max(c.not_valid_before_utc for c in verified.chain),
            min(c.not_valid_after_utc for c in verified.chain),
        )
