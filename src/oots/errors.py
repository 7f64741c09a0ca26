"""The one exception tree of oots.

Every error the package raises on purpose derives from :class:`OotsError`. Each boundary has a
single mapper from this tree to its own vocabulary: the CLI to an exit code and a sentence, the AS4
receiver to an ebMS error, the evidence provider to an EDM error response, the web layers to an HTTP
problem. Users see ``error_id`` and a plain sentence; the log carries the same id.

::

    OotsError
    ├── ConfigError                  a settings file or value is wrong (path + reason)
    ├── XmlError                     input is not acceptable XML (hostile, malformed, too large)
    ├── ModelError                   an XML or JSON document does not map onto the EDM model
    ├── ValidationFailed             a document broke rules (carries the findings)
    ├── ProtocolError                a wire protocol was broken
    │   ├── LocalProtocolError       ... by us (a bug or a misuse of the API)
    │   └── RemoteProtocolError      ... by the peer (its message is wrong)
    ├── SecurityError                a signature, certificate, token or key did not hold
    │   └── CertificateNotValid      ... a partner's certificate is expired or not valid yet (not retried)
    ├── TransportError               the network failed (connect, timeout, TLS, HTTP status)
    │   └── RegisterError            an evidence provider's register failed or timed out
    │       └── RegisterUnavailable  ... could not be loaded (unreachable at start, a bad row)
    ├── StoreError                   the database failed or is at the wrong schema
    │   ├── StoreUnavailable         ... cannot be reached (down, refusing connections, file unreadable)
    │   └── LeaseExpired             ... a queue job's worker never finished it (killed mid-job)
    └── NotFound                     a named thing (exchange, job, party, data service) does not exist
"""

from __future__ import annotations

import traceback
import uuid

__all__ = [
    "CertificateNotValid",
    "ConfigError",
    "LeaseExpired",
    "LocalProtocolError",
    "ModelError",
    "NotFound",
    "OotsError",
    "ProtocolError",
    "RegisterError",
    "RegisterUnavailable",
    "RemoteProtocolError",
    "SecurityError",
    "StoreError",
    "StoreUnavailable",
    "TransportError",
    "ValidationFailed",
    "XmlError",
    "error_text",
    "exception_text",
]


class OotsError(Exception):
    """Root of every error oots raises on purpose.

    ``message`` is a plain sentence a user can read; ``error_id`` is a short random id that is shown
    to the user and written to the log, so the two can be matched without logging personal data.
    """

    #: Exit code the command line uses for this kind of error.
    exit_code: int = 1
    #: False when doing the same again fails the same way until an operator changes something (a
    #: certificate, a setting): the work queue then dead-letters the job at once instead of retrying it.
    retryable: bool = True

    def __init__(self, message: str, *, error_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_id = error_id or uuid.uuid4().hex[:12]

    def __str__(self) -> str:
        return self.message


class ConfigError(OotsError):
    """A configuration file or value is wrong. ``problems`` lists each one as ``(path, reason)``."""

    exit_code = 2

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class XmlError(OotsError):
    """The input is not acceptable XML: malformed, hostile (DTD, entities) or over a size limit."""

    exit_code = 2


class ModelError(OotsError):
    """A document is well-formed but does not map onto the exchange data model."""


class ValidationFailed(OotsError):
    """A document broke one or more rules; ``findings`` holds them (rule ids, severities, locations)."""

    def __init__(self, message: str, findings: list[object] | None = None) -> None:
        super().__init__(message)
        self.findings = findings or []


class ProtocolError(OotsError):
    """A wire protocol (ebMS/AS4, RegRep, OIDC, SAML) was broken.

    ``code`` is the protocol's own error code where it has one (``EBMS:0004``, ``EDM:ERR:0003``).
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class LocalProtocolError(ProtocolError):
    """We were about to break the protocol: a bug or a misuse of the API."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol: its message is wrong."""


class SecurityError(OotsError):
    """A signature, digest, certificate, token or key did not hold. ``code`` as for ProtocolError."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class CertificateNotValid(SecurityError):
    """A partner's certificate is expired or not valid yet at the time of use: nothing can be sent to the
    partner until an operator configures a valid one. Not retryable: a job that meets it is dead-lettered
    at once (requeued by the operator once the certificate is replaced)."""

    retryable = False


class TransportError(OotsError):
    """The network failed: connection refused, timeout, TLS failure or an unexpected HTTP status."""


class RegisterError(TransportError):
    """A register behind a data service failed: unreachable, an error status, an unreadable answer.

    ``timeout`` is true when it did not answer in time. The evidence provider answers ``EDM:ERR:0005``
    for a timeout and ``EDM:ERR:0008`` otherwise. The message names the register, never a person.
    """

    def __init__(self, message: str, *, register: str = "", timeout: bool = False) -> None:
        super().__init__(message)
        self.register = register
        self.timeout = timeout


class RegisterUnavailable(RegisterError):
    """A register could not be loaded (its database unreachable, a bad row in its file): its data
    services answer ``EDM:ERR:0008`` until it loads, which the node tries again by itself."""


class StoreError(OotsError):
    """The database failed, or is at a schema version this code does not know."""


class StoreUnavailable(StoreError):
    """The database cannot be reached: down, refusing connections, or its file unreadable (retry later)."""


class LeaseExpired(StoreError):
    """A queue job's lease ran out before its worker finished it (the worker was killed or hung mid-job).

    What the kind's ``on_dead`` hook is told when that happened on the job's last attempt: the job is
    dead-lettered by the next claim, with this message as its last error."""


class NotFound(OotsError):
    """A named thing does not exist (an exchange, a job, a partner, a data service)."""


def error_text(exc: BaseException) -> str:
    """``Type: message`` of an error of oots, only the type of any other exception: what may be logged or
    stored (a job's ``last_error``, a failed delivery's reason). Messages of this tree name registers,
    rules, fields and ids, never a person; a foreign exception's message may quote the data it choked on
    (a ``KeyError`` quotes the key, a driver error the row)."""
    if isinstance(exc, OotsError):
        return f"{type(exc).__name__}: {exc.message}"
    return type(exc).__name__


def exception_text(exc: BaseException, *, messages: bool = True) -> str:
    """What may be logged of an exception: for it and each exception it was raised from or while
    handling, :func:`error_text` (only the type, without ``messages``) and the places it was raised
    through (``file:line in function``, innermost last). A foreign exception's message, and a
    traceback's source lines, may spell out the data it choked on, so neither is written."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = traceback.extract_tb(current.__traceback__)
        places = " > ".join(f"{f.filename}:{f.lineno} in {f.name}" for f in frames) or "(no frames)"
        what = error_text(current) if messages else type(current).__name__
        parts.append(f"{what}; raised through (innermost last, the message left out): {places}")
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return "\n  raised from or while handling: ".join(parts)
