"""A fake Domibus WS plugin, written from WebServicePlugin.wsdl and its XSDs (no Domibus runs here).

Every request body and header is validated against the plugin's own schemas from the specification
kit, so the client cannot drift from the WSDL. Messages it "received" from the network are injected
with :meth:`FakeDomibus.inject`; submitted messages are kept in :attr:`FakeDomibus.submitted`.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WS = "http://eu.domibus.wsplugin/"
EB = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"


def plugin_schema(spec_dir: Path) -> etree.XMLSchema:
    d = (spec_dir / "domibus-ws-plugin" / "web_service_plugin").as_uri()
    wrapper = f"""<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:fake:wrapper">
      <xsd:import namespace="http://www.w3.org/2005/05/xmlmime" schemaLocation="{d}/xmlmime.xsd"/>
      <xsd:import namespace="http://www.w3.org/XML/1998/namespace" schemaLocation="{d}/xml.xsd"/>
      <xsd:import namespace="{WS}" schemaLocation="{d}/webservicePlugin-body.xsd"/>
      <xsd:import namespace="{EB}" schemaLocation="{d}/webservicePlugin-header.xsd"/>
    </xsd:schema>"""
    return etree.XMLSchema(etree.fromstring(wrapper.encode()))


@dataclass
class Stored:
    messaging: etree._Element
    payloads: list[tuple[str, str, bytes]]
    status: str
    downloaded: bool = False


@dataclass
class FakeDomibus:
    schema: etree.XMLSchema
    username: str = "admin"
    password: str = "secret"
    submitted: dict[str, Stored] = field(default_factory=dict)
    received: dict[str, Stored] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    fail_retrieve: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- test helpers -------------------------------------------------------------------------------
    def inject(self, messaging: etree._Element, payloads: list[tuple[str, str, bytes]]) -> str:
        """A message as if it had come in over AS4 (Domibus verified and decrypted it)."""
        message_id = messaging.findtext(f".//{{{EB}}}MessageId")
        assert message_id
        self.received[message_id] = Stored(messaging, payloads, "RECEIVED")
        return message_id

    # -- SOAP --------------------------------------------------------------------------------------
    @staticmethod
    def envelope(body: etree._Element, header: etree._Element | None = None) -> bytes:
        env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"env": SOAP})
        h = etree.SubElement(env, f"{{{SOAP}}}Header")
        if header is not None:
            h.append(header)
        etree.SubElement(env, f"{{{SOAP}}}Body").append(body)
        return etree.tostring(env)

    def fault(self, code: str, message: str) -> Response:
        fault = etree.Element(f"{{{SOAP}}}Fault")
        c = etree.SubElement(fault, f"{{{SOAP}}}Code")
        etree.SubElement(c, f"{{{SOAP}}}Value").text = "env:Sender"
        r = etree.SubElement(fault, f"{{{SOAP}}}Reason")
        etree.SubElement(r, f"{{{SOAP}}}Text").text = message
        detail = etree.SubElement(etree.SubElement(fault, f"{{{SOAP}}}Detail"), f"{{{WS}}}FaultDetail")
        etree.SubElement(detail, "code").text = code
        etree.SubElement(detail, "message").text = message
        return Response(self.envelope(fault), 500, media_type="application/soap+xml")

    def ok(self, body: etree._Element, header: etree._Element | None = None) -> Response:
        return Response(self.envelope(body, header), media_type="application/soap+xml")

    def element(self, tag: str, *children: tuple[str, str]) -> etree._Element:
        el = etree.Element(f"{{{WS}}}{tag}", nsmap={"ns": WS})
        for name, text in children:
            etree.SubElement(el, name).text = text
        return el

    async def endpoint(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if auth != expected:
            return Response(status_code=401)
        root = etree.fromstring(await request.body())
        header = root.find(f"{{{SOAP}}}Header")
        body = next(iter(root.find(f"{{{SOAP}}}Body")))
        messaging = header.find(f"{{{EB}}}Messaging") if header is not None else None
        for el in (body, messaging):
            if el is not None and not self.schema.validate(el):
                return self.fault("WS_PLUGIN:0001", f"invalid request: {self.schema.error_log.last_error}")
        op = etree.QName(body).localname
        self.calls.append(op)
        ids = [e.text or "" for e in body.findall("messageID")]
        if op == "submitRequest":
            assert messaging is not None
            message_id = messaging.findtext(f".//{{{EB}}}MessageId") or f"{next(self._ids)}@domibus.test"
            hrefs = {p.get("href") for p in messaging.iter(f"{{{EB}}}PartInfo")}
            payloads = [
                (p.get("payloadId") or "", p.get("contentType") or "", base64.b64decode(p.findtext("value") or ""))
                for p in body.findall("payload")
            ]
            if {p[0] for p in payloads} != hrefs:
                return self.fault("WS_PLUGIN:0005", "payloads do not match PayloadInfo")
            self.submitted[message_id] = Stored(messaging, payloads, "SEND_ENQUEUED")
            return self.ok(self.element("submitResponse", ("messageID", message_id)))
        if op == "listPendingMessagesRequest":
            pending = [i for i, m in self.received.items() if not m.downloaded]
            return self.ok(self.element("listPendingMessagesResponse", *(("messageID", i) for i in pending)))
        if op == "retrieveMessageRequest":
            stored = self.received.get(ids[0])
            if stored is None or ids[0] in self.fail_retrieve:
                return self.fault("WS_PLUGIN:0007", f"message {ids[0]} not found")
            if body.get("markAsDownloaded", "true") == "true":
                stored.downloaded = True
            answer = self.element("retrieveMessageResponse")
            for href, ctype, data in stored.payloads:
                p = etree.SubElement(answer, "payload", payloadId=href, contentType=ctype)
                etree.SubElement(p, "value").text = base64.b64encode(data).decode()
            return self.ok(answer, stored.messaging)
        if op == "markMessageAsDownloadedRequest":
            stored = self.received.get(ids[0])
            if stored is None:
                return self.fault("WS_PLUGIN:0007", f"message {ids[0]} not found")
            stored.downloaded = True
            stored.status = "DOWNLOADED"
            return self.ok(self.element("markMessageAsDownloadedResponse", ("messageID", ids[0])))
        if op == "statusRequest":
            stored = self.submitted.get(ids[0]) or self.received.get(ids[0])
            el = etree.Element(f"{{{WS}}}getStatusResponse")
            el.text = stored.status if stored else "NOT_FOUND"
            return self.ok(el)
        if op == "getErrorsRequest":
            answer = self.element("getMessageErrorsResponse")
            stored = self.submitted.get(ids[0])
            if stored is not None and stored.status == "SEND_FAILURE":
                item = etree.SubElement(answer, "item")
                etree.SubElement(item, "domibusErrorCode").text = "EBMS_0301"
                etree.SubElement(item, "errorDetail").text = "no receipt"
            return self.ok(answer)
        return self.fault("WS_PLUGIN:0001", f"operation {op} is not implemented by the fake")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/domibus/services/wsplugin", self.endpoint, methods=["POST"])])
