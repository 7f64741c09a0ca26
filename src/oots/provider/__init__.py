"""The Evidence Provider's core: registers, identity matching, evidence rendering, data services.

* :mod:`oots.provider.registers` — the :class:`Register` interface and its adapters (SQL, CSV, HTTP JSON);
* :mod:`oots.provider.matching` — identity matching (pure), with reason codes free of personal data;
* :mod:`oots.provider.normalise` — name normalisation and transliteration behind the matching;
* :mod:`oots.provider.render` and :mod:`oots.provider.datamodels` — PDF, XML and JSON documents;
* :mod:`oots.provider.pdf` — the PDF writer: embedded font subsets, pages of text, the file structure;
* :mod:`oots.provider.dataservice` — a data service: identify, render, provide;
* :mod:`oots.provider.samples` — the demo network's sample registers and test people;
* :mod:`oots.provider.config` — the ``[provider]`` settings turned into data services.

See ``docs/provider.md``.
"""

from __future__ import annotations

from oots.provider.datamodels import MODELS, DataModel, model_by_conforms_to, model_by_name
from oots.provider.dataservice import (
    DataService,
    EvidenceRefused,
    PreviewPolicy,
    ProvidedEvidence,
    Provision,
    SubjectKind,
    legal_person_query,
    person_query,
)
from oots.provider.matching import (
    Attribute,
    LegalPersonQuery,
    LegalPersonRecord,
    MatchOutcome,
    MatchResult,
    MatchRules,
    NameLevel,
    PersonQuery,
    PersonRecord,
    match_legal_person,
    match_person,
)
from oots.provider.registers import CsvRegister, FieldMap, HttpJsonRegister, Register, RegisterRecord, SqlRegister
from oots.provider.render import (
    MEDIA_JSON,
    MEDIA_PDF,
    MEDIA_XML,
    SUPPORTED_MEDIA_TYPES,
    Authority,
    EvidenceContent,
    RenderedDocument,
    render,
)

__all__ = [
    "MEDIA_JSON",
    "MEDIA_PDF",
    "MEDIA_XML",
    "MODELS",
    "SUPPORTED_MEDIA_TYPES",
    "Attribute",
    "Authority",
    "CsvRegister",
    "DataModel",
    "DataService",
    "EvidenceContent",
    "EvidenceRefused",
    "FieldMap",
    "HttpJsonRegister",
    "LegalPersonQuery",
    "LegalPersonRecord",
    "MatchOutcome",
    "MatchResult",
    "MatchRules",
    "NameLevel",
    "PersonQuery",
    "PersonRecord",
    "PreviewPolicy",
    "ProvidedEvidence",
    "Provision",
    "Register",
    "RegisterRecord",
    "RenderedDocument",
    "SqlRegister",
    "SubjectKind",
    "legal_person_query",
    "match_legal_person",
    "match_person",
    "model_by_conforms_to",
    "model_by_name",
    "person_query",
    "render",
]
