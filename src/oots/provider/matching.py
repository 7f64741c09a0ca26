"""Identity matching: is the person of a request exactly one person of a register?

Pure, no I/O: :func:`match_person` and :func:`match_legal_person` take what the request says and the
candidates a register returned, and give a :class:`MatchResult` — exactly one match, no match or
several matches — with a *reason code* that holds no personal data, so it can go to the audit journal.
Evidence goes out only on :attr:`MatchOutcome.MATCH`; no match and several matches are both answered
as errors (the TDD: never evidence about the wrong person).

The rules (:class:`MatchRules`), in order:

1. **Identifier.** When the request carries an identifier (eIDAS ``CC/DD/value``: the destination
   ``DD`` is ignored, the issuing country and the value must agree) and a candidate holds the same
   one, that candidate is the match, whatever its names. A candidate holding a *different* identifier
   of the same issuing country is a different person and is dropped.
2. **Date of birth** must be equal.
3. **Names.** Family and given names are compared token by token on their keys
   (:mod:`oots.provider.normalise`: case, diacritics, Greek and Cyrillic transliteration, spelling
   variants). Levels: ``EXACT`` (same parts in the same order, or the same name written as one word),
   ``REORDERED`` (same parts, other order), ``PARTIAL`` (the parts of one are some of the other's:
   ``García`` against ``García Márquez``, ``Maria`` against ``Maria Luisa``). Particles (``van``,
   ``de``, ``von``...) do not count as parts. The rules name the lowest level accepted for each.
4. **Tie-breakers.** When several candidates remain, the optional attributes that both sides have —
   birth name, place of birth, gender, post code — decide: candidates that contradict the request are
   dropped, then those that agree on the most attributes are kept. More than one left: ambiguous.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Generic, TypeVar

from oots.provider.normalise import NameTokens, split_name, token_keys

__all__ = [
    "Attribute",
    "LegalPersonQuery",
    "LegalPersonRecord",
    "MatchOutcome",
    "MatchResult",
    "MatchRules",
    "NameLevel",
    "PersonQuery",
    "PersonRecord",
    "compare_names",
    "identifier_issuer",
    "legal_name_key",
    "match_legal_person",
    "match_person",
    "normalise_identifier",
    "normalise_legal_identifier",
]


class MatchOutcome(StrEnum):
    MATCH = "MATCH"
    NO_MATCH = "NO_MATCH"
    AMBIGUOUS = "AMBIGUOUS"


class NameLevel(IntEnum):
    """How well two names agree; higher is better."""

    NONE = 0
    PARTIAL = 1
    REORDERED = 2
    EXACT = 3


class Attribute(StrEnum):
    """Optional attributes used as tie-breakers."""

    BIRTH_NAME = "birth_name"
    PLACE_OF_BIRTH = "place_of_birth"
    GENDER = "gender"
    POST_CODE = "post_code"


@dataclass(frozen=True, slots=True)
class PersonQuery:
    """The natural person a request is about (the eIDAS minimum data set and optional attributes)."""

    family_name: str
    given_name: str
    date_of_birth: dt.date
    identifier: str | None = None
    birth_name: str | None = None
    place_of_birth: str | None = None
    gender: str | None = None
    post_code: str | None = None


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """A natural person as a register holds them; ``record_id`` is the register's own key."""

    record_id: str
    family_name: str
    given_name: str
    date_of_birth: dt.date
    identifier: str | None = None
    birth_name: str | None = None
    place_of_birth: str | None = None
    gender: str | None = None
    post_code: str | None = None


@dataclass(frozen=True, slots=True)
class LegalPersonQuery:
    """The legal person a request is about: identifiers as ``(scheme, value)`` and the legal name."""

    legal_name: str
    identifiers: tuple[tuple[str, str], ...] = ()
    legal_person_identifier: str | None = None
    post_code: str | None = None


