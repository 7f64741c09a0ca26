"""The node's admin area at ``/admin``: exchanges, messages, the queue, the audit journal, partners.

Login with the password whose hash ``[admin] password_hash`` holds (``oots admin hash-password``), or
with eID through the node's relying party (``[eid]``) for the person identifiers listed in
``[admin] eid_admins`` at ``[admin] eid_level`` (``eid_login = true``); with neither the area is off.
The session is a signed, HttpOnly, ``SameSite=Strict`` cookie limited to ``/admin`` carrying a random
session id; the node's database keeps the session (:class:`AdminSessions`), which expires after
``session_minutes`` and which logging out revokes, so a copied cookie opens nothing afterwards. Every
form that changes something (requeue, discard, logout) carries a token bound to the session. Logging
out of an eID session also ends the eID login. Wrong passwords are counted per client in the database too
(:class:`LoginThrottle`), so the limit holds across the node's processes and restarts. Pages show
ids, states and dates — never personal data (the journal's search by person uses the keyed hash of
the identifier).

Every answer carries :data:`SECURITY_HEADERS`; forms are at most :data:`FORM_LIMIT` bytes of
``application/x-www-form-urlencoded`` (413, 415), a form posted from another site is refused (403),
and an unexpected failure is a page with an error id that the log has too. The cookie key is derived
from the journal's seal key (at the first request that needs it: building the routes writes no file),
so the node's processes share sessions without another secret.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import html
import logging
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from itsdangerous import BadSignature, TimestampSigner
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Receive, Scope, Send

from oots.as4.certificates import OwnCertificate, own_certificates, partner_end, standing, subject_name
from oots.as4.domibus_mode import DomibusAccessPoint
from oots.eid.errors import LoginRefused
from oots.eid.identity import Identity, LevelOfAssurance, NaturalPerson
from oots.eid.web import SESSION_KEY_FILE, EidLogin
from oots.errors import ConfigError, NotFound
from oots.node.admin_state import FAILURE_WINDOW, FAILURES_ALLOWED, FIRST_PAUSE, AdminSessions, LoginThrottle
from oots.node.gateway import As4Gateway
from oots.node.roles import NodeContext, unavailable
from oots.settings import Settings
from oots.store import queue
from oots.store.database import load_models
from oots.store.files import write_once
from oots.threads import run_in_thread

__all__ = [
    "FAILURES_ALLOWED",
    "FAILURE_WINDOW",
    "FIRST_PAUSE",
    "FORM_LIMIT",
    "MIN_PASSWORD_LENGTH",
    "SECURITY_HEADERS",
    "AdminSessions",
    "LoginThrottle",
    "admin_identifier",
    "admin_routes",
    "check_settings",
    "hash_password",
    "node_eid_login",
    "verify_password",
]

_ALGORITHM = "pbkdf2_sha256"
DEFAULT_ITERATIONS = 600_000
#: The shortest admin password :func:`hash_password` takes.
MIN_PASSWORD_LENGTH = 12
COOKIE = "oots_admin"
#: Session kinds (``admin_sessions.kind``): how the admin logged in.
PASSWORD_SESSION, EID_SESSION = "password", "eid"

log = logging.getLogger(__name__)


def hash_password(password: str, *, iterations: int = DEFAULT_ITERATIONS) -> str:
    """``pbkdf2_sha256$<iterations>$<salt>$<hash>`` (base64) for ``[admin] password_hash``; a password of
    fewer than :data:`MIN_PASSWORD_LENGTH` characters is refused."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(
            f"the admin password is too short: use at least {MIN_PASSWORD_LENGTH} characters "
            "(several words are easy to remember and hard to guess)"
        )
    salt = secrets.token_bytes(16)
    derived = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return "$".join((_ALGORITHM, str(iterations), base64.b64encode(salt).decode(), base64.b64encode(derived).decode()))


def _parse_hash(encoded: str) -> tuple[int, bytes, bytes]:
    try:
        algorithm, iterations, salt, derived = encoded.split("$")
        if algorithm != _ALGORITHM:
            raise ValueError(algorithm)
        return int(iterations), base64.b64decode(salt, validate=True), base64.b64decode(derived, validate=True)
    except ValueError:
        raise ConfigError(
            "admin.password_hash is not a hash made by `oots admin hash-password`",
            [
                (
                    "admin.password_hash",
                    "not a hash made by `oots admin hash-password` (pbkdf2_sha256$<iterations>$<salt>$<hash>)",
                )
            ],
        ) from None


