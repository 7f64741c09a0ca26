"""Evidence rendering: a register record becomes a real document — PDF, XML or JSON.

* PDF (``application/pdf``): human-readable, made with fpdf2 and the DejaVu Sans font shipped in
  ``fonts/`` (every Latin, Greek and Cyrillic letter): the issuing authority, the title, the subject,
  the evidence data, the date of issue and the evidence identifier on every page.
* XML (``application/xml``) and JSON (``application/json``): the data model the data service declares
  (:mod:`oots.provider.datamodels`), validated against its XSD or JSON Schema before it is returned;
  an invalid document raises :class:`oots.errors.ValidationFailed` and never leaves the provider.

Nothing here reads a register or knows a request: :class:`EvidenceContent` holds all that is rendered.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import hashlib
import io
import json
import threading
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

from fontTools import subset as ftsubset  # type: ignore[import-untyped]
from fontTools import ttLib
from fpdf import FPDF
from fpdf import output as fpdf_output
from fpdf.fonts import Glyph, SubsetMap, TTFFont
from fpdf.output import CIDSystemInfo, OutputProducer, PDFFont, PDFFontStream
from fpdf.syntax import Name, PDFArray, PDFContentStream, PDFObject
from lxml import etree

from oots.errors import LocalProtocolError
from oots.provider.datamodels import DataModel, ModelField, validate_json_document, validate_xml

__all__ = [
    "MEDIA_JSON",
    "MEDIA_PDF",
    "MEDIA_XML",
    "SUPPORTED_MEDIA_TYPES",
    "Authority",
    "EvidenceContent",
    "RenderedDocument",
    "render",
    "render_json",
    "render_pdf",
    "render_xml",
]

MEDIA_PDF = "application/pdf"
MEDIA_XML = "application/xml"
MEDIA_JSON = "application/json"
SUPPORTED_MEDIA_TYPES = (MEDIA_PDF, MEDIA_XML, MEDIA_JSON)
_EXTENSIONS = {MEDIA_PDF: "pdf", MEDIA_XML: "xml", MEDIA_JSON: "json"}


@dataclass(frozen=True, slots=True)
class Authority:
    """The issuing authority (``sdg:IssuingAuthority``): an EAS-scheme identifier and a name."""

    identifier: str
    scheme_id: str
    name: str


@dataclass(frozen=True, slots=True)
class EvidenceContent:
    """Everything one evidence document shows.

    ``data`` is the register record (field → text); ``annex_rows`` are extra label/value rows the PDF
    lists after the data (a transcript, a history), which structured forms leave out.
    """

    evidence_id: str
    model: DataModel
    data: Mapping[str, str]
    authority: Authority
    issuing_date: dt.date
    language: str
    title: str
    annex_rows: Sequence[tuple[str, str]] = field(default=())


@dataclass(frozen=True, slots=True)
class RenderedDocument:
    """One rendered document: bytes, media type, a file name and the data model it conforms to."""

    media_type: str
    content: bytes
    filename: str
    conforms_to: str | None
    language: str
    title: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def _fonts() -> Path:
    return Path(str(resources.files("oots.provider") / "fonts"))


def _values(fields: Sequence[ModelField], data: Mapping[str, str]) -> list[tuple[ModelField, str]]:
    out = []
    for f in fields:
        value = data.get(f.key, "").strip()
        if value:
            out.append((f, value))
    return out


# --- PDF -------------------------------------------------------------------------------------------
# fpdf2 embeds a subset of each font holding the glyphs a document uses: it parses the font, subsets it
# with fontTools and writes it out again, once per font and document. On the whole DejaVu font that is
# most of the time of a one-page document, so two things are kept per process (the result is the same
# font, byte for byte — tests/unit/provider/test_render.py checks it against fpdf2's own path):
#
# * a reduced copy of each font per set of Unicode blocks (128 code points) a document touches, which
#   fpdf2 then subsets: a few hundred glyphs to read and write instead of three thousand;
# * the subset fpdf2 made for an exact set of glyphs (the labels, the digits and the letters of the
#   names): a document using the same glyphs again starts from it, already in its final form, so its
#   outlines are copied rather than recompiled.
_BLOCK_BITS = 7
_SUBSETS_KEPT = 256


@functools.cache
def _font_file(filename: str) -> bytes:
    return (_fonts() / filename).read_bytes()


@functools.cache
def _font_template(style: str, filename: str) -> TTFFont:
    pdf = FPDF()
    pdf.add_font("DejaVu", style, str(_fonts() / filename))
    font = pdf.fonts[f"dejavu{style}"]
    assert isinstance(font, TTFFont)
    return font


@functools.lru_cache(maxsize=32)
def _font_for_blocks(filename: str, blocks: frozenset[int]) -> bytes:
    """The font reduced to the characters of ``blocks`` (code point >> 7), everything else kept as it is
    (glyph names, hinting, every table), so that subsetting it gives what subsetting the whole font gives."""
    font = ttLib.TTFont(io.BytesIO(_font_file(filename)), recalcTimestamp=False)
    names = [name for code, name in font.getBestCmap().items() if code >> _BLOCK_BITS in blocks]
    options = ftsubset.Options(
        glyph_names=True,
        notdef_glyph=True,
        notdef_outline=True,
        recommended_glyphs=True,
        hinting=True,
        legacy_kern=True,
        name_legacy=True,
        name_IDs=["*"],
        name_languages=["*"],
        layout_features=["*"],
        drop_tables=[],
    )
    subsetter = ftsubset.Subsetter(options)
    subsetter.populate(glyphs=names)
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class _Subset:
    """A font subset fpdf2 wrote: its bytes, the id in it of each glyph it was made for, and the
    bytes compressed as the PDF's font program stream holds them."""

    data: bytes
    glyph_ids: Mapping[str, int]
    compressed: bytes

    @classmethod
    def of(cls, data: bytes, glyph_ids: Mapping[str, int]) -> _Subset:
        return cls(data, glyph_ids, zlib.compress(data, level=PDFContentStream._COMPRESSION_LEVEL))


