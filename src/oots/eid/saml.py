"""SAML 2.0 service provider with the eIDAS attribute profile, as an eIDAS node's SP interface.

:class:`SamlServiceProvider` makes the AuthnRequest (HTTP-Redirect binding, eIDAS ``SPType`` and
``RequestedAttributes`` extensions, ``RequestedAuthnContext`` ``minimum`` at the required level) and
checks the Response that comes back (HTTP-POST binding): signature of the assertion by a key in the
identity provider's metadata (through ``xmlsec1``), issuer, audience, time window, ``InResponseTo``
this very login, assertion not seen before, level of assurance. It returns the typed identity.
pysaml2 does the SAML work; its calls are blocking (web handlers run them in a thread).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lxml import etree

from oots import xmlsafe
from oots.eid import _saml2 as s2
from oots.eid.attributes import EIDAS_LEGAL, EIDAS_NATURAL, eidas_attributes_to_subjects, level_from_text
from oots.eid.errors import AssuranceTooLow, LoginRefused
from oots.eid.identity import Identity, LevelOfAssurance
from oots.eid.replay import MemoryReplayCache, ReplayCache
from oots.errors import ConfigError, OotsError

__all__ = ["MAX_RESPONSE_BYTES", "SamlLogin", "SamlServiceProvider", "redirect_query", "verify_metadata"]

#: Largest SAML response accepted (base64-decoded).
MAX_RESPONSE_BYTES = 512 * 1024

XMLSEC1 = "/usr/bin/xmlsec1"
_ISSUER = "{urn:oasis:names:tc:SAML:2.0:assertion}Issuer"

_REQUESTED = [
    (EIDAS_NATURAL + "PersonIdentifier", True),
    (EIDAS_NATURAL + "CurrentFamilyName", True),
    (EIDAS_NATURAL + "CurrentGivenName", True),
    (EIDAS_NATURAL + "DateOfBirth", True),
    (EIDAS_NATURAL + "BirthName", False),
    (EIDAS_NATURAL + "PlaceOfBirth", False),
    (EIDAS_NATURAL + "CurrentAddress", False),
    (EIDAS_NATURAL + "Gender", False),
    (EIDAS_LEGAL + "LegalPersonIdentifier", False),
    (EIDAS_LEGAL + "LegalName", False),
]


class SamlLogin:
    """What the relying party keeps of one SAML login in progress: the request id and the redirect."""

    def __init__(self, request_id: str, redirect_url: str) -> None:
        self.request_id = request_id
        self.redirect_url = redirect_url


class SamlServiceProvider:
    """A SAML service provider for one identity provider (an eIDAS node or the test provider)."""

    def __init__(
        self,
        entity_id: str,
        acs_url: str,
        idp_metadata: str,
        *,
        key_file: Path | None = None,
        cert_file: Path | None = None,
        idp_metadata_cert: Path | None = None,
        replay_cache: ReplayCache | None = None,
        clock: Callable[[], float] = time.time,
        accepted_time_diff: int = 60,
        xmlsec_binary: str = XMLSEC1,
        sp_type: str = "public",
    ) -> None:
        s2.quiet_saml2_logging()
        if idp_metadata_cert is not None:
            verify_metadata(idp_metadata, idp_metadata_cert, xmlsec_binary, clock())
        self.entity_id = entity_id
        self.acs_url = acs_url
        self._replay = replay_cache or MemoryReplayCache(clock)
        self._clock = clock
        self._skew = max(0, accepted_time_diff)
        try:
            idp_root = xmlsafe.parse(idp_metadata.encode("utf-8"))
        except OotsError as exc:
            raise ConfigError(f"the SAML identity provider metadata is not usable XML: {exc.message}") from None
        self.idp_entity_id = str(idp_root.get("entityID") or "")
        if not self.idp_entity_id:
            raise ConfigError("the SAML identity provider metadata names no entityID")
        config: dict[str, Any] = {
            "entityid": entity_id,
            "xmlsec_binary": xmlsec_binary,
            "accepted_time_diff": accepted_time_diff,
            "allow_unknown_attributes": True,
            "signing_algorithm": s2.SIG_RSA_SHA256,
            "digest_algorithm": s2.DIGEST_SHA256,
            "metadata": {"inline": [idp_metadata]},
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [(acs_url, s2.BINDING_HTTP_POST)]},
                    "want_assertions_signed": True,
                    "want_response_signed": False,
                    "authn_requests_signed": key_file is not None,
                    "allow_unsolicited": False,
                    "name_id_format": s2.NAMEID_FORMAT_PERSISTENT,
                    "sp_type": sp_type,
                    "sp_type_in_metadata": False,
                    "requested_attributes": [
                        {"name": name, "name_format": s2.NAME_FORMAT_URI, "required": required}
                        for name, required in _REQUESTED
                    ],
                }
            },
        }
        if key_file is not None and cert_file is not None:
            config["key_file"] = str(key_file)
            config["cert_file"] = str(cert_file)
            config["encryption_keypairs"] = [{"key_file": str(key_file), "cert_file": str(cert_file)}]
        self._config = s2.SPConfig()
        try:
            self._config.load(config)
            self._client = s2.Saml2Client(config=self._config)
        except (s2.SAMLError, ValueError, KeyError) as exc:
            raise ConfigError(f"the SAML service provider cannot be set up: {exc}") from None

    def metadata_xml(self) -> str:
        """This service provider's metadata, to register at the eIDAS node or identity provider."""
        return str(s2.entity_descriptor(self._config))

    def start(self, required_level: LevelOfAssurance, relay_state: str, *, force_authn: bool = False) -> SamlLogin:
        """An AuthnRequest asking for at least ``required_level``; redirect the browser to the URL.
        ``force_authn``: ``ForceAuthn="true"``, the identity provider must not reuse its session."""
        extra: dict[str, str] = {"force_authn": "true"} if force_authn else {}
        request_id, info = self._client.prepare_for_authenticate(
            entityid=self.idp_entity_id,
            relay_state=relay_state,
            binding=s2.BINDING_HTTP_REDIRECT,
            sigalg=s2.SIG_RSA_SHA256,
            digest_alg=s2.DIGEST_SHA256,
            requested_authn_context={"authn_context_class_ref": [required_level.uri], "comparison": "minimum"},
            **extra,
        )
        location = dict(info["headers"])["Location"]
        return SamlLogin(str(request_id), str(location))

    def consume(self, saml_response: str, request_id: str, required_level: LevelOfAssurance) -> Identity:
        """Check a base64 SAMLResponse posted back for the login ``request_id`` and return the identity."""
        try:
            raw = base64.b64decode(saml_response.encode("ascii"), validate=False)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise LoginRefused("the SAML response is not base64", code="malformed") from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise LoginRefused("the SAML response is too large", code="malformed")
        try:
            root = xmlsafe.parse(raw, max_bytes=MAX_RESPONSE_BYTES)  # the gate: no DTD, no entities, well-formed
        except OotsError as exc:
            raise LoginRefused(f"the SAML response is not acceptable XML: {exc.message}", code="malformed") from None
        claimed = root.findtext(_ISSUER)
        if claimed is not None and claimed.strip() != self.idp_entity_id:
            # Refuse early and plainly; the signature check below would fail on it too (unknown signer).
            raise LoginRefused("the SAML response comes from another identity provider", code="issuer")
        response = self._parse(saml_response, request_id, root)
        issuer = response.issuer()
        if issuer != self.idp_entity_id:
            raise LoginRefused("the SAML response comes from another identity provider", code="issuer")
        assertion = response.assertion
        if assertion is None or assertion.id is None:
            raise LoginRefused("the SAML response holds no assertion", code="malformed")
        assertion_issuer = assertion.issuer.text if assertion.issuer is not None else None
        if assertion_issuer != self.idp_entity_id:
            raise LoginRefused("the SAML assertion was issued by another identity provider", code="issuer")
        # pysaml2 accepts the assertion until NotOnOrAfter plus the clock skew it allows, so the id is
        # remembered as long: forgetting it at NotOnOrAfter would let a replay in during the skew.
        expires = (float(response.not_on_or_after or 0) or self._clock() + 3600) + self._skew
        if not self._replay.first_use(f"{self.idp_entity_id}|{assertion.id}", expires):
            raise LoginRefused("this SAML assertion was already used; please log in again", code="replay")
        authn = response.authn_info()
        if not authn:
            raise LoginRefused("the SAML assertion states no level of assurance", code="assurance")
        level = level_from_text(str(authn[0][0]))
        if not level.satisfies(required_level):
            raise AssuranceTooLow(level, required_level)
        attributes: dict[str, list[str]] = {}
        for statement in assertion.attribute_statement:
            for attribute in statement.attribute:
                values = [v.text or "" for v in attribute.attribute_value]
                attributes.setdefault(str(attribute.name), []).extend(values)
        subject, representative = eidas_attributes_to_subjects(attributes)
        when = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        instant = authn[0][2] if len(authn[0]) > 2 else None
        if isinstance(instant, str):
            with contextlib.suppress(ValueError):
                when = dt.datetime.fromisoformat(instant.replace("Z", "+00:00"))
        session_index = None
        for statement in assertion.authn_statement:
            session_index = statement.session_index or session_index
        return Identity(
            subject=subject,
            representative=representative,
            level=level,
            issuer=self.idp_entity_id,
            protocol="saml",
            authenticated_at=when,
            session_index=session_index,
        )

    def _parse(self, saml_response: str, request_id: str, root: Any) -> Any:
        try:
            response = self._client.parse_authn_request_response(
                saml_response, s2.BINDING_HTTP_POST, outstanding={request_id: "/"}
            )
        except s2.UnsolicitedResponse:
            raise LoginRefused("the SAML response does not answer this login (InResponseTo)", code="state") from None
        except s2.ResponseLifetimeExceed:
            raise LoginRefused("the SAML assertion has expired; please log in again", code="expired") from None
        except s2.ToEarly:
            raise LoginRefused("the SAML assertion is not valid yet; check the clocks", code="not_yet_valid") from None
        except s2.StatusError as exc:
            raise LoginRefused(
                f"the identity provider did not log you in ({type(exc).__name__.removeprefix('Status')})",
                code="provider",
            ) from None
        except (s2.SigverError, s2.SignatureError):
            raise LoginRefused("the SAML assertion's signature does not verify", code="signature") from None
        except s2.UnravelError:
            raise LoginRefused("the SAML response cannot be read", code="malformed") from None
        except Exception as exc:  # pysaml2 raises bare Exception/ValueError for several checks
            text = str(exc)
            if "AudienceRestrictions" in text:
                raise LoginRefused("the SAML assertion was issued for another service", code="audience") from None
            if "Condition not OK" in text and _expired(root, self._clock()):
                raise LoginRefused("the SAML assertion has expired; please log in again", code="expired") from None
            if "signature" in text.lower() or "signed" in text.lower():
                raise LoginRefused("the SAML assertion's signature does not verify", code="signature") from None
            raise LoginRefused(
                f"the SAML response is not acceptable ({type(exc).__name__})", code="malformed"
            ) from None
        if response is None:
            raise LoginRefused("the SAML response cannot be read", code="malformed")
        return response


