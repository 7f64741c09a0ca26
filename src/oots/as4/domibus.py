"""Domibus mode: use an existing Domibus access point through its default WS plugin.

A node that already runs Domibus does not need the built-in access point: it submits messages to
Domibus and collects what Domibus received, over the plugin's SOAP 1.2 interface
(``WebServicePlugin.wsdl``, namespace ``http://eu.domibus.wsplugin/``):

* :class:`DomibusClient` — ``submitMessage``, ``listPendingMessages``, ``retrieveMessage``,
  ``markMessageAsDownloaded``, ``getStatus``, ``getMessageErrors``. Payloads travel inline (base64);
  the ebMS header is the ``eb:Messaging`` SOAP header of the plugin's own schema subset.
* :func:`push_app` — an ASGI endpoint for the plugin's push notifications (``BackendService.wsdl``,
  namespace ``eu.domibus``: ``receiveSuccess``, ``sendSuccess``, ``sendFailure``,
  ``messageStatusChange``, ``receiveFailure``, ``delete``, ``deleteBatch``); a notification only names a
  message id, so it triggers the same fetch as the sweep. It takes pushes only with a shared token
  and/or from allowed addresses.
* :func:`sweep` — the polling sweep behind the notifications: list pending, retrieve each without
  marking it, hand it to the application, then mark it downloaded. A crash between the hand-over and
  the mark means the message is fetched again: the application's hook must be idempotent on the
  message id (``oots.as4.store`` is: the message id is unique).

Domibus verifies signatures and decrypts before it lists a message, so what the hook receives here has
``via="domibus"`` as its provenance and no signer certificate of ours.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import ipaddress
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from oots import xmlsafe
from oots.as4.model import (
    CollaborationInfo,
    MessageInfo,
    PartInfo,
    Party,
    PartyId,
    PartyInfo,
    Payload,
    Property,
    Service,
    UserMessage,
)
from oots.errors import LocalProtocolError, OotsError, RemoteProtocolError, TransportError, XmlError
from oots.mediatypes import SOAP_XML
from oots.ns import DOMIBUS_BACKEND as BACKEND_NS
from oots.ns import DOMIBUS_WSPLUGIN as WS_NS
from oots.ns import EB as EBMS_NS
from oots.ns import S12 as SOAP_NS

__all__ = [
    "BACKEND_NS",
    "EBMS_NS",
    "MESSAGE_STATUSES",
    "SOAP_CONTENT_TYPE",
    "SOAP_NS",
    "WS_NS",
    "DomibusClient",
    "DomibusError",
    "DomibusMessage",
    "Notification",
    "UnusableMessage",
    "fetch",
    "messaging_from_user_message",
    "parse_notification",
    "push_app",
    "submit_request",
    "sweep",
    "user_message_from_messaging",
]

log = logging.getLogger(__name__)

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SOAP_CONTENT_TYPE = f"{SOAP_XML}; charset=utf-8"

#: Statuses of ``getStatus`` (the plugin's ``messageStatus`` enumeration).
MESSAGE_STATUSES = (
    "READY_TO_SEND", "READY_TO_PULL", "BEING_PULLED", "SEND_ENQUEUED", "SEND_IN_PROGRESS",
    "WAITING_FOR_RECEIPT", "ACKNOWLEDGED", "ACKNOWLEDGED_WITH_WARNING", "SEND_ATTEMPT_FAILED",
    "SEND_FAILURE", "NOT_FOUND", "WAITING_FOR_RETRY", "RECEIVED", "RECEIVED_WITH_WARNINGS", "DELETED",
    "DOWNLOADED",
)  # fmt: skip


class DomibusError(RemoteProtocolError):
    """Domibus answered with a SOAP fault; ``code`` is its ``FaultDetail/code`` (``WS_PLUGIN:0007``...)."""


class UnusableMessage(RemoteProtocolError):
    """A message Domibus received that this node can never keep (its header or a payload is not usable):
    fetching it again would fail again, so :func:`sweep` sets it aside."""


@dataclass(frozen=True, slots=True)
class DomibusMessage:
    """A message Domibus received and verified, as the application hook gets it."""

    user_message: UserMessage
    payloads: tuple[Payload, ...]
    via: str = "domibus"

    @property
    def message_id(self) -> str:
        return self.user_message.message_info.message_id


@dataclass(frozen=True, slots=True)
class Notification:
    """One push notification of the backend interface."""

    operation: str
    message_ids: tuple[str, ...]
    status: str | None = None


# -- the ebMS header subset of the plugin ------------------------------------------------------------


def _e(parent: etree._Element, ns: str | None, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ns}}}{tag}" if ns else tag)
    for k, v in attrs.items():
        el.set(k, v)
    if text is not None:
        el.text = text
    return el


def messaging_from_user_message(message: UserMessage, payloads: Sequence[Payload]) -> etree._Element:
    """The ``eb:Messaging`` header ``submitMessage`` takes for ``message`` (the plugin's schema subset)."""
    ns = EBMS_NS
    messaging = etree.Element(f"{{{ns}}}Messaging", nsmap={"eb": ns})
    um = _e(messaging, ns, "UserMessage")
    if message.mpc:
        um.set("mpc", message.mpc)
    info = _e(um, ns, "MessageInfo")
    _e(info, ns, "MessageId", message.message_info.message_id)
    if message.message_info.ref_to_message_id:
        _e(info, ns, "RefToMessageId", message.message_info.ref_to_message_id)
    pinfo = _e(um, ns, "PartyInfo")
    for tag, party in (("From", message.party_info.from_party), ("To", message.party_info.to_party)):
        el = _e(pinfo, ns, tag)
        pid = _e(el, ns, "PartyId", party.party_id.value)
        if party.party_id.type:
            pid.set("type", party.party_id.type)
        _e(el, ns, "Role", party.role)
    ci = message.collaboration_info
    collab = _e(um, ns, "CollaborationInfo")
    svc = _e(collab, ns, "Service", ci.service.value)
    if ci.service.type:
        svc.set("type", ci.service.type)
    _e(collab, ns, "Action", ci.action)
    _e(collab, ns, "ConversationId", ci.conversation_id)
    if message.message_properties:
        props = _e(um, ns, "MessageProperties")
        for p in message.message_properties:
            el = _e(props, ns, "Property", p.value, name=p.name)
            if p.type:
                el.set("type", p.type)
    if payloads:
        payload_info = _e(um, ns, "PayloadInfo")
        for payload in payloads:
            part = _e(payload_info, ns, "PartInfo", href=payload.href)
            part_props = _e(part, ns, "PartProperties")
            _e(part_props, ns, "Property", payload.mime_type, name="MimeType")
            for p in payload.properties:
                if p.name != "MimeType":
                    _e(part_props, ns, "Property", p.value, name=p.name)
    return messaging


def _find(el: etree._Element | None, *path: str) -> etree._Element | None:
    for tag in path:
        if el is None:
            return None
        el = el.find(f"{{{EBMS_NS}}}{tag}")
    return el


def _text(el: etree._Element | None, *path: str) -> str | None:
    found = _find(el, *path)
    return None if found is None or found.text is None else found.text.strip()


def _properties(el: etree._Element | None) -> tuple[Property, ...]:
    if el is None:
        return ()
    return tuple(
        Property(p.get("name", ""), (p.text or "").strip(), p.get("type")) for p in el.findall(f"{{{EBMS_NS}}}Property")
    )


def _party(el: etree._Element | None, what: str) -> Party:
    pid = _find(el, "PartyId")
    if pid is None:
        raise RemoteProtocolError(f"the Domibus header has no {what} PartyId", code="EBMS:0009")
    return Party(PartyId((pid.text or "").strip(), pid.get("type")), _text(el, "Role") or "")


def user_message_from_messaging(messaging: etree._Element, now: dt.datetime) -> UserMessage:
    """The :class:`UserMessage` of a ``retrieveMessage`` header (``now`` when Domibus gave no timestamp)."""
    um = _find(messaging, "UserMessage")
    if um is None:
        raise RemoteProtocolError("the Domibus answer has no UserMessage header", code="EBMS:0009")
    try:
        stamp_text = _text(um, "MessageInfo", "Timestamp")
        stamp = dt.datetime.fromisoformat(stamp_text) if stamp_text else now
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.UTC)
        service = _find(um, "CollaborationInfo", "Service")
        payload_info = _find(um, "PayloadInfo")
        parts = tuple(
            PartInfo(p.get("href", ""), _properties(_find(p, "PartProperties")))
            for p in ([] if payload_info is None else payload_info.findall(f"{{{EBMS_NS}}}PartInfo"))
        )
        return UserMessage(
            MessageInfo(_text(um, "MessageInfo", "MessageId") or "", stamp, _text(um, "MessageInfo", "RefToMessageId")),
            PartyInfo(_party(_find(um, "PartyInfo", "From"), "From"), _party(_find(um, "PartyInfo", "To"), "To")),
            CollaborationInfo(
                Service(
                    (service.text or "").strip() if service is not None else "",
                    service.get("type") if service is not None else None,
                ),
                _text(um, "CollaborationInfo", "Action") or "",
                _text(um, "CollaborationInfo", "ConversationId") or "",
            ),
            _properties(_find(um, "MessageProperties")),
            parts,
            um.get("mpc"),
        )
    except (ValueError, OotsError) as exc:
        message = exc.message if isinstance(exc, OotsError) else str(exc)
        raise UnusableMessage(f"the Domibus message header is not usable: {message}", code="EBMS:0009") from None


