"""The test identity provider: OpenID Provider and SAML IdP over shipped test identities."""

from typing import TYPE_CHECKING, Any

from oots.eid.testidp.people import TestPeople, TestSubject, load_people

if TYPE_CHECKING:
    from oots.eid.testidp.app import IdpConfig, create_idp_app

__all__ = ["IdpConfig", "TestPeople", "TestSubject", "create_idp_app", "load_people"]


def __getattr__(name: str) -> Any:
    # the identity provider's app (and pysaml2 with it) only where it is served, not in every process
    # that reads the test people (``oots demo``'s command module is imported by every ``oots`` command)
    if name in ("IdpConfig", "create_idp_app"):
        from oots.eid.testidp import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