@dataclass(frozen=True, slots=True)
class LegalPersonRecord:
    """A legal person as a register holds it."""

    record_id: str
    legal_name: str
    identifiers: tuple[tuple[str, str], ...] = ()
    legal_person_identifier: str | None = None
    post_code: str | None = None


@dataclass(frozen=True, slots=True)
class MatchRules:
    """Configurable identity-matching rules (one set per data service)."""

    use_identifier: bool = True
    #: With an identifier in the request that no candidate holds, go on with names and date of birth.
    identifier_fallback: bool = True
    min_family_level: NameLevel = NameLevel.PARTIAL
    min_given_level: NameLevel = NameLevel.PARTIAL
    #: Also accept family and given names given the other way round.
    allow_swapped_names: bool = False
    tie_breakers: tuple[Attribute, ...] = (
        Attribute.BIRTH_NAME,
        Attribute.PLACE_OF_BIRTH,
        Attribute.GENDER,
        Attribute.POST_CODE,
    )
    #: Attributes that, when both sides have them and they differ, reject even a single candidate.
    reject_on_conflict: tuple[Attribute, ...] = ()
    #: Legal persons: accept a match on the legal name when no identifier agrees.
    legal_name_fallback: bool = True


R = TypeVar("R", PersonRecord, LegalPersonRecord)


@dataclass(frozen=True, slots=True)
class MatchResult(Generic[R]):
    """The outcome, the matched record (only on MATCH) and a reason code free of personal data.

    ``reason`` looks like ``MATCH:IDENTIFIER``, ``MATCH:NAMES:family=EXACT,given=PARTIAL``,
    ``MATCH:TIE_BREAK:place_of_birth``, ``NO_MATCH:DATE_OF_BIRTH``, ``AMBIGUOUS:NAMES:n=2``.
    """

    outcome: MatchOutcome
    reason: str
    record: R | None = None
    candidates: int = 0
    matched: tuple[str, ...] = field(default=())

    @property
    def is_match(self) -> bool:
        return self.outcome is MatchOutcome.MATCH


# the value greedy (its blanks go with the noise below): a lazy one before optional blanks was quadratic
_EIDAS = re.compile(r"^\s*([A-Za-z]{2})\s*/\s*([A-Za-z]{2})\s*/(.+)$", re.DOTALL)
_ID_NOISE = re.compile(r"[\s.\-]")


def normalise_identifier(value: str) -> str:
    """An eIDAS person identifier without its destination country: ``ES/AT/02635542Y`` → ``ES/02635542Y``.

    Values that are not in the eIDAS form are only stripped of spaces, dots and hyphens, and upper-cased.
    """
    found = _EIDAS.match(value)
    if found:
        return f"{found.group(1).upper()}/{_ID_NOISE.sub('', found.group(3)).upper()}"
    return _ID_NOISE.sub("", value).upper()


def identifier_issuer(normalised: str) -> str | None:
    """The issuing country of a :func:`normalise_identifier` result in the eIDAS form (``ES/…`` → ``ES``)."""
    head, sep, _ = normalised.partition("/")
    return head if sep and len(head) == 2 else None


def normalise_legal_identifier(scheme: str, value: str) -> tuple[str, str]:
    """``(scheme, value)`` compared case-insensitively; a VAT number loses its country prefix."""
    scheme_n = scheme.strip().upper()
    value_n = _ID_NOISE.sub("", value).upper()
    if scheme_n == "VAT" and len(value_n) > 2 and value_n[:2].isalpha():
        value_n = value_n[2:]
    return scheme_n, value_n


def _level(a: NameTokens, b: NameTokens) -> NameLevel:
    if a.empty or b.empty:
        return NameLevel.NONE
    if not a.joined.isdisjoint(b.joined):
        return NameLevel.EXACT
    sa, sb = a.significant, b.significant
    if len(sa) == len(sb) and all(not x.isdisjoint(y) for x, y in zip(sa, sb, strict=True)):
        return NameLevel.EXACT
    short, long_ = (sa, sb) if len(sa) <= len(sb) else (sb, sa)
    used = [False] * len(long_)
    for token in short:
        for j, other in enumerate(long_):
            if not used[j] and not token.isdisjoint(other):
                used[j] = True
                break
        else:
            return NameLevel.NONE
    return NameLevel.REORDERED if len(short) == len(long_) else NameLevel.PARTIAL


