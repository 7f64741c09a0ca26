"""eID login: OpenID Connect and SAML 2.0 (eIDAS) relying parties delivering one typed identity.

* :mod:`oots.eid.identity` — :class:`Identity`, :class:`NaturalPerson`, :class:`LegalPerson`,
  :class:`LevelOfAssurance` (the eIDAS minimum data sets and levels);
* :mod:`oots.eid.oidc` — authorization-code flow with PKCE, ID token verification;
* :mod:`oots.eid.saml` — SAML service provider with the eIDAS attribute profile (pysaml2, xmlsec1);
* :mod:`oots.eid.edm_mapping` — the identity as ``sdg:Person`` / ``sdg:LegalPerson``;
* :mod:`oots.eid.web` — :class:`EidLogin`, the mountable login component for Starlette/FastAPI;
* :mod:`oots.eid.role` — :class:`EidRole`, eID as a role of a node (``context.services["eid"]``);
* :mod:`oots.eid.testidp` — the test identity provider (``oots eid serve``).
"""

from typing import TYPE_CHECKING, Any

from oots.eid.edm_mapping import edm_subjects
from oots.eid.errors import AssuranceTooLow, LoginRefused
from oots.eid.identity import (
    Address,
    Gender,
    Identity,
    LegalPerson,
    LevelOfAssurance,
    NaturalPerson,
    Subject,
)
from oots.eid.oidc import OidcClient, ProviderMetadata, verify_id_token
from oots.eid.role import EidRole
from oots.eid.web import EidLogin

if TYPE_CHECKING:
    from oots.eid.saml import SamlServiceProvider

__all__ = [
    "Address",
    "AssuranceTooLow",
    "EidLogin",
    "EidRole",
    "Gender",
    "Identity",
    "LegalPerson",
    "LevelOfAssurance",
    "LoginRefused",
    "NaturalPerson",
    "OidcClient",
    "ProviderMetadata",
    "SamlServiceProvider",
    "Subject",
    "edm_subjects",
    "verify_id_token",
]


def __getattr__(name: str) -> Any:
    # pysaml2 is imported with the SAML service provider, not with every node that logs in with OIDC
    if name == "SamlServiceProvider":
        from oots.eid.saml import SamlServiceProvider

        return SamlServiceProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
