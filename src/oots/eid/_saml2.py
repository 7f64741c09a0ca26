"""pysaml2, imported once, quietly.

pysaml2 imports a cipher mode that cryptography has deprecated (a warning at import, which our tests
turn into errors), and it logs whole messages, personal data included, at DEBUG level. This module
imports what oots uses with that warning silenced, and :func:`quiet_saml2_logging` keeps pysaml2's
loggers at WARNING or above.
"""

from __future__ import annotations

import logging
import warnings

from cryptography.utils import CryptographyDeprecationWarning

with warnings.catch_warnings():
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, SAMLError
    from saml2.client import Saml2Client
    from saml2.config import IdPConfig, SPConfig
    from saml2.metadata import entity_descriptor, sign_entity_descriptor
    from saml2.response import StatusError, UnsolicitedResponse
    from saml2.s_utils import UnravelError
    from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT, NameID
    from saml2.server import Server
    from saml2.sigver import SignatureError, SigverError, security_context
    from saml2.validate import ResponseLifetimeExceed, ToEarly
    from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

__all__ = [
    "BINDING_HTTP_POST",
    "BINDING_HTTP_REDIRECT",
    "DIGEST_SHA256",
    "NAMEID_FORMAT_PERSISTENT",
    "NAMEID_FORMAT_TRANSIENT",
    "NAME_FORMAT_URI",
    "SIG_RSA_SHA256",
    "IdPConfig",
    "NameID",
    "ResponseLifetimeExceed",
    "SAMLError",
    "SPConfig",
    "Saml2Client",
    "Server",
    "SignatureError",
    "SigverError",
    "StatusError",
    "ToEarly",
    "UnravelError",
    "UnsolicitedResponse",
    "entity_descriptor",
    "quiet_saml2_logging",
    "security_context",
    "sign_entity_descriptor",
]


def quiet_saml2_logging() -> None:
    """Keep pysaml2 from logging messages (and the personal data in them) below WARNING.

    Only when nobody set the ``saml2`` logger's level: an operator debugging SAML may set it on purpose.
    """
    logger = logging.getLogger("saml2")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