def compare_names(a: str, b: str) -> NameLevel:
    """How well two names (family or given) agree."""
    return _level(split_name(a), split_name(b))


def _names(query: PersonQuery, record: PersonRecord, rules: MatchRules) -> tuple[NameLevel, NameLevel]:
    family = compare_names(query.family_name, record.family_name)
    given = compare_names(query.given_name, record.given_name)
    if rules.allow_swapped_names and (family < rules.min_family_level or given < rules.min_given_level):
        swapped_family = compare_names(query.given_name, record.family_name)
        swapped_given = compare_names(query.family_name, record.given_name)
        if swapped_family >= rules.min_family_level and swapped_given >= rules.min_given_level:
            return swapped_family, swapped_given
    return family, given


_GENDERS = {
    "m": "m",
    "male": "m",
    "man": "m",
    "1": "m",
    "f": "f",
    "female": "f",
    "woman": "f",
    "2": "f",
}


def _attr_agrees(attribute: Attribute, a: str, b: str) -> bool:
    if attribute is Attribute.GENDER:
        ga, gb = _GENDERS.get(a.strip().casefold()), _GENDERS.get(b.strip().casefold())
        return ga is None or gb is None or ga == gb
    if attribute is Attribute.POST_CODE:
        return _ID_NOISE.sub("", a).upper() == _ID_NOISE.sub("", b).upper()
    if attribute is Attribute.BIRTH_NAME:
        return compare_names(a, b) >= NameLevel.REORDERED
    return compare_names(a, b) >= NameLevel.PARTIAL


def _tally(query: PersonQuery, record: PersonRecord, attributes: Sequence[Attribute]) -> tuple[int, int, list[str]]:
    agree = conflict = 0
    conflicts: list[str] = []
    for attribute in attributes:
        mine = getattr(query, attribute.value)
        theirs = getattr(record, attribute.value)
        if not mine or not theirs:
            continue
        if _attr_agrees(attribute, mine, theirs):
            agree += 1
        else:
            conflict += 1
            conflicts.append(attribute.value)
    return agree, conflict, conflicts


def _by_identifier(query: PersonQuery, candidates: Sequence[PersonRecord]) -> tuple[list[PersonRecord], bool]:
    """(candidates with the same identifier, whether some had a conflicting one) ."""
    assert query.identifier
    wanted = normalise_identifier(query.identifier)
    issuer = identifier_issuer(wanted)
    same = [c for c in candidates if c.identifier and normalise_identifier(c.identifier) == wanted]
    conflicting = any(
        c.identifier
        and normalise_identifier(c.identifier) != wanted
        and identifier_issuer(normalise_identifier(c.identifier)) == issuer
        for c in candidates
    )
    return same, conflicting