# -- SOAP plumbing -----------------------------------------------------------------------------------


def _envelope(body_el: etree._Element, header_el: etree._Element | None = None) -> bytes:
    env = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soap": SOAP_NS})
    header = etree.SubElement(env, f"{{{SOAP_NS}}}Header")
    if header_el is not None:
        header.append(header_el)
    body = etree.SubElement(env, f"{{{SOAP_NS}}}Body")
    body.append(body_el)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def _parse_envelope(data: bytes, max_bytes: int) -> tuple[etree._Element | None, etree._Element]:
    """(Header, first Body child) of a SOAP 1.2 envelope; a Fault becomes :class:`DomibusError`."""
    try:
        root = xmlsafe.parse(data, max_bytes=max_bytes)
    except XmlError as exc:
        raise RemoteProtocolError(f"Domibus answered with unusable XML: {exc.message}") from None
    if root.tag != f"{{{SOAP_NS}}}Envelope":
        raise RemoteProtocolError("Domibus answered with something that is not a SOAP 1.2 envelope")
    header = root.find(f"{{{SOAP_NS}}}Header")
    body = root.find(f"{{{SOAP_NS}}}Body")
    children = [c for c in body if isinstance(c.tag, str)] if body is not None else []
    if not children:
        raise RemoteProtocolError("the SOAP answer of Domibus has an empty Body")
    first = children[0]
    if first.tag == f"{{{SOAP_NS}}}Fault":
        raise _fault(first)
    return header, first


