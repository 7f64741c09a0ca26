"""eID login for any Starlette or FastAPI application of a node: routes, cookies, a dependency.

::

    login = EidLogin(settings.eid, base_url=settings.node.base_url)
    app = Starlette(routes=[login.mount(), Route("/", home)])        # or FastAPI: app.mount(...)

    async def home(request):
        identity = login.require(request)            # the Identity, or a redirect to the login
        ...

    @api.get("/me")                                  # FastAPI
    def me(identity: Identity = Depends(login.dependency(LevelOfAssurance.HIGH))): ...

Routes under the prefix (``/eid`` by default): ``login`` (``?next=/path&level=high&method=saml``;
``&again=1`` makes the identity provider ask again even if it has a session: ``prompt=login`` in OIDC,
``ForceAuthn="true"`` in SAML, and a login it did not make after the request is refused),
``callback`` (OIDC), ``saml/acs`` and ``saml/metadata`` (SAML), ``logout``. The login in progress
(state, nonce, PKCE verifier or SAML request id, where to return, the level required) is sealed in a
short-lived encrypted cookie bound to that flow; the logged-in identity in another one. A level below
the required one is refused with a plain page; nothing personal is logged or put in a URL.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import httpx
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from oots.eid.errors import AssuranceTooLow, LoginRefused
from oots.eid.identity import Identity, LevelOfAssurance
from oots.eid.oidc import Flow, OidcClient, new_flow
from oots.eid.replay import MemoryReplayCache, ReplayCache
from oots.eid.session import Sealer, identity_from_json, identity_to_json
from oots.errors import ConfigError, OotsError, TransportError
from oots.settings import EidSettings, Settings

if TYPE_CHECKING:
    # pysaml2 (tens of MB, most of a second to import) only on a node's first SAML login
    from oots.eid.saml import SamlServiceProvider
    from oots.store import Database

__all__ = ["FLOW_COOKIE", "SESSION_COOKIE", "SESSION_KEY_FILE", "EidLogin", "safe_next"]

log = logging.getLogger("oots.eid")

FLOW_COOKIE = "oots_eid_flow"
SESSION_COOKIE = "oots_eid_session"
#: In the node's data directory: the login cookies' key when ``eid.session_secret`` is not set.
SESSION_KEY_FILE = "eid-session.key"


def safe_next(value: str | None) -> str:
    """A local path to return to after login; anything else (other hosts, schemes) becomes ``/``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


