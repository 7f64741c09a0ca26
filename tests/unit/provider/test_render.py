"""Evidence rendering: the PDF opens and holds the text; XML and JSON are valid against their models."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from oots.errors import LocalProtocolError, ValidationFailed
from oots.provider.datamodels import (
    MODELS,
    json_schema,
    model_by_conforms_to,
    model_by_name,
    validate_json,
    validate_json_document,
    write_schemas,
    xml_schema,
)
from oots.provider.render import (
    MEDIA_JSON,
    MEDIA_PDF,
    MEDIA_XML,
    Authority,
    EvidenceContent,
    render,
    render_json,
    render_pdf,
    render_xml,
)
from oots.provider.samples import sample_register
from oots.xmlsafe import parse

AUTHORITY = Authority("EL999000001", "urn:cef.eu:names:identifier:EAS:9933", "Υπουργείο Εσωτερικών")
EVIDENCE_ID = "3f2b8c1e-7d4a-4b9e-8f1c-2a5d6e7f8091"
# the module, not the function of that name the package exports
render_module = importlib.import_module("oots.provider.render")


def content(
    kind: str = "births", country: str = "EL", record: str = "B-EL-0019", model: str = "birth-certificate"
) -> EvidenceContent:
    data = sample_register(kind, country).fetch(record).data
    return EvidenceContent(
        EVIDENCE_ID, model_by_name(model), data, AUTHORITY, dt.date(2026, 11, 27), "EL", "Πιστοποιητικό γέννησης"
    )


def test_pdf_opens_and_holds_the_evidence(extract_pdf_text: Callable[[bytes], str]) -> None:
    pdf = render_pdf(content())
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    text = extract_pdf_text(pdf)
    for expected in (
        "Πιστοποιητικό γέννησης",
        "Παπαδοπούλου",
        "Ελένη",
        "1987-03-25",
        "Αθήνα",
        "Υπουργείο Εσωτερικών",
        "2026-11-27",
        EVIDENCE_ID,
        "Registration number",
        "page 1/1",
    ):
        assert expected in text, expected


def test_pdf_with_cyrillic_and_polish_letters(extract_pdf_text: Callable[[bytes], str]) -> None:
    ukrainian = content("residence", "PL", "R-PL-0027", "residence-certificate")
    text = extract_pdf_text(render_pdf(ukrainian))
    assert "Шевченко" in text
    assert "Олександр" in text
    assert "Marszałkowska" in text


def test_pdf_with_many_annex_rows_has_several_pages(extract_pdf_text: Callable[[bytes], str]) -> None:
    c = content()
    long = EvidenceContent(
        c.evidence_id,
        c.model,
        c.data,
        c.authority,
        c.issuing_date,
        "EN",
        "Birth certificate",
        annex_rows=[(f"Entry {i}", f"value {i}") for i in range(120)],
    )
    text = extract_pdf_text(render_pdf(long))
    assert "Entry 119" in text
    assert "page 3/" in text or "page 2/" in text


def test_xml_is_valid_against_its_schema() -> None:
    xml = render_xml(content())
    root = parse(xml)
    ns = {"m": model_by_name("birth-certificate").namespace}
    assert root.tag == f"{{{ns['m']}}}BirthCertificate"
    assert root.findtext("m:Subject/m:FamilyName", namespaces=ns) == "Παπαδοπούλου"
    assert root.findtext("m:Identifier", namespaces=ns) == EVIDENCE_ID
    assert root.find("m:IssuingAuthority/m:Identifier", ns).get("schemeID") == AUTHORITY.scheme_id  # type: ignore[union-attr]
    schema = etree.XMLSchema(etree.fromstring(xml_schema(model_by_name("birth-certificate"))))
    assert schema.validate(root)


def test_xml_missing_required_data_is_refused() -> None:
    c = content()
    incomplete = {k: v for k, v in c.data.items() if k != "registration_number"}
    with pytest.raises(ValidationFailed, match="not valid against its schema") as caught:
        render_xml(EvidenceContent(c.evidence_id, c.model, incomplete, c.authority, c.issuing_date, "EL", c.title))
    assert any("RegistrationNumber" in str(f) or "RegistrationDate" in str(f) for f in caught.value.findings)


def test_json_is_valid_against_its_schema() -> None:
    value = json.loads(render_json(content()))
    assert value["subject"]["givenName"] == "Ελένη"
    assert value["model"] == model_by_name("birth-certificate").conforms_to
    assert validate_json(json_schema(model_by_name("birth-certificate")), value) == []


def test_json_missing_required_data_is_refused() -> None:
    c = content()
    broken = dict(c.data, registered_on="25/03/1987")
    with pytest.raises(ValidationFailed) as caught:
        render_json(EvidenceContent(c.evidence_id, c.model, broken, c.authority, c.issuing_date, "EL", c.title))
    assert any("registrationDate" in str(f) for f in caught.value.findings)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"a": 1}, "$.a: must be of type string"),
        ({"a": ""}, "$.a: shorter than 1"),
        ({"a": "x", "b": "y"}, "$: b is not allowed"),
        ({}, "$: a is required"),
        ({"a": "x", "d": "2026-02-30"}, "$.d: not a date"),
        ({"a": "x", "c": "other"}, "$.c: must be 'fixed'"),
        ({"a": "x", "l": ["A", 3]}, "$.l[1]: must be of type string"),
        ([], "$: must be of type object"),
    ],
)
def test_small_json_schema_validator(value: object, problem: str) -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "minLength": 1},
            "c": {"const": "fixed"},
            "d": {"type": "string", "format": "date"},
            "l": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["a"],
        "additionalProperties": False,
    }
    assert problem in validate_json(schema, value)


#: A sample register record for every evidence model: (register, country, record id).
_EVERY_MODEL = {
    "birth-certificate": ("births", "DE", "B-DE-0008"),
    "secondary-education-diploma": ("diplomas", "ES", "D-ES-0016"),
    "diploma-supplement": ("diplomas", "ES", "D-ES-0016"),
    "residence-certificate": ("residence", "NL", "R-NL-0024"),
    "company-register-extract": ("companies", "EL", "C-EL-0006"),
    "vehicle-registration": ("vehicles", "PL", "V-PL-0025"),
}


def test_every_model_renders_from_its_sample_register() -> None:
    assert set(_EVERY_MODEL) == {m.name for m in MODELS}
    for model in MODELS:
        kind, country, record = _EVERY_MODEL[model.name]
        c = content(kind, country, record, model.name)
        for media in (MEDIA_PDF, MEDIA_XML, MEDIA_JSON):
            document = render(c, media)
            assert document.media_type == media
            assert document.filename.endswith({MEDIA_PDF: ".pdf", MEDIA_XML: ".xml", MEDIA_JSON: ".json"}[media])
            assert document.conforms_to == (None if media == MEDIA_PDF else model.conforms_to)
            assert len(document.sha256) == 64
        assert model_by_conforms_to(model.conforms_to) is model


def test_unsupported_media_type() -> None:
    with pytest.raises(LocalProtocolError, match="cannot render image/png"):
        render(content(), "image/png")


def test_published_schema_files_match_the_definitions(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    packaged = Path(__file__).resolve().parents[3] / "src" / "oots" / "provider" / "models"
    for model in MODELS:
        assert (packaged / model.xsd_file).read_bytes() == (tmp_path / model.xsd_file).read_bytes(), model.name
        assert (packaged / model.json_schema_file).read_text() == (tmp_path / model.json_schema_file).read_text()


def test_validate_json_document_accepts_rendered_output() -> None:
    model = model_by_name("birth-certificate")
    validate_json_document(model, json.loads(render_json(content())))


def test_pdf_with_the_diacritics_of_every_eu_latin_alphabet(
    extract_pdf_text: Callable[[bytes], str], caplog: pytest.LogCaptureFixture
) -> None:
    # the embedded font is reduced to Latin, Greek and Cyrillic: every EU language's letters stay in it
    c = content()
    names = {"family_name": "Ștefănescu-Győző Čapková", "given_name": "Łukasz Ærøskøbing Þórður Māris Ġużè"}
    with caplog.at_level(logging.WARNING, logger="fpdf"):
        pdf = render_pdf(
            EvidenceContent(c.evidence_id, c.model, {**c.data, **names}, c.authority, c.issuing_date, "EN", "X")
        )
    assert "missing" not in caplog.text  # fpdf2 warns of each glyph the font lacks
    text = extract_pdf_text(pdf)
    for value in names.values():
        for word in value.split():
            assert word in text, word


@pytest.mark.parametrize(
    ("kind", "country", "record", "model"),
    [
        ("births", "EL", "B-EL-0019", "birth-certificate"),
        ("residence", "PL", "R-PL-0027", "residence-certificate"),
    ],
)
def test_pdf_from_kept_fonts_is_the_pdf_of_a_fresh_start(
    kind: str, country: str, record: str, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the fonts a process keeps (reduced per Unicode block, subsets per glyph set) change the time
    # a PDF takes, never its bytes: the same document as fpdf2 subsetting the whole font itself
    c = content(kind, country, record, model)
    other = EvidenceContent(
        c.evidence_id,
        c.model,
        {**c.data, "family_name": "Żółkiewski-Ærø Ștefănescu-Győző Čapková Þórður Māris Ġużè"},
        c.authority,
        c.issuing_date,
        "EN",
        "X",
    )
    render_module.clear_font_caches()
    cold = render_pdf(c)  # from the fonts reduced to the blocks used
    warm = render_pdf(c)  # from the subset kept for this glyph set
    other_warm = render_pdf(other)  # other glyphs: not from that subset
    with monkeypatch.context() as patch:
        patch.setattr(render_module, "_prepare_font", render_module._whole_font)
        fresh = render_pdf(c)
        other_fresh = render_pdf(other)
    assert cold == fresh
    assert warm == fresh
    assert other_warm == other_fresh
    assert other_fresh != fresh


def test_kept_font_subsets_are_bounded_and_least_recently_used_go_first() -> None:
    kept = render_module._SubsetCache(2)
    for n in range(3):
        kept.put(("f", frozenset({str(n)})), str(n).encode())
    assert kept.get(("f", frozenset({"0"}))) is None
    assert kept.get(("f", frozenset({"1"}))) == b"1"  # now the most recently used
    kept.put(("f", frozenset({"3"})), b"3")
    assert kept.get(("f", frozenset({"2"}))) is None
    assert kept.get(("f", frozenset({"1"}))) == b"1"
    assert kept.get(("f", frozenset({"3"}))) == b"3"


@pytest.fixture
def subset_by_fonttools(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every font fontTools subsets from here on (the kept fonts and subsets are cleared first)."""
    subset: list[object] = []
    base = render_module.ftsubset.Subsetter
    real = base.subset

    def counting(self: object, font: object) -> None:
        subset.append(font)
        real(self, font)

    monkeypatch.setattr(base, "subset", counting)
    render_module.clear_font_caches()
    return subset