_SubsetKey = tuple[str, frozenset[str]]


_K = TypeVar("_K")
_V = TypeVar("_V")


class _SubsetCache(Generic[_K, _V]):
    """What a process keeps of the fonts (subsets fpdf2 wrote by font file and exact glyph set, font
    objects by code assignment); the least recently used go first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._fonts: OrderedDict[_K, _V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: _K) -> _V | None:
        with self._lock:
            kept = self._fonts.get(key)
            if kept is not None:
                self._fonts.move_to_end(key)
            return kept

    def put(self, key: _K, kept: _V) -> None:
        with self._lock:
            self._fonts[key] = kept
            self._fonts.move_to_end(key)
            while len(self._fonts) > self.size:
                self._fonts.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._fonts.clear()


_subsets: _SubsetCache[_SubsetKey, _Subset] = _SubsetCache(_SUBSETS_KEPT)


def clear_font_caches() -> None:
    """Forget every reduced font and subset kept by this process (tests compare with a cold start)."""
    _subsets.clear()
    _font_for_blocks.cache_clear()
    _glyphs.clear()
    _font_objects.clear()


class _RecordingTTFont(ttLib.TTFont):  # type: ignore[misc]
    """A font to subset that keeps the subset it writes (and its glyph ids) under ``key``."""

    def __init__(self, data: bytes, key: _SubsetKey) -> None:
        super().__init__(io.BytesIO(data), recalcTimestamp=False, lazy=True)
        self.subset_key = key

    def getTableData(self, tag: str) -> bytes:
        if tag != "glyf":
            other: bytes = super().getTableData(tag)
            return other
        # the outlines of the reduced font already have their exact bounds: copy them rather than
        # recompile each one (the font's own bounds, in head, maxp and hhea, are still recomputed)
        self.recalcBBoxes = False
        try:
            data: bytes = super().getTableData(tag)
        finally:
            self.recalcBBoxes = True
        return data

    def save(self, file: Any, reorderTables: bool | None = True) -> None:
        super().save(file, reorderTables)
        if isinstance(file, io.BytesIO):
            ids = {name: self.getGlyphID(name) for name in self.subset_key[1]}
            _subsets.put(self.subset_key, _Subset.of(file.getvalue(), ids))


class _KeptTTFont(ttLib.TTFont):  # type: ignore[misc]
    """A subset made before for the same glyphs: it is final, so it is neither subset again
    (:class:`_Subsetter`) nor rebuilt when written — its bytes are written as they were kept."""

    def __init__(self, kept: _Subset) -> None:
        super().__init__(io.BytesIO(kept.data), recalcTimestamp=False, recalcBBoxes=False, lazy=True)
        self.kept = kept

    def getGlyphID(self, glyphName: str) -> int:
        return self.kept.glyph_ids[glyphName]

    def save(self, file: Any, reorderTables: bool | None = True) -> None:
        file.write(self.kept.data)


class _Subsetter(ftsubset.Subsetter):  # type: ignore[misc]
    def subset(self, font: Any) -> None:
        if not isinstance(font, _KeptTTFont):
            super().subset(font)


class _Subsetting:
    """What fpdf2's writer uses of ``fontTools.subset``, with a kept subset left as it is."""

    Options = ftsubset.Options
    Subsetter = _Subsetter