def _fault(fault: etree._Element) -> DomibusError:
    detail = fault.find(f".//{{{WS_NS}}}FaultDetail")
    if detail is None:
        detail = fault.find(f".//{{{BACKEND_NS}}}BackendFaultDetail")
    code = message = None
    if detail is not None:
        code = (detail.findtext("code") or "").strip() or None
        message = (detail.findtext("message") or "").strip() or None
    reason = fault.findtext(f"{{{SOAP_NS}}}Reason/{{{SOAP_NS}}}Text")
    return DomibusError(f"Domibus refused the request: {message or reason or 'no reason given'}", code=code)


def _payload_element(parent: etree._Element, tag: str, payload: Payload) -> None:
    el = _e(parent, None, tag, payloadId=payload.href, contentType=payload.mime_type)
    _e(el, None, "value", base64.b64encode(payload.data).decode("ascii"))


def submit_request(message: UserMessage, payloads: Sequence[Payload]) -> bytes:
    """The SOAP request of ``submitMessage`` for ``message`` (the ``eb:Messaging`` header, payloads inline)."""
    body = etree.Element(f"{{{WS_NS}}}submitRequest", nsmap={"ws": WS_NS})
    for payload in payloads:
        _payload_element(body, "payload", payload)
    return _envelope(body, messaging_from_user_message(message, payloads))