def match_person(
    query: PersonQuery, candidates: Sequence[PersonRecord], rules: MatchRules | None = None
) -> MatchResult[PersonRecord]:
    """Decide which of ``candidates`` (if any) is the person of ``query``."""
    rules = rules or MatchRules()
    pool = list(candidates)
    n = len(pool)
    if rules.use_identifier and query.identifier:
        same, _ = _by_identifier(query, pool)
        if len(same) == 1:
            return MatchResult(MatchOutcome.MATCH, "MATCH:IDENTIFIER", same[0], n, (same[0].record_id,))
        if len(same) > 1:
            ids = tuple(c.record_id for c in same)
            return MatchResult(MatchOutcome.AMBIGUOUS, f"AMBIGUOUS:IDENTIFIER:n={len(same)}", None, n, ids)
        if not rules.identifier_fallback:
            return MatchResult(MatchOutcome.NO_MATCH, "NO_MATCH:IDENTIFIER", None, n)
        wanted = normalise_identifier(query.identifier)
        issuer = identifier_issuer(wanted)
        if issuer is not None:
            pool = [
                c for c in pool if not c.identifier or identifier_issuer(normalise_identifier(c.identifier)) != issuer
            ]
    if not pool:
        reason = "NO_MATCH:NO_CANDIDATE" if n == 0 else "NO_MATCH:IDENTIFIER_CONFLICT"
        return MatchResult(MatchOutcome.NO_MATCH, reason, None, n)
    born = [c for c in pool if c.date_of_birth == query.date_of_birth]
    if not born:
        return MatchResult(MatchOutcome.NO_MATCH, "NO_MATCH:DATE_OF_BIRTH", None, n)
    named: list[tuple[PersonRecord, NameLevel, NameLevel]] = []
    for record in born:
        family, given = _names(query, record, rules)
        if family >= rules.min_family_level and given >= rules.min_given_level:
            named.append((record, family, given))
    if not named:
        return MatchResult(MatchOutcome.NO_MATCH, "NO_MATCH:NAMES", None, n)
    if len(named) == 1:
        record, family, given = named[0]
        _, conflicts, which = _tally(query, record, rules.reject_on_conflict)
        if conflicts:
            return MatchResult(MatchOutcome.NO_MATCH, f"NO_MATCH:CONFLICT:{','.join(which)}", None, n)
        reason = f"MATCH:NAMES:family={family.name},given={given.name}"
        return MatchResult(MatchOutcome.MATCH, reason, record, n, (record.record_id,))
    return _tie_break(query, [r for r, _, _ in named], rules, n)


def _tie_break(query: PersonQuery, named: list[PersonRecord], rules: MatchRules, n: int) -> MatchResult[PersonRecord]:
    tallies = [(r, *_tally(query, r, rules.tie_breakers)) for r in named]
    consistent = [(r, agree) for r, agree, conflict, _ in tallies if conflict == 0]
    if not consistent:
        ids = tuple(r.record_id for r in named)
        return MatchResult(MatchOutcome.AMBIGUOUS, f"AMBIGUOUS:CONFLICTS:n={len(named)}", None, n, ids)
    best = max(agree for _, agree in consistent)
    top = [r for r, agree in consistent if agree == best]
    if len(top) == 1:
        others = [r for r in named if r is not top[0]]
        decided = [a.value for a in rules.tie_breakers if _decides(query, top[0], others, a)]
        reason = "MATCH:TIE_BREAK:" + (",".join(decided) or "conflicts")
        return MatchResult(MatchOutcome.MATCH, reason, top[0], n, (top[0].record_id,))
    ids = tuple(r.record_id for r in top)
    return MatchResult(MatchOutcome.AMBIGUOUS, f"AMBIGUOUS:NAMES:n={len(top)}", None, n, ids)


def _decides(query: PersonQuery, winner: PersonRecord, others: list[PersonRecord], attribute: Attribute) -> bool:
    """True when ``attribute`` agrees for the winner and fails to agree for some other candidate."""
    mine = getattr(query, attribute.value)
    if not mine or not getattr(winner, attribute.value):
        return False
    for other in others:
        theirs = getattr(other, attribute.value)
        if not theirs or not _attr_agrees(attribute, mine, theirs):
            return True
    return False


_LEGAL_FORMS = frozenset(
    {
        "ab",
        "ae",
        "ag",
        "as",
        "asbl",
        "bv",
        "bvba",
        "co",
        "cv",
        "eg",
        "ei",
        "eirl",
        "ek",
        "epe",
        "eurl",
        "gmbh",
        "gie",
        "ike",
        "inc",
        "kft",
        "kg",
        "ltd",
        "mbh",
        "nv",
        "oe",
        "oy",
        "plc",
        "sa",
        "sarl",
        "sas",
        "sasu",
        "sc",
        "sl",
        "spa",
        "sprl",
        "srl",
        "snc",
        "spzoo",
        "sro",
        "ug",
        "vof",
    }
)