# fpdf2 subsets each embedded font with ``fontTools.subset`` as its writer module imported it; every
# font but a kept subset (only this module makes them) is subset exactly as before
setattr(fpdf_output, "ftsubset", _Subsetting)  # noqa: B010 — not exported by fpdf2


def _whole_font(font: TTFFont, filename: str) -> None:
    """Give ``font`` its whole font file to subset (fpdf2's own way; tests compare with it)."""
    font.ttfont = ttLib.TTFont(io.BytesIO(_font_file(filename)), recalcTimestamp=False, lazy=True)


def _prepare_font(font: TTFFont, filename: str) -> None:
    """Give ``font`` the smallest starting point for fpdf2's subset of the glyphs it now uses."""
    glyphs = frozenset(font.subset.get_all_glyph_names())
    key = (filename, glyphs)
    kept = _subsets.get(key)
    if kept is not None:
        font.ttfont = _KeptTTFont(kept)
        return
    blocks = frozenset(code >> _BLOCK_BITS for code in _used_codes(font))
    reduced = _font_for_blocks(filename, blocks)
    font.ttfont = _RecordingTTFont(reduced, key)
    if not glyphs <= set(font.ttfont.getGlyphOrder()):
        # a glyph reached otherwise than through the character map: start from the whole font
        font.ttfont = _RecordingTTFont(_font_file(filename), key)


#: Alphabets the text font embeds whole once a document uses one of their characters, so that
#: documents about different people mostly embed the same glyph set and reuse its kept subset (about
#: 3 KB more per document): Basic Latin (always), Greek with its accented vowels, the Cyrillic letters
#: of Russian, Ukrainian, Belarusian, Bulgarian, Serbian and Macedonian (U+0400–U+045F).
_ALPHABETS: tuple[tuple[range, range], ...] = (
    (range(0x20, 0x7F), range(0x20, 0x7F)),
    (range(0x370, 0x400), range(0x386, 0x3CF)),
    (range(0x400, 0x530), range(0x400, 0x460)),
)


def _used_codes(font: TTFFont) -> set[int]:
    codes: set[int] = set()
    for glyph, _ in font.subset.items():
        if glyph is not None:
            codes.update((glyph.unicode,) if isinstance(glyph.unicode, int) else glyph.unicode)
    return codes