class EidLogin:
    """The mountable login component of one web application."""

    @classmethod
    def for_node(
        cls, settings: Settings, database: Database, *, eid: EidSettings | None = None, **options: Any
    ) -> EidLogin:
        """The login of a node's web application: used SAML assertions remembered in the node's database
        and, without ``eid.session_secret``, a cookie key generated once into the data directory (at the
        first request that needs it, not here), so that every process serving the node accepts the
        others' logins and refuses their replays."""
        from oots.eid.replay import DatabaseReplayCache

        return cls(
            eid or settings.eid,
            settings.node.base_url,
            replay_cache=DatabaseReplayCache(database),
            secret_file=settings.node.data_dir / SESSION_KEY_FILE,
            **options,
        )

    def __init__(
        self,
        settings: EidSettings,
        base_url: str,
        *,
        prefix: str = "/eid",
        oidc_transport: httpx.AsyncBaseTransport | None = None,
        saml_idp_metadata: str | None = None,
        replay_cache: ReplayCache | None = None,
        clock: Callable[[], float] = time.time,
        cookie_suffix: str = "",
        session_path: str = "/",
        secret_file: Path | None = None,
    ) -> None:
        self.settings = settings
        self.base_url = base_url.rstrip("/")
        self.prefix = "/" + prefix.strip("/")
        #: Cookie names (a suffix keeps apart the logins of several applications on one host).
        self.flow_cookie = FLOW_COOKIE + cookie_suffix
        self.session_cookie = SESSION_COOKIE + cookie_suffix
        self.session_path = session_path
        self.required_level = LevelOfAssurance(settings.required_level)
        self._clock = clock
        configured = settings.session_secret.get_secret_value().encode() if settings.session_secret else None
        #: Where the key is generated once for the node, when none is configured; read (or written) at the
        #: first request that needs it, never while the application is built.
        self._secret_file = None if configured else secret_file
        self._sealers_lock = threading.Lock()
        self._sealers: tuple[Sealer, Sealer] | None = None
        if self._secret_file is None:
            self._sealers = self._make_sealers(configured or secrets.token_bytes(32))
        self._secure = self.base_url.startswith("https://")
        self._oidc: OidcClient | None = None
        if settings.issuer:
            if not settings.client_id:
                raise ConfigError("eid.client_id is needed when eid.issuer is set")
            self._oidc = OidcClient(
                settings.issuer,
                settings.client_id,
                settings.client_secret.get_secret_value() if settings.client_secret else None,
                settings.redirect_url or f"{self.base_url}{self.prefix}/callback",
                transport=oidc_transport,
                clock=clock,
                scope=settings.scope,
                userinfo=settings.userinfo,
                claim_map=settings.claim_map,
                acr_map=settings.acr_map,
            )
        self._saml_source = saml_idp_metadata or settings.saml_idp_metadata
        self._saml: SamlServiceProvider | None = None
        self._replay = replay_cache or MemoryReplayCache(clock)
        if not self._oidc and not self._saml_source:
            raise ConfigError("eid: set eid.issuer (OpenID Connect) or eid.saml_idp_metadata (SAML) to enable logins")
        self._env = Environment(
            loader=PackageLoader("oots.eid", "templates"), autoescape=select_autoescape(), auto_reload=False
        )

    # --- public helpers -----------------------------------------------------------------------------

    @property
    def methods(self) -> list[str]:
        return [m for m, on in (("oidc", self._oidc is not None), ("saml", bool(self._saml_source))) if on]

    def login_url(
        self,
        next_path: str = "/",
        level: LevelOfAssurance | None = None,
        method: str | None = None,
        *,
        again: bool = False,
    ) -> str:
        """The address of the login; ``again``: the identity provider must ask the user again, even if it
        still has a session (someone else is to log in, or the same person to prove it is them now)."""
        query = {"next": safe_next(next_path)}
        if level is not None:
            query["level"] = level.value
        if method is not None:
            query["method"] = method
        if again:
            query["again"] = "1"
        return f"{self.prefix}/login?{urlencode(query)}"

    def current_identity(self, request: Request) -> Identity | None:
        """The identity of the logged-in user, or None."""
        data = self._session_sealer.open(request.cookies.get(self.session_cookie), self.settings.session_minutes * 60)
        if not isinstance(data, dict):
            return None
        try:
            return identity_from_json(data)
        except (KeyError, TypeError, ValueError, OotsError):
            return None

    def forget(self, response: Response) -> None:
        """End the login session here (its cookie is deleted on ``response``); a next login asks again.
        The identity provider's own session, if it keeps one, is not touched."""
        response.delete_cookie(self.session_cookie, path=self.session_path)

    def require(self, request: Request, level: LevelOfAssurance | None = None) -> Identity:
        """The identity at ``level`` or above; otherwise raise a redirect (HTTP 303) to the login."""
        needed = self._needed(level)
        identity = self.current_identity(request)
        if identity is not None and identity.level.satisfies(needed):
            return identity
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, headers={"Location": self.login_url(target, needed)})

    def dependency(self, level: LevelOfAssurance | None = None) -> Callable[[Request], Identity]:
        """A FastAPI dependency returning the identity (redirecting to the login when there is none)."""

        def current(request: Request) -> Identity:
            return self.require(request, level)

        return current

    def mount(self) -> Mount:
        return Mount(
            self.prefix,
            routes=[
                Route("/login", self._login, methods=["GET"]),
                Route("/callback", self._callback, methods=["GET"]),
                Route("/saml/acs", self._saml_acs, methods=["POST"]),
                Route("/saml/metadata", self._saml_metadata, methods=["GET"]),
                Route("/logout", self._logout, methods=["GET", "POST"]),
                Route("/logged-out", self._logged_out, methods=["GET"]),
            ],
        )

    async def ready(self) -> None:
        """Load the cookies' key, in a worker thread when it is still to be read from (or generated into)
        the data directory; otherwise the first sealing or opening of a cookie does it, in the caller's thread."""
        if self._sealers is None:
            await run_in_threadpool(self._sealers_now)

    # --- internals ----------------------------------------------------------------------------------

    def _make_sealers(self, secret: bytes) -> tuple[Sealer, Sealer]:
        return Sealer(secret, "oots.eid.flow", clock=self._clock), Sealer(secret, "oots.eid.session", clock=self._clock)

    def _sealers_now(self) -> tuple[Sealer, Sealer]:
        """The flow and session cookies' sealers; the key file is read, or generated once for the node
        (every process of it, started together or later, reads the same one, so a login begun on one
        process can end on another), at the first call, under a lock."""
        sealers = self._sealers
        if sealers is None:
            with self._sealers_lock:
                if self._sealers is None:
                    from oots.store.files import write_once

                    assert self._secret_file is not None
                    secret = write_once(self._secret_file, secrets.token_hex(32)).strip().encode()
                    self._sealers = self._make_sealers(secret)
                sealers = self._sealers
        return sealers

    @property
    def _flow_sealer(self) -> Sealer:
        return self._sealers_now()[0]

    @property
    def _session_sealer(self) -> Sealer:
        return self._sealers_now()[1]

    def _needed(self, level: LevelOfAssurance | None) -> LevelOfAssurance:
        if level is None or not level.satisfies(self.required_level):
            return self.required_level
        return level

    def _page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self._env.get_template(name).render(prefix=self.prefix, **context)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def _refused(self, exc: OotsError, next_path: str = "/") -> HTMLResponse:
        code = getattr(exc, "code", None) or type(exc).__name__
        log.warning("eid login refused: %s (error id %s)", code, exc.error_id)
        status = 403 if isinstance(exc, AssuranceTooLow) else 400 if isinstance(exc, LoginRefused) else 502
        response = self._page(
            "refused.html", status, message=exc.message, error_id=exc.error_id, retry=self.login_url(next_path)
        )
        response.delete_cookie(self.flow_cookie, path=self.prefix)
        return response

    def _check_fresh(self, identity: Identity, asked_at: float) -> None:
        """A login asked for again (``again=1``) must be one the identity provider made after it was asked
        (a provider that ignores ``prompt=login`` or ``ForceAuthn`` sends its earlier login back)."""
        if identity.authenticated_at.timestamp() < asked_at - self.settings.clock_skew_seconds:
            raise LoginRefused(
                "The identity provider sent back an earlier login instead of asking you to log in again. "
                "Log out at the identity provider, then try again.",
                code="not_fresh",
            )

    def _set_flow(self, response: Response, value: dict[str, Any]) -> None:
        response.set_cookie(
            self.flow_cookie,
            self._flow_sealer.seal(value),
            max_age=self.settings.login_minutes * 60,
            path=self.prefix,
            httponly=True,
            secure=self._secure,
            samesite="lax",
        )

    def _open_flow(self, request: Request) -> dict[str, Any] | None:
        data = self._flow_sealer.open(request.cookies.get(self.flow_cookie), self.settings.login_minutes * 60)
        return data if isinstance(data, dict) else None

    def _start_session(self, identity: Identity, next_path: str) -> Response:
        log.info(
            "eid login: %s via %s at level %s",
            "natural person" if identity.is_natural_person else "legal person",
            identity.protocol,
            identity.level.value,
        )
        response = RedirectResponse(safe_next(next_path), 303)
        response.delete_cookie(self.flow_cookie, path=self.prefix)
        response.set_cookie(
            self.session_cookie,
            self._session_sealer.seal(identity_to_json(identity)),
            max_age=self.settings.session_minutes * 60,
            path=self.session_path,
            httponly=True,
            secure=self._secure,
            samesite="lax",
        )
        return response

    async def _saml_sp(self) -> SamlServiceProvider:
        if self._saml is None:
            source = self._saml_source
            if source.startswith(("http://", "https://")):
                try:
                    async with httpx.AsyncClient(timeout=10.0) as http:
                        resp = await http.get(source)
                except httpx.HTTPError as exc:
                    raise TransportError(
                        f"cannot fetch the SAML identity provider metadata ({type(exc).__name__})"
                    ) from None
                if resp.status_code != 200:
                    raise TransportError(f"the SAML identity provider metadata answered HTTP {resp.status_code}")
                xml = resp.text
            elif source.lstrip().startswith("<"):
                xml = source
            else:
                try:
                    xml = Path(source).read_text(encoding="utf-8")
                except OSError as exc:
                    raise ConfigError(f"cannot read eid.saml_idp_metadata {source}: {exc.strerror}") from None
            from oots.eid.saml import SamlServiceProvider

            s = self.settings
            self._saml = await run_in_threadpool(
                SamlServiceProvider,
                s.saml_entity_id or f"{self.base_url}{self.prefix}/saml/metadata",
                f"{self.base_url}{self.prefix}/saml/acs",
                xml,
                key_file=s.saml_key_file,
                cert_file=s.saml_cert_file,
                idp_metadata_cert=s.saml_idp_metadata_cert,
                replay_cache=self._replay,
                clock=self._clock,
                accepted_time_diff=s.clock_skew_seconds,
            )
        return self._saml

    # --- routes -------------------------------------------------------------------------------------

    async def _login(self, request: Request) -> Response:
        await self.ready()
        q = request.query_params
        next_path = safe_next(q.get("next"))
        try:
            wanted = LevelOfAssurance.parse(q["level"]) if q.get("level") else None
        except OotsError:
            wanted = None
        level = self._needed(wanted)
        again = q.get("again") == "1"
        method = q.get("method") or (self.methods[0] if len(self.methods) == 1 else None)
        if method not in self.methods:
            choices = [(m, self.login_url(next_path, level, m, again=again)) for m in self.methods]
            return self._page("choose.html", choices=choices, level=level)
        try:
            if method == "oidc":
                assert self._oidc is not None
                flow = new_flow(next_path, level, self._clock(), force_login=again)
                url = await self._oidc.login_url(flow)
                response = RedirectResponse(url, 303)
                self._set_flow(response, {"method": "oidc", **flow.to_dict()})
                return response
            sp = await self._saml_sp()
            relay = secrets.token_urlsafe(16)
            login = await run_in_threadpool(partial(sp.start, force_authn=again), level, relay)
            response = RedirectResponse(login.redirect_url, 303)
            self._set_flow(
                response,
                {
                    "method": "saml",
                    "request_id": login.request_id,
                    "relay": relay,
                    "return_to": next_path,
                    "required_level": level.value,
                    "force_authn": again,
                    "started_at": self._clock(),
                },
            )
            return response
        except OotsError as exc:
            return self._refused(exc, next_path)

    async def _callback(self, request: Request) -> Response:
        await self.ready()
        q = request.query_params
        data = self._open_flow(request)
        if data is None or data.get("method") != "oidc":
            return self._refused(
                LoginRefused("This login has expired or was already completed. Please log in again.", code="state")
            )
        flow = Flow.from_dict(data)
        if not secrets.compare_digest(q.get("state", ""), flow.state):
            return self._refused(LoginRefused("The answer does not belong to this login (state).", code="state"))
        if q.get("error"):
            return self._refused(
                LoginRefused(f"The identity provider did not log you in ({q['error'][:64]}).", code="provider"),
                flow.return_to,
            )
        try:
            assert self._oidc is not None
            identity = await self._oidc.redeem(q.get("code", ""), flow)
            if flow.force_login:
                self._check_fresh(identity, flow.started_at)
        except OotsError as exc:
            return self._refused(exc, flow.return_to)
        return self._start_session(identity, flow.return_to)

    async def _saml_acs(self, request: Request) -> Response:
        await self.ready()
        form = await request.form()
        saml_response, relay = form.get("SAMLResponse"), form.get("RelayState")
        if not isinstance(saml_response, str):
            return self._refused(LoginRefused("No SAML response was received.", code="malformed"))
        data = self._open_flow(request)
        if data is None and not form.get("_resent"):
            # A cross-site POST does not carry our SameSite=Lax flow cookie: post once more, from our own page.
            return self._page(
                "repost.html",
                action=f"{self.prefix}/saml/acs",
                saml_response=saml_response,
                relay_state=relay if isinstance(relay, str) else "",
            )
        if data is None or data.get("method") != "saml":
            return self._refused(
                LoginRefused("This login has expired or was already completed. Please log in again.", code="state")
            )
        if not isinstance(relay, str) or not secrets.compare_digest(relay, str(data.get("relay", ""))):
            return self._refused(LoginRefused("The answer does not belong to this login (RelayState).", code="state"))
        next_path = safe_next(str(data.get("return_to", "/")))
        try:
            sp = await self._saml_sp()
            level = LevelOfAssurance(str(data.get("required_level")))
            identity = await run_in_threadpool(sp.consume, saml_response, str(data.get("request_id")), level)
            if data.get("force_authn"):
                self._check_fresh(identity, float(data.get("started_at", 0)))
        except OotsError as exc:
            return self._refused(exc, next_path)
        except ValueError:
            return self._refused(LoginRefused("The login state is damaged. Please log in again.", code="state"))
        return self._start_session(identity, next_path)

    async def _saml_metadata(self, request: Request) -> Response:
        if not self._saml_source:
            return Response("SAML login is not configured", status_code=404, media_type="text/plain")
        try:
            sp = await self._saml_sp()
        except OotsError as exc:
            return self._refused(exc)
        return Response(await run_in_threadpool(sp.metadata_xml), media_type="application/samlmetadata+xml")

    async def _logout(self, request: Request) -> Response:
        await self.ready()
        identity = self.current_identity(request)
        target = f"{self.prefix}/logged-out"
        if identity is not None and identity.protocol == "oidc" and self._oidc is not None:
            try:
                meta = await self._oidc.metadata()
            except OotsError:
                meta = None
            if meta is not None and meta.end_session_endpoint:
                query = urlencode(
                    {"client_id": self._oidc.client_id, "post_logout_redirect_uri": self.base_url + target}
                )
                sep = "&" if "?" in meta.end_session_endpoint else "?"
                target = meta.end_session_endpoint + sep + query
        response = RedirectResponse(target, 303)
        response.delete_cookie(self.session_cookie, path=self.session_path)
        response.delete_cookie(self.flow_cookie, path=self.prefix)
        return response

    async def _logged_out(self, request: Request) -> Response:
        return self._page("logged_out.html")
