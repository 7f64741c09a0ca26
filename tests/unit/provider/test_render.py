"""Evidence rendering: the PDF opens and holds the text; XML and JSON are valid against their models."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import io
import itertools
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from pypdf import PdfReader

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

from .conftest import pdf_text

AUTHORITY = Authority("EL999000001", "urn:cef.eu:names:identifier:EAS:9933", "Υπουργείο Εσωτερικών")
EVIDENCE_ID = "3f2b8c1e-7d4a-4b9e-8f1c-2a5d6e7f8091"
# the module, not the function of that name the package exports
render_module = importlib.import_module("oots.provider.render")
pdf_module = importlib.import_module("oots.provider.pdf")


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


@pytest.mark.parametrize(("language", "shown"), [("EL", "Υπουργείο Εσωτερικών"), ("EN", "Ministry of Interior")])
def test_every_format_names_the_authority_in_the_documents_language(
    extract_pdf_text: Callable[[bytes], str], language: str, shown: str
) -> None:
    # Before, the documents showed `name` whatever their language, though `names` had one in it.
    named = dataclasses.replace(AUTHORITY, names=(("EL", "Υπουργείο Εσωτερικών"), ("EN", "Ministry of Interior")))
    english = dataclasses.replace(content(), authority=named, language=language)
    pdf = render_pdf(english)
    assert shown in extract_pdf_text(pdf)
    assert PdfReader(io.BytesIO(pdf)).metadata.author == shown  # type: ignore[union-attr]
    ns = {"m": english.model.namespace}
    assert parse(render_xml(english)).findtext("m:IssuingAuthority/m:Name", namespaces=ns) == shown
    assert json.loads(render_json(english))["issuingAuthority"]["name"] == shown


def test_an_authority_without_a_name_in_the_documents_language_shows_its_name() -> None:
    named = dataclasses.replace(AUTHORITY, names=(("EN", "Ministry of Interior"),))
    assert named.name_in("fr") == AUTHORITY.name
    assert named.name_in("en") == "Ministry of Interior"
    german = dataclasses.replace(content(), authority=named, language="DE")
    assert json.loads(render_json(german))["issuingAuthority"]["name"] == AUTHORITY.name


def test_pdf_with_cyrillic_and_polish_letters(extract_pdf_text: Callable[[bytes], str]) -> None:
    ukrainian = content("residence", "PL", "R-PL-0027", "residence-certificate")
    text = extract_pdf_text(render_pdf(ukrainian))
    assert "Шевченко" in text
    assert "Олександр" in text
    assert "Marszałkowska" in text


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
    "diploma": ("diplomas", "ES", "D-ES-0016"),
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


# --- the PDF file ---------------------------------------------------------------------------------
def _reader(data: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(data), strict=True)


def _about(family: str, given: str) -> EvidenceContent:
    c = content()
    return dataclasses.replace(c, data={**c.data, "family_name": family, "given_name": given})


def _documents_of_every_kind() -> list[EvidenceContent]:
    documents = [content(*_EVERY_MODEL[m.name], m.name) for m in MODELS]
    c = content()
    documents.append(  # several pages, an annex, a title other than the model's, letters of three alphabets
        dataclasses.replace(
            c,
            data={**c.data, "family_name": "Шевченко-Żółkiewska", "given_name": "Ærø\nÞórður"},
            language="EN",
            title="Extract — «birth»",
            annex_rows=[(f"Entry {i} ½", f"value {i} ‰") for i in range(90)],
        )
    )
    return documents


def test_pdf_with_the_diacritics_of_every_eu_latin_alphabet(
    extract_pdf_text: Callable[[bytes], str], caplog: pytest.LogCaptureFixture
) -> None:
    # the embedded font is reduced to Latin, Greek and Cyrillic: every EU language's letters stay in it
    names = {"family_name": "Ștefănescu-Győző Čapková", "given_name": "Łukasz Ærøskøbing Þórður Māris Ġużè"}
    with caplog.at_level(logging.WARNING, logger="oots.provider.pdf"):
        pdf = render_pdf(_about(**{k.split("_")[0]: v for k, v in names.items()}))
    assert "lacks" not in caplog.text  # a character the font lacks is logged
    text = extract_pdf_text(pdf)
    for value in names.values():
        for word in value.split():
            assert word in text, word


@pytest.mark.parametrize("document", _documents_of_every_kind(), ids=lambda d: f"{d.model.name}-{len(d.annex_rows)}")
def test_every_heading_label_and_value_can_be_read_back(document: EvidenceContent) -> None:
    text = pdf_text(render_pdf(document))
    assert document.title in text
    assert document.authority.name in text
    for heading, rows in render_module._sections(document):
        assert heading in text
        for label, value in rows:
            assert label in text
            for line in value.split("\n"):
                assert line in text, (label, line)


def test_the_file_structure_is_sound() -> None:
    # every cross-reference entry points at its object, and pypdf reads the file in strict mode
    for document in _documents_of_every_kind():
        data = render_pdf(document)
        assert data.startswith(b"%PDF-1.4\n")
        found = re.search(rb"\nstartxref\n(\d+)\n%%EOF\n\Z", data)
        assert found
        xref = int(found.group(1))
        head = re.match(rb"xref\n0 (\d+)\n", data[xref:])
        assert head
        count = int(head.group(1))
        table = data[xref + head.end() : xref + head.end() + 20 * count]
        entries = [table[20 * i : 20 * i + 20] for i in range(count)]
        assert entries[0] == b"0000000000 65535 f \n"
        for number, entry in enumerate(entries[1:], 1):
            assert re.fullmatch(rb"\d{10} 00000 n \n", entry), entry
            assert data[int(entry[:10]) :].startswith(b"%d 0 obj\n" % number), number
        assert data[xref + head.end() + 20 * count :].startswith(b"trailer\n<< /Size %d " % count)
        reader = _reader(data)
        assert len(reader.pages) >= 1
        for number in range(1, count):
            assert reader.get_object(number) is not None


def test_the_document_information_and_language() -> None:
    c = content()
    reader = _reader(render_pdf(c))
    info = reader.metadata
    assert info is not None
    assert info.title == "Πιστοποιητικό γέννησης"
    assert info.author == "Υπουργείο Εσωτερικών"
    assert info.subject == f"Birth certificate — evidence {EVIDENCE_ID}"
    assert info.creator == "oots evidence provider"
    assert info["/CreationDate"] == "D:20261127000000Z"
    assert reader.trailer["/Root"]["/Lang"] == "el"
    assert reader.trailer["/Root"]["/OpenAction"][0] == reader.pages[0].indirect_reference
    assert len(reader.trailer["/ID"]) == 2


def _outline(font: TTFont, glyph: str) -> list[tuple[float, float]]:
    coordinates, _, _ = font["glyf"][glyph].getCoordinates(font["glyf"])
    return list(coordinates)


def test_the_fonts_are_embedded_as_subsets_holding_the_fonts_glyphs() -> None:
    # each code a page uses: its character (ToUnicode), its glyph in the embedded program (CIDToGIDMap)
    # and its width (W) must be the shipped font's glyph and width for that character
    document = _documents_of_every_kind()[-1]
    reader = _reader(render_pdf(document))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    assert set(fonts) == {"/F1", "/F2"}
    shipped = Path(render_module.__file__).parent / "fonts"
    for key, filename in (("/F1", "DejaVuSans-LGC.ttf"), ("/F2", "DejaVuSans-Bold-LGC.ttf")):
        font = fonts[key].get_object()
        assert (font["/Subtype"], font["/Encoding"]) == ("/Type0", "/Identity-H")
        descendant = font["/DescendantFonts"][0].get_object()
        assert descendant["/Subtype"] == "/CIDFontType2"
        assert re.fullmatch(r"/[A-Z]{6}\+DejaVuSans(-Bold)?", descendant["/BaseFont"])
        descriptor = descendant["/FontDescriptor"].get_object()
        assert descriptor["/FontName"] == descendant["/BaseFont"]
        program = descriptor["/FontFile2"].get_object()
        data = program.get_data()
        assert program["/Length1"] == len(data)
        subset = TTFont(io.BytesIO(data))
        whole = TTFont(shipped / filename)
        assert len(subset.getGlyphOrder()) < len(whole.getGlyphOrder()) / 4
        cid_to_gid = descendant["/CIDToGIDMap"].get_object().get_data()
        cmap_text = font["/ToUnicode"].get_object().get_data().decode()
        to_unicode = {
            int(code, 16): bytes.fromhex(char).decode("utf-16-be")
            for block in re.findall(r"beginbfchar\n(.*?)endbfchar", cmap_text, re.S)
            for code, char in re.findall(r"<([0-9A-F]{4})> <([0-9A-F]+)>", block)
        }
        first, widths = descendant["/W"]
        assert first == 1
        assert sorted(to_unicode) == list(range(1, len(widths) + 1))
        scale = 1000 / whole["head"].unitsPerEm
        cmap = whole.getBestCmap()
        for code, char in to_unicode.items():
            glyph = subset.getGlyphOrder()[int.from_bytes(cid_to_gid[2 * code : 2 * code + 2], "big")]
            original = cmap[ord(char)]
            assert subset["hmtx"][glyph] == whole["hmtx"][original], char
            assert _outline(subset, glyph) == _outline(whole, original), char
            assert widths[code - 1] == round(whole["hmtx"][original][0] * scale + 0.001), char


def test_the_same_document_gives_the_same_bytes_from_a_cold_or_a_warm_process() -> None:
    documents = _documents_of_every_kind()
    pdf_module.clear_font_caches()
    cold = [render_pdf(d) for d in documents]
    warm = [render_pdf(d) for d in documents]
    assert cold == warm
    assert len(set(cold)) == len(documents)


def test_a_long_value_wraps_within_its_column() -> None:
    long_value = " ".join(f"word{i}" for i in range(60)) + " " + "x" * 150
    document = _about("Παπαδοπούλου", long_value)
    text = pdf_text(render_pdf(document))
    assert re.findall(r"word\d+", text) == [f"word{i}" for i in range(60)]
    assert "".join(re.findall(r"x+", text)) == "x" * 150  # a word longer than a line is broken
    [page] = render_module._layout(document)
    value_column = 210 - 20 - 20 - 58 - 2
    lines = [item for item in page if isinstance(item, render_module._Text) and item.text.startswith(("word", "x"))]
    assert len(lines) > 4
    assert [line.top for line in lines] == [lines[0].top + 6 * i for i in range(len(lines))]
    for line in lines:
        assert pdf_module.face("DejaVuSans-LGC.ttf").width(line.text, 10) <= value_column


def test_lines_break_at_line_feeds_at_spaces_and_inside_a_word_too_long() -> None:
    face = pdf_module.face("DejaVuSans-LGC.ttf")
    room = face.width("aaaa bbbb", 10)
    assert face.lines("aaaa bbbb", 10, room) == ["aaaa bbbb"]
    assert face.lines("aaaa bbbb cccc", 10, room) == ["aaaa bbbb", "cccc"]
    assert face.lines("aaaa bbbb cc dd", 10, room) == ["aaaa bbbb", "cc dd"]
    assert face.lines("aaaa\nbbbb\n\ncc", 10, room) == ["aaaa", "bbbb", "", "cc"]
    assert face.lines("a" * 20, 10, face.width("a" * 8, 10)) == ["a" * 8, "a" * 8, "a" * 4]
    assert face.lines("", 10, room) == [""]
    assert face.width("", 10) == 0


_WORDS = st.lists(st.text(alphabet="aiwWΩж-.½美", min_size=1, max_size=40), min_size=1, max_size=30)


@given(words=_WORDS, room=st.floats(min_value=5, max_value=170))
def test_lines_hold_every_word_in_order_and_as_many_as_fit(words: list[str], room: float) -> None:
    face = pdf_module.face("DejaVuSans-LGC.ttf")
    text = " ".join(words)
    lines = face.lines(text, 10, room)
    for line in lines:  # no line wider than the room, unless it is one character
        assert len(line) == 1 or face.width(line, 10) <= room + 1e-9, (line, room)
    if all(face.width(word, 10) <= room for word in words):
        # lines break between words only (dropping the space), and a line's next word would not fit on it
        assert " ".join(lines) == text
        for line, following in itertools.pairwise(lines):
            assert face.width(f"{line} {following.split(' ')[0]}", 10) > room
    else:  # a word longer than a line is broken inside
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_many_annex_rows_flow_over_pages_with_header_and_footer(extract_pdf_text: Callable[[bytes], str]) -> None:
    document = dataclasses.replace(
        content(), language="EN", title="Birth", annex_rows=[(f"Entry {i}", f"value {i}") for i in range(120)]
    )
    reader = _reader(render_pdf(document))
    pages = [page.extract_text() for page in reader.pages]
    assert len(pages) == 4  # forty rows a page (fpdf2's layout put one row on each page after the first)
    for number, text in enumerate(pages, 1):
        assert text.startswith("Υπουργείο Εσωτερικών\n9933 EL999000001\n")
        assert text.endswith(f"· page {number}/4")
    text = extract_pdf_text(render_pdf(document))
    assert re.findall(r"Entry (\d+) value \1", text) == [str(i) for i in range(120)]


def test_a_value_of_many_lines_goes_on_over_the_page_and_the_next_row_follows_it() -> None:
    transcript = "\n".join(f"line {i}" for i in range(70))
    document = dataclasses.replace(content(), annex_rows=[("Transcript", transcript), ("After", "the end")])
    pages = [page.extract_text() for page in _reader(render_pdf(document)).pages]
    assert len(pages) == 3
    assert "line 0" in pages[0]
    assert "line 69" in pages[2]
    assert "After the end" in pages[2]


def test_a_heading_never_ends_a_page() -> None:
    for rows in range(10, 70):
        document = dataclasses.replace(content(), annex_rows=[(f"Entry {i}", "value") for i in range(rows)])
        for page in render_module._layout(document):
            last_fill = max(i for i, item in enumerate(page) if isinstance(item, render_module._Fill) or i == 0)
            assert any(
                isinstance(item, render_module._Text) and item.style is render_module._LABEL
                for item in page[last_fill:]
            ), rows


def test_a_character_the_font_lacks_is_left_out_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    document = _about("Παπαδοπούλου", "Mei 美")
    for _ in range(2):  # also when the font is kept
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="oots.provider.pdf"):
            text = pdf_text(render_pdf(document))
        assert "'美' (U+7F8E)" in caplog.text
        assert "Mei" in text
        assert "美" not in text
        assert "Παπαδοπούλου" in text


def test_a_character_set_seen_before_is_not_subset_again(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[object] = []
    real = pdf_module._embed

    def counting(font: object, shown: frozenset[str]) -> object:
        made.append(font)
        return real(font, shown)  # type: ignore[arg-type]

    monkeypatch.setattr(pdf_module, "_embed", counting)
    pdf_module.clear_font_caches()
    first = render_pdf(_about("Παπαδοπούλου", "Ελένη"))
    assert len(made) == 2  # the text font and the bold one
    assert render_pdf(_about("Παπαδοπούλου", "Ελένη")) == first
    # other Greek and Latin letters: the text font embeds the whole Greek and Basic Latin alphabets
    second = render_pdf(_about("Χατζηγεωργίου", "Ευάγγελος Zoe"))
    assert len(made) == 2
    assert "Ευάγγελος Zoe" in pdf_text(second)
    render_pdf(_about("Шевченко", "Олександр"))  # Cyrillic: another set of characters
    assert len(made) == 3


def test_kept_fonts_are_bounded_and_least_recently_used_go_first() -> None:
    kept = pdf_module._Kept[tuple[str, frozenset[str]], bytes](2)
    for n in range(3):
        kept.put(("f", frozenset({str(n)})), str(n).encode())
    assert kept.get(("f", frozenset({"0"}))) is None
    assert kept.get(("f", frozenset({"1"}))) == b"1"  # now the most recently used
    kept.put(("f", frozenset({"3"})), b"3")
    assert kept.get(("f", frozenset({"2"}))) is None
    assert kept.get(("f", frozenset({"1"}))) == b"1"
    assert kept.get(("f", frozenset({"3"}))) == b"3"


def test_documents_rendered_at_once_in_threads_are_the_documents_rendered_one_by_one() -> None:
    # the kept fonts are shared; each document has its own layout and objects
    from concurrent.futures import ThreadPoolExecutor

    c = content()
    documents = [
        dataclasses.replace(c, evidence_id=f"{c.evidence_id[:-4]}{n:04d}", title=f"{c.title} {n}") for n in range(12)
    ] + [_about("Шевченко", f"Олександр {n}") for n in range(6)]
    alone = [render_pdf(d) for d in documents]
    for _ in range(3):
        pdf_module.clear_font_caches()
        with ThreadPoolExecutor(max_workers=6) as pool:
            assert list(pool.map(render_pdf, documents)) == alone


def test_text_strings_of_the_document_information() -> None:
    assert pdf_module.text_string("oots (a\\b)") == b"(oots \\(a\\\\b\\))"
    assert pdf_module.text_string("Ελένη") == b"<FEFF039503BB03AD03BD03B7>"
    assert pdf_module.text_string("a\tb") == b"<FEFF006100090062>"  # a control character: not literal
