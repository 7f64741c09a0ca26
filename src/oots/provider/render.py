"""Evidence rendering: a register record becomes a real document — PDF, XML or JSON.

* PDF (``application/pdf``): human-readable, laid out here and written by :mod:`oots.provider.pdf`
  with the DejaVu Sans font shipped in ``fonts/`` (every Latin, Greek and Cyrillic letter): the issuing
  authority, the title, the subject, the evidence data, the date of issue and the evidence identifier
  on every page.
* XML (``application/xml``) and JSON (``application/json``): the data model the data service declares
  (:mod:`oots.provider.datamodels`), validated against its XSD or JSON Schema before it is returned;
  an invalid document raises :class:`oots.errors.ValidationFailed` and never leaves the provider.

Nothing here reads a register or knows a request: :class:`EvidenceContent` holds all that is rendered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from oots.errors import LocalProtocolError, ValidationFailed
from oots.provider import pdf
from oots.provider.datamodels import DataModel, ModelField, validate_json_document, validate_xml

__all__ = [
    "MEDIA_JSON",
    "MEDIA_PDF",
    "MEDIA_XML",
    "SUPPORTED_MEDIA_TYPES",
    "Authority",
    "EvidenceContent",
    "RenderedDocument",
    "check_fields",
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
    """The issuing authority (``sdg:IssuingAuthority``): an EAS-scheme identifier and a name.

    ``names`` (language code, name) are all its names as the DSD's Publisher lists them, each sent as an
    ``sdg:Name`` of its language (with none, ``name`` alone is sent, in the data service's language).
    A document or page shows the name in its own language when ``names`` has it, else ``name``
    (:meth:`name_in`)."""

    identifier: str
    scheme_id: str
    name: str
    names: tuple[tuple[str, str], ...] = ()

    def name_in(self, language: str | None) -> str:
        """The name in ``language`` (a code in either case) when ``names`` has one, else ``name``."""
        wanted = (language or "").upper()
        return next((name for code, name in self.names if code.upper() == wanted), self.name)


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


def _values(fields: Sequence[ModelField], data: Mapping[str, str]) -> list[tuple[ModelField, str]]:
    out = []
    for f in fields:
        value = data.get(f.key, "").strip()
        if value:
            out.append((f, value))
    return out


# --- PDF -------------------------------------------------------------------------------------------
# The layout of an evidence PDF, in millimetres from the top left corner of an A4 page: a header with
# the issuing authority on every page, the title, a headed section of label/value rows for the subject,
# the details, the annex rows and the issue, and a footer with the evidence identifier and "page x/n"
# on every page. Values longer than their column wrap; a row that does not fit goes to the next page
# (a value of many lines goes on, line by line, on the next page), and a heading never ends a page.
# :mod:`oots.provider.pdf` measures the text and writes the file.
_TEXT_FONT = "DejaVuSans-LGC.ttf"
_BOLD_FONT = "DejaVuSans-Bold-LGC.ttf"
_PAGE_WIDTH, _PAGE_HEIGHT = 210.0, 297.0
_LEFT, _TOP, _RIGHT = 20.0, 18.0, 20.0
#: Text goes no lower than this: the footer is below.
_BREAK_AT = _PAGE_HEIGHT - 22.0
_FOOTER_AT = _PAGE_HEIGHT - 16.0
#: Space between a cell's edge and its text.
_PAD = 1.0
_WIDTH = _PAGE_WIDTH - _LEFT - _RIGHT
_LABEL_WIDTH = 58.0
_ROW = 6.0
_HEADING = 8.0

#: Colours (non-stroking RGB).
_BLACK = b"0 0 0 rg"
_GREY = b"0.3529 0.3529 0.3529 rg"  # header and footer
_LABEL_GREY = b"0.2745 0.2745 0.2745 rg"
_HEADING_FILL = b"0.902 0.9255 0.9608 rg"

#: Alphabets the text font embeds whole once a document uses one of their characters, so that
#: documents about different people mostly embed the same characters and share one kept font (about
#: 3 KB more per document): Basic Latin (always), Greek with its accented vowels, the Cyrillic letters
#: of Russian, Ukrainian, Belarusian, Bulgarian, Serbian and Macedonian (U+0400–U+045F).
_ALPHABETS: tuple[tuple[frozenset[str], frozenset[str]], ...] = tuple(
    (frozenset(map(chr, block)), frozenset(map(chr, letters)))
    for block, letters in (
        (range(0x20, 0x7F), range(0x20, 0x7F)),
        (range(0x370, 0x400), range(0x386, 0x3CF)),
        (range(0x400, 0x530), range(0x400, 0x460)),
    )
)


def _with_alphabets(characters: set[str]) -> set[str]:
    """``characters`` and every letter of each alphabet of :data:`_ALPHABETS` one of them belongs to."""
    padded = set(characters)
    for block, letters in _ALPHABETS:
        if " " in block or not characters.isdisjoint(block):
            padded.update(letters)
    return padded


@dataclass(frozen=True, slots=True)
class _Style:
    """How text looks: its font (0 the text font, 1 the bold one), size in points and colour."""

    font: int
    size: float
    colour: bytes


_AUTHORITY = _Style(1, 10, _BLACK)
_AUTHORITY_LINE = _Style(0, 8, _GREY)
_TITLE = _Style(1, 18, _BLACK)
_MODEL_TITLE = _Style(0, 10, _BLACK)
_SECTION = _Style(1, 11, _BLACK)
_LABEL = _Style(0, 9, _LABEL_GREY)
_VALUE = _Style(0, 10, _BLACK)
_FOOTER = _Style(0, 7, _GREY)


@dataclass(slots=True)
class _Text:
    """A line of text: its style, left edge, the top of its line box and the box's height (mm)."""

    style: _Style
    x: float
    top: float
    height: float
    text: str

    @property
    def colour(self) -> bytes:
        return self.style.colour


@dataclass(slots=True)
class _Fill:
    """A filled rectangle (mm)."""

    colour: bytes
    x: float
    top: float
    width: float
    height: float


class _Layout:
    """Where every line of an evidence document goes, page by page."""

    def __init__(self, content: EvidenceContent) -> None:
        self.content = content
        self.regular = pdf.face(_TEXT_FONT)
        self.bold = pdf.face(_BOLD_FONT)
        self.pages: list[list[_Text | _Fill]] = []
        self.y = 0.0

    def text(self, style: _Style, x: float, height: float, text: str) -> None:
        self.pages[-1].append(_Text(style, x, self.y, height, text))

    def new_page(self) -> None:
        self.pages.append([])
        self.y = _TOP
        self.text(_AUTHORITY, _LEFT + _PAD, 6, _authority_name(self.content))
        self.y += 6
        self.text(_AUTHORITY_LINE, _LEFT + _PAD, 5, _authority_line(self.content))
        self.y += 5 + 4

    def room_for(self, height: float) -> None:
        """A new page unless ``height`` more fits on this one."""
        if self.y + height > _BREAK_AT:
            self.new_page()

    def title(self) -> None:
        content = self.content
        for line in self.bold.lines(content.title, 18, _WIDTH - 2 * _PAD):
            self.room_for(9)
            self.text(_TITLE, _LEFT + _PAD, 9, line)
            self.y += 9
        if content.title != content.model.title:
            for line in self.regular.lines(content.model.title, 10, _WIDTH - 2 * _PAD):
                self.room_for(_ROW)
                self.text(_MODEL_TITLE, _LEFT + _PAD, _ROW, line)
                self.y += _ROW
        self.y += 4

    def section(self, heading: str, rows: Sequence[tuple[str, str]]) -> None:
        self.room_for(_HEADING + 1 + (_ROW if rows else 0))  # with its first row
        self.pages[-1].append(_Fill(_HEADING_FILL, _LEFT, self.y, _WIDTH, _HEADING))
        self.text(_SECTION, _LEFT + _PAD, _HEADING, heading)
        self.y += _HEADING + 1
        value_x = _LEFT + _LABEL_WIDTH
        for label, value in rows:
            labels = self.regular.lines(label, 9, _LABEL_WIDTH - 2 * _PAD)
            values = self.regular.lines(value, 10, _WIDTH - _LABEL_WIDTH - 2 * _PAD)
            for i in range(max(len(labels), len(values))):
                self.room_for(_ROW)
                if i < len(labels):
                    self.text(_LABEL, _LEFT + _PAD, _ROW, labels[i])
                if i < len(values):
                    self.text(_VALUE, value_x + _PAD, _ROW, values[i])
                self.y += _ROW
        self.y += 3

    def footers(self) -> None:
        """The footer of every page, now that their number is known."""
        for number, page in enumerate(self.pages, 1):
            line = _footer_line(self.content, number, len(self.pages))
            x = _LEFT + (_WIDTH - self.regular.width(line, _FOOTER.size)) / 2
            page.append(_Text(_FOOTER, x, _FOOTER_AT, 4, line))


def _authority_name(content: EvidenceContent) -> str:
    """The issuing authority's name in the document's language (its ``name`` when it has none there)."""
    return content.authority.name_in(content.language)


def _authority_line(content: EvidenceContent) -> str:
    return f"{content.authority.scheme_id.rsplit(':', 1)[-1]} {content.authority.identifier}"


def _footer_line(content: EvidenceContent, page: int, pages: int) -> str:
    return f"Evidence {content.evidence_id} · issued {content.issuing_date.isoformat()} · page {page}/{pages}"


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
                ("Issuing authority", _authority_name(content)),
                ("Authority identifier", f"{authority.identifier} ({authority.scheme_id})"),
                ("Date of issue", content.issuing_date.isoformat()),
                ("Evidence identifier", content.evidence_id),
            ],
        )
    )
    return sections


