"""The demo procedure portal: server-rendered pages over the requester, no JavaScript needed (the waiting
pages' script only saves pressing "Check again").

A citizen of one country applies for a procedure in another: logs in with eID, sees what the
procedure needs, chooses per requirement "retrieve it through OOTS" or "upload it myself", picks the
evidence and the provider, answers follow-up questions, gives the explicit request on a page that says
who will be asked for what and why, goes through the preview and back, and sees the evidence attached.

Pages are English, French and German (``?lang=fr``, kept in a cookie); every form carries a CSRF
token checked against a cookie (double submit); every exchange is shown only to the person it is
about. The login is any object with ``ready()``, ``current_identity(request)`` and ``login_url(next)``
— :class:`oots.eid.EidLogin` on a node.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Sequence
from importlib import resources
from typing import Any, Protocol
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from oots import edm
from oots.eid.edm_mapping import edm_subjects
from oots.eid.identity import Identity
from oots.errors import LocalProtocolError, ModelError, NotFound
from oots.requester.exchange import Requester, subject_from_json
from oots.requester.i18n import LANGUAGES, translate
from oots.requester.models import RequesterRequest
from oots.requester.states import REASON_TEXT, Reason, RequestStatus
from oots.store import Database
from oots.threads import run_in_thread

__all__ = ["DEMO_PROCEDURES", "Login", "Portal"]

CSRF_COOKIE = "oots_portal_csrf"
LANG_COOKIE = "oots_portal_lang"

#: The procedures the demo portal offers (code, English title).
DEMO_PROCEDURES: tuple[tuple[str, str], ...] = (
    ("R1", "Requesting a birth certificate"),
    ("S1", "Requesting proof of residence"),
    ("T3", "Applying for a study grant"),
    ("V1", "Registering a motor vehicle"),
)
COUNTRIES = ("BE", "DE", "EL", "ES", "FR", "IT", "NL", "PL")
#: What the evidence page calls a document's media type.
FORMATS: dict[str, str] = {"application/pdf": "PDF", "application/xml": "XML", "application/json": "JSON"}
#: The query parameter naming the return address on a v1.0 provider's PreviewLocation (no ReturnLocation slot).
RETURN_PARAMETER = "returnurl"
#: A region code the hint of a follow-up question may give as its example (country, NUTS level).
CODE_EXAMPLES: dict[tuple[str, int], tuple[str, str]] = {
    ("BE", 1): ("BE1", "Brussels"),
    ("DE", 1): ("DE6", "Hamburg"),
    ("FR", 1): ("FR1", "Île-de-France"),
}


def code_hint(lang: str, level: str | None, country: str) -> str:
    """What to type for a jurisdiction question of ``level`` (``NUTS1``…``NUTS3``, ``LAU``), in ``lang``."""
    asked = (level or "").strip().upper()
    found = re.fullmatch(r"NUTS[ _-]?([123])", asked)
    if found is None:
        if asked.startswith("LAU"):
            lau = "a local administrative unit code (LAU), as the country's statistics office lists it"
            return translate(lang, lau)
        return translate(lang, "a region code ({level}), starting with the country code {country}").format(
            level=level or "NUTS", country=country
        )
    n = int(found.group(1))
    text = translate(
        lang,
        "a region code (NUTS level {n}): {country} followed by one letter or digit"
        if n == 1
        else "a region code (NUTS level {n}): {country} followed by {n} letters or digits",
    ).format(n=n, country=country)
    example = CODE_EXAMPLES.get((country, n))
    if example is not None:
        text += translate(lang, ", for example {code} for {place}").format(code=example[0], place=example[1])
    return text


class Login(Protocol):
    async def ready(self) -> None:
        """Load what reading a login needs (EidLogin: its cookies' key), off the event loop."""

    def current_identity(self, request: Request) -> Identity | None: ...

    def login_url(self, next_path: str = "/") -> str: ...


class Portal:
    """The demo portal's pages under ``prefix`` (default ``/portal``), for API client ``client_id``."""

    def __init__(
        self,
        requester: Requester,
        database: Database,
        login: Login,
        *,
        client_id: str = "demo-portal",
        prefix: str = "/portal",
    ) -> None:
        self.requester = requester
        self.database = database
        self.login = login
        self.client_id = client_id
        self.prefix = prefix
        self.env = Environment(
            loader=PackageLoader("oots.requester", "templates"), autoescape=select_autoescape(), auto_reload=False
        )
        self._secure = requester.settings.node.base_url.startswith("https://")
        self._script = resources.files("oots.requester").joinpath("templates/portal.js").read_bytes()

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Mount(
                self.prefix,
                routes=[
                    Route("/", self.home, methods=["GET"]),
                    Route("/static/portal.js", self.script, methods=["GET"]),
                    Route("/applications", self.start, methods=["POST"]),
                    Route("/applications/{ex}", self.application, methods=["GET"]),
                    Route("/applications/{ex}/state", self.state, methods=["GET"]),
                    Route("/applications/{ex}/choices", self.choices, methods=["POST"]),
                    Route("/applications/{ex}/request", self.explicit, methods=["POST"]),
                    Route("/applications/{ex}/evidence/{n:int}", self.evidence, methods=["GET"]),
                ],
            )
        ]

    # ---- plumbing -------------------------------------------------------------------------------

    def _lang(self, request: Request) -> str:
        asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE, "")
        return asked if asked in LANGUAGES else "en"

    def _page(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        lang = self._lang(request)
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        html = self.env.get_template(name).render(
            _=lambda text: translate(lang, text),
            lang=lang,
            languages=LANGUAGES,
            csrf=token,
            prefix=self.prefix,
            path=request.url.path,
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", secure=self._secure)
        if request.query_params.get("lang") in LANGUAGES:
            response.set_cookie(LANG_COOKIE, lang, samesite="lax", secure=self._secure)
        response.headers["Content-Security-Policy"] = "default-src 'self'; style-src 'self' 'unsafe-inline'"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cache-Control"] = "no-store"  # the pages show personal data: kept by no cache
        return response

    async def _form(self, request: Request) -> dict[str, Any] | None:
        """The posted form, or None when its CSRF token does not match the cookie."""
        form = await request.form()
        cookie = request.cookies.get(CSRF_COOKIE, "")
        sent = str(form.get("csrf", ""))
        if not cookie or not hmac.compare_digest(cookie, sent):
            return None
        return {k: form.getlist(k) if len(form.getlist(k)) > 1 else form.get(k) for k in form}

    def _error(
        self, request: Request, status: int, message: str, *, detail: str | None = None, back: str | None = None
    ) -> HTMLResponse:
        """The error page saying ``message`` (English, shown in the page's language); ``detail`` as given."""
        text = translate(self._lang(request), message)
        return self._page(request, "portal_error.html", status, message=text, detail=detail, back=back)

    def _refused(self, request: Request) -> HTMLResponse:
        return self._error(request, 403, "The form expired; please try again.")

    async def _identity(self, request: Request) -> Identity | None:
        await self.login.ready()  # the login's key may still be read from the data directory: not on the loop
        return self.login.current_identity(request)

    def _to_login(self, request: Request) -> Response:
        return RedirectResponse(self.login.login_url(request.url.path), status_code=303)

    def _owned(self, identity: Identity, ex_subject: Any) -> bool:
        mine, _ = edm_subjects(identity)
        theirs = subject_from_json(ex_subject)
        if isinstance(mine, edm.Person) and isinstance(theirs, edm.Person):
            return (mine.identifier, mine.family_name, mine.date_of_birth) == (
                theirs.identifier,
                theirs.family_name,
                theirs.date_of_birth,
            )
        if isinstance(mine, edm.LegalPerson) and isinstance(theirs, edm.LegalPerson):
            # the company's identifier: the level of assurance and the address may differ between logins
            return mine.legal_person_identifier == theirs.legal_person_identifier
        return False

    def _view(self, request: Request, identity: Identity) -> dict[str, Any]:
        with self.database.session() as session:
            ex = self.requester.load(session, request.path_params["ex"], self.client_id)
            if not self._owned(identity, ex.subject):
                raise NotFound("there is no such application")
            # what the Common Services and the evidence name in the page's language, else in English
            view = self.requester.view(session, ex.id, self.client_id).to_json(self.prefix, self._lang(request))
            if view["preview"] is not None:
                view["preview"]["location"] = self._preview_location(session, ex.id, view["preview"]["location"])
            return view

    def _preview_location(self, session: Session, exchange_id: str, location: str) -> str:
        """Where to send the user for the preview: an EDM v1.0 request has no ReturnLocation slot, so the
        return address goes on the PreviewLocation as ``?returnurl=`` (the provider keeps it if allowed)."""
        specification = session.scalar(
            select(RequesterRequest.specification).where(
                RequesterRequest.exchange_id == exchange_id, RequesterRequest.status == RequestStatus.PREVIEW.value
            )
        )
        if specification != edm.Version.EDM_V1:
            return location
        back = f"{self.requester.settings.node.base_url.rstrip('/')}/requester/return/{exchange_id}"
        return f"{location}{'&' if '?' in location else '?'}{urlencode({RETURN_PARAMETER: back})}"

    # ---- pages ----------------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        identity = await self._identity(request)
        return self._page(
            request,
            "portal_home.html",
            identity=identity,
            login_url=self.login.login_url(self.prefix + "/"),
            procedures=DEMO_PROCEDURES,
            countries=COUNTRIES,
        )

    async def start(self, request: Request) -> Response:
        identity = await self._identity(request)
        if identity is None:
            return self._to_login(request)
        form = await self._form(request)
        if form is None:
            return self._refused(request)
        procedure, country = str(form.get("procedure", "")), str(form.get("country", ""))
        if procedure not in {p for p, _ in DEMO_PROCEDURES} or country not in COUNTRIES:
            return self._error(request, 422, "Choose a procedure and a country.")
        subject, _ = edm_subjects(identity)
        return_url = f"{self.requester.settings.node.base_url.rstrip('/')}{self.prefix}/applications/"

        def create() -> str:
            # discovered at once when the node holds the Common Services' answers it needs (no network
            # I/O): the next page shows the choices instead of a waiting page; else discovery is a job
            discovered = self.requester.discover_cached(procedure=procedure, country=country)
            with self.database.session(immediate=True) as session:
                ex = self.requester.create(
                    session,
                    client_id=self.client_id,
                    procedure=procedure,
                    country=country,
                    subject=subject,
                    # the user may opt out of seeing the documents first (PossibilityForPreview false)
                    preview=form.get("no_preview") != "yes",
                    discovered=discovered,
                )
                ex.return_url = return_url + ex.id
                self.requester.save(session, ex)
                return ex.id

        ex_id = await run_in_thread(create)
        return RedirectResponse(f"{self.prefix}/applications/{ex_id}", status_code=303)

    async def application(self, request: Request) -> Response:
        identity = await self._identity(request)
        if identity is None:
            return self._to_login(request)
        try:
            view = await run_in_thread(self._view, request, identity)
        except NotFound:
            return self._error(request, 404, "Not found")
        return self._application_page(request, view)

    def _application_page(
        self,
        request: Request,
        view: dict[str, Any],
        status: int = 200,
        *,
        missing: frozenset[str] = frozenset(),
        form: dict[str, Any] | None = None,
    ) -> HTMLResponse:
        """The application in its state; ``missing`` names the questions' fields left empty in ``form``."""
        reason = view["reason"]
        # back from the preview space (the return location adds ?exchange=): the answer is on its way
        returned = view["state"] == "awaiting_preview" and request.query_params.get("exchange") == view["id"]
        lang = self._lang(request)
        return self._page(
            request,
            "portal_application.html",
            status,
            ex=view,
            reason_text=translate(lang, REASON_TEXT[Reason(reason)]) if reason else None,
            poll=view["state"] in ("discovering", "requesting") or returned,
            returned=returned,
            hint=lambda level: code_hint(lang, level, view["country"]),
            missing=missing,
            form=form or {},
            formats=FORMATS,
        )

    async def script(self, request: Request) -> Response:
        """The waiting pages' script (it polls :meth:`state`; the pages work without it)."""
        return Response(
            self._script,
            media_type="text/javascript",
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
        )

    async def state(self, request: Request) -> Response:
        """``{"state": ...}`` of the user's own application: what a waiting page's script polls."""
        identity = await self._identity(request)
        if identity is None:
            return JSONResponse({"error": "log in first"}, 401, headers={"Cache-Control": "no-store"})

        def current() -> str | None:
            with self.database.session() as session:
                try:
                    ex = self.requester.load(session, request.path_params["ex"], self.client_id)
                except NotFound:
                    return None
                return str(ex.state) if self._owned(identity, ex.subject) else None

        state = await run_in_thread(current)
        if state is None:
            return JSONResponse({"error": "there is no such application"}, 404, headers={"Cache-Control": "no-store"})
        return JSONResponse({"state": state}, headers={"Cache-Control": "no-store"})

    async def choices(self, request: Request) -> Response:
        identity = await self._identity(request)
        if identity is None:
            return self._to_login(request)
        form = await self._form(request)
        if form is None:
            return self._refused(request)
        try:
            view = await run_in_thread(self._view, request, identity)
        except NotFound:
            return self._error(request, 404, "Not found")
        choices: dict[str, Any] = {}
        missing: set[str] = set()
        for i, entry in enumerate(view["requirements"]):
            how = form.get(f"r{i}-how", "oots")
            if how == "upload":
                choices[entry["id"]] = {"upload": True}
                continue
            choice: dict[str, Any] = {}
            if form.get(f"r{i}-list"):
                choice["list"] = form[f"r{i}-list"]
            for j, (cls, slot) in enumerate(entry["types"].items()):
                answers = {
                    q["id"]: str(form.get(f"r{i}-t{j}-q{k}", "")).strip() for k, q in enumerate(slot["questions"])
                }
                if slot["questions"] and not slot["providers"]:
                    empty = {f"r{i}-t{j}-q{k}" for k, value in enumerate(answers.values()) if not value}
                    missing |= empty
                    if not empty:
                        choice.setdefault("answers", {})[cls] = answers
                if form.get(f"r{i}-t{j}-provider"):
                    choice.setdefault("providers", {})[cls] = form[f"r{i}-t{j}-provider"]
            choices[entry["id"]] = choice
        if missing:  # the form again, each empty answer marked (nothing is recorded)
            return self._application_page(request, view, 422, missing=frozenset(missing), form=form)

        def choose() -> None:
            with self.database.session(immediate=True) as session:
                self.requester.choose(session, view["id"], self.client_id, choices)

        try:
            await run_in_thread(choose)
        except (ModelError, LocalProtocolError) as exc:
            back = f"{self.prefix}/applications/{view['id']}"  # the page (GET) where the choice is made again
            return self._error(
                request, 422, "Your answer was not accepted; please check it.", detail=exc.message, back=back
            )
        return RedirectResponse(f"{self.prefix}/applications/{view['id']}", status_code=303)

    async def explicit(self, request: Request) -> Response:
        identity = await self._identity(request)
        if identity is None:
            return self._to_login(request)
        form = await self._form(request)
        if form is None:
            return self._refused(request)

        def give() -> str:
            view = self._view(request, identity)
            with self.database.session() as session:  # the request made and signed before the write transaction
                ahead = self.requester.explicit_request_ahead(session, view["id"], self.client_id)
            with self.database.session(immediate=True) as session:
                self.requester.give_explicit_request(session, view["id"], self.client_id, ahead=ahead)
            return str(view["id"])

        try:
            ex_id = await run_in_thread(give)
        except NotFound:
            return self._error(request, 404, "Not found")
        except LocalProtocolError as exc:
            back = f"{self.prefix}/applications/{request.path_params['ex']}"
            return self._error(
                request,
                409,
                "The application has moved on since this page was shown; open it again to see where it stands.",
                detail=exc.message,
                back=back,
            )
        return RedirectResponse(f"{self.prefix}/applications/{ex_id}", status_code=303)

    async def evidence(self, request: Request) -> Response:
        identity = await self._identity(request)
        if identity is None:
            return self._to_login(request)

        def read() -> tuple[dict[str, Any], bytes, str]:
            view = self._view(request, identity)
            with self.database.session() as session:
                ev = self.requester.evidence(session, view["id"], request.path_params["n"], self.client_id)
                return view, ev.content, ev.media_type

        try:
            view, content, media_type = await run_in_thread(read)
        except NotFound:
            return self._error(request, 404, "Not found")
        if media_type == "application/pdf":
            return Response(
                content,
                media_type=media_type,
                headers={
                    "X-Content-Type-Options": "nosniff",
                    "Cache-Control": "no-store",
                    "Content-Security-Policy": "frame-ancestors 'none'",
                    "X-Frame-Options": "DENY",
                },
            )
        entry: dict[str, Any] = next((e for e in view["evidence"] if e["id"] == request.path_params["n"]), {})
        return self._page(
            request,
            "portal_document.html",
            text=content.decode("utf-8", "replace"),
            what=entry.get("evidence_type_title") or entry.get("title") or FORMATS.get(media_type, media_type),
            issuer=entry.get("issuing_authority"),
            file=entry.get("title"),
            file_format=FORMATS.get(media_type, media_type),
            ex=view,
        )
