"""Data services: one evidence type, offered from one register, under one set of rules.

A :class:`DataService` is configured per evidence type: its identifiers and titles (as the DSD lists
them), the formats and data model of its distributions, the level of assurance it requires, its
preview policy and jurisdiction, the issuing authority, the identity-matching rules and the register
it reads. A service may issue for several authorities (the DSD lists one access service per publisher,
and the user chooses): :meth:`DataService.for_provider` gives the service as the authority a request
names, and :meth:`DataService.issues_for` says whether it is one of them at all. Its three steps are
what the intake calls:

1. :meth:`DataService.identify` — the request's person (``oots.edm.Person`` or ``LegalPerson``) against
   the register: a :class:`~oots.provider.matching.MatchResult` with a reason code for the journal;
2. :meth:`DataService.render` — for the matched record, one document per requested distribution (and
   per annex), each with the ``sdg:Evidence`` metadata that describes it (``oots.edm.Evidence``);
3. :meth:`DataService.provide` — both, raising :class:`EvidenceRefused` (with its ``EDM:ERR`` code)
   when no evidence may go out.

Errors and their EDM codes (mapped once, by the intake): :class:`oots.errors.RegisterError` →
``EDM:ERR:0005`` when the register timed out, ``EDM:ERR:0008`` otherwise (whatever else the register's
adapter raises is turned into one here, :func:`_asking`); a record the data model cannot be made from
(:class:`oots.errors.ValidationFailed`) → ``EDM:ERR:0008``; :class:`EvidenceRefused`
carries its own code: no match or several matches → ``EDM:ERR:0004``, a level of assurance below the
service's → ``EDM:ERR:0001``, a distribution the service does not offer → ``EDM:ERR:0007``, a
natural person asked of a legal-person service (or the reverse) → ``EDM:ERR:0003``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum

from oots.edm import (
    Address,
    Agent,
    DataServiceEvidenceType,
    Distribution,
    Evidence,
    EvidenceType,
    EvidenceTypeDistribution,
    Identifier,
    IsAbout,
    Jurisdiction,
    LegalPerson,
    LevelOfAssurance,
    Person,
    Text,
)
from oots.errors import NotFound, OotsError, ProtocolError, RegisterError
from oots.provider.datamodels import DataModel, canonical_model_url
from oots.provider.matching import (
    LegalPersonQuery,
    LegalPersonRecord,
    MatchOutcome,
    MatchResult,
    MatchRules,
    PersonQuery,
    PersonRecord,
    match_legal_person,
    match_person,
)
from oots.provider.registers import Register
from oots.provider.render import (
    MEDIA_JSON,
    MEDIA_PDF,
    MEDIA_XML,
    Authority,
    EvidenceContent,
    RenderedDocument,
    render,
)

__all__ = [
    "DataService",
    "EvidenceRefused",
    "PreviewPolicy",
    "ProvidedEvidence",
    "Provision",
    "SubjectKind",
    "legal_person_query",
    "person_query",
]

_LOA_RANK = {LevelOfAssurance.LOW: 1, LevelOfAssurance.SUBSTANTIAL: 2, LevelOfAssurance.HIGH: 3}


class PreviewPolicy(StrEnum):
    """When the user must preview the evidence before it goes out."""

    #: Always: a request that does not allow a preview is refused.
    REQUIRED = "required"
    #: When the request allows one (``PossibilityForPreview``); otherwise the evidence goes out directly.
    IF_POSSIBLE = "if_possible"
    #: Never: the evidence goes out directly.
    NEVER = "never"


class SubjectKind(StrEnum):
    NATURAL_PERSON = "natural_person"
    LEGAL_PERSON = "legal_person"


class EvidenceRefused(ProtocolError):
    """No evidence may go out for this request; ``code`` is the ``EDM:ERR`` code to answer with and
    ``reason`` the reason code for the journal (no personal data)."""

    def __init__(self, message: str, *, code: str, reason: str) -> None:
        super().__init__(message, code=code)
        self.reason = reason


@contextmanager
def _asking(register: Register) -> Iterator[None]:
    """Translate what a register's adapter raises into :class:`RegisterError` (kept as it is when it
    already is one): ``NotFound`` on a record it has just matched, a ``KeyError``, a refused connection,
    any exception of its driver. The message names the register and keeps the adapter's own message
    (adapters never put personal data in their messages); a ``TimeoutError`` counts as a timeout."""
    try:
        yield
    except (RegisterError, EvidenceRefused):
        raise
    except NotFound as exc:
        raise RegisterError(
            f"register {register.name} has no record under the id it matched ({exc})", register=register.name
        ) from exc
    except Exception as exc:
        kind = type(exc).__name__
        text = exc.message if isinstance(exc, OotsError) else str(exc)
        raise RegisterError(
            f"register {register.name} failed ({kind}: {text[:300]})",
            register=register.name,
            timeout=isinstance(exc, TimeoutError),
        ) from exc


def person_query(person: Person) -> PersonQuery:
    """The matching view of an ``sdg:Person`` (the eIDAS minimum data set and optional attributes)."""
    return PersonQuery(
        family_name=person.family_name,
        given_name=person.given_name,
        date_of_birth=person.date_of_birth,
        identifier=person.identifier.value if person.identifier else None,
        birth_name=person.birth_name,
        place_of_birth=person.place_of_birth,
        gender=person.gender.value if person.gender else None,
        post_code=person.current_address.post_code if person.current_address else None,
    )


def legal_person_query(legal: LegalPerson) -> LegalPersonQuery:
    """The matching view of an ``sdg:LegalPerson``."""
    return LegalPersonQuery(
        legal_name=legal.legal_name,
        identifiers=tuple((i.scheme_id or "", i.value) for i in legal.identifiers),
        legal_person_identifier=legal.legal_person_identifier.value if legal.legal_person_identifier else None,
        post_code=legal.registered_address.post_code if legal.registered_address else None,
    )


@dataclass(frozen=True, slots=True)
class ProvidedEvidence:
    """One evidence ready to go: its ``sdg:Evidence`` metadata and its document."""

    metadata: Evidence
    document: RenderedDocument
    annex: bool = False


@dataclass(frozen=True, slots=True)
class Provision:
    """What :meth:`DataService.provide` gives: the match (for the journal) and the evidences."""

    match: MatchResult[PersonRecord] | MatchResult[LegalPersonRecord]
    evidences: tuple[ProvidedEvidence, ...]


@dataclass(frozen=True)
class DataService:
    """One evidence type offered from one register (see the module docstring)."""

    identifier: str
    evidence_type_classification: str
    titles: Mapping[str, str]
    model: DataModel
    register: Register
    authority: Authority
    jurisdiction: Jurisdiction
    descriptions: Mapping[str, str] = field(default_factory=dict)
    formats: tuple[str, ...] = (MEDIA_PDF, MEDIA_XML, MEDIA_JSON)
    annexes: tuple[DataModel, ...] = ()
    level_of_assurance: LevelOfAssurance = LevelOfAssurance.SUBSTANTIAL
    preview: PreviewPolicy = PreviewPolicy.IF_POSSIBLE
    rules: MatchRules = field(default_factory=MatchRules)
    language: str = "EN"
    #: Further authorities the service issues for (each a publisher of its own access service in the
    #: DSD); ``authority`` is the one used when a request names none of them.
    other_authorities: tuple[Authority, ...] = ()

    def issues_for(self, identifier: str | None, scheme_id: str | None = None) -> bool:
        """Whether the service issues evidence as the authority ``identifier`` (in ``scheme_id``, when
        given) names: its own authority or one of its further ones. A request naming another is refused
        (``EDM:ERR:0006``) rather than answered as the service's own authority."""
        if identifier is None:
            return True
        return any(
            a.identifier == identifier and scheme_id in (None, a.scheme_id)
            for a in (self.authority, *self.other_authorities)
        )

    def for_provider(self, identifier: str | None, scheme_id: str | None = None) -> DataService:
        """The service issuing as the authority ``identifier`` names (a request's ``EvidenceProvider``),
        when it is one of the service's further authorities; otherwise the service as it is."""
        for authority in self.other_authorities:
            if authority.identifier == identifier and scheme_id in (None, authority.scheme_id):
                return replace(self, authority=authority)
        return self

    @property
    def subject_kind(self) -> SubjectKind:
        return SubjectKind.LEGAL_PERSON if self.model.legal_person else SubjectKind.NATURAL_PERSON

    # --- what the DSD publishes ---------------------------------------------------------------------
    def distributions(self) -> tuple[EvidenceTypeDistribution, ...]:
        """The ``sdg:DistributedAs`` the service offers (structured forms name their data model)."""
        return tuple(
            EvidenceTypeDistribution(fmt, conforms_to=None if fmt == MEDIA_PDF else self.model.conforms_to)
            for fmt in self.formats
        )

    def evidence_type(self) -> DataServiceEvidenceType:
        """The service as an ``sdg:DataServiceEvidenceType`` (for the DSD and for checking requests)."""
        return DataServiceEvidenceType(
            identifier=self.identifier,
            evidence_type_classification=self.evidence_type_classification,
            titles=tuple(Text(v, k) for k, v in self.titles.items()),
            descriptions=tuple(Text(v, k) for k, v in self.descriptions.items()),
            distributed_as=self.distributions(),
            authentication_level_of_assurance=self.level_of_assurance,
        )

    def preview_needed(self, possibility_for_preview: bool) -> bool:
        """Whether this request must go through the preview space; raises when it cannot."""
        if self.preview is PreviewPolicy.REQUIRED and not possibility_for_preview:
            raise EvidenceRefused(
                "this evidence is only provided after a preview, and the request does not allow one",
                code="EDM:ERR:0002",
                reason="REFUSED:PREVIEW_NOT_POSSIBLE",
            )
        return self.preview is not PreviewPolicy.NEVER and possibility_for_preview

    def title(self, language: str | None = None) -> str:
        lang = (language or self.language).upper()
        return self.titles.get(lang) or self.titles.get("EN") or next(iter(self.titles.values()), self.model.title)

    # --- step 1: identity ---------------------------------------------------------------------------
    def check_level_of_assurance(self, level: LevelOfAssurance | None) -> None:
        if level is None or _LOA_RANK[level] < _LOA_RANK[self.level_of_assurance]:
            raise EvidenceRefused(
                f"this evidence needs a login at level {self.level_of_assurance.value} at least",
                code="EDM:ERR:0001",
                reason="REFUSED:LEVEL_OF_ASSURANCE",
            )

    def identify(self, subject: Person | LegalPerson) -> MatchResult[PersonRecord] | MatchResult[LegalPersonRecord]:
        """Match the request's subject against the register (raises RegisterError when it fails)."""
        if isinstance(subject, Person):
            if self.subject_kind is not SubjectKind.NATURAL_PERSON:
                raise EvidenceRefused(
                    "this evidence is about legal persons", code="EDM:ERR:0003", reason="REFUSED:SUBJECT_KIND"
                )
            query = person_query(subject)
            with _asking(self.register):
                candidates = self.register.find_persons(query, swapped_names=self.rules.allow_swapped_names)
            return match_person(query, candidates, self.rules)
        if self.subject_kind is not SubjectKind.LEGAL_PERSON:
            raise EvidenceRefused(
                "this evidence is about natural persons", code="EDM:ERR:0003", reason="REFUSED:SUBJECT_KIND"
            )
        legal = legal_person_query(subject)
        with _asking(self.register):
            candidates_legal = self.register.find_legal_persons(legal)
        return match_legal_person(legal, candidates_legal, self.rules)

    # --- step 2: documents --------------------------------------------------------------------------
    def _wanted(self, requested: Sequence[EvidenceTypeDistribution]) -> list[EvidenceTypeDistribution]:
        if not requested:
            return [self.distributions()[0]]
        wanted = []
        for dist in requested:
            if dist.format not in self.formats:
                raise EvidenceRefused(
                    f"this evidence is not available as {dist.format}",
                    code="EDM:ERR:0007",
                    reason="REFUSED:FORMAT",
                )
            if (
                dist.conforms_to
                and dist.format != MEDIA_PDF
                and canonical_model_url(dist.conforms_to) != self.model.conforms_to
            ):
                raise EvidenceRefused(
                    "this evidence is not available in the data model asked for",
                    code="EDM:ERR:0007",
                    reason="REFUSED:DATA_MODEL",
                )
            if dist.transformation:
                raise EvidenceRefused(
                    "this evidence is not available in the transformation asked for",
                    code="EDM:ERR:0007",
                    reason="REFUSED:TRANSFORMATION",
                )
            wanted.append(dist)
        return wanted

    def render(
        self,
        record: PersonRecord | LegalPersonRecord,
        requested: Sequence[EvidenceTypeDistribution] = (),
        *,
        subject: Person | LegalPerson | None = None,
        issuing_date: dt.date | None = None,
        language: str | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> tuple[ProvidedEvidence, ...]:
        """The documents (and their metadata) for a matched ``record``, one per requested distribution
        and document (the main one, then the annexes). ``subject`` is the request's person: its
        identifier goes into ``IsAbout``, since the match confirmed it."""
        wanted = self._wanted(requested)
        with _asking(self.register):
            full = self.register.fetch(record.record_id)
        day = issuing_date or dt.datetime.now(dt.UTC).date()
        lang = (language or self.language).upper()
        out: list[ProvidedEvidence] = []
        for dist in wanted:
            for n, model in enumerate((self.model, *self.annexes)):
                evidence_id = new_id()
                title = self.title(lang) if n == 0 else model.title
                content = EvidenceContent(evidence_id, model, full.data, self.authority, day, lang, title)
                document = render(content, dist.format)
                metadata = Evidence(
                    identifier=evidence_id,
                    is_about=self._is_about(record, subject),
                    issuing_authority=self.authority_agent(),
                    is_conformant_to=EvidenceType(
                        evidence_type_classification=self.evidence_type_classification,
                        titles=tuple(Text(v, k) for k, v in self.titles.items()),
                        descriptions=tuple(Text(v, k) for k, v in self.descriptions.items()),
                    ),
                    issuing_date=day,
                    distribution=Distribution(
                        format=dist.format,
                        languages=(lang,),
                        conforms_to=document.conforms_to,
                        transformation=None,
                    ),
                )
                out.append(ProvidedEvidence(metadata, document, annex=n > 0))
        return tuple(out)

    def authority_agent(self) -> Agent:
        """The authority the service issues as, as an ``sdg:Agent`` (the evidence's ``IssuingAuthority``,
        the answer's ``EvidenceProvider``): its name in every language it has one, else ``name`` in the
        service's language."""
        authority = self.authority
        names = authority.names or ((self.language, authority.name),)
        return Agent(
            identifier=Identifier(authority.identifier, authority.scheme_id),
            names=tuple(Text(name, language.upper()) for language, name in names),
        )

    def _is_about(self, record: PersonRecord | LegalPersonRecord, subject: Person | LegalPerson | None) -> IsAbout:
        if isinstance(record, PersonRecord):
            identifier = None
            if isinstance(subject, Person) and subject.identifier is not None:
                identifier = subject.identifier
            elif record.identifier:
                identifier = Identifier(record.identifier, "eidas")
            return IsAbout(
                natural_person=Person(
                    family_name=record.family_name,
                    given_name=record.given_name,
                    date_of_birth=record.date_of_birth,
                    identifier=identifier,
                )
            )
        legal_id = None
        if isinstance(subject, LegalPerson) and subject.legal_person_identifier is not None:
            legal_id = subject.legal_person_identifier
        elif record.legal_person_identifier:
            legal_id = Identifier(record.legal_person_identifier, "eidas")
        address = (
            Address(self.jurisdiction.admin_unit_level_1, post_code=record.post_code) if record.post_code else None
        )
        return IsAbout(
            legal_person=LegalPerson(
                legal_name=record.legal_name, legal_person_identifier=legal_id, registered_address=address
            )
        )

    # --- both ---------------------------------------------------------------------------------------
    def provide(
        self,
        subject: Person | LegalPerson,
        requested: Sequence[EvidenceTypeDistribution] = (),
        *,
        issuing_date: dt.date | None = None,
        language: str | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> Provision:
        """Identify ``subject`` and render the evidence, or raise :class:`EvidenceRefused`."""
        self.check_level_of_assurance(subject.level_of_assurance)
        self._wanted(requested)  # refuse an unsupported distribution before touching the register
        match = self.identify(subject)
        if match.outcome is not MatchOutcome.MATCH or match.record is None:
            message = (
                "the person was not found in the register"
                if match.outcome is MatchOutcome.NO_MATCH
                else "several persons of the register fit the request; none can be chosen"
            )
            raise EvidenceRefused(message, code="EDM:ERR:0004", reason=match.reason)
        evidences = self.render(
            match.record, requested, subject=subject, issuing_date=issuing_date, language=language, new_id=new_id
        )
        return Provision(match, evidences)
