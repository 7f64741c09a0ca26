"""Name normalisation: scripts, diacritics, variants, and its invariants (property-based)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oots.provider.normalise import fold, name_keys, split_name, strip_diacritics, token_keys


def meet(a: str, b: str) -> bool:
    return not token_keys(a).isdisjoint(token_keys(b))


@pytest.mark.parametrize(
    ("native", "latin"),
    [
        # Greek: ELOT 743 and the older phonetic spellings
        ("Παπαδόπουλος", "Papadopoulos"),
        ("Ελένη", "Eleni"),
        ("Γιάννης", "Giannis"),
        ("Γιάννης", "Yannis"),
        ("Χατζηγεωργίου", "Chatzigeorgiou"),
        ("Χατζηγεωργίου", "Hatzigeorgiou"),
        ("Ευάγγελος", "Evangelos"),
        ("Ευθυμίου", "Efthymiou"),
        ("Ευθυμίου", "Efthimiou"),
        ("Μπακογιάννης", "Mpakogiannis"),
        ("Μπακογιάννης", "Bakoyannis"),
        ("Ντόρα", "Dora"),
        ("Αλέξανδρος", "Alexandros"),
        ("Αλέξανδρος", "Aleksandros"),
        ("Φωτεινή", "Foteini"),
        ("Φωτεινή", "Photeini"),
        ("Ψαρράς", "Psarras"),
        ("Θεοδώρου", "Theodorou"),
        ("Κωνσταντίνος", "Konstantinos"),
        ("Αγγελική", "Angeliki"),
        # Cyrillic: ISO 9, passports (ICAO), Ukrainian and Bulgarian tables
        ("Щербаков", "Shcherbakov"),
        ("Щербаков", "Ščerbakov"),
        ("Юлия", "Yulia"),
        ("Юлия", "Iuliia"),
        ("Юлия", "Julija"),
        ("Сергей", "Sergey"),
        ("Сергей", "Sergei"),
        ("Шевченко", "Shevchenko"),
        ("Шевченко", "Ševčenko"),
        ("Олександр", "Oleksandr"),
        ("Григорій", "Hryhorii"),
        ("Христо", "Hristo"),
        ("Стоянов", "Stoyanov"),
        ("Жечева", "Zhecheva"),
        ("Щерев", "Shterev"),
        ("Хрущёв", "Khrushchev"),
        # Latin: diacritics and special letters
        ("Müller", "Mueller"),
        ("Müller", "Muller"),
        ("Łukasz", "Lukasz"),
        ("Ørsted", "Orsted"),
        ("Straße", "Strasse"),
        ("Žemaitė", "Zemaite"),
        ("Ærø", "Aero"),
        ("François", "Francois"),
        ("Nuño", "Nuno"),
        ("Şahin", "Sahin"),
    ],
)
def test_native_and_latin_spellings_meet(native: str, latin: str) -> None:
    assert meet(native, latin)
    assert meet(native.upper(), latin.lower())


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Papadopoulos", "Papadakis"),
        ("Müller", "Miller"),
        ("Иванов", "Petrov"),
        ("Maria", "Mario"),
        ("Jan", "Jana"),
        ("Ελένη", "Elena"),
    ],
)
def test_different_names_do_not_meet(a: str, b: str) -> None:
    assert not meet(a, b)


def test_split_name_handles_hyphens_particles_and_apostrophes() -> None:
    assert len(split_name("García-Márquez").significant) == 2
    assert len(split_name("van der Berg").significant) == 1
    assert len(split_name("van der Berg").all) == 3
    assert split_name("van der Berg").joined == split_name("Vanderberg").joined
    assert split_name("O'Brien").joined == split_name("OBrien").joined
    assert split_name("  ").empty
    # a name made only of particles keeps them
    assert len(split_name("De La").significant) == 2


def test_name_keys_cover_every_significant_part() -> None:
    keys = name_keys("García Márquez")
    assert {"garcia", "marquez", "garciamarquez"} <= keys


def test_fold_examples() -> None:
    assert fold("philippe") == fold("filippe") == "filipe"
    assert fold("yannis") == fold("iannis")
    assert fold("khristo") == fold("hristo")


names = st.text(
    alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Zs", "Pd"), max_codepoint=0x04FF),
    max_size=20,
)


@given(names)
def test_fold_is_idempotent(text: str) -> None:
    for key in token_keys(text):
        assert fold(key) == key


@given(names)
def test_strip_diacritics_is_idempotent(text: str) -> None:
    once = strip_diacritics(text)
    assert strip_diacritics(once) == once


@given(names)
def test_keys_ignore_case(text: str) -> None:
    assert name_keys(text) == name_keys(text.upper()) == name_keys(text.lower())


@given(names)
def test_keys_ignore_diacritics_of_latin_letters(text: str) -> None:
    latin = "".join(c for c in text if ord(c) < 0x0250)
    # German umlauts give a second spelling, so compare through the plain letters only
    plain = strip_diacritics(latin)
    assert name_keys(plain) <= name_keys(latin) or not name_keys(latin)


@given(names)
def test_keys_are_plain_lower_ascii(text: str) -> None:
    for key in name_keys(text):
        assert key.isascii()
        assert key == key.lower()
        assert key.isalnum()


@given(names)
def test_a_name_always_meets_itself(text: str) -> None:
    tokens = split_name(text)
    for part in tokens.all:
        assert part


@given(st.lists(st.sampled_from(["Anna", "Maria", "Jose", "Ελένη", "Юлия", "Müller"]), min_size=1, max_size=3))
def test_separators_do_not_change_keys(parts: list[str]) -> None:
    assert split_name(" ".join(parts)).significant == split_name("-".join(parts)).significant
