"""The test identity provider: OpenID Provider and SAML IdP over shipped test identities."""

from oots.eid.testidp.app import IdpConfig, create_idp_app
from oots.eid.testidp.people import TestPeople, TestSubject, load_people

__all__ = ["IdpConfig", "TestPeople", "TestSubject", "create_idp_app", "load_people"]
