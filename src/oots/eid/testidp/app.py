"""The test identity provider: an OpenID Provider and a SAML IdP over the same test identities.

``create_idp_app(IdpConfig(...))`` returns a Starlette application with

* ``/.well-known/openid-configuration``, ``/jwks``, ``/authorize``, ``/token``, ``/logout`` (OIDC,
  authorization code with PKCE S256, ID tokens signed RS256);
* ``/saml/metadata``, ``/saml/sso`` (SAML 2.0, eIDAS attributes, signed assertions);
* ``/login/{txn}``: the page where a tester picks a country, then a test citizen or company (or types
  an arbitrary person) and the level of assurance;
* ``/health``, and an empty ``/favicon.ico`` (no 404 in the browser).

With ``single_sign_on`` it keeps a session, as real identity providers do: a browser that logged in
is logged straight back in (at the level it chose, if that is enough) without the page — unless the
application asks for a new login with ``prompt=login`` (OIDC) or ``ForceAuthn="true"`` (SAML).
``prompt=none`` without a session goes back with ``login_required``; ``/logout`` ends the session.

It is a tool for local networks and tests: pending logins, codes and sessions live in this process's
memory, and without configured clients any client id is accepted (the redirect URI is then bound per code).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import jwt
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from oots import __version__
from oots.eid.attributes import identity_to_claims
from oots.eid.identity import Gender, Identity, LegalPerson, LevelOfAssurance, NaturalPerson, Subject
from oots.eid.oidc import pkce_challenge
from oots.eid.testidp.keys import SigningKey, load_or_create
from oots.eid.testidp.people import TestPeople, load_people
from oots.eid.testidp.saml_idp import PendingSamlLogin, SamlIdentityProvider
from oots.errors import ModelError, OotsError

__all__ = ["SERVICE_NAME", "IdpConfig", "create_idp_app"]

log = logging.getLogger("oots.eid.testidp")

#: What ``/health`` calls this service (``oots demo`` checks it is its own process that answers).
SERVICE_NAME = "oots test identity provider"

_LEVELS = list(LevelOfAssurance)

#: The cookie of the single sign-on session (``IdpConfig.single_sign_on``).
SSO_COOKIE = "oots_testidp_sso"


@dataclass(frozen=True)
class IdpConfig:
    """Settings of the test identity provider.

    ``issuer`` is its public base URL (``http://127.0.0.1:9000``). ``clients`` maps client ids to
    secrets; empty means any client id is accepted without a secret (a test network).
    """

    issuer: str
    data_dir: Path
    people_file: Path | None = None
    clients: dict[str, str] = field(default_factory=dict)
    key_file: Path | None = None
    cert_file: Path | None = None
    token_lifetime: int = 300
    code_lifetime: int = 60
    login_lifetime: int = 900
    sp_metadata_files: tuple[Path, ...] = ()
    fetch_sp_metadata: bool = True
    saml_lifetime_minutes: float = 5
    #: False: the ID token carries only protocol claims and acr; the identity is at /userinfo only.
    claims_in_id_token: bool = True
    #: Keep a session (a cookie) and log a browser that logged in straight back in, unless asked not to.
    single_sign_on: bool = False
    #: How long a single sign-on session lasts, in seconds.
    session_lifetime: int = 3600


@dataclass
class _Pending:
    """One login waiting for the tester's choice (OIDC or SAML)."""

    created: float
    oidc: dict[str, str] | None = None
    saml: PendingSamlLogin | None = None


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    identity: Identity
    expires: float
    used: bool = False


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[str, _Pending] = {}
        self.codes: dict[str, _Code] = {}
        self.tokens: dict[str, tuple[dict[str, Any], float]] = {}
        #: Single sign-on sessions: the cookie's value, the identity logged in, when the session ends.
        self.sessions: dict[str, tuple[Identity, float]] = {}

    def sweep(self, now: float, login_lifetime: int) -> None:
        self.pending = {k: v for k, v in self.pending.items() if v.created + login_lifetime > now}
        self.codes = {k: v for k, v in self.codes.items() if v.expires + 600 > now}
        self.tokens = {k: v for k, v in self.tokens.items() if v[1] > now}
        self.sessions = {k: v for k, v in self.sessions.items() if v[1] > now}


def _fetch_metadata(url: str) -> str:
    resp = httpx.get(url, timeout=10.0, follow_redirects=False)
    resp.raise_for_status()
    return resp.text


def create_idp_app(config: IdpConfig, *, clock: Callable[[], float] = time.time) -> Starlette:
    """The test identity provider as an ASGI application."""
    issuer = config.issuer.rstrip("/")
    key: SigningKey = load_or_create(config.data_dir, config.key_file, config.cert_file)
    people: TestPeople = load_people(config.people_file)
    saml = SamlIdentityProvider(
        issuer + "/saml/metadata",
        issuer + "/saml/sso",
        key,
        sp_metadata=[p.read_text(encoding="utf-8") for p in config.sp_metadata_files],
        fetch=_fetch_metadata if config.fetch_sp_metadata else None,
        lifetime_minutes=config.saml_lifetime_minutes,
    )
    state = _State()
    env = Environment(
        loader=PackageLoader("oots.eid.testidp", "templates"), autoescape=select_autoescape(), auto_reload=False
    )

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**context), status_code=status)

    def error_page(message: str, status: int = 400) -> HTMLResponse:
        error_id = secrets.token_hex(6)
        log.info("test idp refused a request: error id %s (HTTP %d)", error_id, status)
        return page("error.html", status, message=message, error_id=error_id)

    # --- OpenID Connect ---------------------------------------------------------------------------

    async def discovery(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "issuer": issuer,
                "authorization_endpoint": issuer + "/authorize",
                "token_endpoint": issuer + "/token",
                "jwks_uri": issuer + "/jwks",
                "end_session_endpoint": issuer + "/logout",
                "userinfo_endpoint": issuer + "/userinfo",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
                "scopes_supported": ["openid", "profile"],
                "acr_values_supported": [lv.uri for lv in _LEVELS],
                "claims_supported": [
                    "sub",
                    "acr",
                    "person_identifier",
                    "family_name",
                    "given_name",
                    "birthdate",
                    "birth_name",
                    "place_of_birth",
                    "address",
                    "gender",
                    "legal_person_identifier",
                    "legal_name",
                    "representative",
                ],
            }
        )

    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse({"keys": [key.jwk()]})

    async def authorize(request: Request) -> Response:
        q = request.query_params
        client_id = q.get("client_id", "")
        redirect_uri = q.get("redirect_uri", "")
        if not client_id or (config.clients and client_id not in config.clients):
            return error_page("The application asking for a login is not known to this identity provider.")
        if urlsplit(redirect_uri).scheme not in ("http", "https") or not urlsplit(redirect_uri).netloc:
            return error_page("The application gave no valid address to return to.")

        def back(error: str, description: str) -> RedirectResponse:
            query = {"error": error, "error_description": description}
            if q.get("state"):
                query["state"] = q["state"]
            return RedirectResponse(redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(query), 303)

        if q.get("response_type") != "code":
            return back("unsupported_response_type", "only the authorization code flow is supported")
        if "openid" not in q.get("scope", "").split():
            return back("invalid_scope", "the scope must include openid")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return back("invalid_request", "PKCE with S256 is required")
        if not q.get("state") or not q.get("nonce"):
            return back("invalid_request", "state and nonce are required")
        prompt = set(q.get("prompt", "").split())
        if "none" in prompt and len(prompt) > 1:
            return back("invalid_request", "prompt=none cannot be combined with another value")
        txn = secrets.token_urlsafe(18)
        wanted = [lv for lv in _LEVELS if lv.uri in q.get("acr_values", "").split()]
        oidc = {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": q["state"],
            "nonce": q["nonce"],
            "challenge": q["code_challenge"],
            "min_level": min(wanted, key=lambda lv: lv.rank).value if wanted else "",
        }
        item = _Pending(clock(), oidc=oidc)
        known = None if "login" in prompt else session_for(request, item)
        if known is not None:
            return await answer(item, known)
        if "none" in prompt:
            return back("login_required", "the user is not logged in at this identity provider")
        with state.lock:
            state.sweep(clock(), config.login_lifetime)
            state.pending[txn] = item
        return RedirectResponse(f"/login/{txn}", 303)

    async def token(request: Request) -> JSONResponse:
        form = await request.form()

        def fail(error: str, description: str, status: int = 400) -> JSONResponse:
            return JSONResponse({"error": error, "error_description": description}, status_code=status)

        client_id, secret = str(form.get("client_id") or ""), str(form.get("client_secret") or "")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                return fail("invalid_client", "unreadable client credentials", 401)
        if config.clients and (
            client_id not in config.clients or not secrets.compare_digest(config.clients[client_id], secret)
        ):
            return fail("invalid_client", "unknown client or wrong secret", 401)
        if form.get("grant_type") != "authorization_code":
            return fail("unsupported_grant_type", "only authorization_code is supported")
        code = str(form.get("code") or "")
        now = clock()
        with state.lock:
            entry = state.codes.get(code)
            if entry is None or entry.used or entry.expires < now:
                return fail("invalid_grant", "the code is unknown, expired or already used")
            entry.used = True
        if entry.client_id != client_id:
            return fail("invalid_grant", "the code was issued to another client")
        if entry.redirect_uri != form.get("redirect_uri"):
            return fail("invalid_grant", "redirect_uri differs from the authorization request")
        verifier = str(form.get("code_verifier") or "")
        if not verifier or not secrets.compare_digest(pkce_challenge(verifier), entry.challenge):
            return fail("invalid_grant", "the PKCE code verifier does not match")
        identity_claims = identity_to_claims(entry.identity)
        sub = hashlib.sha256(f"{client_id}|{entry.identity.subject.identifier}".encode()).hexdigest()[:32]
        access_token = secrets.token_urlsafe(32)
        with state.lock:
            state.sweep(now, config.login_lifetime)
            state.tokens[access_token] = ({**identity_claims, "sub": sub}, now + config.token_lifetime)
        claims = identity_claims if config.claims_in_id_token else {"acr": identity_claims["acr"]}
        claims.update(
            {
                "iss": issuer,
                "sub": sub,
                "aud": client_id,
                "iat": int(now),
                "exp": int(now) + config.token_lifetime,
                "auth_time": int(entry.identity.authenticated_at.timestamp()),
                "nonce": entry.nonce,
            }
        )
        id_token = jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": config.token_lifetime,
                "id_token": id_token,
            },
            headers={"Cache-Control": "no-store"},
        )

    async def userinfo(request: Request) -> JSONResponse:
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        with state.lock:
            entry = state.tokens.get(token)
        if entry is None or entry[1] < clock():
            return JSONResponse(
                {"error": "invalid_token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return JSONResponse(entry[0], headers={"Cache-Control": "no-store"})

    async def logout(request: Request) -> Response:
        with state.lock:
            state.sessions.pop(request.cookies.get(SSO_COOKIE, ""), None)
        target = request.query_params.get("post_logout_redirect_uri")
        response: Response = page("logged_out.html")
        if target:
            with state.lock:
                hosts = {urlsplit(c.redirect_uri)[:2] for c in state.codes.values()}
            if urlsplit(target)[:2] in hosts:
                response = RedirectResponse(target, 303)
        response.delete_cookie(SSO_COOKIE)
        return response

    # --- SAML ---------------------------------------------------------------------------------------

    async def saml_metadata(request: Request) -> Response:
        return Response(await run_in_threadpool(saml.metadata_xml), media_type="application/samlmetadata+xml")

    async def saml_sso(request: Request) -> Response:
        if request.method == "POST":
            form = await request.form()
            raw, relay = form.get("SAMLRequest"), form.get("RelayState")
        else:
            raw, relay = request.query_params.get("SAMLRequest"), request.query_params.get("RelayState")
        if not isinstance(raw, str) or not raw:
            return error_page("No SAML authentication request was received.")
        try:
            pending = await run_in_threadpool(saml.parse_request, raw, relay if isinstance(relay, str) else None)
        except OotsError as exc:
            return error_page(f"The SAML authentication request was refused: {exc.message}")
        except httpx.HTTPError:
            return error_page("The service provider's metadata could not be fetched.")
        item = _Pending(clock(), saml=pending)
        known = None if pending.force_authn else session_for(request, item)
        if known is not None:
            return await answer(item, known)
        txn = secrets.token_urlsafe(18)
        with state.lock:
            state.sweep(clock(), config.login_lifetime)
            state.pending[txn] = item
        return RedirectResponse(f"/login/{txn}", 303)

    # --- the tester's page --------------------------------------------------------------------------

    def pending_for(txn: str) -> _Pending | None:
        with state.lock:
            item = state.pending.get(txn)
        if item is None or item.created + config.login_lifetime < clock():
            return None
        return item

    def min_level(item: _Pending) -> LevelOfAssurance | None:
        if item.oidc is not None and item.oidc["min_level"]:
            return LevelOfAssurance(item.oidc["min_level"])
        if item.saml is not None:
            return item.saml.requested_level
        return None

    def session_for(request: Request, item: _Pending) -> Identity | None:
        """The identity of this browser's single sign-on session, if it has one good enough for ``item``."""
        if not config.single_sign_on:
            return None
        with state.lock:
            found = state.sessions.get(request.cookies.get(SSO_COOKIE, ""))
        if found is None or found[1] < clock():
            return None
        identity, wanted = found[0], min_level(item)
        if wanted is not None and not identity.level.satisfies(wanted):
            return None  # a higher level is asked for: the user logs in again
        protocol = "saml" if item.saml else "oidc"
        return identity if identity.protocol == protocol else dataclasses.replace(identity, protocol=protocol)

    async def login_page(request: Request) -> Response:
        txn = request.path_params["txn"]
        item = pending_for(txn)
        if item is None:
            return error_page("This login has expired or is unknown. Please start again from the application.", 404)
        if request.method == "POST":
            return await finish(request, txn, item)
        code = request.query_params.get("country", "")
        country = people.country(code)
        wanted = min_level(item)
        return page(
            "login.html",
            txn=txn,
            countries=people.countries,
            country=country,
            levels=_LEVELS,
            wanted=wanted,
            protocol="SAML" if item.saml else "OpenID Connect",
            genders=list(Gender),
        )

    def custom_person(form: Any) -> NaturalPerson:
        def text(name: str) -> str | None:
            value = str(form.get(name) or "").strip()
            return value or None

        try:
            return NaturalPerson(
                person_identifier=text("person_identifier") or "",
                family_name=text("family_name") or "",
                given_name=text("given_name") or "",
                date_of_birth=dt.date.fromisoformat(text("date_of_birth") or ""),
                birth_name=text("birth_name"),
                place_of_birth=text("place_of_birth"),
                gender=Gender.parse(text("gender") or "") if text("gender") else None,
            )
        except ValueError:
            raise ModelError("the date of birth must be a date (YYYY-MM-DD)") from None

    async def finish(request: Request, txn: str, item: _Pending) -> Response:
        form = await request.form()
        try:
            level = LevelOfAssurance.parse(str(form.get("level") or ""))
        except OotsError:
            return error_page("Please choose a level of assurance.")
        subject: Subject
        representative: Subject | None = None
        if form.get("custom"):
            try:
                subject = custom_person(form)
                legal_name = str(form.get("legal_name") or "").strip()
                legal_id = str(form.get("legal_person_identifier") or "").strip()
                if legal_name or legal_id:  # the typed person logs in for a company
                    subject, representative = LegalPerson(legal_id, legal_name), subject
            except OotsError as exc:
                return error_page(f"The person you typed cannot be used: {exc.message}")
        else:
            chosen = people.find(str(form.get("subject") or ""))
            if chosen is None:
                return error_page("Please choose a test person or company.")
            subject, representative = chosen.subject, chosen.representative
        with state.lock:
            if state.pending.pop(txn, None) is None:
                return error_page("This login was already completed. Please start again from the application.")
        now = clock()
        identity = Identity(
            subject=subject,
            representative=representative,
            level=level,
            issuer=issuer,
            protocol="saml" if item.saml else "oidc",
            authenticated_at=dt.datetime.fromtimestamp(int(now), dt.UTC),
        )
        response = await answer(item, identity)
        if config.single_sign_on:
            session = secrets.token_urlsafe(24)
            with state.lock:
                state.sessions.pop(request.cookies.get(SSO_COOKIE, ""), None)  # the one it replaces
                state.sessions[session] = (identity, now + config.session_lifetime)
            secure = issuer.startswith("https://")
            response.set_cookie(
                SSO_COOKIE, session, max_age=config.session_lifetime, httponly=True, samesite="lax", secure=secure
            )
        return response

    async def answer(item: _Pending, identity: Identity) -> Response:
        """The login's answer to the application: a code on the redirect (OIDC) or the SAML response form."""
        now = clock()
        if item.oidc is not None:
            code = secrets.token_urlsafe(32)
            with state.lock:
                state.codes[code] = _Code(
                    client_id=item.oidc["client_id"],
                    redirect_uri=item.oidc["redirect_uri"],
                    challenge=item.oidc["challenge"],
                    nonce=item.oidc["nonce"],
                    identity=identity,
                    expires=now + config.code_lifetime,
                )
            target = item.oidc["redirect_uri"]
            query = urlencode({"code": code, "state": item.oidc["state"]})
            return RedirectResponse(target + ("&" if "?" in target else "?") + query, 303)
        assert item.saml is not None
        response = await run_in_threadpool(
            partial(saml.respond, authenticated_at=identity.authenticated_at),
            item.saml,
            identity.subject,
            identity.representative,
            identity.level,
        )
        return page("post.html", action=item.saml.acs_url, saml_response=response, relay_state=item.saml.relay_state)

    async def home(request: Request) -> HTMLResponse:
        return page("home.html", issuer=issuer, countries=people.countries)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "service": SERVICE_NAME, "version": __version__})

    async def no_icon(request: Request) -> Response:
        # no icon, but no 404 in the browser's console on every page either (cached for a day)
        return Response(status_code=204, headers={"cache-control": "public, max-age=86400"})

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/health", health),
            Route("/favicon.ico", no_icon),
            Route("/.well-known/openid-configuration", discovery),
            Route("/jwks", jwks),
            Route("/authorize", authorize),
            Route("/token", token, methods=["POST"]),
            Route("/userinfo", userinfo),
            Route("/logout", logout),
            Route("/saml/metadata", saml_metadata),
            Route("/saml/sso", saml_sso, methods=["GET", "POST"]),
            Route("/login/{txn}", login_page, methods=["GET", "POST"]),
        ]
    )
    app.state.idp_key = key
    app.state.saml_idp = saml
    return app