def test_a_glyph_set_seen_before_is_not_subset_again(subset_by_fonttools: list[object]) -> None:
    c = content()
    first = render_pdf(c)
    # the regular and the bold font, each reduced to its blocks and then subset by fpdf2
    assert len(subset_by_fonttools) == 4
    assert render_pdf(c) == first
    assert len(subset_by_fonttools) == 4  # both written as kept


def test_people_with_names_of_the_same_alphabets_share_a_kept_subset(
    subset_by_fonttools: list[object], extract_pdf_text: Callable[[bytes], str]
) -> None:
    c = content()

    def about(family: str, given: str) -> EvidenceContent:
        data = {**c.data, "family_name": family, "given_name": given}
        return EvidenceContent(c.evidence_id, c.model, data, c.authority, c.issuing_date, "EL", c.title)

    render_pdf(about("Παπαδοπούλου", "Ελένη"))
    seen = len(subset_by_fonttools)
    # other Greek and Latin letters: the text font embeds the whole Greek and Basic Latin alphabets
    second = render_pdf(about("Χατζηγεωργίου", "Ευάγγελος Zoe"))
    assert len(subset_by_fonttools) == seen
    text = extract_pdf_text(second)
    assert "Χατζηγεωργίου" in text
    assert "Ευάγγελος Zoe" in text


