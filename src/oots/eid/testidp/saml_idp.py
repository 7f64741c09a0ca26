"""The SAML identity provider half of the test identity provider (eIDAS attribute profile).

It takes an AuthnRequest (HTTP-Redirect binding), learns the service provider's metadata (given
files, or fetched once from the SP's entity id when that is an http(s) URL — the usual convention, and
fine on a local test network), checks that the AssertionConsumerServiceURL is one the metadata names,
and answers with a Response whose assertion is signed (RSA-SHA256) and carries the eIDAS attributes
and the level of assurance as ``AuthnContextClassRef``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from oots import xmlsafe
from oots.eid import _saml2 as s2
from oots.eid.attributes import subjects_to_eidas_attributes
from oots.eid.identity import LevelOfAssurance, Subject
from oots.eid.testidp.keys import SigningKey
from oots.errors import NotFound, OotsError, RemoteProtocolError

__all__ = ["PendingSamlLogin", "SamlIdentityProvider"]

_MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"


@dataclass(frozen=True, slots=True)
class PendingSamlLogin:
    request_id: str
    sp_entity_id: str
    acs_url: str
    relay_state: str | None
    requested_level: LevelOfAssurance | None
    #: ``ForceAuthn="true"``: the user is asked again even with a session here.
    force_authn: bool = False


class SamlIdentityProvider:
    def __init__(
        self,
        entity_id: str,
        sso_url: str,
        key: SigningKey,
        *,
        sp_metadata: list[str] | None = None,
        fetch: Callable[[str], str] | None = None,
        lifetime_minutes: float = 5,
        xmlsec_binary: str = "/usr/bin/xmlsec1",
    ) -> None:
        s2.quiet_saml2_logging()
        self.entity_id = entity_id
        self._fetch = fetch
        self._lock = threading.Lock()
        self._sp_metadata: dict[str, str] = {}
        self._acs: dict[str, set[str]] = {}
        self._encrypt: dict[str, bool] = {}
        self._metadata: str | None = None
        self._base: dict[str, Any] = {
            "entityid": entity_id,
            "key_file": str(key.key_file),
            "cert_file": str(key.cert_file),
            "xmlsec_binary": xmlsec_binary,
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [
                            (sso_url, s2.BINDING_HTTP_REDIRECT),
                            (sso_url, s2.BINDING_HTTP_POST),
                        ]
                    },
                    "policy": {
                        "default": {
                            "lifetime": {"minutes": lifetime_minutes},
                            "attribute_restrictions": None,
                            "name_form": s2.NAME_FORMAT_URI,
                        }
                    },
                    "name_id_format": [s2.NAMEID_FORMAT_PERSISTENT, s2.NAMEID_FORMAT_TRANSIENT],
                    "want_authn_requests_signed": False,
                }
            },
        }
        for xml in sp_metadata or []:
            self._remember(xml)
        self._server = self._build()

    def _remember(self, xml: str) -> str:
        root = xmlsafe.parse(xml.encode("utf-8"))
        entity = root.get("entityID")
        if not entity:
            raise RemoteProtocolError("the service provider metadata names no entityID")
        acs = {
            str(el.get("Location"))
            for el in root.iter(f"{_MD}AssertionConsumerService")
            if el.get("Binding") == s2.BINDING_HTTP_POST
        }
        self._sp_metadata[entity] = xml
        self._acs[entity] = acs
        # Encrypt assertions for a service provider that publishes an encryption key (as eIDAS nodes expect).
        self._encrypt[entity] = any(
            kd.get("use") in (None, "encryption")
            for sp in root.iter(f"{_MD}SPSSODescriptor")
            for kd in sp.findall(f"{_MD}KeyDescriptor")
        )
        return entity

    def _build(self) -> Any:
        conf = dict(self._base)
        conf["metadata"] = {"inline": list(self._sp_metadata.values())} if self._sp_metadata else {}
        config = s2.IdPConfig()
        config.load(conf)
        return s2.Server(config=config)

    def metadata_xml(self) -> str:
        """The identity provider's metadata, signed with its own key (as eIDAS nodes sign theirs)."""
        if self._metadata is None:
            self._metadata = self._signed_metadata()
        return self._metadata

    def _signed_metadata(self) -> str:
        config = s2.IdPConfig()
        config.load(dict(self._base))
        descriptor = s2.entity_descriptor(config)
        _, signed = s2.sign_entity_descriptor(
            descriptor, None, s2.security_context(config), sign_alg=s2.SIG_RSA_SHA256, digest_alg=s2.DIGEST_SHA256
        )
        return str(signed)

    def add_service_provider(self, metadata_xml: str) -> str:
        """Trust the service provider described by ``metadata_xml``; return its entity id."""
        with self._lock:
            entity = self._remember(metadata_xml)
            self._server = self._build()
        return entity

    def _ensure_sp(self, sp_entity_id: str) -> None:
        with self._lock:
            if sp_entity_id in self._sp_metadata:
                return
            if self._fetch is None or not sp_entity_id.startswith(("http://", "https://")):
                raise NotFound("this identity provider does not know the service provider (no metadata)")
            xml = self._fetch(sp_entity_id)
            if self._remember(xml) != sp_entity_id:
                raise RemoteProtocolError("the service provider's metadata names another entityID")
            self._server = self._build()

    def parse_request(self, saml_request: str, relay_state: str | None) -> PendingSamlLogin:
        """Read an AuthnRequest (HTTP-Redirect binding); the service provider must be known or fetchable."""
        try:
            req = self._server.parse_authn_request(saml_request, s2.BINDING_HTTP_REDIRECT)
        except OotsError:
            raise
        except Exception as exc:
            raise RemoteProtocolError(f"the SAML AuthnRequest cannot be read ({type(exc).__name__})") from None
        msg = req.message
        if msg.issuer is None or not msg.issuer.text:
            raise RemoteProtocolError("the SAML AuthnRequest names no issuer")
        sp = str(msg.issuer.text)
        self._ensure_sp(sp)
        acs = msg.assertion_consumer_service_url
        known = self._acs.get(sp, set())
        if acs is None:
            if not known:
                raise RemoteProtocolError("the service provider's metadata names no assertion consumer service")
            acs = sorted(known)[0]
        elif acs not in known:
            raise RemoteProtocolError("the AssertionConsumerServiceURL is not in the service provider's metadata")
        level = None
        rac = msg.requested_authn_context
        if rac is not None and rac.authn_context_class_ref:
            try:
                level = min(
                    (LevelOfAssurance.parse(str(ref.text)) for ref in rac.authn_context_class_ref),
                    key=lambda lv: lv.rank,
                )
            except OotsError:
                level = None
        force = str(msg.force_authn or "").strip().lower() in ("true", "1")
        return PendingSamlLogin(str(msg.id), sp, str(acs), relay_state, level, force)

    def respond(
        self,
        pending: PendingSamlLogin,
        subject: Subject,
        representative: Subject | None,
        level: LevelOfAssurance,
        *,
        audience: str | None = None,
        authenticated_at: dt.datetime | None = None,
    ) -> str:
        """A signed Response for ``pending`` (base64, for the HTTP-POST binding); ``authenticated_at``
        is the AuthnInstant (a login of the session this provider keeps), else now."""
        authn: dict[str, Any] = {"class_ref": level.uri, "authn_auth": self.entity_id}
        if authenticated_at is not None:
            authn["authn_instant"] = int(authenticated_at.timestamp())
        attributes = subjects_to_eidas_attributes(subject, representative)
        name_id = s2.NameID(
            format=s2.NAMEID_FORMAT_PERSISTENT, text=_pseudonym(subject.identifier, pending.sp_entity_id)
        )
        response = self._server.create_authn_response(
            attributes,
            in_response_to=pending.request_id,
            destination=pending.acs_url,
            sp_entity_id=audience or pending.sp_entity_id,
            name_id=name_id,
            authn=authn,
            sign_response=False,
            sign_assertion=True,
            encrypt_assertion=self._encrypt.get(pending.sp_entity_id, False),
            sign_alg=s2.SIG_RSA_SHA256,
            digest_alg=s2.DIGEST_SHA256,
        )
        return base64.b64encode(str(response).encode("utf-8")).decode("ascii")


def _pseudonym(identifier: str, sp: str) -> str:
    return hashlib.sha256(f"{sp}|{identifier}".encode()).hexdigest()[:32]
