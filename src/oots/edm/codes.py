"""Code tables of the exchange data model: error codes (one table each), severities, versions.

Sources: ``codelists/OOTS/{EDM,EB,DSD,LCM}ErrorCodes-CodeList.gc`` and ``ErrorSeverity-CodeList.gc``
(2022-12). ``EDMErrorCodes-CodeList.gc`` is not well-formed XML around the EDM:ERR:0008 row; the row
reads ``query:QueryExceptionType`` and that is what the Projectathon data uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum

from oots.errors import ModelError

__all__ = [
    "DSD_ERRORS",
    "EB_ERRORS",
    "EDM_ERRORS",
    "ERROR_CODES",
    "LCM_ERRORS",
    "ErrorCode",
    "ErrorSeverity",
    "Version",
    "error_code",
]

#: Result status of a RegRep response.
STATUS_SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
STATUS_FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"


class Version(StrEnum):
    """The specification identifiers a codec exists for."""

    EDM_V1 = "oots-edm:v1.0"
    EDM_V2 = "oots-edm:v2.0"
    CS_V2 = "oots-cs:v2.0"

    @property
    def major(self) -> int:
        return 1 if self is Version.EDM_V1 else 2


_BLANK_OR_CONTROL = "".join(chr(c) for c in (*range(0x21), 0x7F))


class ErrorSeverity(Enum):
    """Code list ``ErrorSeverity``. ``urn(...)`` gives the spelling a version writes."""

    ERROR = "Error"
    PREVIEW_REQUIRED = "PreviewRequired"
    ADDITIONAL_INPUT = "AdditionalInput"

    def urn(self, *, ec_domain: bool) -> str:
        """The severity URN; the OOTS ones use ``sr.oots.tech.ec.europa.eu`` from late 2023 (v2.0)."""
        if self is ErrorSeverity.ERROR:
            return "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
        domain = "sr.oots.tech.ec.europa.eu" if ec_domain else "sr.oots.tech.europa.eu"
        response = "EDMErrorResponse" if self is ErrorSeverity.PREVIEW_REQUIRED else "DSDErrorResponse"
        return f"urn:{domain}:codes:ErrorSeverity:{response}:{self.value}"

    @classmethod
    def from_urn(cls, urn: str) -> ErrorSeverity:
        """Read a severity in either spelling of the OOTS domain.

        Surrounding blanks and control characters are ignored: the official v1.0 sample
        ``3.2 Step 2 Error Response - Education`` ends its severity with a DEL (0x7f) character.
        """
        urn = urn.strip(_BLANK_OR_CONTROL)
        for member in cls:
            if urn in (member.urn(ec_domain=False), member.urn(ec_domain=True)):
                return member
        raise ModelError(f"unknown error severity {urn!r}")


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One row of an error code table: the code, its exception type, message and severity."""

    code: str
    exception_type: str  # prefixed QName as the code list writes it (rs:..., query:...)
    message: str
    severity: ErrorSeverity = ErrorSeverity.ERROR


def _table(*rows: ErrorCode) -> dict[str, ErrorCode]:
    return {row.code: row for row in rows}


_NF = "rs:ObjectNotFoundExceptionType"
_IR = "rs:InvalidRequestExceptionType"

EDM_ERRORS = _table(
    ErrorCode("EDM:ERR:0001", "rs:AuthenticationExceptionType", "Failed Authentication"),
    ErrorCode("EDM:ERR:0002", "rs:AuthorizationExceptionType", "Missing Authorization"),
    ErrorCode("EDM:ERR:0003", _IR, "Syntactically or semantically invalid request"),
    ErrorCode("EDM:ERR:0004", _NF, "Object not found"),
    ErrorCode("EDM:ERR:0005", "rs:TimeoutExceptionType", "Exceeding timeout period"),
    ErrorCode("EDM:ERR:0006", "rs:UnresolvedReferenceExceptionType", "Referenced object that cannot be resolved"),
    ErrorCode(
        "EDM:ERR:0007", "rs:UnsupportedCapabilityExceptionType", "Optional feature or capability is not supported"
    ),
    ErrorCode("EDM:ERR:0008", "query:QueryExceptionType", "Problem during the processing of a QueryRequest"),
)

EB_ERRORS = _table(
    ErrorCode("EB:ERR:0001", _NF, "The result set is empty"),
    ErrorCode("EB:ERR:0002", _NF, "The requirement requested, represented by the requirement id, does not exist"),
    ErrorCode("EB:ERR:0003", _IR, "The query parameters do not follow the query specification"),
    ErrorCode("EB:ERR:0004", _IR, "The jurisdiction level code query parameter is invalid or unknown"),
    ErrorCode("EB:ERR:0005", _IR, "The value of the procedure-id query parameter is invalid or unknown"),
    ErrorCode(
        "EB:ERR:0006", _IR, "The value of the procedure implementation country query parameter is invalid or unknown"
    ),
    ErrorCode("EB:ERR:0007", _IR, "The requested Query does not exist"),
)

DSD_ERRORS = _table(
    ErrorCode("DSD:ERR:0001", _NF, "No Data Services were found based on the given parameters"),
    ErrorCode("DSD:ERR:0002", _NF, "The Evidence Type requested cannot be found"),
    ErrorCode("DSD:ERR:0003", _IR, "The query parameters do not follow the query specification"),
    ErrorCode("DSD:ERR:0004", _IR, "The requested Query does not exist"),
    ErrorCode(
        "DSD:ERR:0005",
        _NF,
        "The query requires the included extra attributes to be provided by the user",
        ErrorSeverity.ADDITIONAL_INPUT,
    ),
    ErrorCode("DSD:ERR:0006", _IR, "Incorrect provided value for requested parameters"),
)

LCM_ERRORS = _table(
    ErrorCode("LCM:ERR:0001", _IR, "A registry object in the Request does not comply with the specification"),
    ErrorCode("LCM:ERR:0002", _IR, "An association in the Request does not comply with the specification"),
    ErrorCode("LCM:ERR:0003", _IR, "The dataset provided failed to pass the validation and integrity check"),
)

#: Every error code of every table.
ERROR_CODES: dict[str, ErrorCode] = {**EDM_ERRORS, **EB_ERRORS, **DSD_ERRORS, **LCM_ERRORS}

#: EDM:ERR:0002 becomes a preview-required error when it carries a PreviewLocation.
PREVIEW_REQUIRED = EDM_ERRORS["EDM:ERR:0002"]


def error_code(code: str) -> ErrorCode:
    """The table row of ``code``; raise ModelError for a code no table has."""
    try:
        return ERROR_CODES[code]
    except KeyError:
        raise ModelError(f"unknown error code {code!r}") from None
