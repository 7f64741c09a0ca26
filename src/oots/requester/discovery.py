"""Discovery with user choice: requirements (EB), evidence type lists (EB), data services (DSD).

The results and the user's choices live in one JSON structure on the exchange (a list with one entry
per requirement), so any process can continue an exchange:

```
{"id": <requirement id>, "name": "Proof of birth", "names": [{"value": ..., "lang": "EN"}, ...], "upload": false,
 "lists": [{"id": ..., "name": ..., "names": [...],
            "evidence_types": [{"classification": ..., "title": ..., "titles": [...]}]}],
 "chosen_list": <list id> | null,
 "types": {<classification>: {"questions": [...], "answers": {...}, "providers": [...],
                              "chosen_provider": <provider id> | null, "error": null | "invalid_answer"}}}
```

Rules: the types of one list are all needed; lists are alternatives (the user picks one when there
are several); requirements are never alternatives to each other (each needs evidence, or the user
uploads it). ``DSD:ERR:0005`` becomes questions (``kind`` ``jurisdiction`` or ``classification``);
the query is repeated with the answers. Several providers are a choice for the user; one is taken.

``name``, ``title`` and ``label`` are the English text (else the first one given); ``names``, ``titles``
and ``labels`` keep every language the Common Services gave, for pages in other languages
(:func:`text_of` picks one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from oots import edm
from oots.cs.client import AdditionalInputRequired, ClientCore, Query, RegistryError
from oots.errors import ModelError
from oots.requester.states import Reason

__all__ = [
    "CachedOnly",
    "CommonServices",
    "DiscoveryFailed",
    "NotCached",
    "apply_choices",
    "provider_id",
    "resolve",
    "start",
    "text_of",
    "texts_of",
]

_CODE = re.compile(r"^[A-Z]{2}[A-Z0-9]{0,10}$")

#: The DSD's refusals of a query repeated with the user's answers that mean the answers were wrong:
#: no data service for that place or value (``DSD:ERR:0001``), a value it does not know (``DSD:ERR:0006``).
_ANSWER_REFUSED = frozenset({"DSD:ERR:0001", "DSD:ERR:0006"})


class CommonServices(Protocol):
    """What discovery asks of the Common Services (``oots.cs.client.CommonServicesClient``)."""

    def requirements(self, *, procedure_id: str | None = ..., country_code: str | None = ...) -> Any: ...

    def evidence_types(self, requirement_id: str, *, country_code: str | None = ...) -> edm.Requirement: ...

    def data_services(
        self,
        evidence_type_classification: str,
        country_code: str,
        *,
        jurisdiction_admin_l2: str | None = ...,
        jurisdiction_admin_l3: str | None = ...,
        jurisdiction_context_id: str | None = ...,
        classification_values: Mapping[str, str] | None = ...,
    ) -> tuple[edm.DataServiceEvidenceType, ...]: ...


class NotCached(Exception):
    """A query :class:`CachedOnly` has no fresh answer for: discovery is left to its queue job."""


class CachedOnly:
    """The Common Services as a client's cache knows them, with no network I/O: a query whose answer the
    cache does not hold (or holds no longer) raises :class:`NotCached`. Answers come out checked as
    ``client`` checks them when it sends the query (``ClientCore.cached``)."""

    def __init__(self, client: ClientCore) -> None:
        self._client = client

    def _cached(self, query: Query[Any]) -> Any:
        found = self._client.cached(query)
        if found is None:
            raise NotCached
        return found

    def requirements(self, *, procedure_id: str | None = None, country_code: str | None = None) -> Any:
        return self._cached(self._client.requirements_query(procedure_id=procedure_id, country_code=country_code))

    def evidence_types(self, requirement_id: str, *, country_code: str | None = None) -> edm.Requirement:
        found: edm.Requirement = self._cached(
            self._client.evidence_types_query(requirement_id, country_code=country_code)
        )
        return found

    def data_services(
        self,
        evidence_type_classification: str,
        country_code: str,
        *,
        jurisdiction_admin_l2: str | None = None,
        jurisdiction_admin_l3: str | None = None,
        jurisdiction_context_id: str | None = None,
        classification_values: Mapping[str, str] | None = None,
    ) -> tuple[edm.DataServiceEvidenceType, ...]:
        found: tuple[edm.DataServiceEvidenceType, ...] = self._cached(
            self._client.data_services_query(
                evidence_type_classification,
                country_code,
                jurisdiction_admin_l2=jurisdiction_admin_l2,
                jurisdiction_admin_l3=jurisdiction_admin_l3,
                jurisdiction_context_id=jurisdiction_context_id,
                classification_values=classification_values,
            )
        )
        return found


@dataclass
class DiscoveryFailed(Exception):
    """Discovery cannot go on: the exchange fails with ``reason``."""

    reason: Reason
    detail: str


def text_of(texts: tuple[edm.Text, ...] | list[Any], lang: str = "EN") -> str:
    """The text in ``lang`` of a multilingual value (objects or JSON forms), else the English one, else the first."""
    items = [(t.value, t.lang) if isinstance(t, edm.Text) else (t.get("value", ""), t.get("lang")) for t in texts]
    for wanted in (lang.upper(), "EN"):
        for value, language in items:
            if (language or "").upper() == wanted:
                return str(value)
    return str(items[0][0]) if items else ""


def texts_of(texts: tuple[edm.Text, ...]) -> list[dict[str, Any]]:
    """Every language of a multilingual value, as the exchange keeps it (``[{"value", "lang"}]``)."""
    return [edm.object_to_json(t) for t in texts]


def _registry_failure(exc: RegistryError, what: Reason) -> DiscoveryFailed:
    if exc.code is None:
        return DiscoveryFailed(Reason.REGISTRY_UNAVAILABLE, exc.message)
    return DiscoveryFailed(what, exc.message)


def start(
    client: CommonServices, *, procedure: str, own_country: str, country: str, wanted: list[str]
) -> list[dict[str, Any]]:
    """EB query 1 (the procedure's requirements) and EB query 2 per requirement (lists in ``country``)."""
    try:
        found = client.requirements(procedure_id=procedure, country_code=own_country)
    except RegistryError as exc:
        raise _registry_failure(exc, Reason.PROCEDURE_UNKNOWN) from None
    requirements = [r for r in found if not wanted or r.identifier in wanted]
    missing = [w for w in wanted if w not in {r.identifier for r in found}]
    if missing:
        raise DiscoveryFailed(Reason.PROCEDURE_UNKNOWN, f"the procedure has no requirement {missing[0]}")
    if not requirements:
        raise DiscoveryFailed(Reason.PROCEDURE_UNKNOWN, f"the procedure {procedure} has no requirements")
    entries = []
    for requirement in requirements:
        try:
            detailed = client.evidence_types(requirement.identifier, country_code=country)
            lists = detailed.evidence_type_lists
        except RegistryError as exc:
            if exc.code is None:
                raise _registry_failure(exc, Reason.NO_EVIDENCE_TYPE) from None
            lists = ()
        entries.append(
            {
                "id": requirement.identifier,
                "name": text_of(requirement.names),
                "names": texts_of(requirement.names),
                "upload": False,
                "lists": [
                    {
                        "id": lst.identifier,
                        "name": text_of(lst.names),
                        "names": texts_of(lst.names),
                        "evidence_types": [
                            {
                                "classification": t.evidence_type_classification,
                                "title": text_of(t.titles),
                                "titles": texts_of(t.titles),
                            }
                            for t in lst.evidence_types
                        ],
                    }
                    for lst in lists
                    if lst.evidence_types
                ],
                "chosen_list": None,
                "types": {},
            }
        )
    return entries


def provider_id(access: edm.AccessService) -> str:
    """A provider's id in the choices: its access service and publisher identifiers."""
    return f"{access.identifier.value}|{access.publisher.identifier.value}"


def _providers(dsets: tuple[edm.DataServiceEvidenceType, ...]) -> list[dict[str, Any]]:
    out = []
    for dset in dsets:
        for access in dset.access_services:
            out.append(
                {
                    "id": provider_id(access),
                    "name": text_of(access.publisher.names),
                    "names": texts_of(access.publisher.names),
                    "access_point": access.identifier.value,
                    "access_point_type": access.identifier.scheme_id,
                    "specification": access.conforms_to,
                    "publisher": edm.object_to_json(access.publisher),
                    "data_service": edm.object_to_json(edm.requested_evidence_type(dset)),
                    "level_of_assurance": (
                        dset.authentication_level_of_assurance.value if dset.authentication_level_of_assurance else None
                    ),
                }
            )
    return out


def _questions(exc: AdditionalInputRequired) -> list[dict[str, Any]]:
    questions: list[dict[str, Any]] = []
    jd = exc.jurisdiction_determination
    if jd is not None:
        questions.append(
            {
                "id": "jurisdiction",
                "kind": "jurisdiction",
                "label": text_of(jd.jurisdiction_contexts),
                "labels": texts_of(jd.jurisdiction_contexts),
                "level": jd.jurisdiction_level,
                "context_id": jd.jurisdiction_context_id,
            }
        )
    for concept in exc.classification_concepts:
        values = list(concept.supported_value.string_values) if concept.supported_value else []
        questions.append(
            {
                "id": concept.identifier.value,
                "kind": "classification",
                "label": text_of(concept.descriptions) or concept.identifier.value,
                "labels": texts_of(concept.descriptions),
                "values": values,
            }
        )
    return questions


def _query_arguments(questions: list[dict[str, Any]], answers: Mapping[str, str]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    classification: dict[str, str] = {}
    for q in questions:
        value = answers[q["id"]]
        if q["kind"] == "jurisdiction":
            key = (
                "jurisdiction_admin_l3"
                if str(q.get("level", "")).upper().startswith("LAU")
                else "jurisdiction_admin_l2"
            )
            args[key] = value
            args["jurisdiction_context_id"] = q["context_id"]
        else:
            classification[q["id"]] = value
    if classification:
        args["classification_values"] = classification
    return args


def resolve(client: CommonServices, entries: list[dict[str, Any]], country: str) -> bool:
    """Ask the DSD what can be asked; True when nothing waits for the user any more.

    Raises :class:`DiscoveryFailed` when a requirement cannot be met through OOTS.
    """
    complete = True
    for entry in entries:
        if entry["upload"]:
            continue
        if not entry["lists"]:
            raise DiscoveryFailed(Reason.NO_EVIDENCE_TYPE, f"no evidence type for {entry['name']} in {country}")
        chosen = next((lst for lst in entry["lists"] if lst["id"] == entry["chosen_list"]), None)
        if chosen is None:  # none chosen yet (or one no longer on offer)
            entry["chosen_list"] = None
            if len(entry["lists"]) > 1:
                complete = False
                continue
            chosen = entry["lists"][0]
            entry["chosen_list"] = chosen["id"]
        for etype in chosen["evidence_types"]:
            cls = etype["classification"]
            slot = entry["types"].setdefault(
                cls, {"questions": [], "answers": {}, "providers": [], "chosen_provider": None, "error": None}
            )
            if not _resolve_type(client, slot, cls, country):
                complete = False
    return complete


def _resolve_type(client: CommonServices, slot: dict[str, Any], classification: str, country: str) -> bool:
    if not slot["providers"]:
        if slot["questions"] and not all(q["id"] in slot["answers"] for q in slot["questions"]):
            return False
        try:
            dsets = client.data_services(
                classification, country, **_query_arguments(slot["questions"], slot["answers"])
            )
        except AdditionalInputRequired as exc:
            slot["error"] = "invalid_answer" if slot["answers"] else None
            slot["questions"] = _questions(exc)
            slot["answers"] = {}
            return False
        except RegistryError as exc:
            if slot["answers"] and exc.code in _ANSWER_REFUSED:
                return _invalid_answer(slot)
            raise _registry_failure(exc, Reason.NO_PROVIDER) from None
        providers = _providers(dsets)
        if not providers and slot["answers"]:
            return _invalid_answer(slot)
        slot["error"] = None
        slot["providers"] = providers
        if not slot["providers"]:
            raise DiscoveryFailed(Reason.NO_PROVIDER, f"no data service offers {classification} in {country}")
    if slot["chosen_provider"] not in {p["id"] for p in slot["providers"]}:
        slot["chosen_provider"] = None  # a choice among providers no longer on offer is made again
    if slot["chosen_provider"] is None:
        if len(slot["providers"]) > 1:
            return False
        slot["chosen_provider"] = slot["providers"][0]["id"]
    return True


def _invalid_answer(slot: dict[str, Any]) -> bool:
    """The DSD did not accept the user's answers: the same questions are asked again, marked."""
    slot["error"] = Reason.INVALID_ANSWER.value
    slot["answers"] = {}
    slot["providers"] = []
    slot["chosen_provider"] = None
    return False


def apply_choices(entries: list[dict[str, Any]], choices: Mapping[str, Any]) -> None:
    """Record the user's choices (``{requirement id: {"upload", "list", "answers", "providers"}}``).

    Raises ModelError (naming what is wrong) for a choice that is not on offer; nothing is changed then.
    """
    by_id = {e["id"]: e for e in entries}
    for req_id, choice in choices.items():
        entry = by_id.get(req_id)
        if entry is None:
            raise ModelError(f"the exchange has no requirement {req_id}")
        _check_choice(entry, choice)
    for req_id, choice in choices.items():
        entry = by_id[req_id]
        if choice.get("upload"):
            entry["upload"] = True
            continue
        entry["upload"] = False
        if choice.get("list") and choice["list"] != entry["chosen_list"]:
            entry["chosen_list"] = choice["list"]
        for cls, answers in (choice.get("answers") or {}).items():
            slot = entry["types"][cls]
            slot["answers"] = dict(answers)
            slot["providers"] = []
            slot["chosen_provider"] = None
        for cls, pid in (choice.get("providers") or {}).items():
            entry["types"][cls]["chosen_provider"] = pid


def _check_choice(entry: dict[str, Any], choice: Any) -> None:
    if not isinstance(choice, Mapping):
        raise ModelError(f"the choice for {entry['id']} must be an object")
    unknown = set(choice) - {"upload", "list", "answers", "providers"}
    if unknown:
        raise ModelError(f"unknown field {sorted(unknown)[0]!r} in the choice for {entry['id']}")
    if choice.get("list") is not None and choice["list"] not in {lst["id"] for lst in entry["lists"]}:
        raise ModelError(f"{choice['list']!r} is not an evidence type list of {entry['name']}")
    for cls, answers in (choice.get("answers") or {}).items():
        slot = entry["types"].get(cls)
        if slot is None or not slot["questions"]:
            raise ModelError(f"no question was asked about {cls}")
        if not isinstance(answers, Mapping):
            raise ModelError(f"the answers about {cls} must be an object")
        for q in slot["questions"]:
            value = answers.get(q["id"])
            if not isinstance(value, str) or not value:
                raise ModelError(f"the question {q['label']!r} needs an answer")
            if q["kind"] == "classification" and q["values"] and value not in q["values"]:
                raise ModelError(f"{value!r} is not one of {', '.join(q['values'])}")
            if q["kind"] == "jurisdiction" and not _CODE.match(value):
                raise ModelError(f"{value!r} is not a NUTS or LAU code (such as DE6)")
    for cls, pid in (choice.get("providers") or {}).items():
        slot = entry["types"].get(cls)
        if cls in (choice.get("answers") or {}):
            raise ModelError(
                f"choose the provider for {cls} after answering its questions: new answers change the providers "
                "on offer (send the answers alone, then choose among the providers that come back)"
            )
        if slot is None or pid not in {p["id"] for p in slot["providers"]}:
            raise ModelError(f"{pid!r} is not a provider offered for {cls}")
