"""Hypothesis strategies for random valid models of every document kind, per version.

``sdg:`` objects are generated from their type hints (the same tables the codec reads), with text
that XML can carry, URIs where the XSD says anyURI, and the version's own fields only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from typing import Any

from hypothesis import strategies as st

from oots import edm
from oots.edm import model

#: Text XML 1.0 carries unchanged (no control characters, no surrogates, no carriage returns).
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"), max_size=12
)
#: Tokens for normalizedString / code values.
TOKEN = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 .:_/-]{0,15}", fullmatch=True)
URI = st.from_regex(r"https://[a-z]{1,8}\.example/[a-z0-9/_-]{0,12}", fullmatch=True)
LANG = st.sampled_from(["EN", "DE", "FR", "EL", "SV"])
UUID = st.uuids(version=4).map(str)
URN_UUID = UUID.map(lambda u: "urn:uuid:" + u)
TZ = st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=1)), dt.timezone(dt.timedelta(hours=-5, minutes=-30))])
DATETIME = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=TZ)
DATE = st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 31))

_URI_FIELDS = {"attribute_uri", "transformation", "conforms_to"}
#: Optional in the model, at least one in the XSD.
_XSD_AT_LEAST_ONE = {(model.DataServiceEvidenceType, "distributed_as")}
_V2_ONLY = {
    (cls, name) for cls in vars(model).values() if isinstance(cls, type) for name in getattr(cls, "_since_v2", ())
}


def _members(tp: Any) -> list[Any]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(tp) if a is not type(None)]
    return [tp]


def _scalar(tp: Any, name: str, v2: bool, depth: int) -> st.SearchStrategy[Any]:
    if tp is str:
        return URI if name in _URI_FIELDS else TEXT
    if tp is bool:
        return st.booleans()
    if tp is dt.date:
        return DATE
    if tp is model.Identifier:
        return st.builds(model.Identifier, TOKEN, st.none() | TOKEN)
    if tp is model.Text:
        return st.builds(model.Text, TEXT, st.none() | LANG)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    return sdg(tp, v2=v2, depth=depth + 1)


def sdg(cls: type, *, v2: bool, depth: int = 0) -> st.SearchStrategy[Any]:
    """A random valid ``cls`` (an ``sdg:`` dataclass) for the v1.0 or v2.0 profile."""
    if cls is model.IsAbout:
        return st.one_of(
            st.builds(model.IsAbout, natural_person=sdg(model.Person, v2=v2, depth=depth + 1)),
            st.builds(model.IsAbout, legal_person=sdg(model.LegalPerson, v2=v2, depth=depth + 1)),
        )
    if cls is model.SupportedValue:
        some = {"min_size": 1, "max_size": 2}
        return st.one_of(
            st.builds(model.SupportedValue, string_values=st.lists(TEXT, **some).map(tuple)),
            st.builds(model.SupportedValue, date_values=st.lists(DATE, **some).map(tuple)),
            st.builds(model.SupportedValue, boolean_values=st.lists(st.booleans(), **some).map(tuple)),
        )
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, st.SearchStrategy[Any]] = {}
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        required = f.default is dataclasses.MISSING
        if (cls, f.name) in _V2_ONLY and not v2:
            continue
        if typing.get_origin(tp) is tuple:
            item = typing.get_args(tp)[0]
            if depth > 2 and not required and (cls, f.name) not in _XSD_AT_LEAST_ONE:
                continue  # keep recursive types (RelatedTo) and big trees small
            at_least_one = required or (cls, f.name) in _XSD_AT_LEAST_ONE
            kwargs[f.name] = st.lists(
                _scalar(item, f.name, v2, depth), min_size=1 if at_least_one else 0, max_size=2
            ).map(tuple)
            continue
        (inner,) = _members(tp)
        value = _scalar(inner, f.name, v2, depth)
        kwargs[f.name] = value if required else st.none() | value
    return st.builds(cls, **kwargs)


def _version(v2: bool) -> edm.Version:
    return edm.Version.EDM_V2 if v2 else edm.Version.EDM_V1


def query_request(v2: bool) -> st.SearchStrategy[edm.QueryRequest]:
    person = sdg(model.Person, v2=v2)
    return st.one_of(
        st.fixed_dictionaries({"natural_person": person}),
        st.fixed_dictionaries({"legal_person": sdg(model.LegalPerson, v2=v2)}),
    ).flatmap(
        lambda subject: st.builds(
            edm.QueryRequest,
            id=URN_UUID,
            issue_date_time=DATETIME,
            possibility_for_preview=st.booleans(),
            explicit_request_given=st.booleans(),
            evidence_requester=st.lists(sdg(model.Agent, v2=v2), min_size=1, max_size=2).map(tuple),
            evidence_provider=sdg(model.Agent, v2=v2),
            evidence_request=sdg(model.DataServiceEvidenceType, v2=v2),
            authorized_representative=st.none() | person,
            procedure=st.none() | TOKEN,
            requirements=st.lists(sdg(model.Requirement, v2=v2), max_size=2).map(tuple),
            evidence_provider_classifications=st.lists(sdg(model.InformationConcept, v2=v2), max_size=2).map(tuple),
            preview_location=st.none() | URI,
            return_location=(st.none() | URI) if v2 else st.none(),
            language=st.none() | LANG,
            specification=st.just(_version(v2)),
            **{k: st.just(v) for k, v in subject.items()},
        )
    )


def _evidence(v2: bool) -> st.SearchStrategy[edm.ResponseEvidence]:
    return st.builds(
        edm.ResponseEvidence,
        id=URN_UUID,
        metadata=sdg(model.Evidence, v2=v2),
        attachment=st.builds(
            edm.RepositoryItemRef,
            href=st.from_regex(r"cid:[a-z0-9-]{1,12}@[a-z]{1,8}\.example", fullmatch=True),
            title=st.none() | TOKEN,
        ),
        classification=(
            st.none()
            | st.builds(edm.EvidenceClassification, id=URN_UUID, node=st.sampled_from(["MainEvidence", "Translation"]))
        )
        if v2
        else st.none(),
    )


def query_response(v2: bool) -> st.SearchStrategy[edm.QueryResponse]:
    if v2:
        package = st.builds(
            edm.EvidencePackage, evidences=st.lists(_evidence(v2), min_size=1, max_size=2).map(tuple), id=URN_UUID
        )
    else:
        package = st.builds(edm.EvidencePackage, evidences=st.tuples(_evidence(v2)), id=st.none())
    return st.builds(
        edm.QueryResponse,
        request_id=URN_UUID,
        evidence_response_identifier=UUID,
        issue_date_time=DATETIME,
        evidence_provider=st.lists(sdg(model.Agent, v2=v2), min_size=1, max_size=2).map(tuple),
        evidence_requester=sdg(model.Agent, v2=v2),
        packages=st.lists(package, max_size=2).map(tuple),
        response_available_date_time=st.none() | DATETIME,
        specification=st.just(_version(v2)),
    )


def query_error(v2: bool) -> st.SearchStrategy[edm.QueryError]:
    def build(code: str) -> st.SearchStrategy[edm.QueryError]:
        row = edm.error_code(code)
        preview = code == "EDM:ERR:0002"
        return st.builds(
            edm.QueryError,
            evidence_response_identifier=UUID,
            code=st.just(code),
            exception_type=st.just(row.exception_type),
            severity=st.just(edm.ErrorSeverity.PREVIEW_REQUIRED if preview else edm.ErrorSeverity.ERROR),
            timestamp=DATETIME,
            error_provider=st.none() | sdg(model.Agent, v2=v2),
            evidence_requester=st.none() | sdg(model.Agent, v2=v2),
            request_id=st.none() | URN_UUID,
            message=st.none() | TOKEN,
            detail=st.none() | TEXT,
            preview_location=URI if preview else st.none(),
            preview_descriptions=st.lists(st.builds(model.Text, TEXT, st.none() | LANG), max_size=2).map(tuple)
            if preview
            else st.just(()),
            preview_method=st.sampled_from([None, "GET", "POST"]) if preview else st.none(),
            specification=st.just(_version(v2)),
        )

    return st.sampled_from(sorted(c for c in edm.ERROR_CODES if c.startswith("EDM:"))).flatmap(build)


def _item(v2: bool, kinds: tuple[type, ...]) -> st.SearchStrategy[edm.RegistryItem]:
    return st.builds(
        edm.RegistryItem,
        id=URN_UUID,
        content=st.sampled_from(kinds).flatmap(lambda cls: sdg(cls, v2=v2)),
        classification=st.none()
        | st.builds(
            edm.RegistryClassification,
            id=URN_UUID,
            scheme=st.just("urn:fdc:oots:classification:eb"),
            node=st.sampled_from(["Requirement", "EvidenceType"]),
        ),
    )


def cs_response(v2: bool) -> st.SearchStrategy[edm.CommonServicesResponse]:
    return st.builds(
        edm.CommonServicesResponse,
        items=st.lists(_item(v2, (model.Requirement, model.DataServiceEvidenceType)), max_size=2).map(tuple),
        total_result_count=st.none() | st.integers(0, 1000),
        start_index=st.none() | st.integers(0, 1000),
        request_id=st.none() | URN_UUID,
        specification=st.just(edm.Version.CS_V2 if v2 else edm.Version.EDM_V1),
    )


def cs_error(v2: bool) -> st.SearchStrategy[edm.CommonServicesError]:
    def build(code: str) -> st.SearchStrategy[edm.CommonServicesError]:
        row = edm.error_code(code)
        more = code == "DSD:ERR:0005"
        return st.builds(
            edm.CommonServicesError,
            code=st.just(code),
            exception_type=st.just(row.exception_type),
            severity=st.just(row.severity),
            message=st.none() | TOKEN,
            detail=st.none() | TEXT,
            data_service_evidence_type=sdg(model.DataServiceEvidenceType, v2=v2) if more else st.none(),
            jurisdiction_determination=(st.none() | sdg(model.JurisdictionDetermination, v2=v2)) if more else st.none(),
            user_requested_classification_concepts=st.lists(sdg(model.InformationConcept, v2=v2), max_size=2).map(tuple)
            if more
            else st.just(()),
            request_id=st.none() | URN_UUID,
            specification=st.just(edm.Version.CS_V2 if v2 else edm.Version.EDM_V1),
        )

    return st.sampled_from(sorted(c for c in edm.ERROR_CODES if c.startswith(("EB:", "DSD:")))).flatmap(build)


def submit_objects(v2: bool) -> st.SearchStrategy[edm.SubmitObjectsRequest]:
    from oots.edm.registry import SLOT_OF

    association = st.builds(
        edm.Association,
        id=URN_UUID,
        source=URN_UUID,
        target=URN_UUID,
        type=st.just("urn:oasis:names:tc:ebxml-regrep:AssociationType:ContainsEvidence"),
    )
    return st.builds(
        edm.SubmitObjectsRequest,
        id=URN_UUID,
        objects=st.lists(_item(v2, tuple(SLOT_OF)) | association, max_size=3).map(tuple),
    )


def registry_response() -> st.SearchStrategy[edm.RegistryResponse]:
    failed = st.sampled_from(sorted(c for c in edm.ERROR_CODES if c.startswith("LCM:"))).map(edm.error_code)
    return st.one_of(
        st.builds(edm.RegistryResponse, request_id=st.none() | URN_UUID),
        failed.flatmap(
            lambda row: st.builds(
                edm.RegistryResponse,
                request_id=st.none() | URN_UUID,
                code=st.just(row.code),
                exception_type=st.just(row.exception_type),
                message=st.none() | TOKEN,
                detail=st.none() | TEXT,
            )
        ),
    )


def document(v2: bool) -> st.SearchStrategy[Any]:
    """Any document kind of one profile."""
    return st.one_of(
        query_request(v2),
        query_response(v2),
        query_error(v2),
        cs_response(v2),
        cs_error(v2),
        submit_objects(v2),
        registry_response(),
    )