def _with_alphabets(codes: set[int]) -> set[int]:
    """``codes`` and every letter of each alphabet of :data:`_ALPHABETS` one of them belongs to."""
    padded = set(codes)
    for block, letters in _ALPHABETS:
        if block.start == 0x20 or any(code in block for code in codes):
            padded.update(letters)
    return padded


#: Per font file, the glyph of each character of the font looked up so far (what
#: ``font.subset.pick(code)`` looks up for it), found once per process rather than once per document.
_glyphs: dict[str, dict[int, Glyph | None]] = {}


def _pick_in_code_order(font: TTFFont, filename: str, codes: set[int]) -> None:
    """Give the characters ``codes`` their codes in the document's font in code point order."""
    known = _glyphs.setdefault(filename, {})
    for code in sorted(codes):
        if code not in font.cmap:
            continue  # a character the font lacks is left to fpdf2 (it reports it)
        if code not in known:
            known[code] = font.subset.get_glyph(unicode=code)
        glyph = known[code]
        if glyph is not None:
            font.subset.pick_glyph(glyph)


# --- the font objects of a document ------------------------------------------------------------------
# With a kept subset, the objects fpdf2 writes for an embedded TrueType font (PDF 32000-1 §9.7: a Type0
# font, its CIDFontType2 descendant with the glyph widths, a ToUnicode CMap, the CIDSystemInfo, the
# font descriptor, the CIDToGIDMap stream and the FontFile2 stream) are written here, the same objects
# in the same order with the same bytes, for less: the font program is compressed once per kept subset
# rather than once per document, and the 128 KB CIDToGIDMap is filled as bytes rather than joined from
# 131,072 one-character strings. What depends on which code each glyph got (the widths array, the
# ToUnicode CMap, the CIDToGIDMap) is kept per code assignment: the codes are given in code point order
# before the layout (_EvidencePdf.pick_glyphs), so documents with the same characters share them.
# Anything else (no kept subset, a glyph the font lacks, PDF/A, encryption) goes through fpdf2's writer.

#: The ToUnicode CMap around its ``bfchar`` blocks (Adobe Technical Note #5411), as fpdf2 writes it.
_TO_UNICODE_HEAD = (
    "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n/CIDSystemInfo\n"
    "<</Registry (Adobe)\n/Ordering (UCS)\n/Supplement 0\n>> def\n/CMapName /Adobe-Identity-UCS def\n"
    "/CMapType 2 def\n1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
)
_TO_UNICODE_TAIL = "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend"
#: Entries per ``bfchar`` block (at most 100, Adobe Technical Note #5014).
_BFCHAR_BLOCK = 100


@dataclass(frozen=True, slots=True)
class _FontObjects:
    """What a font's objects hold for one assignment of codes to glyphs: the glyph widths (``W``), the
    ToUnicode CMap and the compressed CIDToGIDMap."""

    widths: str
    to_unicode: bytes
    cid_to_gid: bytes


_FontObjectsKey = tuple[str, tuple[tuple[int, str, object], ...]]
#: Font objects by font file and code assignment (code, glyph name, characters): documents whose
#: characters are the same get the same codes (:meth:`_EvidencePdf.pick_glyphs`) and share them.
_font_objects: _SubsetCache[_FontObjectsKey, _FontObjects] = _SubsetCache(_SUBSETS_KEPT)


class _CompressedStream(PDFContentStream):
    """A stream whose contents were compressed before (as ``PDFContentStream(…, compress=True)``)."""

    def __init__(self, compressed: bytes) -> None:
        PDFObject.__init__(self)
        self._contents = compressed
        self.filter = Name("FlateDecode")
        self.length = len(compressed)


class _KeptFontStream(PDFFontStream):
    """The FontFile2 stream of a kept subset: its program compressed when the subset was kept."""

    def __init__(self, kept: _Subset) -> None:
        PDFObject.__init__(self)
        self._contents = kept.compressed
        self.filter = Name("FlateDecode")
        self.length = len(kept.compressed)
        self.length1 = len(kept.data)


