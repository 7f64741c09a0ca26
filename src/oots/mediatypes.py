"""The media types the protocols name, in one place (as :mod:`oots.ns` holds their XML namespaces).

Below both the AS4 code and the validator: importing it loads nothing else (``oots validate`` must not
load ``oots.as4``, which brings ``cryptography``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["GZIP", "REGREP_MIME_TYPE", "SOAP_XML"]

#: The media type of an OOTS RegRep document: the first payload of an OOTS AS4 message (the TDD samples,
#: the Domibus captures) and the answers of the common services' RegRep REST interface.
REGREP_MIME_TYPE: Final = "application/x-ebrs+xml"
#: The one ``CompressionType`` of AS4 (eDelivery AS4 1.15 profile, 1.4.4.6): a GZIP member (RFC 1952).
GZIP: Final = "application/gzip"
#: SOAP 1.2 (RFC 3902): an AS4 message's envelope, its root MIME part.
SOAP_XML: Final = "application/soap+xml"
