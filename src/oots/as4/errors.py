"""The ebMS error table: one row per ``EBMS:*`` code, and the one mapper from exceptions to ``eb:Error``.

Rows come from ebMS 3 Core §6.7 (0001-0011 ebMS processing, 0101-0103 security, 0201-0202
reliability) and the AS4 profile §3.4/§5.1 (0301-0303, reception awareness and compression, whose
origin the eDelivery AS4 1.15 profile gives as ``ebMS``). Severity is spelt as the ``eb:Error``
attribute spells it (``failure`` / ``warning``).

Code anywhere in ``oots.as4`` raises :class:`oots.errors.RemoteProtocolError` or
:class:`oots.errors.SecurityError` with ``code="EBMS:...."``; :func:`error_for` turns such an
exception into the ``eb:Error`` to send back, and nothing else builds ``eb:Error`` values by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum

from oots.as4.model import Error
from oots.errors import OotsError, ProtocolError, SecurityError

__all__ = ["Category", "EbmsError", "ErrorRow", "Origin", "Severity", "error_for", "lookup"]


class Severity(StrEnum):
    FAILURE = "failure"
    WARNING = "warning"


class Category(StrEnum):
    CONTENT = "Content"
    COMMUNICATION = "Communication"
    UNPACKAGING = "Unpackaging"
    PROCESSING = "Processing"


class Origin(StrEnum):
    EBMS = "ebMS"
    SECURITY = "security"
    RELIABILITY = "reliability"


@dataclass(frozen=True, slots=True)
class ErrorRow:
    """One row of the table."""

    code: str
    short_description: str
    severity: Severity
    category: Category
    origin: Origin
    meaning: str


class EbmsError(Enum):
    """The ebMS errors oots knows, by name; ``.value`` is the :class:`ErrorRow`."""

    VALUE_NOT_RECOGNIZED = ErrorRow(
        "EBMS:0001", "ValueNotRecognized", Severity.FAILURE, Category.CONTENT, Origin.EBMS,
        "an element of the header has a value the receiver does not recognise",
    )  # fmt: skip
    FEATURE_NOT_SUPPORTED = ErrorRow(
        "EBMS:0002", "FeatureNotSupported", Severity.WARNING, Category.CONTENT, Origin.EBMS,
        "the message asks for a feature the receiver does not support",
    )  # fmt: skip
    VALUE_INCONSISTENT = ErrorRow(
        "EBMS:0003", "ValueInconsistent", Severity.FAILURE, Category.CONTENT, Origin.EBMS,
        "a header value contradicts another value or the processing mode",
    )  # fmt: skip
    OTHER = ErrorRow(
        "EBMS:0004", "Other", Severity.FAILURE, Category.CONTENT, Origin.EBMS,
        "an error no other code describes",
    )  # fmt: skip
    CONNECTION_FAILURE = ErrorRow(
        "EBMS:0005", "ConnectionFailure", Severity.FAILURE, Category.COMMUNICATION, Origin.EBMS,
        "the transport could not reach the other side",
    )  # fmt: skip
    EMPTY_MESSAGE_PARTITION_CHANNEL = ErrorRow(
        "EBMS:0006", "EmptyMessagePartitionChannel", Severity.WARNING, Category.COMMUNICATION,
        Origin.EBMS, "a pull request found no message waiting on the partition channel",
    )  # fmt: skip
    MIME_INCONSISTENCY = ErrorRow(
        "EBMS:0007", "MimeInconsistency", Severity.FAILURE, Category.UNPACKAGING, Origin.EBMS,
        "the MIME packaging is malformed or does not match the header",
    )  # fmt: skip
    FEATURE_NOT_SUPPORTED_UNPACKAGING = ErrorRow(
        "EBMS:0008", "FeatureNotSupported", Severity.FAILURE, Category.UNPACKAGING, Origin.EBMS,
        "the message packaging uses a feature the receiver does not support",
    )  # fmt: skip
    INVALID_HEADER = ErrorRow(
        "EBMS:0009", "InvalidHeader", Severity.FAILURE, Category.UNPACKAGING, Origin.EBMS,
        "the ebMS header is missing, not well-formed or not valid",
    )  # fmt: skip
    PROCESSING_MODE_MISMATCH = ErrorRow(
        "EBMS:0010", "ProcessingModeMismatch", Severity.FAILURE, Category.PROCESSING, Origin.EBMS,
        "no processing mode matches the message, or the message breaks its processing mode",
    )  # fmt: skip
    EXTERNAL_PAYLOAD_ERROR = ErrorRow(
        "EBMS:0011", "ExternalPayloadError", Severity.FAILURE, Category.CONTENT, Origin.EBMS,
        "a payload outside the message could not be retrieved",
    )  # fmt: skip
    FAILED_AUTHENTICATION = ErrorRow(
        "EBMS:0101", "FailedAuthentication", Severity.FAILURE, Category.PROCESSING, Origin.SECURITY,
        "the signature, a digest or the signer's certificate did not hold",
    )  # fmt: skip
    FAILED_DECRYPTION = ErrorRow(
        "EBMS:0102", "FailedDecryption", Severity.FAILURE, Category.PROCESSING, Origin.SECURITY,
        "an encrypted part or key could not be decrypted",
    )  # fmt: skip
    POLICY_NONCOMPLIANCE = ErrorRow(
        "EBMS:0103", "PolicyNoncompliance", Severity.FAILURE, Category.PROCESSING, Origin.SECURITY,
        "the message is not secured as the processing mode requires",
    )  # fmt: skip
    DYSFUNCTIONAL_RELIABILITY = ErrorRow(
        "EBMS:0201", "DysfunctionalReliability", Severity.FAILURE, Category.PROCESSING,
        Origin.RELIABILITY, "the reliable messaging layer failed",
    )  # fmt: skip
    DELIVERY_FAILURE = ErrorRow(
        "EBMS:0202", "DeliveryFailure", Severity.FAILURE, Category.COMMUNICATION,
        Origin.RELIABILITY, "the message was received but could not be delivered to the consumer",
    )  # fmt: skip
    MISSING_RECEIPT = ErrorRow(
        "EBMS:0301", "MissingReceipt", Severity.FAILURE, Category.COMMUNICATION, Origin.EBMS,
        "no receipt came back for a sent message, even after the retries",
    )  # fmt: skip
    INVALID_RECEIPT = ErrorRow(
        "EBMS:0302", "InvalidReceipt", Severity.FAILURE, Category.COMMUNICATION, Origin.EBMS,
        "a receipt came back but is not valid (unsigned, wrong references, wrong message)",
    )  # fmt: skip
    DECOMPRESSION_FAILURE = ErrorRow(
        "EBMS:0303", "DecompressionFailure", Severity.FAILURE, Category.COMMUNICATION, Origin.EBMS,
        "a part flagged as compressed could not be decompressed (or is too large once decompressed)",
    )  # fmt: skip

    @property
    def code(self) -> str:
        return self.value.code

    @property
    def short_description(self) -> str:
        return self.value.short_description

    @property
    def severity(self) -> Severity:
        return self.value.severity

    @property
    def category(self) -> Category:
        return self.value.category

    @property
    def origin(self) -> Origin:
        return self.value.origin

    def to_error(
        self,
        *,
        ref_to_message_in_error: str | None = None,
        detail: str | None = None,
    ) -> Error:
        """This row as an ``eb:Error`` value, optionally about a message and with a detail text."""
        row = self.value
        return Error(
            error_code=row.code,
            severity=row.severity.value,
            category=row.category.value,
            origin=row.origin.value,
            short_description=row.short_description,
            ref_to_message_in_error=ref_to_message_in_error,
            error_detail=detail,
        )


_BY_CODE: dict[str, EbmsError] = {member.code: member for member in EbmsError}


def lookup(code: str) -> EbmsError:
    """The table row for ``code`` (``EBMS:0101``); :class:`KeyError` for a code not in the table."""
    return _BY_CODE[code]


def error_for(exc: OotsError, *, ref_to_message_in_error: str | None = None) -> Error:
    """The ``eb:Error`` to answer ``exc`` with: its own EBMS code when it carries one from the table,
    ``EBMS:0101`` for other security errors, ``EBMS:0004`` (Other) for everything else.

    The exception's sentence goes to ``ErrorDetail``; it never contains payload content.
    """
    code = getattr(exc, "code", None) if isinstance(exc, ProtocolError | SecurityError) else None
    if code in _BY_CODE:
        row = _BY_CODE[code]
    elif isinstance(exc, SecurityError):
        row = EbmsError.FAILED_AUTHENTICATION
    else:
        row = EbmsError.OTHER
    return row.to_error(ref_to_message_in_error=ref_to_message_in_error, detail=exc.message)