@functools.lru_cache(maxsize=4096)
def _utf16_hex(text: tuple[int, ...]) -> str:
    """The code points as UTF-16BE in upper-case hex (surrogate pairs beyond the BMP)."""
    return "".join(chr(u) for u in text).encode("utf-16-be").hex().upper()


def _to_unicode(font: TTFFont) -> bytes:
    entries = [
        f"<{code:04X}> <{_utf16_hex(glyph.unicode)}>\n"
        for glyph, code in font.subset.items()
        if glyph is not None and isinstance(glyph.unicode, tuple) and glyph.unicode
    ]
    blocks = []
    for start in range(0, len(entries), _BFCHAR_BLOCK):
        chunk = entries[start : start + _BFCHAR_BLOCK]
        blocks.append(f"{len(chunk)} beginbfchar\n{''.join(chunk)}endbfchar\n")
    return (_TO_UNICODE_HEAD + "".join(blocks) + _TO_UNICODE_TAIL).encode("latin-1")


def _cid_to_gid_map(font: TTFFont, kept: _Subset) -> bytes:
    """Two bytes (big-endian glyph id) for each of the 65,536 codes; zero for the codes not used."""
    table = bytearray(2 * 65536)
    for glyph, code in font.subset.items():
        if glyph is not None:
            glyph_id = kept.glyph_ids[glyph.glyph_name]
            table[2 * code] = glyph_id >> 8
            table[2 * code + 1] = glyph_id & 0xFF
    return bytes(table)


def _writes_kept_fonts(fpdf: FPDF) -> bool:
    """Whether every font of ``fpdf`` is a kept TrueType subset this module can write itself."""
    return (
        not fpdf._compliance
        and fpdf._security_handler is None
        and all(
            isinstance(font, TTFFont)
            and isinstance(font.ttfont, _KeptTTFont)
            and not font.color_font
            and not font.is_cff
            and not font.missing_glyphs
            for font in fpdf.fonts.values()
        )
    )


class _EvidencePdfOutput(OutputProducer):
    def _add_fonts(self, *args: Any, **kwargs: Any) -> Any:
        files: dict[str, str] = getattr(self.fpdf, "font_files", {})
        for fontkey, font in self.fpdf.fonts.items():
            if isinstance(font, TTFFont) and fontkey in files:
                _prepare_font(font, files[fontkey])
        if not _writes_kept_fonts(self.fpdf):
            return super()._add_fonts(*args, **kwargs)
        fonts = sorted(self.fpdf.fonts.items(), key=lambda item: item[1].i)
        return {font.i: self._add_kept_font(font, files[key]) for key, font in fonts if isinstance(font, TTFFont)}

    def _add_kept_font(self, font: TTFFont, filename: str) -> PDFFont:
        assert isinstance(font.ttfont, _KeptTTFont)
        kept = font.ttfont.kept
        assignment = tuple((code, glyph.glyph_name, glyph.unicode) for glyph, code in font.subset.items() if glyph)
        objects = _font_objects.get((filename, assignment))
        if objects is None:
            objects = _FontObjects(
                fpdf_output._tt_font_widths(font),
                _to_unicode(font),
                zlib.compress(_cid_to_gid_map(font, kept), level=PDFContentStream._COMPRESSION_LEVEL),
            )
            _font_objects.put((filename, assignment), objects)
        name = f"MPDFAA+{font.name}"
        composite = PDFFont(subtype="Type0", base_font=name, encoding="Identity-H")
        self._add_pdf_obj(composite, "fonts")
        descendant = PDFFont(subtype="CIDFontType2", base_font=name, d_w=font.desc.missing_width, w=objects.widths)
        self._add_pdf_obj(descendant, "fonts")
        composite.descendant_fonts = PDFArray([descendant])
        to_unicode = PDFContentStream(objects.to_unicode)
        self._add_pdf_obj(to_unicode, "fonts")
        composite.to_unicode = to_unicode
        system_info = CIDSystemInfo()
        self._add_pdf_obj(system_info, "fonts")
        descendant.c_i_d_system_info = system_info
        descriptor = copy.copy(font.desc)
        descriptor.font_name = Name(name)
        self._add_pdf_obj(descriptor, "fonts")
        descendant.font_descriptor = descriptor
        cid_to_gid = _CompressedStream(objects.cid_to_gid)
        self._add_pdf_obj(cid_to_gid, "fonts")
        descendant.c_i_d_to_g_i_d_map = cid_to_gid
        program = _KeptFontStream(kept)
        self._add_pdf_obj(program, "fonts")
        descriptor.font_file2 = program  # type: ignore[attr-defined]
        font.subset.pick.cache_clear()
        font.subset.get_glyph.cache_clear()
        font.close()
        return composite


