"""AS4 over HTTP: the receiving endpoint (ASGI, Starlette) and the sender (httpx).

The endpoint reads the raw body (refusing more than ``max_bytes`` while it reads), runs the receive
pipeline of :mod:`oots.as4.msh` off the event loop, has the :class:`Inbox` keep what must be kept
(the message, its receipt and its delivery job, in one transaction) and only then answers — with the
signed receipt, or the ebMS error. If the inbox cannot keep the message, the answer is
``EBMS:0202 DeliveryFailure`` and no receipt: the sender will retry.

:class:`HttpSender` posts a packed message and returns the synchronous answer; connection failures,
timeouts and TLS failures become :class:`oots.errors.TransportError` (foreign exceptions are translated
here, at the boundary). TLS uses the system's or a given CA bundle, with an optional client certificate
for mutual TLS.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from oots.as4.errors import EbmsError
from oots.as4.msh import (
    Inbound,
    InboundRecord,
    PriorReceipt,
    Receiver,
    SendRequest,
    check_same_sender,
    error_answer,
    receive,
)
from oots.errors import ConfigError, OotsError, TransportError
from oots.threads import run_in_thread

__all__ = [
    "DEFAULT_PATH",
    "HttpReply",
    "HttpSender",
    "Inbox",
    "as4_app",
    "as4_routes",
    "handle_request",
    "tls_context",
]

#: httpx's (private) method that picks the transport for a URL; without it a post takes the client's way.
_TRANSPORT_PICKER = "_transport_for_url"

log = logging.getLogger(__name__)

DEFAULT_PATH = "/as4"


class Inbox(Protocol):
    """Where received messages are kept (``oots.as4.store.As4Store`` is the durable one)."""

    def seen(self, message_id: str) -> PriorReceipt | None:
        """The receipt given the first time ``message_id`` was received, if it was."""
        ...

    def accept(self, record: InboundRecord) -> PriorReceipt | None:
        """Keep ``record`` and queue its delivery, durably, before the receipt is sent.

        When its message id was kept before, keep nothing and return the receipt given then (the
        endpoint answers with it): this is the duplicate check of the endpoint, so the pipeline does
        not ask :meth:`seen` first. An inbox may instead raise for a duplicate; the caller then
        answers from :meth:`seen`.
        """
        ...


def handle_request(receiver: Receiver, inbox: Inbox, content_type: str, body: bytes, now: dt.datetime) -> Inbound:
    """Run the pipeline and keep the message before answering (blocking: call it off the event loop)."""
    answer = receive(receiver, content_type, body, now)
    if answer.record is None:
        return answer
    try:
        prior = inbox.accept(answer.record)
    except OotsError as exc:
        prior = inbox.seen(answer.record.message.message_id)
        if prior is None:
            return _not_kept(receiver, answer, exc, now)
    if prior is not None:  # kept before (a replay, or a concurrent copy kept first): its first receipt
        try:
            check_same_sender(prior, answer.record.message)
        except OotsError as exc:  # the id of another partner's message: nothing kept, no receipt
            return error_answer(receiver, exc, answer.message_id, now)
        return Inbound(200, prior.content_type, prior.receipt, duplicate_of=prior, message_id=answer.message_id)
    return answer


def _not_kept(receiver: Receiver, answer: Inbound, exc: OotsError, now: dt.datetime) -> Inbound:
    """``EBMS:0202`` and no receipt: the message could not be kept, so the sender must send it again."""
    log.error("AS4 message %s could not be kept (error id %s): %s", answer.message_id, exc.error_id, exc.message)
    error = EbmsError.DELIVERY_FAILURE.to_error(
        ref_to_message_in_error=answer.message_id,
        detail=f"the message could not be stored (error id {exc.error_id})",
    )
    packed = receiver.codec.pack_errors([error], answer.message_id, receiver.new_message_id(), now)
    return Inbound(200, packed.content_type, packed.body, error=error, message_id=answer.message_id)


def as4_routes(
    receiver: Callable[[], Receiver],
    inbox: Inbox,
    *,
    clock: Callable[[], dt.datetime],
    max_bytes: int,
    path: str = DEFAULT_PATH,
) -> list[Route]:
    """The routes of the AS4 endpoint: ``POST path`` and ``GET path/health``. ``receiver`` is called
    per request so that PModes can be reloaded; ``clock`` gives the time certificates are checked at."""

    async def health(request: Request) -> Response:
        return Response("ok\n", media_type="text/plain")

    endpoint = _Endpoint(receiver, inbox, clock, max_bytes)
    return [Route(path, endpoint, methods=["POST"]), Route(path + "/health", health, methods=["GET"])]


class _Endpoint:
    """``POST`` of the AS4 endpoint, a plain ASGI application (no Starlette request or response objects:
    the message is read whole and answered with one body, which is all an AS4 post is).

    Refuses a message over ``max_bytes`` (declared, or while it is read) with 413, answers a client that
    hung up mid-upload with 400 (nothing was kept: it sends again), and otherwise runs
    :func:`handle_request` off the event loop and sends its answer.
    """

    def __init__(
        self, receiver: Callable[[], Receiver], inbox: Inbox, clock: Callable[[], dt.datetime], max_bytes: int
    ) -> None:
        self.receiver = receiver
        self.inbox = inbox
        self.clock = clock
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared: bytes | None = None
        content_type = ""
        for name, value in scope["headers"]:  # ASGI header names are lower case; the first of each counts
            if name == b"content-length" and declared is None:
                declared = value
            elif name == b"content-type" and not content_type:
                content_type = value.decode("latin-1")
        too_large = f"the message is larger than {self.max_bytes} bytes\n".encode()
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _answer(send, 413, too_large, _TEXT)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect
                # The sender hung up before its message was whole: nothing was kept, it sends again.
                log.warning("AS4 request abandoned by the client after %d bytes; nothing was kept", size)
                return await _answer(send, 400, b"the message was not received whole\n", _TEXT)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await _answer(send, 413, too_large, _TEXT)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        answer = await run_in_thread(handle_request, self.receiver(), self.inbox, content_type, body, self.clock())
        if answer.error is not None:
            log.info("AS4 message %s refused: %s", answer.message_id, answer.error.error_code)
        elif answer.duplicate_of is not None:
            log.info("AS4 message %s is a duplicate; its first receipt was sent again", answer.message_id)
        await _answer(send, answer.status, answer.body, answer.content_type.encode("latin-1"))


_TEXT = b"text/plain; charset=utf-8"


async def _answer(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-length", str(len(body)).encode("ascii")), (b"content-type", content_type)]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def as4_app(
    receiver: Callable[[], Receiver],
    inbox: Inbox,
    *,
    clock: Callable[[], dt.datetime],
    max_bytes: int,
    path: str = DEFAULT_PATH,
) -> Starlette:
    """The AS4 endpoint as an ASGI app of its own (see :func:`as4_routes`)."""
    return Starlette(routes=as4_routes(receiver, inbox, clock=clock, max_bytes=max_bytes, path=path))


def tls_context(ca_file: Path | None, client_certificate: Path | None, client_key: Path | None) -> ssl.SSLContext:
    """TLS 1.2 or later, the system's CAs or ``ca_file``, and a client certificate for mutual TLS."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if client_certificate is not None:
            context.load_cert_chain(str(client_certificate), str(client_key) if client_key else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot set up TLS (CA file {ca_file}, client certificate {client_certificate}): {exc}"
        ) from None
    return context


