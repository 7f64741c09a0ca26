"""The preview space's pages: eID login, each evidence shown, accept or refuse, back to the portal.

Routes (on the provider node, next to its AS4 endpoint):

* ``GET|POST /preview/{token}`` — the PreviewLocation. The user logs in with eID (its own login under
  ``/preview/eid``, at the data service's level of assurance), must be the person the request is about
  (the data service's matching rules), and sees every document rendered for the request: a PDF in a
  frame and as a link, XML and JSON pretty-printed (escaped). A ``POST`` arrival (``PreviewMethod``
  POST) is answered with a redirect to the same page; its body is never read.
  A v1.x requester (no ReturnLocation slot) may append ``?returnurl=<its return address>``.
* ``GET /preview/{token}/documents/{n}`` — one document as it will be sent.
* ``POST /preview/{token}/decision`` — accept or refuse each document (CSRF token, double submit);
  then back to the requester's ReturnLocation when it is one of ``provider.preview_return_origins``,
  else to ``/preview/{token}/done``.

* ``POST /preview/{token}/someone-else`` — from the page shown to someone who is not the request's
  subject: ``again`` logs out of the preview space's eID session and back into a login that makes the
  identity provider ask again (``prompt=login``, ``ForceAuthn``), so the applicant can log in; ``end``
  closes the preview, the request is answered ``EDM:ERR:0004``, and the user goes back to the
  ReturnLocation (else to ``/preview/{token}/done``).

Someone else who logs in sees none of the documents; the preview stays open until they choose. Every page
is English, French or German (``?lang=``, a cookie, ``Accept-Language``), sends a Content Security
Policy without inline code, ``frame-ancestors`` limited, ``nosniff`` and ``no-referrer`` (the token
is in the URL), and is never cached.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment, PackageLoader, select_autoescape
from lxml import etree
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oots import edm
from oots.eid.edm_mapping import edm_subjects
from oots.eid.identity import Identity, LevelOfAssurance
from oots.eid.web import EidLogin
from oots.errors import XmlError
from oots.node.roles import NodeContext
from oots.provider.dataservice import DataService
from oots.provider.models import ProviderPreview
from oots.provider.preview import PREVIEW_PATH, PreviewClosed, allowed_return, same_person, token_key, valid_token
from oots.provider.preview_i18n import LANGUAGES, negotiate, translate
from oots.provider.previews import NOT_THE_SUBJECT, Previews, ShownDocument, subject_from_row
from oots.xmlsafe import parse as parse_xml

__all__ = ["RETURN_PARAMETER", "PreviewSpace"]

log = logging.getLogger(__name__)

#: The query parameter a v1.x requester may add to the PreviewLocation to name its return address.
RETURN_PARAMETER = "returnurl"
#: The largest decision form accepted (a few radio buttons and a token).
MAX_FORM_BYTES = 16_384
_LABELS = {"application/pdf": "PDF", "application/xml": "XML", "application/json": "JSON"}


@dataclass(frozen=True)
class _View:
    """An open preview as the pages need it."""

    service: DataService
    subject: edm.Person | edm.LegalPerson
    documents: list[ShownDocument]
    deadline: dt.datetime
    return_location: str | None
    #: The user already decided (the page then only says so).
    decided: bool


def _pretty(doc: ShownDocument) -> str:
    """An XML or JSON document indented for reading (the text itself is escaped by the template)."""
    try:
        if doc.media_type == "application/json":
            return json.dumps(json.loads(doc.content), indent=2, ensure_ascii=False)
        if doc.media_type == "application/xml":
            root = parse_xml(doc.content)
            etree.indent(root, space="  ")
            return etree.tostring(root, encoding="unicode")
    except (ValueError, XmlError):
        pass
    return doc.content.decode("utf-8", "replace")


#: The eID login pages under ``/preview/eid`` (an inline style, forms posting to themselves, no script).
LOGIN_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"


class _HeadersAdded:
    """ASGI wrapper: every HTTP response of ``app`` gets ``headers`` (those it already sends are kept)."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [(k, v) for k, v in self.headers if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class PreviewSpace:
    """The pages of the preview space of one provider node."""

    def __init__(self, ctx: NodeContext, previews: Previews, *, login: EidLogin | None = None) -> None:
        self.ctx = ctx
        self.previews = previews
        settings = ctx.settings
        suffix = "_" + (re.sub(r"[^A-Za-z0-9]", "", settings.node.name) or "node")
        self.login = login or EidLogin.for_node(
            settings,
            ctx.database,
            eid=settings.eid.model_copy(update={"redirect_url": "", "saml_entity_id": ""}),
            prefix=f"{PREVIEW_PATH}/eid",
            cookie_suffix=f"_preview{suffix}",
            session_path=PREVIEW_PATH,
        )
        self.csrf_cookie = f"oots_preview_csrf{suffix}"
        self.lang_cookie = f"oots_preview_lang{suffix}"
        self.node = settings.node.name
        self._secure = settings.node.base_url.startswith("https://")
        self._env = Environment(
            loader=PackageLoader("oots.provider", "templates"), autoescape=select_autoescape(), auto_reload=False
        )
        self._css = resources.files("oots.provider").joinpath("templates/preview.css").read_bytes()
        origins = " ".join(sorted(set(previews.return_origins)))
        self._csp = (
            "default-src 'none'; style-src 'self'; img-src 'self'; frame-src 'self'; "
            f"form-action 'self'{' ' + origins if origins else ''}; frame-ancestors 'none'; base-uri 'none'"
        )

    def routes(self) -> Sequence[BaseRoute]:
        p = PREVIEW_PATH
        login = self.login.mount()
        secured_login = _HeadersAdded(
            login.app,
            {
                "Content-Security-Policy": LOGIN_CSP,
                "X-Frame-Options": "DENY",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-store",
            },
        )
        return [
            Mount(login.path, app=secured_login, name=login.name),
            Route(f"{p}/static/preview.css", self.css, methods=["GET"]),
            Route(p + "/{token}", self.page, methods=["GET", "POST"]),
            Route(p + "/{token}/documents/{n:int}", self.document, methods=["GET"]),
            Route(p + "/{token}/decision", self.decision, methods=["POST"]),
            Route(p + "/{token}/someone-else", self.someone_else, methods=["POST"]),
            Route(p + "/{token}/done", self.done, methods=["GET"]),
        ]

    # --- plumbing ----------------------------------------------------------------------------------
    def _lang(self, request: Request) -> str:
        return negotiate(
            request.query_params.get("lang"),
            request.cookies.get(self.lang_cookie),
            request.headers.get("accept-language"),
        )

    def _secured(self, response: Response, *, frame_ancestors: str = "'none'") -> Response:
        h = response.headers
        if response.media_type and response.media_type.startswith("text/html"):
            h["Content-Security-Policy"] = self._csp
        else:
            h["Content-Security-Policy"] = f"frame-ancestors {frame_ancestors}"
        h["X-Frame-Options"] = "DENY" if frame_ancestors == "'none'" else "SAMEORIGIN"
        h["X-Content-Type-Options"] = "nosniff"
        h["Referrer-Policy"] = "no-referrer"
        h["Cache-Control"] = "no-store"
        return response

    def _render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        lang = self._lang(request)
        csrf = request.cookies.get(self.csrf_cookie) or secrets.token_urlsafe(32)
        html = self._env.get_template(name).render(
            _=lambda text: translate(lang, text),
            lang=lang,
            languages=LANGUAGES,
            node=self.node,
            path=request.url.path,
            csrf=csrf,
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        response.set_cookie(
            self.csrf_cookie, csrf, path=PREVIEW_PATH, httponly=True, samesite="strict", secure=self._secure
        )
        if request.query_params.get("lang") in LANGUAGES:
            response.set_cookie(self.lang_cookie, lang, path=PREVIEW_PATH, samesite="lax", secure=self._secure)
        return self._secured(response)

    def _message(
        self, request: Request, heading: str, lines: Sequence[str], status: int, back: str | None = None
    ) -> Response:
        lang = self._lang(request)
        return self._render(
            request,
            "preview_message.html",
            status,
            heading=translate(lang, heading),
            lines=[translate(lang, line) for line in lines],
            back=back,
        )

    def _closed(self, request: Request) -> Response:
        return self._message(
            request,
            "This preview does not exist or is closed",
            [
                "The link may be wrong, already used, or its time may have run out. Please start again from the "
                "procedure portal."
            ],
            404,
        )

    def _load(self, token: str) -> _View | None:
        with self.ctx.database.session() as session:
            row = self.previews.find(session, token)
            if row is None:
                return None
            service = self.previews.service_of(row)
            subject = subject_from_row(row)
            if service is None or subject is None:
                return None
            documents = self.previews.documents(session, row)
            return _View(service, subject, documents, row.deadline, row.return_location, row.decision is not None)

    def _identity(self, request: Request, token: str, view: _View) -> Identity | Response:
        """The logged-in person at the service's level, or the redirect to the login (and back to the
        preview page, whatever page of the preview asked)."""
        level = LevelOfAssurance.parse(view.service.level_of_assurance.value)
        identity = self.login.current_identity(request)
        if identity is None or not identity.level.satisfies(level):
            return RedirectResponse(self.login.login_url(f"{PREVIEW_PATH}/{token}", level), 303)
        return identity

    def _is_subject(self, identity: Identity, view: _View) -> bool:
        mine, _ = edm_subjects(identity)
        return same_person(mine, view.subject, view.service.rules)

    def _record_not_the_subject(self, token: str) -> str | None:
        """Close the preview as answered ``EDM:ERR:0004``; where to send the user back (None: closed)."""
        with self.ctx.database.session(immediate=True) as session:
            try:
                row = self.previews.decide(session, token, accepted=None, decision=NOT_THE_SUBJECT)
            except PreviewClosed:
                return None
            return row.return_location

    async def _checked(self, request: Request, token: str) -> tuple[_View, Identity] | Response:
        """The open preview and its subject logged in; else the page or redirect to answer with."""
        view = await run_in_threadpool(self._load, token) if valid_token(token) else None
        if view is None:
            return self._closed(request)
        await self.login.ready()  # the login's key may still be read from the data directory: not on the loop
        identity = self._identity(request, token, view)
        if isinstance(identity, Response):
            return identity
        if not self._is_subject(identity, view):
            log.warning("preview: the person who logged in is not the request's subject; nothing shown")
            return self._someone_else(request, token, identity)
        return view, identity

    def _someone_else(self, request: Request, token: str, identity: Identity) -> Response:
        """The page for someone who is not the subject: log in again, or end the request (nothing is
        shown; the subject's name is not either)."""
        return self._render(
            request,
            "preview_someone_else.html",
            403,
            action=f"{PREVIEW_PATH}/{token}/someone-else",
            person=identity.subject.display_name,
        )

    # --- pages -------------------------------------------------------------------------------------
    async def css(self, request: Request) -> Response:
        return self._secured(Response(self._css, media_type="text/css"))

    async def page(self, request: Request) -> Response:
        token = request.path_params["token"]
        if request.method == "POST":  # PreviewMethod POST: the body is not ours to read
            query = f"?{request.url.query}" if request.url.query else ""
            return self._secured(RedirectResponse(request.url.path + query, 303))
        back = request.query_params.get(RETURN_PARAMETER)
        if back:

            def remember() -> None:
                with self.ctx.database.session(immediate=True) as session:
                    self.previews.remember_return(session, token, back)

            await run_in_threadpool(remember)
        checked = await self._checked(request, token)
        if isinstance(checked, Response):
            return checked
        view, identity = checked
        if view.decided:
            return self._secured(RedirectResponse(f"{PREVIEW_PATH}/{token}/done", 303))

        def shown() -> None:
            with self.ctx.database.session(immediate=True) as session:
                self.previews.shown(session, token)

        await run_in_threadpool(shown)
        return self._decision_page(request, token, view, identity)

    def _decision_page(
        self,
        request: Request,
        token: str,
        view: _View,
        identity: Identity,
        *,
        error: str | None = None,
        chosen: dict[int, str] | None = None,
        status: int = 200,
    ) -> Response:
        lang = self._lang(request)
        base = f"{PREVIEW_PATH}/{token}"
        documents = [
            {
                "position": d.position,
                "title": d.title,
                "annex": d.annex,
                "media_type": d.media_type,
                "label": _LABELS.get(d.media_type, d.media_type),
                "href": f"{base}/documents/{d.position}",
                "text": "" if d.media_type == "application/pdf" else _pretty(d),
            }
            for d in view.documents
        ]
        return self._render(
            request,
            "preview_page.html",
            status,
            documents=documents,
            action=f"{base}/decision",
            authority=view.service.authority.name_in(lang),
            person=identity.subject.display_name,
            deadline=view.deadline.strftime("%Y-%m-%d %H:%M UTC"),
            deadline_iso=view.deadline.isoformat(),
            error=translate(lang, error) if error else None,
            chosen=chosen or {},
        )

    async def document(self, request: Request) -> Response:
        token, n = request.path_params["token"], request.path_params["n"]
        checked = await self._checked(request, token)
        if isinstance(checked, Response):
            return checked
        view, _ = checked
        doc = next((d for d in view.documents if d.position == n), None)
        if doc is None:
            return self._closed(request)
        if doc.media_type == "application/pdf":
            response = Response(
                doc.content,
                media_type="application/pdf",
                headers={"Content-Disposition": f'inline; filename="{_safe_filename(doc.filename)}"'},
            )
        else:
            response = Response(_pretty(doc), media_type="text/plain; charset=utf-8")
        return self._secured(response, frame_ancestors="'self'")

    async def _posted(self, request: Request) -> dict[str, str] | Response:
        """The form posted with ``request``, or the page refusing it: a form not acceptable (see
        :func:`_small_form`), or one without this browser's CSRF token (expired: 403)."""
        form = await _small_form(request)
        if isinstance(form, int):
            return self._message(request, "The form was not acceptable.", [], form)
        cookie = request.cookies.get(self.csrf_cookie, "")
        sent = form.get("csrf")
        if not cookie or not isinstance(sent, str) or not hmac.compare_digest(cookie.encode(), sent.encode()):
            return self._message(request, "The form expired; please try again.", [], 403, back=None)
        return form

    async def decision(self, request: Request) -> Response:
        token = request.path_params["token"]
        form = await self._posted(request)
        if isinstance(form, Response):
            return form
        checked = await self._checked(request, token)
        if isinstance(checked, Response):
            return checked
        view, identity = checked
        chosen: dict[int, str] = {}
        for doc in view.documents:
            value = form.get(f"d{doc.position}")
            if value in ("accept", "refuse"):
                chosen[doc.position] = str(value)
        if len(chosen) != len(view.documents):
            return self._decision_page(
                request, token, view, identity, error="Please answer for every document.", chosen=chosen, status=422
            )
        accepted = [d.evidence_id for d in view.documents if chosen[d.position] == "accept"]

        def record() -> str | None:
            with self.ctx.database.session(immediate=True) as session:
                row = self.previews.decide(
                    session, token, accepted=accepted, decision="accepted" if accepted else "refused"
                )
                return row.return_location

        try:
            back = await run_in_threadpool(record)
        except PreviewClosed:
            return self._closed(request)
        target = allowed_return(back, self.previews.return_origins)
        if target:
            return self._secured(RedirectResponse(target, 303))
        return self._secured(RedirectResponse(f"{PREVIEW_PATH}/{token}/done", 303))

    async def someone_else(self, request: Request) -> Response:
        """The choice of someone who is not the subject: ``again`` (log out, log in again) or ``end``."""
        token = request.path_params["token"]
        form = await self._posted(request)
        if isinstance(form, Response):
            return form
        view = await run_in_threadpool(self._load, token) if valid_token(token) else None
        if view is None:
            return self._closed(request)
        await self.login.ready()  # the login's key may still be read from the data directory: not on the loop
        identity = self._identity(request, token, view)
        if isinstance(identity, Response):
            return identity
        page = f"{PREVIEW_PATH}/{token}"
        if self._is_subject(identity, view):  # the applicant after all: the documents are shown there
            return self._secured(RedirectResponse(page, 303))
        choice = form.get("choice")
        if choice == "again":
            level = LevelOfAssurance.parse(view.service.level_of_assurance.value)
            # out of our session, and the identity provider must ask again (it may keep its own session)
            response = RedirectResponse(self.login.login_url(page, level, again=True), 303)
            self.login.forget(response)
            return self._secured(response)
        if choice != "end":
            return self._message(request, "The form was not acceptable.", [], 400)
        log.warning("preview: the person who logged in is not the request's subject and ended the request")
        back = await run_in_threadpool(self._record_not_the_subject, token)
        target = allowed_return(back, self.previews.return_origins)
        if target:
            return self._secured(RedirectResponse(target, 303))
        return self._secured(RedirectResponse(f"{page}/done", 303))

    async def done(self, request: Request) -> Response:
        token = request.path_params["token"]

        def decided() -> tuple[str | None, str | None]:
            with self.ctx.database.session() as session:
                row = session.get(ProviderPreview, token_key(token)) if valid_token(token) else None
                return (None, None) if row is None else (row.decision, row.return_location)

        decision, back = await run_in_threadpool(decided)
        if decision is None:
            return self._closed(request)
        first = {
            "accepted": "The documents you accepted are sent to the procedure portal.",
            "refused": "You refused every document: none is sent.",
        }.get(decision, "Nothing is sent.")
        return self._message(
            request,
            "Your decision was recorded",
            [first, "You can close this page and go back to the procedure portal."],
            200,
            back=allowed_return(back, self.previews.return_origins),
        )


async def _small_form(request: Request) -> dict[str, str] | int:
    """The URL-encoded form of ``request`` (first value of each field), or the HTTP status refusing it:
    another content type or undecodable bytes (400), more than :data:`MAX_FORM_BYTES` whether or not a
    Content-Length announced it (413). Nothing larger is ever held in memory."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return 400
    try:
        if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
            return 413
    except ValueError:
        return 400
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return 413
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        return 400
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def _safe_filename(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "evidence"