def _legal_name_key(name: str) -> str:
    tokens = split_name(name.replace("&", " and "))
    words: list[str] = []
    for keys in tokens.all:
        words.append(min(keys))
    # Legal forms written with dots or spaces ("S.A.", "Sp. z o.o.") come apart into letters: join
    # runs of one- and two-letter tokens before looking them up.
    joined: list[str] = []
    run = ""
    for word in words:
        if len(word) <= 2:
            run += word
            continue
        if run:
            joined.append(run)
            run = ""
        joined.append(word)
    if run:
        joined.append(run)
    kept = [w for w in joined if w not in _LEGAL_FORMS and min(token_keys(w)) not in _LEGAL_FORMS]
    return " ".join(kept or joined)


def match_legal_person(
    query: LegalPersonQuery, candidates: Sequence[LegalPersonRecord], rules: MatchRules | None = None
) -> MatchResult[LegalPersonRecord]:
    """Decide which of ``candidates`` is the legal person of ``query``: identifiers first, then the name."""
    rules = rules or MatchRules()
    n = len(candidates)
    if not candidates:
        return MatchResult(MatchOutcome.NO_MATCH, "NO_MATCH:NO_CANDIDATE", None, 0)
    wanted = {normalise_legal_identifier(s, v) for s, v in query.identifiers}
    if query.legal_person_identifier:
        wanted.add(("EIDAS", normalise_identifier(query.legal_person_identifier)))
    if rules.use_identifier and wanted:
        hits = []
        for c in candidates:
            held = {normalise_legal_identifier(s, v) for s, v in c.identifiers}
            if c.legal_person_identifier:
                held.add(("EIDAS", normalise_identifier(c.legal_person_identifier)))
            if held & wanted:
                hits.append(c)
        if len(hits) == 1:
            return MatchResult(MatchOutcome.MATCH, "MATCH:IDENTIFIER", hits[0], n, (hits[0].record_id,))
        if len(hits) > 1:
            ids = tuple(c.record_id for c in hits)
            return MatchResult(MatchOutcome.AMBIGUOUS, f"AMBIGUOUS:IDENTIFIER:n={len(hits)}", None, n, ids)
        if not rules.legal_name_fallback:
            return MatchResult(MatchOutcome.NO_MATCH, "NO_MATCH:IDENTIFIER", None, n)
    elif not rules.legal_name_fallback:
        return MatchResult(MatchOutcome.NO_MATCH, "NO_MATCH:NO_IDENTIFIER", None, n)
    key = _legal_name_key(query.legal_name)
    named = [c for c in candidates if _legal_name_key(c.legal_name) == key]
    if query.post_code and len(named) > 1:
        code = _ID_NOISE.sub("", query.post_code).upper()
        located = [c for c in named if c.post_code and _ID_NOISE.sub("", c.post_code).upper() == code]
        if len(located) == 1:
            return MatchResult(MatchOutcome.MATCH, "MATCH:TIE_BREAK:post_code", located[0], n, (located[0].record_id,))
    if len(named) == 1:
        return MatchResult(MatchOutcome.MATCH, "MATCH:LEGAL_NAME", named[0], n, (named[0].record_id,))
    if not named:
        return MatchResult(MatchOutcome.NO_MATCH, "NO_MATCH:LEGAL_NAME", None, n)
    ids = tuple(c.record_id for c in named)
    return MatchResult(MatchOutcome.AMBIGUOUS, f"AMBIGUOUS:LEGAL_NAME:n={len(named)}", None, n, ids)


def legal_name_key(name: str) -> str:
    """The comparison key of a legal name (legal forms and punctuation removed); what registers index."""
    return _legal_name_key(name)
