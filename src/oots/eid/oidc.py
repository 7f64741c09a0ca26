"""OpenID Connect relying party: authorization-code flow with PKCE, state and nonce.

The protocol steps are plain functions (no I/O): :func:`new_flow` makes the secrets of one login,
:func:`authorization_url` the redirect to the provider, :func:`verify_id_token` checks a signed ID
token (signature by the provider's published keys, issuer, audience, expiry, nonce, level) and
returns its claims. :class:`OidcClient` adds the HTTP calls (discovery, JWKS, token endpoint) through
an injectable ``httpx`` transport.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from oots.eid.attributes import claims_to_subjects, level_from_text
from oots.eid.errors import AssuranceTooLow, LoginRefused
from oots.eid.identity import Identity, LevelOfAssurance
from oots.errors import RemoteProtocolError, TransportError

__all__ = [
    "ALLOWED_ALGORITHMS",
    "Flow",
    "OidcClient",
    "ProviderMetadata",
    "authorization_url",
    "identity_from_claims",
    "new_flow",
    "pkce_challenge",
    "verify_id_token",
]

#: Signature algorithms accepted on ID tokens ("none" and HMAC never).
ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of an OpenID Provider's discovery document the relying party uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None = None
    userinfo_endpoint: str | None = None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], expected_issuer: str) -> ProviderMetadata:
        """Read a discovery document; its ``issuer`` must be exactly the configured one."""
        try:
            meta = cls(
                issuer=str(doc["issuer"]),
                authorization_endpoint=str(doc["authorization_endpoint"]),
                token_endpoint=str(doc["token_endpoint"]),
                jwks_uri=str(doc["jwks_uri"]),
                end_session_endpoint=str(doc["end_session_endpoint"]) if doc.get("end_session_endpoint") else None,
                userinfo_endpoint=str(doc["userinfo_endpoint"]) if doc.get("userinfo_endpoint") else None,
            )
        except (KeyError, TypeError):
            raise RemoteProtocolError("the provider's discovery document lacks a required endpoint") from None
        if meta.issuer != expected_issuer:
            raise LoginRefused(
                f"the provider's discovery document names the issuer {meta.issuer}, not {expected_issuer}",
                code="issuer",
            )
        return meta


@dataclass(frozen=True, slots=True)
class Flow:
    """The secrets of one login in progress, kept server-side or in an encrypted cookie."""

    state: str
    nonce: str
    code_verifier: str
    return_to: str
    required_level: LevelOfAssurance
    started_at: float
    #: Ask the provider to log the user in again even if it has a session (``prompt=login``).
    force_login: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "nonce": self.nonce,
            "code_verifier": self.code_verifier,
            "return_to": self.return_to,
            "required_level": self.required_level.value,
            "started_at": self.started_at,
            "force_login": self.force_login,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Flow:
        return cls(
            state=str(data["state"]),
            nonce=str(data["nonce"]),
            code_verifier=str(data["code_verifier"]),
            return_to=str(data["return_to"]),
            required_level=LevelOfAssurance(data["required_level"]),
            started_at=float(data["started_at"]),
            force_login=bool(data.get("force_login", False)),
        )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE code verifier (RFC 7636)."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def new_flow(return_to: str, required_level: LevelOfAssurance, now: float, *, force_login: bool = False) -> Flow:
    """Fresh random state, nonce and PKCE verifier for one login (``force_login``: see :attr:`Flow.force_login`)."""
    return Flow(
        state=secrets.token_urlsafe(24),
        nonce=secrets.token_urlsafe(24),
        code_verifier=secrets.token_urlsafe(48),
        return_to=return_to,
        required_level=required_level,
        started_at=now,
        force_login=force_login,
    )


def authorization_url(
    meta: ProviderMetadata, client_id: str, redirect_uri: str, flow: Flow, scope: str = "openid profile"
) -> str:
    """The provider URL the browser is sent to (acr_values asks for the required level; ``prompt=login``
    when the flow must not reuse the provider's session)."""
    levels = [lv.uri for lv in LevelOfAssurance if lv.satisfies(flow.required_level)]
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": flow.state,
        "nonce": flow.nonce,
        "code_challenge": pkce_challenge(flow.code_verifier),
        "code_challenge_method": "S256",
        "acr_values": " ".join(levels),
    }
    if flow.force_login:
        query["prompt"] = "login"
    sep = "&" if "?" in meta.authorization_endpoint else "?"
    return meta.authorization_endpoint + sep + urlencode(query)