@dataclass
class DomibusClient:
    """A client of one Domibus WS plugin endpoint (``.../domibus/services/wsplugin``).

    Pass ``transport`` to route the calls elsewhere (tests pass an ``httpx.ASGITransport`` around a
    fake written from the WSDL); ``verify`` is an ``ssl.SSLContext`` (see ``oots.as4.http.tls_context``).
    """

    url: str
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 30.0
    max_answer_bytes: int = 100 * 1024 * 1024
    transport: httpx.BaseTransport | None = None
    verify: ssl.SSLContext | bool = True
    _client: httpx.Client | None = field(default=None, init=False, repr=False)

    def _http(self) -> httpx.Client:
        if self._client is None:
            auth = (self.username, self.password) if self.username else None
            self._client = httpx.Client(transport=self.transport, auth=auth, timeout=self.timeout, verify=self.verify)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> DomibusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self, body_el: etree._Element, header_el: etree._Element | None = None
    ) -> tuple[etree._Element | None, etree._Element]:
        return self._post(_envelope(body_el, header_el))

    def _post(self, data: bytes) -> tuple[etree._Element | None, etree._Element]:
        try:
            response = self._http().post(self.url, content=data, headers={"Content-Type": SOAP_CONTENT_TYPE})
        except httpx.HTTPError as exc:
            raise TransportError(f"cannot reach Domibus at {self.url}: {type(exc).__name__}") from None
        if response.status_code == 401:
            raise TransportError("Domibus refused the credentials (HTTP 401)")
        if not response.content:
            raise TransportError(f"Domibus answered HTTP {response.status_code} with an empty body")
        return _parse_envelope(response.content, self.max_answer_bytes)

    # -- the operations of the WSDL ------------------------------------------------------------------

    def submit_message(self, message: UserMessage, payloads: Sequence[Payload]) -> str:
        """``submitMessage``: hand ``message`` to Domibus for sending; returns the message id Domibus uses."""
        return self.submit_request(submit_request(message, payloads))

    def submit_request(self, request: bytes) -> str:
        """``submitMessage`` with a request made by :func:`submit_request` (kept in an outbox, sent later)."""
        _, answer = self._post(request)
        ids = [(e.text or "").strip() for e in answer.findall("messageID")]
        if not ids or not ids[0]:
            raise RemoteProtocolError("Domibus accepted the submission but returned no message id")
        return ids[0]

    def list_pending_messages(self, **filters: str) -> list[str]:
        """``listPendingMessages``: ids of received messages not yet downloaded (optional filters by name)."""
        body = etree.Element(f"{{{WS_NS}}}listPendingMessagesRequest", nsmap={"ws": WS_NS})
        for name in (
            "messageId",
            "conversationId",
            "refToMessageId",
            "fromPartyId",
            "finalRecipient",
            "originalSender",
        ):
            if name in filters:
                _e(body, None, name, filters[name])
        _, answer = self._call(body)
        return [(e.text or "").strip() for e in answer.findall("messageID") if (e.text or "").strip()]

    def retrieve_message(
        self, message_id: str, *, mark_as_downloaded: bool = False, now: dt.datetime | None = None
    ) -> DomibusMessage:
        """``retrieveMessage``: the header and payloads of one received message."""
        body = etree.Element(f"{{{WS_NS}}}retrieveMessageRequest", nsmap={"ws": WS_NS})
        body.set("markAsDownloaded", "true" if mark_as_downloaded else "false")
        _e(body, None, "messageID", message_id)
        header, answer = self._call(body)
        messaging = header.find(f"{{{EBMS_NS}}}Messaging") if header is not None else None
        if messaging is None:
            raise RemoteProtocolError(f"Domibus returned message {message_id} without its ebMS header")
        message = user_message_from_messaging(messaging, now or dt.datetime.now(dt.UTC))
        payloads = []
        for el in [*answer.findall("bodyload"), *answer.findall("payload")]:
            href = el.get("payloadId") or ""
            try:
                data = base64.b64decode((el.findtext("value") or "").encode("ascii"), validate=True)
            except (binascii.Error, ValueError):
                raise UnusableMessage(f"payload {href} of message {message_id} is not valid base64") from None
            content_id = href[4:] if href.startswith("cid:") else href
            part = message.part_info(content_id)
            declared = part.property("MimeType") if part else None
            mime = el.get("contentType") or (declared.value if declared else None)
            props = tuple(p for p in part.properties if p.name != "MimeType") if part else ()
            try:
                payloads.append(Payload(content_id, mime or "application/octet-stream", data, props))
            except LocalProtocolError as exc:
                raise UnusableMessage(f"payload {href} of message {message_id} is not usable: {exc.message}") from None
        return DomibusMessage(message, tuple(payloads))

    def mark_message_as_downloaded(self, message_id: str) -> None:
        body = etree.Element(f"{{{WS_NS}}}markMessageAsDownloadedRequest", nsmap={"ws": WS_NS})
        _e(body, None, "messageID", message_id)
        self._call(body)

    def get_status(self, message_id: str) -> str:
        """``getStatus``: one of :data:`MESSAGE_STATUSES` (``NOT_FOUND`` for an unknown id)."""
        body = etree.Element(f"{{{WS_NS}}}statusRequest", nsmap={"ws": WS_NS})
        _e(body, None, "messageID", message_id)
        _, answer = self._call(body)
        status = (answer.text or "").strip()
        if status not in MESSAGE_STATUSES:
            raise RemoteProtocolError(f"Domibus returned an unknown status {status!r}")
        return status

    def get_message_errors(self, message_id: str) -> list[tuple[str, str]]:
        """``getMessageErrors``: ``(domibusErrorCode, errorDetail)`` for each error of the message."""
        body = etree.Element(f"{{{WS_NS}}}getErrorsRequest", nsmap={"ws": WS_NS})
        _e(body, None, "messageID", message_id)
        _, answer = self._call(body)
        return [
            ((item.findtext("domibusErrorCode") or "").strip(), (item.findtext("errorDetail") or "").strip())
            for item in answer.findall("item")
        ]