class _EvidencePdf(FPDF):
    def __init__(self, content: EvidenceContent) -> None:
        super().__init__(format="A4")
        self.content = content
        self.font_files: dict[str, str] = {}
        self._add_shared_font("", "DejaVuSans-LGC.ttf")
        self._add_shared_font("B", "DejaVuSans-Bold-LGC.ttf")
        self.set_auto_page_break(auto=True, margin=22)
        self.set_margins(20, 18, 20)

    def _add_shared_font(self, style: str, filename: str) -> None:
        """``add_font("DejaVu", style, …)`` without parsing the font again: fpdf2 derives the glyph
        widths and ids of every character on each load (most of the time of a small document), so
        they are derived once per process and shared; each document gets its own subset map, and its
        own font tables to subset when the document is written (:func:`_prepare_font`; laying text
        out does not read them, so none is opened before)."""
        template = _font_template(style, filename)
        font = copy.copy(template)
        font.i = len(self.fonts) + 1
        font.ttfont = None
        font._hbfont = None
        font.desc = copy.copy(template.desc)  # fpdf2 sets this document's ids and streams on it
        font.biggest_size_pt = 0
        font.missing_glyphs = []
        font.subset = SubsetMap(font)
        self.fonts[template.fontkey] = font
        self.font_files[template.fontkey] = filename

    def pick_glyphs(self) -> None:
        """Give every character the document shows its code in the font that shows it, before any
        text is laid out, in code point order (the text font with whole alphabets, :data:`_ALPHABETS`).
        The codes then depend on the set of characters only, not on where each first appears, so
        documents about different people with the same characters share their font objects
        (:data:`_font_objects`). :func:`_texts` must list every text (a test checks it does)."""
        for fontkey, texts in _texts(self.content).items():
            font = self.fonts[fontkey]
            assert isinstance(font, TTFFont)
            codes = {ord(char) for text in texts for char in text}
            if fontkey == "dejavu":  # the text font: the person's data
                codes = _with_alphabets(codes)
            _pick_in_code_order(font, self.font_files[fontkey], codes)

    def header(self) -> None:
        self.set_font("DejaVu", "B", 10)
        self.cell(0, 6, self.content.authority.name, new_x="LMARGIN", new_y="NEXT")
        self.set_font("DejaVu", "", 8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 5, _authority_line(self.content), new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0, 0, 0)
        self.ln(4)

    def footer(self) -> None:
        self.set_y(-16)
        self.set_font("DejaVu", "", 7)
        self.set_text_color(90, 90, 90)
        self.cell(0, 4, _footer_line(self.content, self.page_no()), align="C")
        self.set_text_color(0, 0, 0)


def _authority_line(content: EvidenceContent) -> str:
    return f"{content.authority.scheme_id.rsplit(':', 1)[-1]} {content.authority.identifier}"


def _footer_line(content: EvidenceContent, page: int) -> str:
    return f"Evidence {content.evidence_id} · issued {content.issuing_date.isoformat()} · page {page}/{{nb}}"


