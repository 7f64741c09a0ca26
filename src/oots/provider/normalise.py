"""Name normalisation for identity matching: case, diacritics, scripts, compound names.

Pure functions, no I/O. A name is cut into tokens (:func:`split_name`); each token gets a small set
of *keys* (:func:`token_keys`): its plausible Latin spellings, folded so that common spelling variants
meet. Two tokens are "the same name" when their key sets intersect. The sets are small (one to four
keys), so the same keys serve as the index of a register (``oots.provider.registers``).

Scripts:

* Latin: Unicode compatibility form, case folded, diacritics removed (``é`` → ``e``), special letters
  spelled out (``ß`` → ``ss``, ``ø`` → ``o``, ``ł`` → ``l``, ``æ`` → ``ae``); for ``ä ö ü`` the German
  spellings ``ae oe ue`` are a second key (``Müller`` meets ``Mueller`` and ``Muller``).
* Greek: ELOT 743 (the Greek standard, also used in Greek passports since 2011) and the older
  phonetic spellings: ``αυ``/``ευ`` always ``av``/``ev``, ``γ`` → ``y`` before ``ε ι η υ``, ``μπ`` →
  ``b`` and ``ντ`` → ``d`` at the start, ``γκ`` → ``g``/``ng``; every combination of them (a name is
  often spelt half one way, half the other). ``χ`` → ``h``, ``υ`` → ``i``, ``φ`` → ``ph``,
  ``ξ`` → ``ks`` are covered by the folding.
* Cyrillic: ISO 9 (diacritics then removed), the ICAO 9303 passport table (Russian), the Ukrainian
  national table (``г`` → ``h``), the Bulgarian official table (``щ`` → ``sht``, ``ъ`` → ``a``) and
  the scholarly spelling (``щ`` → ``šč``).

Folding (applied to every key): ``ph`` → ``f``, ``kh`` and ``ch`` → ``h``, ``ks`` → ``x``, ``ou`` → ``u``,
``y`` and ``j`` → ``i``, ``w`` → ``v``, doubled letters once. Folding is applied to both sides, so it
can only make two names meet when they differ by those spellings; the date of birth and the other
name parts must agree as well.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "PARTICLES",
    "NameTokens",
    "fold",
    "latin_forms",
    "name_keys",
    "split_name",
    "strip_diacritics",
    "token_keys",
]

#: Surname particles: kept for the joined spelling (``van der Berg`` = ``Vanderberg``) but not
#: counted as a name part of their own (``Berg`` is the significant part).
PARTICLES = frozenset(
    {
        "af",
        "al",
        "av",
        "d",
        "da",
        "das",
        "de",
        "dei",
        "degli",
        "del",
        "della",
        "delle",
        "dello",
        "den",
        "der",
        "des",
        "di",
        "do",
        "dos",
        "du",
        "e",
        "el",
        "la",
        "las",
        "le",
        "lo",
        "los",
        "op",
        "t",
        "te",
        "ten",
        "ter",
        "van",
        "vom",
        "von",
        "y",
        "zu",
        "zum",
        "zur",
    }
)

_SPECIAL_LATIN = {
    "ß": "ss",
    "ẞ": "ss",
    "æ": "ae",
    "œ": "oe",
    "ø": "o",
    "ł": "l",
    "đ": "d",
    "ð": "d",
    "þ": "th",
    "ı": "i",
    "ħ": "h",
    "ŋ": "ng",
    "ĸ": "k",
    "ſ": "s",
}
_GERMAN_UMLAUTS = {"ä": "ae", "ö": "oe", "ü": "ue"}

# --- Greek -----------------------------------------------------------------------------------------
_GREEK_VOWELS = set("αεηιουω")
_GREEK_VOICED = set("βγδζλμνρ") | _GREEK_VOWELS
# ELOT 743 single letters (lower case, accents already removed, diaeresis kept apart).
_ELOT_SINGLE = {
    "α": "a",
    "β": "v",
    "γ": "g",
    "δ": "d",
    "ε": "e",
    "ζ": "z",
    "η": "i",
    "θ": "th",
    "ι": "i",
    "κ": "k",
    "λ": "l",
    "μ": "m",
    "ν": "n",
    "ξ": "x",
    "ο": "o",
    "π": "p",
    "ρ": "r",
    "σ": "s",
    "ς": "s",
    "τ": "t",
    "υ": "y",
    "φ": "f",
    "χ": "ch",
    "ψ": "ps",
    "ω": "o",
}

# --- Cyrillic --------------------------------------------------------------------------------------
_ISO9 = {
    "а": "a",
    "б": "b",
    "в": "v",
    "г": "g",
    "ґ": "g",
    "д": "d",
    "ѓ": "g",
    "е": "e",
    "ё": "e",
    "є": "e",
    "ж": "z",
    "з": "z",
    "ѕ": "z",
    "и": "i",
    "і": "i",
    "ї": "i",
    "й": "j",
    "ј": "j",
    "к": "k",
    "ќ": "k",
    "л": "l",
    "љ": "l",
    "м": "m",
    "н": "n",
    "њ": "n",
    "о": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "у": "u",
    "ў": "u",
    "ф": "f",
    "х": "h",
    "ц": "c",
    "ч": "c",
    "џ": "d",
    "ш": "s",
    "щ": "s",
    "ъ": "",
    "ы": "y",
    "ь": "",
    "э": "e",
    "ю": "u",
    "я": "a",
}
_RUSSIAN_ICAO = {
    **_ISO9,
    "ё": "e",
    "ж": "zh",
    "й": "i",
    "х": "kh",
    "ц": "ts",
    "ч": "ch",
    "ш": "sh",
    "щ": "shch",
    "ъ": "ie",
    "ю": "iu",
    "я": "ia",
}
_UKRAINIAN = {
    **_RUSSIAN_ICAO,
    "г": "h",
    "ґ": "g",
    "и": "y",
    "і": "i",
    "ї": "i",
    "є": "ie",
    "ъ": "",
}
_BULGARIAN = {
    **_RUSSIAN_ICAO,
    "й": "y",
    "х": "h",
    "щ": "sht",
    "ъ": "a",
    "ь": "y",
    "ю": "yu",
    "я": "ya",
}
# The scholarly (Czech-based) spelling common in Central European documents: ``Ščerbakov``.
_SCHOLARLY = {**_ISO9, "х": "ch", "щ": "sc", "ю": "ju", "я": "ja", "ё": "jo", "ъ": "", "ы": "y"}
_CYRILLIC_TABLES = (_ISO9, _RUSSIAN_ICAO, _UKRAINIAN, _BULGARIAN, _SCHOLARLY)

_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―_,;/.·]+")
_APOSTROPHES = re.compile(r"['’‘`´ʼ]")
_NOT_WORD = re.compile(r"[^\w]+")
_FOLD_PAIRS = (("ph", "f"), ("kh", "h"), ("ch", "h"), ("ks", "x"), ("ou", "u"), ("y", "i"), ("j", "i"), ("w", "v"))
_DOUBLE = re.compile(r"(.)\1+")
_LATIN_NAME = re.compile(r"^LATIN (?:SMALL|CAPITAL) LETTER ([A-Z])\b")


def strip_diacritics(text: str) -> str:
    """Remove combining marks after compatibility decomposition (``Ελένη`` → ``Ελενη``, ``é`` → ``e``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def fold(latin: str) -> str:
    """Fold an ASCII spelling so that common variants meet (see the module docstring)."""
    out = latin
    while True:
        before = out
        for old, new in _FOLD_PAIRS:
            out = out.replace(old, new)
        out = _DOUBLE.sub(r"\1", out)
        if out == before:
            return out


def _is_script(token: str, low: int, high: int) -> bool:
    return any(low <= ord(c) <= high for c in token)


def _greek_letters(token: str) -> tuple[list[str], list[bool]]:
    """Lower-case Greek letters without accents, and for each whether it carries a diaeresis."""
    # Diaeresis means "no diphthong": mark it before the other accents are stripped.
    marked = unicodedata.normalize("NFD", token).replace("\u0308", "\x00")
    plain = "".join(c for c in marked if not unicodedata.combining(c) or c == "\x00")
    letters: list[str] = []
    parted: list[bool] = []
    for c in unicodedata.normalize("NFC", plain):
        if c == "\x00":
            if parted:
                parted[-1] = True
            continue
        letters.append(c)
        parted.append(False)
    return letters, parted


def _greek_segments(token: str) -> list[tuple[str, ...]]:
    """The token as segments, each with its spellings: ELOT 743 first, then the common variants."""
    letters, parted = _greek_letters(token)
    out: list[tuple[str, ...]] = []
    i = 0
    n = len(letters)
    while i < n:
        c = letters[i]
        nxt = letters[i + 1] if i + 1 < n else ""
        after = letters[i + 2] if i + 2 < n else ""
        if c in "αεη" and nxt == "υ" and not parted[i + 1]:
            base = {"α": "a", "ε": "e", "η": "i"}[c]
            voiced = bool(after) and after in _GREEK_VOICED
            out.append((base + ("v" if voiced else "f"), base + "v", base + "f"))
            i += 2
            continue
        if c == "ο" and nxt == "υ" and not parted[i + 1]:
            out.append(("ou",))
            i += 2
            continue
        if c == "γ" and nxt in ("γ", "ξ", "χ"):
            out.append(("ng",) if nxt == "γ" else ("n" + _ELOT_SINGLE[nxt],))
            i += 2
            continue
        if c == "γ" and nxt == "κ":
            out.append(("gk", "g") if i == 0 else ("gk", "ng"))
            i += 2
            continue
        if c == "μ" and nxt == "π":
            out.append(("mp", "b") if i == 0 else ("mp", "mb"))
            i += 2
            continue
        if c == "ν" and nxt == "τ":
            out.append(("nt", "d") if i == 0 else ("nt", "nd"))
            i += 2
            continue
        if c == "γ" and nxt in "εηιυ":
            out.append(("g", "y"))
            i += 1
            continue
        out.append((_ELOT_SINGLE.get(c, c),))
        i += 1
    return out


#: Above this many spellings of one Greek token only the ELOT 743 one and the all-variants one are kept.
_MAX_GREEK_SPELLINGS = 32


def _greek(token: str) -> set[str]:
    segments = _greek_segments(token)
    count = 1
    for seg in segments:
        count *= len(seg)
    if count > _MAX_GREEK_SPELLINGS:
        return {"".join(seg[0] for seg in segments), "".join(seg[-1] for seg in segments)}
    spellings = {""}
    for seg in segments:
        spellings = {head + tail for head in spellings for tail in seg}
    return spellings


def _latin(token: str) -> set[str]:
    spellings = {token}
    if any(c in _GERMAN_UMLAUTS for c in token):
        spellings.add("".join(_GERMAN_UMLAUTS.get(c, c) for c in token))
    out = set()
    for spelling in spellings:
        spelled = "".join(_SPECIAL_LATIN.get(c, c) for c in strip_diacritics(spelling))
        out.add(strip_diacritics(spelled))
    return out


def _ascii_fallback(text: str) -> str:
    """Letters no table knows: Latin ones by their Unicode name (``ƀ`` → ``b``); others of the Latin,
    Greek and Cyrillic blocks are dropped; letters of other scripts are kept as they are."""
    out: list[str] = []
    for c in text:
        if c.isascii():
            out.append(c)
            continue
        if c in _SPECIAL_LATIN:
            out.append(_SPECIAL_LATIN[c])
            continue
        found = _LATIN_NAME.match(unicodedata.name(c, ""))
        if found:
            out.append(found.group(1).lower())
        elif ord(c) >= 0x0530 and not 0x1D00 <= ord(c) <= 0x1FFF:
            out.append(c)
    return "".join(out)


def latin_forms(token: str) -> frozenset[str]:
    """The plausible Latin spellings of one case-folded token (before folding)."""
    if _is_script(token, 0x0370, 0x03FF) or _is_script(token, 0x1F00, 0x1FFF):
        forms = _greek(token)
    elif _is_script(token, 0x0400, 0x04FF):
        forms = {"".join(table.get(c, c) for c in token) for table in _CYRILLIC_TABLES}
    else:
        forms = _latin(token)
    cleaned = {_ascii_fallback(_NOT_WORD.sub("", strip_diacritics(f))) for f in forms}
    return frozenset(f for f in cleaned if f)


@lru_cache(maxsize=65536)
def token_keys(token: str) -> frozenset[str]:
    """The match keys of one token: its Latin spellings, folded. Empty for an empty token."""
    lowered = unicodedata.normalize("NFKC", token).casefold()
    lowered = _APOSTROPHES.sub("", lowered)
    return frozenset(fold(f) for f in latin_forms(lowered))


@dataclass(frozen=True, slots=True)
class NameTokens:
    """A name cut into tokens: ``all`` in order (particles included) and ``significant`` (without).

    ``joined`` holds the keys of the whole name written as one word (``van der Berg`` → ``vanderberg``).
    """

    all: tuple[frozenset[str], ...]
    significant: tuple[frozenset[str], ...]
    joined: frozenset[str]

    @property
    def empty(self) -> bool:
        return not self.all


@lru_cache(maxsize=65536)
def split_name(text: str) -> NameTokens:
    """Cut a name into tokens on spaces, hyphens and punctuation; apostrophes join (``O'Brien``)."""
    lowered = unicodedata.normalize("NFKC", text).casefold()
    lowered = _APOSTROPHES.sub("", lowered)
    raw = [t for t in _SEPARATORS.split(lowered) if t]
    keyed = [(t, token_keys(t)) for t in raw]
    keyed = [(t, k) for t, k in keyed if k]
    all_keys = tuple(k for _, k in keyed)
    significant = tuple(k for t, k in keyed if strip_diacritics(t) not in PARTICLES)
    if not significant:
        significant = all_keys
    joined = token_keys("".join(t for t, _ in keyed)) if keyed else frozenset()
    return NameTokens(all=all_keys, significant=significant, joined=joined)


def name_keys(text: str) -> frozenset[str]:
    """Every key of every significant token of a name, and of the name joined: what a register indexes."""
    tokens = split_name(text)
    keys: set[str] = set(tokens.joined)
    for token in tokens.significant:
        keys |= token
    return frozenset(keys)


def same_token(a: frozenset[str], b: frozenset[str]) -> bool:
    """True when two tokens have a spelling in common."""
    return not a.isdisjoint(b)


def any_key(keys: Iterable[frozenset[str]]) -> frozenset[str]:
    """The union of several key sets."""
    out: set[str] = set()
    for k in keys:
        out |= k
    return frozenset(out)