# -- push notifications and the sweep ----------------------------------------------------------------

_NOTIFICATIONS = (
    "receiveSuccess",
    "receiveFailure",
    "sendSuccess",
    "sendFailure",
    "messageStatusChange",
    "delete",
    "deleteBatch",
)


def parse_notification(data: bytes) -> Notification:
    """Read one push notification (BackendService.wsdl); raises ``RemoteProtocolError`` on anything else."""
    _, body = _parse_envelope(data, 1024 * 1024)
    q = etree.QName(body)
    if q.namespace != BACKEND_NS or q.localname not in _NOTIFICATIONS:
        raise RemoteProtocolError(f"not a Domibus backend notification: {q.localname}")
    ids = tuple(
        (e.text or "").strip()
        for e in body
        if isinstance(e.tag, str) and etree.QName(e).localname in ("messageID", "messageIds")
    )
    status = body.findtext("messageStatus")
    return Notification(q.localname, tuple(i for i in ids if i), status.strip() if status else None)


def _empty_response(operation: str) -> bytes:
    return _envelope(etree.Element(f"{{{BACKEND_NS}}}{operation}Response", nsmap={"ns": BACKEND_NS}))


def _fault_response(code: str, message: str) -> bytes:
    fault = etree.Element(f"{{{SOAP_NS}}}Fault")
    c = _e(fault, SOAP_NS, "Code")
    _e(c, SOAP_NS, "Value", "soap:Receiver")
    r = _e(fault, SOAP_NS, "Reason")
    _e(r, SOAP_NS, "Text", message).set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    detail = _e(_e(fault, SOAP_NS, "Detail"), BACKEND_NS, "BackendFaultDetail")
    _e(detail, None, "code", code)
    _e(detail, None, "message", message)
    return _envelope(fault)


def _push_refusal(request: Request, token: bytes | None, networks: Sequence[_Network]) -> Response | None:
    """Why a push request is refused (a response to send), or ``None`` when it may come in."""
    if token is None and not networks:
        return _refused(403, "push notifications are not accepted: this node has no push token or addresses")
    if networks:
        try:
            source = ipaddress.ip_address(request.client.host if request.client else "")
        except ValueError:
            source = None
        if isinstance(source, ipaddress.IPv6Address) and source.ipv4_mapped is not None:
            source = source.ipv4_mapped  # an IPv4 peer on a dual-stack socket
        if source is None or not any(source in n for n in networks):
            return _refused(403, "push notifications are not accepted from this address")
    if token is not None:
        given = _push_credential(request)
        if given is None or not hmac.compare_digest(given, token):
            response = _refused(401, "a push notification needs the node's push token")
            response.headers["WWW-Authenticate"] = 'Basic realm="domibus push", charset="UTF-8"'
            return response
    return None