_Section = tuple[str, list[tuple[str, str]]]


def _sections(content: EvidenceContent) -> list[_Section]:
    """The headed label/value sections of the document, in order."""
    model = content.model
    subject = "Company" if model.legal_person else "Person"
    sections: list[_Section] = [
        (subject, [(f.label, v) for f, v in _values(model.subject, content.data)]),
        (model.details_element, [(f.label, v) for f, v in _values(model.details, content.data)]),
    ]
    if content.annex_rows:
        sections.append(("Annex", list(content.annex_rows)))
    authority = content.authority
    sections.append(
        (
            "Issue",
            [
                ("Issuing authority", authority.name),
                ("Authority identifier", f"{authority.identifier} ({authority.scheme_id})"),
                ("Date of issue", content.issuing_date.isoformat()),
                ("Evidence identifier", content.evidence_id),
            ],
        )
    )
    return sections


def _texts(content: EvidenceContent) -> dict[str, list[str]]:
    """Every text the document shows, by the key of the font that shows it (page numbers are digits,
    which the text font always has)."""
    regular = [_authority_line(content), _footer_line(content, 1)]
    bold = [content.authority.name, content.title]
    if content.title != content.model.title:
        regular.append(content.model.title)
    for heading, rows in _sections(content):
        bold.append(heading)
        for label, value in rows:
            regular += (label, value)
    return {"dejavu": regular, "dejavuB": bold}


def _string_width(pdf: _EvidencePdf, text: str) -> float:
    """``pdf.get_string_width(text)``, computed as fpdf2 computes it for plain text in one TrueType font
    (no text shaping, fallback fonts, spacing or stretching, no page-count alias) without building a
    text fragment and a copy of the graphics state for it; anything else is left to fpdf2."""
    font = pdf.current_font
    if (
        isinstance(font, TTFFont)
        and not pdf.text_shaping
        and not pdf._fallback_font_ids
        and pdf.char_spacing == 0
        and pdf.font_stretching == 100
        and (not pdf.str_alias_nb_pages or pdf.str_alias_nb_pages not in text)
    ):
        return font.get_text_width(text, pdf.font_size_pt, None)[1] / pdf.k if text else 0
    return pdf.get_string_width(text)


def _text(pdf: _EvidencePdf, width: float, height: float, text: str, *, new_x: str, new_y: str) -> None:
    """``multi_cell`` for text that needs several lines, ``cell`` for a line that fits (the same place
    on the page, without fpdf2's line breaking, a good part of the time of a document)."""
    room = (width or pdf.w - pdf.r_margin - pdf.x) - 2 * pdf.c_margin
    if "\n" not in text and _string_width(pdf, text) <= room:
        pdf.cell(width, height, text, new_x=new_x, new_y=new_y)
    else:
        pdf.multi_cell(width, height, text, new_x=new_x, new_y=new_y)