def _fpdf2_font_writer_calls(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    calls: list[object] = []
    real = render_module.OutputProducer._add_fonts

    def counting(self: object, *args: object, **kwargs: object) -> object:
        calls.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(render_module.OutputProducer, "_add_fonts", counting)
    return calls


def test_kept_fonts_are_written_by_this_module_as_fpdf2_writes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    # after the first document of a glyph set, the font objects (widths, ToUnicode, CIDToGIDMap, the
    # compressed font program) are written without fpdf2's font writer — and come out byte for byte
    # as fpdf2 writes them, for people whose letters come in another order (other codes, other maps)
    c = content()
    people = [
        {"family_name": "Παπαδοπούλου", "given_name": "Ελένη"},
        {"family_name": "Ελένη", "given_name": "Παπαδοπούλου"},
        {"family_name": "Zoe Χατζηγεωργίου", "given_name": "Ευάγγελος"},
        {"family_name": "Ιωάννου", "given_name": "Zacharias Quentin"},
    ]
    documents = [
        EvidenceContent(c.evidence_id, c.model, {**c.data, **p}, c.authority, c.issuing_date, "EL", c.title)
        for p in people
    ]
    render_module.clear_font_caches()
    calls = _fpdf2_font_writer_calls(monkeypatch)
    render_pdf(documents[0])  # the first of this glyph set: fpdf2 writes it (and its subset is kept)
    assert len(calls) == 1
    warm = [render_pdf(d) for d in documents]
    assert len(calls) == 1  # all from the kept subset, written here
    with monkeypatch.context() as patch:
        patch.setattr(render_module, "_prepare_font", render_module._whole_font)
        fresh = [render_pdf(d) for d in documents]
    assert len(calls) == 1 + len(documents)
    assert warm == fresh
    assert len(set(fresh)) == len(documents)


def test_a_glyph_the_font_lacks_is_still_reported_by_fpdf2(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # a document with a character outside the embedded font goes through fpdf2's writer every time,
    # which logs the missing glyph (the kept-font writer would not)
    c = content()
    lacking = EvidenceContent(
        c.evidence_id, c.model, {**c.data, "given_name": "Mei 美"}, c.authority, c.issuing_date, "EN", "X"
    )
    render_module.clear_font_caches()
    calls = _fpdf2_font_writer_calls(monkeypatch)
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="fpdf"):
            render_pdf(lacking)
        assert "missing" in caplog.text
    assert len(calls) == 2


def test_documents_rendered_at_once_in_threads_are_the_documents_rendered_one_by_one() -> None:
    # the kept subsets and reduced fonts are shared; each document has its own font objects
    from concurrent.futures import ThreadPoolExecutor

    c = content()
    documents = [
        EvidenceContent(
            f"{c.evidence_id[:-4]}{n:04d}", c.model, c.data, c.authority, c.issuing_date, "EL", f"{c.title} {n}"
        )
        for n in range(12)
    ]
    alone = [render_pdf(d) for d in documents]
    with ThreadPoolExecutor(max_workers=6) as pool:
        for _ in range(3):
            assert list(pool.map(render_pdf, documents)) == alone


def _documents_of_every_kind() -> list[EvidenceContent]:
    documents = [content(*_EVERY_MODEL[m.name], m.name) for m in MODELS]
    c = content()
    documents.append(  # several pages, an annex, a title other than the model's, letters of three alphabets
        EvidenceContent(
            c.evidence_id,
            c.model,
            {**c.data, "family_name": "Шевченко-Żółkiewska", "given_name": "Ærø\nÞórður"},
            c.authority,
            c.issuing_date,
            "EN",
            "Extract — «birth»",
            annex_rows=[(f"Entry {i} ½", f"value {i} ‰") for i in range(90)],
        )
    )
    return documents


def test_every_character_shown_gets_its_code_before_the_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    # the codes of a document's glyphs are given in code point order before any text is laid out
    # (_texts lists every text), so they depend on the set of characters only: a glyph the layout
    # picked itself would come after the others and break the order
    seen: dict[str, list[int]] = {}
    real = render_module._EvidencePdfOutput._add_fonts

    def record(self: object, *args: object, **kwargs: object) -> object:
        for key, font in self.fpdf.fonts.items():  # type: ignore[attr-defined]
            seen[key] = [g.unicode[0] for g, _ in sorted(font.subset.items(), key=lambda i: i[1]) if g]
        return real(self, *args, **kwargs)

    monkeypatch.setattr(render_module._EvidencePdfOutput, "_add_fonts", record)
    for document in _documents_of_every_kind():
        render_pdf(document)
        assert set(seen) == {"dejavu", "dejavuB"}
        for key, codes in seen.items():
            picked = [c for c in codes if c not in (0x00, 0x20)]  # fpdf2 reserves these two
            assert picked == sorted(picked), (document.model.name, key)
        seen.clear()


def test_documents_with_the_same_characters_share_their_font_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    # the Greek names differ, the characters (with the whole Greek and Basic Latin alphabets) do not
    c = content()

    def about(family: str, given: str) -> EvidenceContent:
        data = {**c.data, "family_name": family, "given_name": given}
        return EvidenceContent(c.evidence_id, c.model, data, c.authority, c.issuing_date, "EL", c.title)

    render_module.clear_font_caches()
    built: list[object] = []
    real = render_module._to_unicode
    monkeypatch.setattr(render_module, "_to_unicode", lambda font: built.append(font) or real(font))
    first = render_pdf(about("Παπαδοπούλου", "Ελένη"))
    render_pdf(about("Παπαδοπούλου", "Ελένη"))  # fpdf2 wrote the first; the kept subset writes this one
    assert len(built) == 2  # the regular and the bold font
    second = render_pdf(about("Ελένη", "Παπαδοπούλου"))
    assert len(built) == 2
    with monkeypatch.context() as patch:
        patch.setattr(render_module, "_prepare_font", render_module._whole_font)
        assert render_pdf(about("Ελένη", "Παπαδοπούλου")) == second
        assert render_pdf(about("Παπαδοπούλου", "Ελένη")) == first


def test_string_width_is_fpdf2s() -> None:
    # _text measures a label or value without fpdf2's fragments; the width must be fpdf2's to the bit
    # (whether a value fits on its line decides between cell and multi_cell)
    pdf = render_module._EvidencePdf(content())
    pdf.alias_nb_pages()
    pdf.add_page()
    texts = ["", " ", "Ştefănescu-Győző Čapková", "Παπαδοπούλου", "Шевченко 1984-02-29", "x" * 300, "page {nb} of"]
    for style, size in (("", 9), ("", 10), ("B", 11)):
        pdf.set_font("DejaVu", style, size)
        for text in texts:
            assert render_module._string_width(pdf, text) == pdf.get_string_width(text), (style, size, text)
    pdf.set_char_spacing(1)
    assert render_module._string_width(pdf, "spaced") == pdf.get_string_width("spaced")