def check_settings(settings: Settings) -> None:
    """Refuse an ``[admin] password_hash`` that is not a hash of `oots admin hash-password`."""
    if settings.admin.password_hash is not None:
        _parse_hash(settings.admin.password_hash.get_secret_value())


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded`` (constant time)."""
    iterations, salt, derived = _parse_hash(encoded)
    candidate = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(candidate, derived)


_STYLE = (
    "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
    "td,th{border:1px solid #bbb;padding:.2em .5em;text-align:left}nav form{display:inline}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

#: Headers on every answer of the area (pages, redirects, refusals, errors): nothing but the page's own
#: stylesheet may load or run, no other site may frame it or post a form from it, browsers take the
#: content type as given, and nothing is kept in a cache.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}

#: The largest form body the area reads (413 beyond it).
FORM_LIMIT = 16 * 1024
_FORM_TYPE = "application/x-www-form-urlencoded"


class _Refused(Exception):
    """A request the area answers with ``status`` and a plain sentence (raised inside an endpoint)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def _form(request: Request) -> dict[str, str]:
    """The posted form: at most :data:`FORM_LIMIT` bytes (413), ``application/x-www-form-urlencoded``
    (415), read once per request."""
    cached: dict[str, str] | None = getattr(request.state, "admin_form", None)
    if cached is not None:
        return cached
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > FORM_LIMIT):
        raise _Refused(413, f"The form is larger than {FORM_LIMIT // 1024} KiB.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            raise _Refused(413, f"The form is larger than {FORM_LIMIT // 1024} KiB.")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and kind != _FORM_TYPE:
        raise _Refused(415, "The area takes only forms of its own pages.")
    try:
        form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise _Refused(400, "The form is not UTF-8.") from None
    request.state.admin_form = form
    return form


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """The origin of a URL or an ``Origin`` header: scheme, host and port (the scheme's default port
    when none is given); ``None`` when it names none (``null``, garbage)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS.get(scheme)


def _from_another_site(request: Request, own: Sequence[str]) -> bool:
    """Whether a POST comes from another site: the browser says so (``Sec-Fetch-Site: cross-site``),
    or, from a browser that does not send that header, its ``Origin`` names another origin than the
    request's own or one of ``own`` (the node's ``base_url``, which a reverse proxy may be serving).
    A request with neither header (an old client) is let through: the cookie is ``SameSite=Strict``
    and every form carries the session's token."""
    if request.method != "POST":
        return False
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "cross-site"
    origin = request.headers.get("origin")
    if origin is None:
        return False
    found = _origin(origin)
    return found is None or found not in {_origin(str(request.base_url)), *(_origin(url) for url in own)}


def _hardened(endpoint: Callable[[Request], Any], node: str, own: Sequence[str] = ()) -> Callable[[Request], Any]:
    """``endpoint`` with :data:`SECURITY_HEADERS` on every answer; a form posted from another site is
    refused (403, see :func:`_from_another_site`; ``own`` are the node's own origins besides the
    request's), a refusal is a plain page, and an unexpected failure a page with an error id that the
    log has too (with the details, which the page never shows)."""

    async def endpoint_hardened(request: Request) -> Response:
        try:
            if _from_another_site(request, own):
                raise _Refused(403, "A form posted from another site is refused.")
            response: Response = await endpoint(request)
        except _Refused as refused:
            response = _page("Refused", f"<p role='alert'>{_e(refused.message)}</p>", node=node, status=refused.status)
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            log.exception("admin page %s failed (error id %s)", request.url.path, error_id)
            response = _page(
                "Something went wrong",
                f"<p role='alert'>The page could not be made. Error id: <code>{error_id}</code>"
                " (the log says more).</p>",
                node=node,
                status=500,
            )
        response.headers.update(SECURITY_HEADERS)
        return response

    return endpoint_hardened


#: Rows per page of the area's tables.
PAGE_SIZE = 50
#: The longest search term the journal page takes.
_TERM_LIMIT = 200


def _utc(value: Any) -> Any:
    """A time as the pages show it: in UTC, to the second, saying so."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return value


def _page_number(value: str) -> int:
    """The page asked for (1 when none): a bad one is refused (400)."""
    if not value:
        return 1
    if not value.isdigit() or not 1 <= int(value) <= 100_000:
        raise _Refused(400, "The page number must be a whole number from 1.")
    return int(value)


def _paging(path: str, number: int, more: bool) -> str:
    """Links to the pages before and after ``number`` of a page of tables."""
    links = [f"<a href='{path}?page={number - 1}'>Previous page</a>"] if number > 1 else []
    links += [f"<a href='{path}?page={number + 1}'>Next page</a>"] if more else []
    return f"<p>Page {number}. {' · '.join(links)}</p>" if links else ""


def _retention(window_seconds: float) -> str:
    """What the purge of received AS4 messages keeps, for the page that lists them."""
    span = f"{window_seconds:g} seconds"
    for unit, name in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if window_seconds >= unit and window_seconds % unit == 0:
            number = window_seconds / unit
            span = f"{number:g} {name}" + ("" if number == 1 else "s")
            break
    return (
        "<p>A received message that was delivered, or is not for delivery, is purged with its payloads "
        f"{_e(span)} after it was received (<code>[as4] duplicate_window_seconds</code>: a resend until then "
        "is answered as a duplicate); one still waiting for its delivery is kept. One whose delivery failed "
        "is kept past that while its dead <code>as4.deliver</code> job can still be requeued "
        "(<a href='/admin/queue'>Queue</a>): requeued and delivered, it is purged as a delivered one; its job "
        "discarded or deleted, it is purged too.</p>"
    )


#: What the queue page's buttons do with a dead job.
_DEAD_LETTERS = (
    "<p><strong>Requeue</strong> runs a dead job again, with fresh attempts, once its cause is mended. "
    "<strong>Discard</strong> ends it without running it, for a cause that never will be: it is done, its "
    "last error kept with a note of its discarding, and <code>oots queue purge</code> deletes it with the "
    "other done jobs. A received AS4 message whose <code>as4.deliver</code> job is discarded stays "
    "undelivered and is purged with its payloads once past the duplicate-detection window; a request to "
    "this node's provider whose delivery or answer job is discarded stays unanswered (journalled "
    "<code>exchange_failed</code> when the job died; a preview it holds open is closed, its data deleted, "
    "by the previews' retention bound).</p>"
)


@dataclass(frozen=True)
class _DeadJobAction:
    """What a button of the queue page does with one dead job (``one``) or all of them (``every``), and
    how it is told: the past tense in the log and the redirect's query (``did``, ``one_query``)."""

    one: Callable[[Session, int], str]
    every: Callable[[Session], int]
    did: str
    one_query: str
    note: str = ""


_DEAD_JOB_ACTIONS = {
    "requeue": _DeadJobAction(queue.requeue, queue.requeue_dead, "requeued", "job"),
    "discard": _DeadJobAction(queue.discard, queue.discard_dead, "discarded", "discarded_job", ", unrun"),
}


def _queue_message(params: Mapping[str, str]) -> str:
    """What the queue page says of the form posted before it (from the query of its redirect)."""
    if params.get("requeued", "").isdigit():
        return f"{int(params['requeued'])} dead jobs put back in the queue."
    if params.get("job", "").isdigit():
        return f"Job {int(params['job'])} put back in the queue."
    if params.get("discarded", "").isdigit():
        return f"{int(params['discarded'])} dead jobs discarded: they will not run."
    if params.get("discarded_job", "").isdigit():
        return f"Job {int(params['discarded_job'])} discarded: it will not run."
    if params.get("unconfirmed"):
        return "Nothing was discarded: tick the box to confirm that none of the dead jobs will run."
    if params.get("missing"):
        return "There is no such dead job."
    return ""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _page(title: str, body: str, *, node: str, token: str | None = None, status: int = 200) -> HTMLResponse:
    """A page of the area; with the session's form ``token`` it has the menu and the logout button."""
    menu = ""
    if token is not None:
        menu = (
            "<nav><a href='/admin'>Overview</a> · <a href='/admin/exchanges'>Exchanges and messages</a> · "
            "<a href='/admin/queue'>Queue</a> · <a href='/admin/audit'>Audit journal</a> · "
            "<a href='/admin/partners'>Partners and data services</a> · "
            "<form method='post' action='/admin/logout'>"
            f"<input type='hidden' name='csrf' value='{token}'><button>Log out</button></form></nav>"
        )
    return HTMLResponse(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)} — {_e(node)} admin</title>"
        f"<style>{_STYLE}</style></head>"
        f"<body>{menu}<main><h1>{_e(title)}</h1>{body}</main></body></html>",
        status_code=status,
        headers=SECURITY_HEADERS,
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, raw_last: bool = False) -> str:
    if not rows:
        return "<p>None.</p>"
    head = "".join(f"<th scope='col'>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = [f"<td>{_e(_utc(v))}</td>" for v in row]
        if raw_last:
            cells[-1] = f"<td>{row[-1]}</td>"
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _read_own_certificates(gateway: As4Gateway | None, settings: Settings) -> list[OwnCertificate]:
    """The node's own certificates, read once at start as the access point read its keys: what the node
    uses until it is restarted."""
    if gateway is None:
        return own_certificates(settings.as4)  # its TLS client certificate, if one is configured all the same
    return gateway.own_certificates()


def _own_certificates(gateway: As4Gateway | None, owns: Sequence[OwnCertificate], now: dt.datetime) -> str:
    """The partners page's part about the node's own certificates: each with its use, file, end and state."""
    if gateway is None:
        note = "<p>This node runs no AS4 access point.</p>"
    else:
        note = f"<p>Party id {_e(gateway.own_party.value)}.</p>"
        if isinstance(gateway.access_point, DomibusAccessPoint):
            note += (
                "<p>Domibus mode: Domibus signs and decrypts the AS4 messages with its own keys, so their "
                "certificates are not listed here; watch them in Domibus.</p>"
            )
    rows = [
        (
            own.use,
            own.setting,
            str(own.path),
            *(
                (own.certificate.not_valid_after_utc, standing(own.certificate, now))
                if own.certificate is not None
                else ("unreadable", own.problem)
            ),
        )
        for own in owns
    ]
    return "<h2>Certificates of this node</h2>" + note + _table(("Use", "Setting", "File", "Ends", "State"), rows)


def _partner_certificates(gateway: As4Gateway | None, now: dt.datetime) -> str:
    """The partners page's part about the partner access points: each with the earlier end of its signing
    and encryption certificates, and which one that is."""
    rows: list[tuple[Any, ...]] = []
    for partner in gateway.access_point.pmodes.partners if gateway is not None else ():
        end = partner_end(partner)
        ends = ("—", "", "") if end is None else (end[1].not_valid_after_utc, end[0], standing(end[1], now))
        rows.append((partner.name, partner.party.party_id, partner.endpoint or "—", *ends))
    headers = ("Name", "Party id", "Endpoint", "First certificate end", "Which certificate", "State")
    return "<h2>Partner access points</h2>" + _table(headers, rows)


def _partner_trust_anchors(gateway: As4Gateway | None, now: dt.datetime) -> str:
    """The partners page's part about the CA certificates partners' certificates chain to
    (``[[as4.partners]] trust_anchors``): each with its subject's common name, end and state."""
    rows = [
        (partner.name, partner.party.party_id, subject_name(anchor), anchor.not_valid_after_utc, standing(anchor, now))
        for partner in (gateway.access_point.pmodes.partners if gateway is not None else ())
        for anchor in partner.trust_anchors
    ]
    headers = ("Partner", "Party id", "Trust anchor (subject CN)", "Ends", "State")
    return "<h2>Trust anchors of partners</h2>" + _table(headers, rows)


def _session_secret(settings: Settings, encoded: str | None, root: bytes) -> bytes:
    """The key of the session cookies: keyed with ``root`` (derived from the journal's seal key, which
    every process of the node has), over the password hash and the eID settings, so that changing either
    (or the list of admins) ends every session, and knowing the hash alone makes no session; with
    neither a password nor ``eid.session_secret``, over the eID cookie key generated into the data
    directory (shared by the node's processes)."""
    admin, eid = settings.admin, settings.eid
    parts = [encoded or ""]
    if admin.eid_login:
        if eid.session_secret is not None:
            shared = eid.session_secret.get_secret_value()
        elif encoded is None:
            shared = write_once(settings.node.data_dir / SESSION_KEY_FILE, secrets.token_hex(32)).strip()
        else:
            shared = ""
        parts += [shared, *sorted(admin.eid_admins)]
    return hmac.new(root, b"oots-admin-session\0" + "\0".join(parts).encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class _Keys:
    """The area's keys: the cookies' signer and the form tokens' key, and the key of client addresses."""

    signer: TimestampSigner
    secret: bytes
    client_key: bytes

    def csrf(self, session_id: str) -> str:
        """The form token of a session."""
        return hmac.new(self.secret, b"csrf\0" + session_id.encode(), hashlib.sha256).hexdigest()

    def client(self, address: str) -> str:
        """A client address as the login failures are kept under: a keyed hash, nothing readable."""
        return hmac.new(self.client_key, address.encode(), hashlib.sha256).hexdigest()


class _AreaKeys:
    """The area's keys, derived at the first request that needs them (in a worker thread) and kept:
    building the routes writes no file (the journal's ``audit.keys`` and the eID cookie key may be
    generated into the data directory on the way)."""

    def __init__(self, settings: Settings, encoded: str | None) -> None:
        self._settings = settings
        self._encoded = encoded
        self._lock = threading.Lock()
        self._keys: _Keys | None = None

    def _load(self) -> _Keys:
        with self._lock:
            if self._keys is None:
                from oots.audit.journal import load_journal

                journal = load_journal(self._settings)
                secret = _session_secret(self._settings, self._encoded, journal.derive_key("admin-session"))
                signer = TimestampSigner(secret, salt="oots-admin")
                self._keys = _Keys(signer, secret, journal.derive_key("admin-clients"))
            return self._keys

    async def ready(self) -> _Keys:
        return self._keys if self._keys is not None else await run_in_thread(self._load)


@dataclass(frozen=True)
class _Session:
    """A live admin session: its id (from the cookie), its kind and its form token."""

    id: str
    kind: str
    token: str


def node_eid_login(ctx: NodeContext) -> tuple[EidLogin, list[BaseRoute]]:
    """The node's eID relying party (shared with the roles as ``services["eid_login"]``) and, unless they
    are mounted already, its routes to mount (``services["eid_login_mounted"]`` records that)."""
    login: EidLogin | None = ctx.services.get("eid_login")
    if login is None:
        login = ctx.services["eid_login"] = EidLogin.for_node(ctx.settings, ctx.database)
    elif ctx.services.get("eid_login_mounted"):
        return login, []
    ctx.services["eid_login_mounted"] = True
    return login, [login.mount()]


def admin_identifier(identity: Identity) -> str | None:
    """The identifier an admin is listed under: a natural person logged in for themself, else ``None``."""
    if identity.representative is not None or not isinstance(identity.subject, NaturalPerson):
        return None
    return identity.subject.person_identifier


def admin_routes(ctx: NodeContext) -> list[BaseRoute]:
    """The ``/admin`` routes of the node (a page saying how to turn it on when no password is set)."""
    settings = ctx.settings
    node = settings.node.name
    admin = settings.admin
    own = [settings.node.base_url] if settings.node.base_url else []
    configured = admin.password_hash
    if configured is None and not admin.eid_login:

        async def off(request: Request) -> Response:
            return _page(
                "Admin area is off",
                "<p>Set <code>[admin] password_hash</code> (from <code>oots admin hash-password</code>), or"
                " <code>eid_login = true</code> with <code>eid_admins</code>, to turn it on.</p>",
                node=node,
            )

        off_page = _AnyMethod(_hardened(off, node, own))  # every method, with the headers
        return [Route("/admin", off_page, methods=None), Route("/admin/{rest:path}", off_page, methods=None)]

    check_settings(settings)  # a wrong hash is a configuration error at start, not at the first login
    encoded = configured.get_secret_value() if configured is not None else None
    eid: EidLogin | None = None
    eid_routes: list[BaseRoute] = []
    if admin.eid_login:
        eid, eid_routes = node_eid_login(ctx)
    eid_level = LevelOfAssurance(admin.eid_level)
    allowed = frozenset(a.strip() for a in admin.eid_admins)
    keys = _AreaKeys(settings, encoded)
    max_age = admin.session_minutes * 60
    secure = settings.node.base_url.startswith("https://")

    throttle = LoginThrottle(ctx.database, ctx.clock)
    sessions = AdminSessions(ctx.database, ctx.clock, admin.session_minutes)
    hashing = asyncio.Lock()
    gateway: As4Gateway | None = ctx.services.get("as4")
    certificates = _read_own_certificates(gateway, settings)

    async def session_of(request: Request) -> _Session | None:
        """The request's live session: a cookie signed with the area's key whose row is neither
        expired nor revoked."""
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return None
        found = await keys.ready()
        try:
            session_id = found.signer.unsign(cookie, max_age=max_age).decode()
        except BadSignature:
            return None
        kind = await run_in_thread(sessions.kind_of, session_id)
        return None if kind is None else _Session(session_id, kind, found.csrf(session_id))

    async def start_session(kind: str) -> Response:
        found = await keys.ready()
        session_id = await run_in_thread(sessions.start, kind)
        response = RedirectResponse("/admin", status_code=303)
        response.set_cookie(
            COOKIE,
            found.signer.sign(session_id).decode(),
            max_age=max_age,
            path="/admin",
            httponly=True,
            samesite="strict",
            secure=secure,
        )
        return response

    def login_page(message: str = "", status: int = 200) -> Response:
        note = f"<p role='alert'>{_e(message)}</p>" if message else ""
        ways = []
        if encoded is not None:
            ways.append(
                "<form method='post' action='/admin/login'><label for='password'>Password</label> "
                "<input id='password' name='password' type='password' autocomplete='current-password' required> "
                "<button>Log in</button></form>"
            )
        if eid is not None:
            ways.append("<p><a href='/admin/eid'>Log in with eID</a></p>")
        return _page("Admin login", note + "".join(ways), node=node, status=status)

    def too_many(wait: int) -> Response:
        response = login_page(f"Too many wrong passwords. Try again in {wait} seconds.", 429)
        response.headers["Retry-After"] = str(wait)
        return response

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return login_page()
        if encoded is None:
            return login_page("This node's admins log in with eID.", 400)
        client = (await keys.ready()).client(request.client.host if request.client else "unknown")
        wait = await run_in_thread(throttle.wait, client)  # a waiting client costs a read, nothing more
        if wait:
            return too_many(wait)
        form = await _form(request)
        password = form.get("password") or ""
        # counted before the check, in the database: tries sent at once, to this process or to
        # others of the node, get no more checks than tries sent one after the other
        wait, count = await run_in_thread(throttle.attempt, client)
        if wait:
            return too_many(wait)
        async with hashing:  # one hash at a time in this process (0.3 s of CPU each), off the event loop
            right = await run_in_thread(verify_password, password, encoded)
        if not right:
            # no address in the log (personal data); the count says whether someone is guessing
            log.warning("admin password login failed (%d wrong from this address in a row)", count)
            return login_page("Wrong password.", 401)
        await run_in_thread(throttle.succeeded, client)
        log.info("admin password login")
        return await start_session(PASSWORD_SESSION)

    async def eid_login(request: Request) -> Response:
        """Back from the eID login (or on the way to it): an admin listed in ``eid_admins`` gets a session."""
        assert eid is not None
        await eid.ready()  # the cookies' key may still be read from the data directory: not on the loop
        identity = eid.current_identity(request)
        if identity is None or not identity.level.satisfies(eid_level):
            return RedirectResponse(eid.login_url("/admin/eid", eid_level), status_code=303)
        if admin_identifier(identity) not in allowed:
            refused = LoginRefused("This eID is not one of the node's admins.", code="not_admin")
            log.warning("admin eID login refused: not in admin.eid_admins (error id %s)", refused.error_id)
            return _page(
                "Not an admin",
                f"<p role='alert'>{_e(refused.message)} Error id: <code>{refused.error_id}</code>.</p>"
                f"<p><a href='{eid.prefix}/logout'>Log out of eID</a></p>",
                node=node,
                status=403,
            )
        log.info("admin eID login at level %s", identity.level.value)
        return await start_session(EID_SESSION)

    async def logout(request: Request) -> Response:
        session = await session_of(request)
        target = "/admin/login"
        if session is not None:
            form = await _form(request)
            if not hmac.compare_digest(form.get("csrf") or "", session.token):
                return _page("Refused", "<p>The form was stale; reload the page.</p>", node=node, status=400)
            await run_in_thread(sessions.revoke, session.id)  # a copy of the cookie opens nothing now
            if session.kind == EID_SESSION and eid is not None:
                target = f"{eid.prefix}/logout"
        response = RedirectResponse(target, status_code=303)
        response.delete_cookie(COOKIE, path="/admin")
        return response

    def present_tables() -> set[str]:
        with ctx.database.connect() as connection:
            return set(inspect(connection).get_table_names())

    def recent(table_name: str, columns: Sequence[str], order: str, number: int = 1) -> list[Sequence[Any]]:
        """Page ``number`` of the table, newest first, with one row more when there is a next page."""
        if table_name not in present_tables():
            return []
        table = load_models().tables[table_name]
        query = (
            select(*(table.c[c] for c in columns))
            .order_by(table.c[order].desc())
            .limit(PAGE_SIZE + 1)
            .offset((number - 1) * PAGE_SIZE)
        )
        with ctx.database.connect() as connection:
            return [tuple(row) for row in connection.execute(query)]

    def guarded(render: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            session = await session_of(request)
            if session is None:
                return RedirectResponse("/admin/login", status_code=303)
            if request.method == "POST":
                form = await _form(request)
                if not hmac.compare_digest(form.get("csrf") or "", session.token):
                    return _page("Refused", "<p>The form was stale; reload the page.</p>", node=node, status=400)
            result: Response = await render(request, session.token)
            return result

        return endpoint

    def queue_counts() -> dict[str, dict[str, int]]:
        with ctx.database.session() as db:
            return queue.counts(db)

    async def overview(request: Request, token: str) -> Response:
        counts = await run_in_thread(queue_counts)
        queue_rows = [
            (kind, ", ".join(f"{s}: {n}" for s, n in sorted(by.items()))) for kind, by in sorted(counts.items())
        ]
        dead = sum(by.get("dead", 0) for by in counts.values())
        body = (
            f"<p>Node {_e(node)} ({_e(settings.node.country)}), roles: {_e(', '.join(settings.node.roles) or 'none')}."
            f" Dead letters: <a href='/admin/queue'>{dead}</a>. Metrics: <a href='/metrics'>/metrics</a>.</p>"
            "<h2>Queue</h2>" + _table(("Kind", "Jobs by status"), queue_rows)
        )
        return _page("Overview", body, node=node, token=token)

    async def exchanges(request: Request, token: str) -> Response:
        number = _page_number(request.query_params.get("page", ""))
        columns: Sequence[str] = ("id", "procedure", "country", "state", "reason", "updated_at")
        rows = await run_in_thread(recent, "requester_exchanges", columns, "updated_at", number)
        columns = ("message_id", "partner", "leg", "state", "attempts", "updated_at")
        outbound = await run_in_thread(recent, "as4_outbound", columns, "id", number)
        columns = ("message_id", "partner", "leg", "state", "received_at", "last_error")
        inbound = await run_in_thread(recent, "as4_inbound", columns, "id", number)
        more = any(len(t) > PAGE_SIZE for t in (rows, outbound, inbound))
        rows, outbound = rows[:PAGE_SIZE], outbound[:PAGE_SIZE]
        # why a delivery failed (an error of oots names no person; another error only its type)
        inbound = [(*r[:-1], (r[-1] or "")[:300]) for r in inbound[:PAGE_SIZE]]
        body = (
            "<h2>Exchanges (requester)</h2>"
            + _table(("Exchange", "Procedure", "Country", "State", "Reason", "Updated"), rows)
            + "<h2>AS4 messages sent</h2>"
            + _table(("Message id", "Partner", "Leg", "State", "Attempts", "Updated"), outbound)
            + "<h2>AS4 messages received</h2>"
            + _retention(settings.as4.duplicate_window_seconds)
            + _table(("Message id", "Partner", "Leg", "State", "Received", "Error"), inbound)
            + _paging("/admin/exchanges", number, more)
        )
        return _page("Exchanges and messages", body, node=node, token=token)

    def on_dead(action: _DeadJobAction, job: str) -> str:
        """The query of the page that says what became of ``action`` on ``job`` (a job id or ``all``),
        logged once it is committed."""
        if job == "all":
            with ctx.database.session() as db:
                n = action.every(db)
            log.info("admin %s every dead job (%d)%s", action.did, n, action.note)
            return f"{action.did}={n}"
        try:
            with ctx.database.session() as db:
                kind = action.one(db, int(job))
        except (ValueError, NotFound):
            return "missing=1"
        log.info("admin %s dead job %d (%s)%s", action.did, int(job), kind, action.note)
        return f"{action.one_query}={int(job)}"

    def queue_state(number: int) -> tuple[dict[str, dict[str, int]], list[tuple[Any, ...]]]:
        with ctx.database.session() as db:
            dead = queue.list_dead(db, limit=PAGE_SIZE + 1, offset=(number - 1) * PAGE_SIZE)
            return queue.counts(db), [
                (j.id, j.kind, j.attempts, j.finished_at, (j.last_error or "")[:300]) for j in dead
            ]

    async def queue_page(request: Request, token: str) -> Response:
        if request.method == "POST":  # answered with a redirect: reloading the page does nothing again
            form = await _form(request)
            job, action = form.get("job") or "", form.get("action") or "requeue"
            if action not in _DEAD_JOB_ACTIONS:
                raise _Refused(400, "There is no such action: use the page's buttons.")
            if action == "discard" and job == "all" and form.get("confirm") != "yes":
                done = "unconfirmed=1"  # the box is required: only a browser that ignores that gets here
            else:
                done = await run_in_thread(on_dead, _DEAD_JOB_ACTIONS[action], job)
            return RedirectResponse(f"/admin/queue?{done}", status_code=303)
        message = _queue_message(request.query_params)
        number = _page_number(request.query_params.get("page", ""))
        counts, dead_jobs = await run_in_thread(queue_state, number)
        more = len(dead_jobs) > PAGE_SIZE
        dead_jobs = dead_jobs[:PAGE_SIZE]
        dead = [
            (
                *job,
                f"<form method='post'><input type='hidden' name='csrf' value='{token}'>"
                f"<input type='hidden' name='job' value='{job[0]}'><button>Requeue</button> "
                "<button name='action' value='discard'>Discard</button></form>",
            )
            for job in dead_jobs
        ]
        rows = [(k, s, n) for k, by in sorted(counts.items()) for s, n in sorted(by.items())]
        body = (
            (f"<p role='status'>{_e(message)}</p>" if message else "")
            + "<h2>Jobs</h2>"
            + _table(("Kind", "Status", "Count"), rows)
            + "<h2>Dead letters</h2>"
            + _DEAD_LETTERS
            + _table(("Job", "Kind", "Attempts", "Failed at", "Last error", ""), dead, raw_last=True)
            + _paging("/admin/queue", number, more)
            + (
                f"<form method='post'><input type='hidden' name='csrf' value='{token}'>"
                "<input type='hidden' name='job' value='all'><button>Requeue all dead jobs</button></form>"
                f"<form method='post'><input type='hidden' name='csrf' value='{token}'>"
                "<input type='hidden' name='job' value='all'><input type='hidden' name='action' value='discard'>"
                "<label><input type='checkbox' name='confirm' value='yes' required> none of them will run</label> "
                "<button>Discard all dead jobs</button></form>"
                if dead
                else ""
            )
        )
        return _page("Queue", body, node=node, token=token)

    async def audit(request: Request, token: str) -> Response:
        from oots.audit.journal import Event, load_journal

        fields = ("exchange_id", "conversation_id", "message_id", "subject", "event")
        # the search is posted, so that a person identifier never lands in an address (and so in a
        # reverse proxy's access log); a GET keeps the other fields, for links
        source = await _form(request) if request.method == "POST" else request.query_params
        given = {f: str(source.get(f) or "").strip() for f in fields}
        ignored = request.method == "GET" and bool(given["subject"])
        if ignored:
            given["subject"] = ""
        for value in given.values():
            if len(value) > _TERM_LIMIT or not value.isprintable():
                raise _Refused(400, f"A search term must be printable and at most {_TERM_LIMIT} characters long.")
        events = sorted(e.value for e in Event)
        if given["event"] and given["event"] not in events:
            raise _Refused(400, "There is no such event: pick one from the list.")
        number = _page_number(str(source.get("page") or ""))
        labels = {
            "exchange_id": "Exchange id",
            "conversation_id": "Conversation id",
            "message_id": "AS4 message id",
            "subject": "Person identifier",
            "event": "Event",
        }
        options = "".join(
            f"<option value='{_e(v)}'{' selected' if v == given['event'] else ''}>{_e(v or 'any')}</option>"
            for v in ("", *events)
        )
        form = (
            "".join(
                f"<label for='{f}'>{labels[f]}</label> <input id='{f}' name='{f}' value='{_e(given[f])}'> "
                for f in fields
                if f != "event"
            )
            + f"<label for='event'>{labels['event']}</label> <select id='event' name='event'>{options}</select> "
        )
        journal = load_journal(settings, clock=ctx.clock)

        def search() -> list[tuple[Any, ...]]:
            with ctx.database.session() as db:
                entries = journal.search(
                    db,
                    **{k: (v or None) for k, v in given.items()},
                    limit=PAGE_SIZE + 1,  # one more: whether there is a next page
                    offset=(number - 1) * PAGE_SIZE,
                )
                return [
                    (e.seq, _utc(e.recorded_at), e.side, e.event, e.exchange_id, ", ".join(e.message_ids), e.outcome)
                    for e in entries
                ]

        def verify() -> Any:
            with ctx.database.snapshot() as db:  # one consistent view while the node appends and purges
                return journal.verify(db)

        rows = await run_in_thread(search)
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]

        def turn(to: int, label: str) -> str:  # posted: the search may hold a person identifier
            kept = "".join(f"<input type='hidden' name='{f}' value='{_e(given[f])}'>" for f in fields)
            return (
                f"<form method='post' action='/admin/audit'><input type='hidden' name='csrf' value='{token}'>"
                f"{kept}<input type='hidden' name='page' value='{to}'><button>{label}</button></form>"
            )

        paging = f"<p>Page {number}.</p>" + (turn(number - 1, "Previous page") if number > 1 else "")
        paging += turn(number + 1, "Next page") if more else ""
        report = await run_in_thread(verify) if request.query_params.get("verify") else None
        status = (
            "<p role='alert'>A person identifier in the address is ignored: search for it with the form.</p>"
            if ignored
            else ""
        )
        if report is not None:
            status += (
                f"<p role='status'>Chain intact: {report.entries} entries verified.</p>"
                if report.ok
                else f"<p role='alert'>Chain broken: {_e(report.breaks[0] if report.breaks else '')}</p>"
            )
        body = (
            f"<form method='post' action='/admin/audit'><input type='hidden' name='csrf' value='{token}'>"
            f"{form}<button>Search</button></form>"
            "<p><a href='/admin/audit?verify=1'>Verify the chain</a></p>"
            + status
            + _table(("Seq", "Recorded (UTC)", "Side", "Event", "Exchange", "AS4 messages", "Outcome"), rows)
            + paging
        )
        return _page("Audit journal", body, node=node, token=token)

    async def partners(request: Request, token: str) -> Response:
        now = ctx.clock()
        missing = await run_in_thread(unavailable, ctx)  # may try a register's database again
        services = [
            (
                s.identifier,
                s.titles.get("EN") or next(iter(s.titles.values())),
                s.register_name,
                s.preview,
                f"unavailable: {missing[s.identifier]}" if s.identifier in missing else "available",
            )
            for s in settings.provider.data_services
        ]
        samples = "<p>Plus the sample data services of the demo network.</p>" if settings.provider.samples else ""
        body = (
            _own_certificates(gateway, certificates, now)
            + _partner_certificates(gateway, now)
            + _partner_trust_anchors(gateway, now)
            + "<h2>Data services</h2>"
            + _table(("Identifier", "Title", "Register", "Preview", "State"), services)
            + samples
        )
        return _page("Partners and data services", body, node=node, token=token)

    async def no_such_page(request: Request) -> Response:
        return _page("No such page", "<p><a href='/admin'>Overview</a></p>", node=node, status=404)

    def route(path: str, endpoint: Callable[[Request], Any], methods: Sequence[str] = ("GET",)) -> Route:
        return Route(path, _hardened(endpoint, node, own), methods=list(methods))

    def other_method(routes: list[BaseRoute]) -> Callable[[Request], Any]:
        async def not_allowed(request: Request) -> Response:
            # Starlette's own 405 would carry none of the headers: the methods the path takes are named
            partial = [r for r in routes if isinstance(r, Route) and r.matches(request.scope)[0] is Match.PARTIAL]
            named = [r for r in partial if "{" not in r.path] or partial  # the page itself, not the catch-all
            allow = sorted({m for r in named for m in r.methods or ()})
            response = _page(
                "Not allowed", f"<p>This page takes {_e(', '.join(allow))} only.</p>", node=node, status=405
            )
            response.headers["Allow"] = ", ".join(allow)
            return response

        return not_allowed

    routes: list[BaseRoute] = [
        *eid_routes,
        route("/admin/login", login, ("GET", "POST")),
        *([route("/admin/eid", eid_login)] if eid is not None else []),
        route("/admin/logout", logout, ("POST",)),
        route("/admin", guarded(overview)),
        route("/admin/exchanges", guarded(exchanges)),
        route("/admin/queue", guarded(queue_page), ("GET", "POST")),
        route("/admin/audit", guarded(audit), ("GET", "POST")),
        route("/admin/partners", guarded(partners)),
        route("/admin/{rest:path}", no_such_page, ("GET", "POST")),  # with the headers too
    ]
    # last: what reaches these took another method than the page's (every method matches them)
    refuse = _AnyMethod(_hardened(other_method(routes), node, own))
    return [*routes, Route("/admin", refuse, methods=None), Route("/admin/{rest:path}", refuse, methods=None)]


class _AnyMethod:
    """A page for every method: Starlette gives a function endpoint GET only, an ASGI one all."""

    def __init__(self, endpoint: Callable[[Request], Any]) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response: Response = await self.endpoint(Request(scope, receive))
        await response(scope, receive, send)