def redirect_query(url: str) -> dict[str, str]:
    """The query parameters of a redirect URL (for tests and the test provider)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _expired(root: Any, now: float) -> bool:
    """True when a NotOnOrAfter of the (unverified, already refused) response lies in the past."""
    for element in root.iter("{urn:oasis:names:tc:SAML:2.0:assertion}Conditions"):
        limit = element.get("NotOnOrAfter")
        if limit:
            with contextlib.suppress(ValueError):
                if dt.datetime.fromisoformat(limit.replace("Z", "+00:00")).timestamp() <= now:
                    return True
    return False


_DS = "{http://www.w3.org/2000/09/xmldsig#}"


def verify_metadata(xml: str, cert_file: Path, xmlsec_binary: str = XMLSEC1, now: float | None = None) -> None:
    """Check that ``xml`` (SAML metadata) is signed as a whole by the key of ``cert_file`` and not expired.

    The signature must be a direct child of the root, reference the root's ``ID`` and nothing else
    (no wrapping), and verify with ``xmlsec1`` against that certificate's public key. Raises
    :class:`ConfigError` naming what failed.
    """
    try:
        root = xmlsafe.parse(xml.encode("utf-8"))
    except OotsError as exc:
        raise ConfigError(f"the identity provider metadata is not usable XML: {exc.message}") from None
    ident = root.get("ID")
    signature = root.find(f"{_DS}Signature")
    if not ident or signature is None:
        raise ConfigError("the identity provider metadata is not signed (eid.saml_idp_metadata_cert is set)")
    references = signature.findall(f"{_DS}SignedInfo/{_DS}Reference")
    if len(references) != 1 or references[0].get("URI") != f"#{ident}":
        raise ConfigError("the identity provider metadata signature does not cover the whole document")
    valid_until = root.get("validUntil")
    if valid_until:
        try:
            limit = dt.datetime.fromisoformat(valid_until.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise ConfigError("the identity provider metadata has an unreadable validUntil") from None
        if limit < (now if now is not None else dt.datetime.now(dt.UTC).timestamp()):
            raise ConfigError("the identity provider metadata has expired (validUntil)")
    qname = etree.QName(root)
    with tempfile.NamedTemporaryFile(suffix=".xml") as fh:
        fh.write(xml.encode("utf-8"))
        fh.flush()
        command = [
            xmlsec_binary,
            "--verify",
            "--enabled-reference-uris",
            "same-doc",
            "--pubkey-cert-pem",
            str(cert_file),
            "--id-attr:ID",
            f"{qname.namespace}:{qname.localname}",
            fh.name,
        ]
        try:
            result = subprocess.run(command, capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"cannot run {xmlsec_binary} to check the metadata signature: {exc}") from None
    if result.returncode != 0:
        raise ConfigError(f"the identity provider metadata signature does not verify with {cert_file}")