def _layout(content: EvidenceContent) -> list[list[_Text | _Fill]]:
    layout = _Layout(content)
    layout.new_page()
    layout.title()
    for heading, rows in _sections(content):
        layout.section(heading, rows)
    layout.footers()
    return layout.pages


_K = pdf.POINTS_PER_MM


def _content_stream(items: Sequence[_Text | _Fill], codes: Sequence[Mapping[int, str | None]]) -> bytes:
    """A page's content stream: each line of text in its font, each rectangle filled."""
    out: list[bytes] = []
    colour = b""
    for item in items:
        if item.colour != colour:
            colour = item.colour
            out.append(colour)
        if isinstance(item, _Text):
            # the baseline of text in a line box, as fpdf2 placed it: mid-height, 0.3 em below
            style = item.style
            baseline = _PAGE_HEIGHT - item.top - item.height / 2 - 0.3 * style.size / _K
            out.append(
                b"BT /F%d %.2f Tf %.2f %.2f Td <%s> Tj ET"
                % (
                    style.font + 1,
                    style.size,
                    item.x * _K,
                    baseline * _K,
                    item.text.translate(codes[style.font]).encode("ascii"),
                )
            )
        else:
            out.append(
                b"%.2f %.2f %.2f %.2f re f"
                % (item.x * _K, (_PAGE_HEIGHT - item.top) * _K, item.width * _K, -item.height * _K)
            )
    return b"\n".join(out)


