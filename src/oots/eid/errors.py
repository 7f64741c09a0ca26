"""Why a login was refused.

Both derive from :class:`oots.errors.SecurityError`; ``code`` is a short machine word (logged with the
error id, never with personal data), ``message`` a plain sentence for the person logging in.
"""

from __future__ import annotations

from oots.eid.identity import LevelOfAssurance
from oots.errors import SecurityError

__all__ = ["AssuranceTooLow", "LoginRefused"]


class LoginRefused(SecurityError):
    """A token, assertion, callback or session did not hold.

    ``code`` is one of: ``signature``, ``issuer``, ``audience``, ``expired``, ``not_yet_valid``,
    ``nonce``, ``state``, ``replay``, ``malformed``, ``algorithm``, ``provider`` (the provider
    answered with an error), ``assurance``, ``not_fresh`` (a login asked for again came back as an earlier one).
    """


class AssuranceTooLow(LoginRefused):
    """The login's level of assurance is below the level the service requires."""

    def __init__(self, got: LevelOfAssurance, required: LevelOfAssurance) -> None:
        super().__init__(
            f"You logged in at level of assurance {got.edm_value}, but this service needs at least "
            f"{required.edm_value}. Please log in again with a means of identification at level "
            f"{required.edm_value} or higher.",
            code="assurance",
        )
        self.got = got
        self.required = required