def verify_id_token(
    token: str,
    keys: jwt.PyJWKSet,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    now: float,
    leeway: float = 60.0,
) -> dict[str, Any]:
    """Check a signed ID token and return its claims; raise :class:`LoginRefused` naming what failed."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise LoginRefused("the ID token is not a signed JWT", code="malformed") from None
    alg = header.get("alg")
    if alg not in ALLOWED_ALGORITHMS:
        raise LoginRefused(f"the ID token is signed with {alg!r}, which is not accepted", code="algorithm")
    kid = header.get("kid")
    candidates = [k for k in keys.keys if kid is None or k.key_id == kid]
    if not candidates:
        raise LoginRefused("the ID token is signed with a key the provider does not publish", code="signature")
    claims: dict[str, Any] | None = None
    for key in candidates:
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                options={
                    "verify_aud": False,
                    "verify_iss": False,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidTokenError:
            raise LoginRefused("the ID token is not a well-formed signed JWT", code="malformed") from None
    if claims is None:
        raise LoginRefused("the ID token's signature does not verify with the provider's keys", code="signature")
    if claims.get("iss") != issuer:
        raise LoginRefused("the ID token was issued by another provider than the configured one", code="issuer")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if client_id not in audiences:
        raise LoginRefused("the ID token was issued for another application", code="audience")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise LoginRefused("the ID token has several audiences and is not authorised for this one", code="audience")
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        raise LoginRefused("the ID token has no expiry time", code="malformed")
    if now > exp + leeway:
        raise LoginRefused("the ID token has expired; please log in again", code="expired")
    iat = claims.get("iat")
    if isinstance(iat, int | float) and iat > now + leeway:
        raise LoginRefused("the ID token was issued in the future; check the clocks", code="not_yet_valid")
    if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(claims["nonce"], nonce):
        raise LoginRefused("the ID token does not belong to this login (nonce mismatch)", code="nonce")
    return claims


def identity_from_claims(claims: Mapping[str, Any], required_level: LevelOfAssurance) -> Identity:
    """The typed identity of verified ID token claims; refuses a level below ``required_level``."""
    acr = claims.get("acr")
    if not isinstance(acr, str):
        raise LoginRefused("the ID token does not state a level of assurance (acr)", code="assurance")
    level = level_from_text(acr)
    if not level.satisfies(required_level):
        raise AssuranceTooLow(level, required_level)
    subject, representative = claims_to_subjects(claims)
    auth_time = claims.get("auth_time", claims.get("iat"))
    when = dt.datetime.fromtimestamp(float(auth_time) if isinstance(auth_time, int | float) else 0, dt.UTC)
    return Identity(
        subject=subject,
        level=level,
        issuer=str(claims["iss"]),
        protocol="oidc",
        authenticated_at=when,
        representative=representative,
    )


class OidcClient:
    """The HTTP side of the relying party: discovery, keys and the token endpoint.

    ``transport`` lets tests route the calls to an in-process provider (``httpx.ASGITransport``).
    Discovery and keys are fetched once and cached; an unknown ``kid`` refreshes the keys once.
    """

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        redirect_uri: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
        scope: str = "openid profile",
        userinfo: bool = False,
        claim_map: Mapping[str, str] | None = None,
        acr_map: Mapping[str, str] | None = None,
    ) -> None:
        self.issuer = issuer
        self.scope = scope
        self._userinfo = userinfo
        self._claim_map = dict(claim_map or {})
        self._acr_map = {k: LevelOfAssurance.parse(v) for k, v in (acr_map or {}).items()}
        self.client_id = client_id
        self._secret = client_secret
        self.redirect_uri = redirect_uri
        self._transport = transport
        self._clock = clock
        self._timeout = timeout
        self._meta: ProviderMetadata | None = None
        self._keys: jwt.PyJWKSet | None = None

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self._transport, timeout=self._timeout, follow_redirects=False)

    async def _get_json(self, url: str) -> Any:
        try:
            async with self._http() as http:
                resp = await http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise TransportError(f"cannot reach the identity provider ({type(exc).__name__})") from None
        if resp.status_code != 200:
            raise TransportError(f"the identity provider answered HTTP {resp.status_code} for {url}")
        try:
            return resp.json()
        except ValueError:
            raise RemoteProtocolError(f"the identity provider's answer at {url} is not JSON") from None

    async def metadata(self) -> ProviderMetadata:
        if self._meta is None:
            doc = await self._get_json(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
            if not isinstance(doc, dict):
                raise RemoteProtocolError("the provider's discovery document is not a JSON object")
            self._meta = ProviderMetadata.from_document(doc, self.issuer)
        return self._meta

    async def keys(self, *, refresh: bool = False) -> jwt.PyJWKSet:
        if self._keys is None or refresh:
            meta = await self.metadata()
            doc = await self._get_json(meta.jwks_uri)
            try:
                self._keys = jwt.PyJWKSet.from_dict(doc)
            except (jwt.PyJWKSetError, jwt.InvalidKeyError, TypeError, KeyError):
                raise RemoteProtocolError("the provider's JWKS holds no usable key") from None
        return self._keys

    async def login_url(self, flow: Flow) -> str:
        return authorization_url(await self.metadata(), self.client_id, self.redirect_uri, flow, self.scope)

    async def redeem(self, code: str, flow: Flow) -> Identity:
        """Exchange an authorization code for a verified identity."""
        meta = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": flow.code_verifier,
            "client_id": self.client_id,
        }
        try:
            async with self._http() as http:
                if self._secret:
                    auth = httpx.BasicAuth(self.client_id, self._secret)
                    resp = await http.post(meta.token_endpoint, data=form, auth=auth)
                else:
                    resp = await http.post(meta.token_endpoint, data=form)
        except httpx.HTTPError as exc:
            raise TransportError(
                f"cannot reach the identity provider's token endpoint ({type(exc).__name__})"
            ) from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200 or not isinstance(body, dict):
            error = body.get("error", f"HTTP {resp.status_code}") if isinstance(body, dict) else "unreadable"
            code_word = "replay" if error == "invalid_grant" else "provider"
            raise LoginRefused(
                f"the identity provider refused to complete the login ({error}); the link may have been used "
                "already or have expired — please log in again",
                code=code_word,
            )
        token = body.get("id_token")
        if not isinstance(token, str):
            raise RemoteProtocolError("the token endpoint returned no ID token")
        claims = await self.verify(token, flow)
        if self._userinfo:
            access = body.get("access_token")
            if not isinstance(access, str) or not meta.userinfo_endpoint:
                raise RemoteProtocolError("userinfo is configured but the provider gave no access token or endpoint")
            extra = await self._read_userinfo(meta.userinfo_endpoint, access)
            if extra.get("sub") != claims.get("sub"):
                raise LoginRefused("the userinfo answer is about another subject than the ID token", code="malformed")
            claims = {**extra, **claims}
        return identity_from_claims(self.translate(claims), flow.required_level)

    def translate(self, claims: Mapping[str, Any]) -> dict[str, Any]:
        """Rename the provider's claims (``claim_map``) and map its own ``acr`` values (``acr_map``)."""
        out = {self._claim_map.get(name, name): value for name, value in claims.items()}
        acr = out.get("acr")
        if isinstance(acr, str) and acr in self._acr_map:
            out["acr"] = self._acr_map[acr].uri
        return out

    async def _read_userinfo(self, url: str, access_token: str) -> dict[str, Any]:
        try:
            async with self._http() as http:
                resp = await http.get(url, headers={"Authorization": f"Bearer {access_token}"})
        except httpx.HTTPError as exc:
            raise TransportError(f"cannot reach the userinfo endpoint ({type(exc).__name__})") from None
        if resp.status_code != 200:
            raise TransportError(f"the userinfo endpoint answered HTTP {resp.status_code}")
        if not resp.headers.get("content-type", "").startswith("application/json"):
            raise RemoteProtocolError("only JSON userinfo answers are supported")
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise RemoteProtocolError("the userinfo answer is not a JSON object")
        return data

    async def verify(self, token: str, flow: Flow) -> dict[str, Any]:
        """The verified claims of an ID token for ``flow``."""
        keys = await self.keys()
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError:
            kid = None
        if kid is not None and all(k.key_id != kid for k in keys.keys):
            keys = await self.keys(refresh=True)
        return verify_id_token(
            token, keys, issuer=self.issuer, client_id=self.client_id, nonce=flow.nonce, now=self._clock()
        )