def render_pdf(content: EvidenceContent) -> bytes:
    """A human-readable PDF of the evidence."""
    pages = _layout(content)
    shown: tuple[set[str], set[str]] = (set(), set())
    for items in pages:
        for item in items:
            if isinstance(item, _Text):
                shown[item.style.font].update(item.text)
    fonts = (
        pdf.embedded_font(pdf.face(_TEXT_FONT), _with_alphabets(shown[0])),
        pdf.embedded_font(pdf.face(_BOLD_FONT), shown[1]),
    )
    codes: list[Mapping[int, str | None]] = []
    for font, characters in zip(fonts, shown, strict=True):
        lacking = pdf.missing_characters(font, characters)
        codes.append({**font.codes, **dict.fromkeys(map(ord, lacking))} if lacking else font.codes)
    model = content.model
    info = pdf.DocumentInfo(
        title=content.title,
        author=_authority_name(content),
        subject=f"{model.title} — evidence {content.evidence_id}",
        creator="oots evidence provider",
        creation_date=f"D:{content.issuing_date:%Y%m%d}000000Z",
        language=content.language.lower(),
    )
    return pdf.write_pdf([pdf.Page(_content_stream(items, codes)) for items in pages], fonts, info)


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
    el(authority, "Name", _authority_name(content))
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
            "name": _authority_name(content),
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


def check_fields(model: DataModel, data: Mapping[str, str]) -> None:
    """Raise :class:`ValidationFailed` when ``data`` lacks a field ``model`` requires or holds a date
    field that is not a date (``YYYY-MM-DD``): the same for every format, so that a PDF never goes out
    with what its XML or JSON would be refused for. The message names fields, never their values."""
    fields = (*model.subject, *model.details)
    missing = [f.key for f in fields if f.required and not data.get(f.key, "").strip()]
    not_dates = [
        f.key for f in fields if f.type == "date" and data.get(f.key, "").strip() and not _iso_date(data[f.key])
    ]
    problems: list[str] = []
    if missing:
        problems.append(f"lacks the required field(s) {', '.join(missing)}")
    if not_dates:
        problems.append(f"holds a field that is not a date (YYYY-MM-DD): {', '.join(not_dates)}")
    if problems:
        raise ValidationFailed(f"the record for a {model.name} " + " and ".join(problems), list(problems))


def _iso_date(value: str) -> bool:
    text = value.strip()
    if len(text) != 10:
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def render(content: EvidenceContent, media_type: str) -> RenderedDocument:
    """Render ``content`` in ``media_type`` (one of :data:`SUPPORTED_MEDIA_TYPES`); raises
    :class:`ValidationFailed` first when the record does not hold what the model requires (:func:`check_fields`)."""
    renderers = {MEDIA_PDF: render_pdf, MEDIA_XML: render_xml, MEDIA_JSON: render_json}
    renderer = renderers.get(media_type)
    if renderer is None:
        raise LocalProtocolError(f"cannot render {media_type}: the formats are {', '.join(SUPPORTED_MEDIA_TYPES)}")
    check_fields(content.model, content.data)
    data = renderer(content)
    return RenderedDocument(
        media_type=media_type,
        content=data,
        filename=f"{content.model.name}-{content.evidence_id}.{_EXTENSIONS[media_type]}",
        conforms_to=None if media_type == MEDIA_PDF else content.model.conforms_to,
        language=content.language.upper(),
        title=content.title,
    )