@dataclass(frozen=True, slots=True)
class HttpReply:
    """The synchronous answer to a send."""

    status: int
    content_type: str
    body: bytes = field(repr=False)


@dataclass
class HttpSender:
    """Posts AS4 messages with httpx (one connection pool, reused; thread-safe)."""

    timeout: float = 60.0
    connect_timeout: float = 10.0
    ca_file: Path | None = None
    client_certificate: Path | None = None
    client_key: Path | None = None
    max_answer_bytes: int = 16 * 1024 * 1024
    transport: httpx.BaseTransport | None = None
    _client: httpx.Client | None = field(default=None, init=False, repr=False)

    def _http(self) -> httpx.Client:
        if self._client is None:
            verify = tls_context(self.ca_file, self.client_certificate, self.client_key)
            # Keep-alive connections, one pool for every thread; TCP_NODELAY so that the small last
            # segment of a request is not held back waiting for the acknowledgement of the one before.
            transport = self.transport or httpx.HTTPTransport(
                verify=verify, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
            )
            self._client = httpx.Client(
                transport=transport,
                timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
                verify=verify,
                follow_redirects=False,
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def post(self, request: SendRequest) -> HttpReply:
        """POST ``request``; the answer of any HTTP status is returned, network failures raise TransportError.

        The request is built by the client (its headers and timeouts) and handed to its transport
        directly: the client's own layers (authentication, redirects, cookies, event hooks) have
        nothing to do for an AS4 post (no redirects are followed) and cost a sixth of a post's CPU."""
        headers = {"Content-Type": request.content_type, "MIME-Version": "1.0"}
        client = self._http()
        try:
            built = client.build_request("POST", request.url, content=request.body, headers=headers)
            # the transport the client itself would pick for this URL (a proxy's, when the environment
            # names one; else the pool's); httpx has no public name for it, so a version without this
            # one goes the client's whole way
            pick = getattr(client, _TRANSPORT_PICKER, None)
            response = (
                pick(built.url).handle_request(built)
                if pick is not None
                else client.send(built, stream=True, follow_redirects=False)
            )
            try:
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self.max_answer_bytes:
                        raise TransportError(
                            f"the answer from {request.url} is larger than {self.max_answer_bytes} bytes"
                        )
                return HttpReply(response.status_code, response.headers.get("content-type", ""), body)
            finally:
                response.close()
        except httpx.TimeoutException:
            raise TransportError(f"no answer from {request.url} in time") from None
        except httpx.HTTPError as exc:
            raise TransportError(f"cannot send to {request.url}: {type(exc).__name__}: {exc}") from None