def _section(pdf: _EvidencePdf, heading: str, rows: Sequence[tuple[str, str]]) -> None:
    pdf.set_font("DejaVu", "B", 11)
    pdf.set_fill_color(230, 236, 245)
    pdf.cell(0, 8, heading, fill=True, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    for label, value in rows:
        pdf.set_font("DejaVu", "", 9)
        pdf.set_text_color(70, 70, 70)
        y = pdf.get_y()
        _text(pdf, 58, 6, label, new_x="RIGHT", new_y="TOP")
        pdf.set_text_color(0, 0, 0)
        pdf.set_font("DejaVu", "", 10)
        _text(pdf, 0, 6, value, new_x="LMARGIN", new_y="NEXT")
        pdf.set_y(max(pdf.get_y(), y + 6))
    pdf.ln(3)


def render_pdf(content: EvidenceContent) -> bytes:
    """A human-readable PDF of the evidence."""
    pdf = _EvidencePdf(content)
    model = content.model
    pdf.set_title(content.title)
    pdf.set_author(content.authority.name)
    pdf.set_subject(f"{model.title} — evidence {content.evidence_id}")
    pdf.set_creator("oots evidence provider")
    pdf.set_lang(content.language.lower())
    pdf.set_creation_date(dt.datetime.combine(content.issuing_date, dt.time(), tzinfo=dt.UTC))
    pdf.alias_nb_pages()
    pdf.pick_glyphs()
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 18)
    pdf.multi_cell(0, 9, content.title, new_x="LMARGIN", new_y="NEXT")
    if content.title != model.title:
        pdf.set_font("DejaVu", "", 10)
        pdf.cell(0, 6, model.title, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for heading, rows in _sections(content):
        _section(pdf, heading, rows)
    return bytes(pdf.output(output_producer_class=_EvidencePdfOutput))


# --- XML -------------------------------------------------------------------------------------------
def _xml_tree(content: EvidenceContent) -> etree._Element:
    model = content.model
    ns = model.namespace

    def el(parent: etree._Element, name: str, text: str | None = None, **attrs: str) -> etree._Element:
        node = etree.SubElement(parent, f"{{{ns}}}{name}", attrs)
        if text is not None:
            node.text = text
        return node

    root = etree.Element(f"{{{ns}}}{model.root}", nsmap={None: ns}, version=model.version)
    el(root, "Identifier", content.evidence_id)
    authority = el(root, "IssuingAuthority")
    el(authority, "Identifier", content.authority.identifier, schemeID=content.authority.scheme_id)
    el(authority, "Name", content.authority.name)
    el(root, "IssuingDate", content.issuing_date.isoformat())
    el(root, "Language", content.language.upper())
    subject = el(root, "Subject")
    for f, value in _values(model.subject, content.data):
        el(subject, f.element, value)
    details = el(root, model.details_element)
    for f, value in _values(model.details, content.data):
        el(details, f.element, value)
    return root


def render_xml(content: EvidenceContent) -> bytes:
    """The evidence as XML of its data model, validated against the model's XSD."""
    tree = _xml_tree(content)
    validate_xml(content.model, tree)
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# --- JSON ------------------------------------------------------------------------------------------
def _json_value(content: EvidenceContent) -> dict[str, Any]:
    model = content.model
    details_name = model.details_element[0].lower() + model.details_element[1:]
    return {
        "model": model.conforms_to,
        "identifier": content.evidence_id,
        "issuingAuthority": {
            "identifier": content.authority.identifier,
            "schemeID": content.authority.scheme_id,
            "name": content.authority.name,
        },
        "issuingDate": content.issuing_date.isoformat(),
        "language": content.language.upper(),
        "subject": {f.json_name: v for f, v in _values(model.subject, content.data)},
        details_name: {f.json_name: v for f, v in _values(model.details, content.data)},
    }


def render_json(content: EvidenceContent) -> bytes:
    """The evidence as JSON of its data model, validated against the model's JSON Schema."""
    value = _json_value(content)
    validate_json_document(content.model, value)
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def render(content: EvidenceContent, media_type: str) -> RenderedDocument:
    """Render ``content`` in ``media_type`` (one of :data:`SUPPORTED_MEDIA_TYPES`)."""
    renderers = {MEDIA_PDF: render_pdf, MEDIA_XML: render_xml, MEDIA_JSON: render_json}
    renderer = renderers.get(media_type)
    if renderer is None:
        raise LocalProtocolError(f"cannot render {media_type}: the formats are {', '.join(SUPPORTED_MEDIA_TYPES)}")
    data = renderer(content)
    return RenderedDocument(
        media_type=media_type,
        content=data,
        filename=f"{content.model.name}-{content.evidence_id}.{_EXTENSIONS[media_type]}",
        conforms_to=None if media_type == MEDIA_PDF else content.model.conforms_to,
        language=content.language.upper(),
        title=content.title,
    )