def _push_credential(request: Request) -> bytes | None:
    scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip().encode()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        return decoded.partition(b":")[2]
    query = request.query_params.get("token")
    return query.encode() if query is not None else None


def _refused(status: int, message: str) -> Response:
    log.info("push notification refused: %s", message)
    return Response(_fault_response("WS_PLUGIN:0001", message), status, media_type=SOAP_CONTENT_TYPE)


def push_app(
    on_notification: Callable[[Notification], Awaitable[None]],
    *,
    path: str = "/",
    max_bytes: int = 1024 * 1024,
    token: str | None = None,
    allow_from: Sequence[str] = (),
) -> Starlette:
    """An ASGI app Domibus' WS plugin pushes notifications to (set the plugin's push URL to it).

    Anyone who can reach it could make the node call Domibus again and again, so it takes a push only
    with ``token`` (``Authorization: Bearer <token>``, the password of basic auth, or ``?token=`` in
    the push URL for a sender that cannot add headers) and/or from an address in ``allow_from``
    (addresses or networks; the connection's address, a reverse proxy's if there is one). With neither,
    every push is refused (403): the sweep still collects the messages.
    """
    secret = token.encode() if token else None
    networks = tuple(ipaddress.ip_network(n, strict=False) for n in allow_from)

    async def endpoint(request: Request) -> Response:
        refusal = _push_refusal(request, secret, networks)
        if refusal is not None:
            return refusal
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                return Response(status_code=413)
        try:
            note = parse_notification(body)
            await on_notification(note)
        except OotsError as exc:
            log.warning("push notification refused (error id %s): %s", exc.error_id, exc.message)
            return Response(_fault_response("WS_PLUGIN:0001", exc.message), 500, media_type=SOAP_CONTENT_TYPE)
        return Response(_empty_response(note.operation), media_type=SOAP_CONTENT_TYPE)

    return Starlette(routes=[Route(path, endpoint, methods=["POST"])])


def fetch(client: DomibusClient, message_id: str, hand_over: Callable[[DomibusMessage], None]) -> None:
    """Retrieve one message, hand it over, then mark it downloaded (what a ``receiveSuccess`` push triggers)."""
    message = client.retrieve_message(message_id, mark_as_downloaded=False)
    hand_over(message)
    client.mark_message_as_downloaded(message_id)


def sweep(client: DomibusClient, hand_over: Callable[[DomibusMessage], None], *, limit: int | None = None) -> list[str]:
    """Fetch every pending message, hand it over, then mark it downloaded; return the ids handed over.

    ``hand_over`` must be idempotent on the message id (a crash before the mark fetches it again). A
    message that fails to fetch or to hand over stays pending for the next sweep; the others go on. A
    message that can never be kept (:class:`UnusableMessage`) is set aside: logged as an error and
    marked downloaded, so that it is not fetched again; it stays in Domibus for an operator to look at.
    """
    done: list[str] = []
    for message_id in client.list_pending_messages()[:limit]:
        try:
            fetch(client, message_id, hand_over)
        except UnusableMessage as exc:
            _set_aside(client, message_id, exc)
            continue
        except OotsError as exc:
            log.warning("Domibus message %s stays pending (error id %s): %s", message_id, exc.error_id, exc.message)
            continue
        done.append(message_id)
    return done


def _set_aside(client: DomibusClient, message_id: str, exc: UnusableMessage) -> None:
    log.error(
        "Domibus message %s cannot be kept and is set aside (error id %s): %s; it is marked downloaded "
        "and stays in Domibus, where an operator can look at it",
        message_id,
        exc.error_id,
        exc.message,
    )
    try:
        client.mark_message_as_downloaded(message_id)
    except OotsError as mark_exc:
        log.warning("Domibus message %s could not be marked downloaded (error id %s)", message_id, mark_exc.error_id)
