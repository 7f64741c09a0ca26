"""Every XML namespace oots reads or writes, in one place, named as the specifications name them."""

from __future__ import annotations

from typing import Final

# OASIS ebXML RegRep 4.0
QUERY: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:query:4.0"
RIM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:4.0"
RS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:4.0"
LCM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:4.0"
SPI: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:spi:4.0"
# OOTS SDG metadata profile
SDG: Final = "http://data.europa.eu/p4s"
# W3C and friends
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
XLINK: Final = "http://www.w3.org/1999/xlink"
XML: Final = "http://www.w3.org/XML/1998/namespace"
DS: Final = "http://www.w3.org/2000/09/xmldsig#"
XENC: Final = "http://www.w3.org/2001/04/xmlenc#"
XENC11: Final = "http://www.w3.org/2009/xmlenc11#"
EC: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
# SOAP 1.2, ebMS 3, WS-Security
S12: Final = "http://www.w3.org/2003/05/soap-envelope"
EB: Final = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"
EBBP: Final = "http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0"
WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSSE11: Final = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
WSU: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
# Domibus WS plugin (Domibus 5.1): the plugin's interface, and the backend it pushes messages to
DOMIBUS_WSPLUGIN: Final = "http://eu.domibus.wsplugin/"
DOMIBUS_BACKEND: Final = "eu.domibus"
# SAML 2.0
SAML: Final = "urn:oasis:names:tc:SAML:2.0:assertion"
SAMLP: Final = "urn:oasis:names:tc:SAML:2.0:protocol"

#: Conventional prefixes, used when oots writes XML.
PREFIXES: Final[dict[str, str]] = {
    "query": QUERY,
    "rim": RIM,
    "rs": RS,
    "lcm": LCM,
    "sdg": SDG,
    "xsi": XSI,
    "xlink": XLINK,
    "ds": DS,
    "xenc": XENC,
    "xenc11": XENC11,
    "ec": EC,
    "env": S12,
    "eb": EB,
    "ebbp": EBBP,
    "wsse": WSSE,
    "wsse11": WSSE11,
    "wsu": WSU,
}
