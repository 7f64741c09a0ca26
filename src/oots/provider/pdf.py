"""A small PDF writer for the evidence documents: TrueType fonts embedded as subsets, pages of text and
filled rectangles, the document information — the file structure of PDF 32000-1 §7.5 written directly.

:mod:`oots.provider.render` lays a document out (where each line of text goes); this module measures
text with the font's glyph widths and writes the bytes:

* each font is a Type0 font with ``Identity-H`` encoding over a ``CIDFontType2`` descendant (§9.7): the
  document's characters get the codes 1, 2, 3, … in code point order, the ``CIDToGIDMap`` stream gives
  each code its glyph in the embedded subset (``FontFile2``, made with fontTools), ``W`` its width and
  the ``ToUnicode`` CMap its character, so that the text can be searched and copied;
* a character the font lacks is left out of the page (its width is still counted, as the font's
  missing width) and logged;
* the font objects depend only on the font and the set of characters shown, so they are made once per
  process for each set and kept (the last :data:`FONTS_KEPT`); a document costs its page content only.

The output is deterministic: the same pages and information give the same bytes.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Generic, TypeVar

__all__ = [
    "FONTS_KEPT",
    "POINTS_PER_MM",
    "DocumentInfo",
    "EmbeddedFont",
    "FontFace",
    "Page",
    "clear_font_caches",
    "embedded_font",
    "face",
    "missing_characters",
    "text_string",
    "write_pdf",
]

log = logging.getLogger(__name__)

#: PDF user space units (1/72 inch) per millimetre.
POINTS_PER_MM = 72 / 25.4
#: Embedded fonts (one per font file and set of characters) a process keeps.
FONTS_KEPT = 256

#: The characters a line may be broken at besides a line feed: the space and the other breaking spaces.
BREAKING_SPACES = frozenset(" \u200b\u2002\u2003\u2004\u2005\u2006\u2008\u2009\u200a\u205f\u3000")
#: A paragraph as words and the runs of breaking spaces between them (``re.split`` keeps the runs).
_SPACES = re.compile(f"([{''.join(sorted(BREAKING_SPACES))}]+)")


class _Widths(dict[str, int]):
    """Glyph widths by character; a character the font lacks has the font's missing width."""

    def __init__(self, widths: Mapping[str, int], missing: int) -> None:
        super().__init__(widths)
        self.missing = missing

    def __missing__(self, char: str) -> int:
        return self.missing


@dataclass(frozen=True, slots=True)
class FontFace:
    """What the layout and the font objects need of one TrueType font file, read once per process."""

    filename: str
    postscript_name: str
    #: Each character the font has → its glyph's advance width in thousandths of the font size.
    widths: Mapping[str, int]
    #: The characters the font has.
    characters: frozenset[str]
    #: The width of a character the font lacks (its ``.notdef`` glyph's).
    missing_width: int
    #: The FontDescriptor's entries (§9.8) but the font's name and program.
    descriptor: str

    def units(self, text: str) -> int:
        """The width of ``text`` in thousandths of the font size."""
        return sum(map(self.widths.__getitem__, text))

    def width(self, text: str, size: float) -> float:
        """The width of ``text`` at ``size`` points, in millimetres."""
        return self.units(text) * size / 1000 / POINTS_PER_MM

    def lines(self, text: str, size: float, room: float) -> list[str]:
        """``text`` at ``size`` points broken into lines at most ``room`` millimetres wide: at line
        feeds, at the last breaking space that fits (the spaces there are dropped) and, in a word
        longer than a line, before the character that does not fit."""
        limit = room * POINTS_PER_MM * 1000 / size + 1e-6
        lines: list[str] = []
        for paragraph in text.split("\n"):
            if self.units(paragraph) <= limit:
                lines.append(paragraph)
            else:
                self._break(paragraph, limit, lines)
        return lines

    def _break(self, paragraph: str, limit: float, lines: list[str]) -> None:
        """Append the lines of ``paragraph`` to ``lines``, filling each with as many words as fit."""
        parts = _SPACES.split(paragraph)  # word, spaces, word, spaces, …, word
        line, used = "", 0.0
        for i in range(0, len(parts), 2):
            word = parts[i]
            spaces = parts[i - 1] if i else ""
            width = self.units(word)
            if i and used + self.units(spaces) + width <= limit:
                line += spaces + word
                used += self.units(spaces) + width
                continue
            if i:  # the word goes to the next line; the spaces before it are dropped
                lines.append(line)
            line, used = word, width
            if width > limit:  # a word longer than a line
                line, used = self._break_word(word, limit, lines)
        lines.append(line)

    def _break_word(self, word: str, limit: float, lines: list[str]) -> tuple[str, float]:
        """Append the full lines of a word longer than a line to ``lines``; return what is left."""
        widths = self.widths
        start, used = 0, 0
        for i, char in enumerate(word):
            advance = widths[char]
            if used + advance > limit and i > start:
                lines.append(word[start:i])
                start, used = i, 0
            used += advance
        return word[start:], used


def _fonts_directory() -> str:
    return str(resources.files("oots.provider") / "fonts")


@functools.cache
def _font_file(filename: str) -> bytes:
    with open(f"{_fonts_directory()}/{filename}", "rb") as file:
        return file.read()


@functools.cache
def face(filename: str) -> FontFace:
    """The font ``filename`` of ``oots/provider/fonts`` (read once per process)."""
    from fontTools import ttLib  # type: ignore[import-untyped]  # imported with the first PDF, not at start-up

    font = ttLib.TTFont(io.BytesIO(_font_file(filename)), lazy=True)
    scale = 1000 / font["head"].unitsPerEm
    metrics = font["hmtx"].metrics
    widths = {chr(code): round(scale * metrics[glyph][0] + 0.001) for code, glyph in font.getBestCmap().items()}
    head, hhea, os2, post = font["head"], font["hhea"], font["OS/2"], font["post"]
    flags = 4  # symbolic: the glyphs are not the standard Latin set
    if post.isFixedPitch:
        flags |= 1
    if post.italicAngle:
        flags |= 64
    if os2.usWeightClass >= 600:
        flags |= 1 << 18  # force bold
    cap_height = getattr(os2, "sCapHeight", hhea.ascent)
    descriptor = (
        f"/Flags {flags} /FontBBox [{head.xMin * scale:.0f} {head.yMin * scale:.0f} {head.xMax * scale:.0f}"
        f" {head.yMax * scale:.0f}] /ItalicAngle {int(post.italicAngle)} /Ascent {round(hhea.ascent * scale)}"
        f" /Descent {round(hhea.descent * scale)} /CapHeight {round(cap_height * scale)}"
        f" /StemV {round(50 + int((os2.usWeightClass / 65) ** 2))}"
    )
    name = font["name"].getDebugName(6) or filename.rsplit(".", 1)[0]
    missing_width = round(scale * metrics[".notdef"][0])
    return FontFace(
        filename=filename,
        postscript_name="".join(c for c in name if (c.isascii() and c.isalnum()) or c in "-_"),
        widths=_Widths(widths, missing_width),
        characters=frozenset(widths),
        missing_width=missing_width,
        descriptor=descriptor,
    )


_K = TypeVar("_K")
_V = TypeVar("_V")


class _Kept(Generic[_K, _V]):
    """What a process keeps, at most ``size`` entries; the least recently used go first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[_K, _V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: _K) -> _V | None:
        with self._lock:
            kept = self._entries.get(key)
            if kept is not None:
                self._entries.move_to_end(key)
            return kept

    def put(self, key: _K, kept: _V) -> None:
        with self._lock:
            self._entries[key] = kept
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclass(frozen=True, slots=True)
class EmbeddedFont:
    """A font as a document showing exactly ``characters`` embeds it: the hex code of each character
    (for ``str.translate``) and what its six objects hold."""

    face: FontFace
    characters: frozenset[str]
    #: code point → the character's code as four hex digits
    codes: Mapping[int, str]
    subset_name: str
    to_unicode: bytes  # compressed
    cid_to_gid: bytes  # compressed
    program: bytes  # compressed
    program_length: int
    widths: str

    #: The objects of a font, in order: Type0, CIDFontType2, ToUnicode, FontDescriptor, CIDToGIDMap, FontFile2.
    OBJECTS = 6

    def objects(self, n: int) -> tuple[bytes, tuple[int, ...]]:
        """The font's objects numbered from ``n``, and where each starts in those bytes."""
        name = self.subset_name
        bodies = [
            f"<< /Type /Font /Subtype /Type0 /BaseFont /{name} /Encoding /Identity-H"
            f" /DescendantFonts [{n + 1} 0 R] /ToUnicode {n + 2} 0 R >>".encode(),
            f"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{name}"
            f" /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >>"
            f" /FontDescriptor {n + 3} 0 R /DW {self.face.missing_width} /W {self.widths}"
            f" /CIDToGIDMap {n + 4} 0 R >>".encode(),
            _stream(self.to_unicode),
            f"<< /Type /FontDescriptor /FontName /{name} {self.face.descriptor}"
            f" /MissingWidth {self.face.missing_width} /FontFile2 {n + 5} 0 R >>".encode(),
            _stream(self.cid_to_gid),
            _stream(self.program, f" /Length1 {self.program_length}"),
        ]
        out = bytearray()
        starts = []
        for number, body in enumerate(bodies, n):
            starts.append(len(out))
            out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
        return bytes(out), tuple(starts)


def _stream(compressed: bytes, extra: str = "") -> bytes:
    return b"<< /Filter /FlateDecode /Length %d%s >>\nstream\n%s\nendstream" % (
        len(compressed),
        extra.encode(),
        compressed,
    )


_embedded: _Kept[tuple[str, frozenset[str]], EmbeddedFont] = _Kept(FONTS_KEPT)


def clear_font_caches() -> None:
    """Forget the embedded fonts kept by this process (tests compare with a cold start)."""
    _embedded.clear()


def embedded_font(font: FontFace, characters: Iterable[str]) -> EmbeddedFont:
    """``font`` embedded for a document showing ``characters`` (those the font lacks are left out)."""
    shown = font.characters.intersection(characters)
    key = (font.filename, shown)
    kept = _embedded.get(key)
    if kept is None:
        kept = _embed(font, shown)
        _embedded.put(key, kept)
    return kept


#: Tables a PDF reader does not use: layout, colour and bitmap glyphs, device metrics, metadata.
_DROPPED_TABLES = [
    *("FFTM", "GDEF", "GPOS", "GSUB", "MATH", "hdmx", "meta"),
    *("sbix", "CBDT", "CBLC", "EBDT", "EBLC", "EBSC", "SVG ", "CPAL", "COLR"),
]
#: Entries per ``bfchar`` block (at most 100, Adobe Technical Note #5014).
_BFCHAR_BLOCK = 100


def _embed(font: FontFace, shown: frozenset[str]) -> EmbeddedFont:
    from fontTools import subset as ftsubset
    from fontTools import ttLib

    characters = sorted(shown)
    # the shipped font's outlines already have exact bounds: they are copied, not recompiled (the font's
    # own bounds in head, hhea and maxp stay those of the whole font, which hold every glyph)
    program = ttLib.TTFont(io.BytesIO(_font_file(font.filename)), recalcTimestamp=False, recalcBBoxes=False, lazy=True)
    options = ftsubset.Options(notdef_outline=True, recommended_glyphs=True)
    options.drop_tables += _DROPPED_TABLES
    subsetter = ftsubset.Subsetter(options)
    subsetter.populate(unicodes=[ord(char) for char in characters])
    subsetter.subset(program)
    cmap = program.getBestCmap()
    glyph_ids = [program.getGlyphID(cmap[ord(char)]) for char in characters]
    written = io.BytesIO()
    program.save(written)
    data = written.getvalue()
    program.close()

    cid_to_gid = bytearray(2 * (len(characters) + 1))
    for code, glyph_id in enumerate(glyph_ids, 1):
        cid_to_gid[2 * code : 2 * code + 2] = glyph_id.to_bytes(2, "big")
    entries = [f"<{code:04X}> <{char.encode('utf-16-be').hex().upper()}>\n" for code, char in enumerate(characters, 1)]
    blocks = [
        f"{len(chunk)} beginbfchar\n{''.join(chunk)}endbfchar\n"
        for chunk in (entries[i : i + _BFCHAR_BLOCK] for i in range(0, len(entries), _BFCHAR_BLOCK))
    ]
    to_unicode = (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
        f"{''.join(blocks)}endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n"
    )
    widths = " ".join(str(font.widths[char]) for char in characters)
    digest = hashlib.sha256(font.postscript_name.encode() + "".join(characters).encode()).digest()
    tag = "".join(chr(ord("A") + byte % 26) for byte in digest[:6])
    return EmbeddedFont(
        face=font,
        characters=shown,
        codes={ord(char): f"{code:04X}" for code, char in enumerate(characters, 1)},
        subset_name=f"{tag}+{font.postscript_name}",
        to_unicode=zlib.compress(to_unicode.encode("ascii")),
        cid_to_gid=zlib.compress(bytes(cid_to_gid)),
        program=zlib.compress(data),
        program_length=len(data),
        widths=f"[1 [{widths}]]" if characters else "[]",
    )


@dataclass(frozen=True, slots=True)
class Page:
    """One page: its content stream (PDF 32000-1 §8.2, uncompressed), with fonts named ``/F1``, ``/F2``, …
    in the order of the document's fonts."""

    content: bytes


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """The document information dictionary (§14.3.3) and the catalogue's natural language (§14.9.2)."""

    title: str
    author: str
    subject: str
    creator: str
    creation_date: str  # a PDF date, ``D:YYYYMMDDHHmmSSZ``
    language: str


def text_string(text: str) -> bytes:
    """``text`` as a PDF text string (§7.9.2.2): literal if printable ASCII, else UTF-16BE in hex."""
    if text.isascii() and text.isprintable():
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        return f"({escaped})".encode("ascii")
    return b"<FEFF" + text.encode("utf-16-be").hex().upper().encode("ascii") + b">"


#: The page size (A4) in points.
_MEDIA_BOX = b"[0 0 595.28 841.89]"


def write_pdf(pages: Sequence[Page], fonts: Sequence[EmbeddedFont], info: DocumentInfo) -> bytes:
    """The PDF file of ``pages`` using ``fonts`` (``/F1`` is the first)."""
    # 1 catalogue, 2 information, 3 page tree, 4 resources, the fonts' objects, then a page and its
    # content stream for each page
    first_page = 5 + EmbeddedFont.OBJECTS * len(fonts)
    page_numbers = [first_page + 2 * i for i in range(len(pages))]
    out = bytearray(b"%PDF-1.4\n%\xe9\xeb\xf1\xbf\n")
    offsets: list[int] = []

    def add(body: bytes) -> None:
        offsets.append(len(out))
        out.extend(b"%d 0 obj\n%s\nendobj\n" % (len(offsets), body))

    add(
        b"<< /Type /Catalog /Pages 3 0 R /Lang %s /OpenAction [%d 0 R /FitH null] /PageLayout /OneColumn >>"
        % (text_string(info.language), page_numbers[0])
    )
    add(
        b"<< /Title %s /Author %s /Subject %s /Creator %s /CreationDate (%s) >>"
        % (
            text_string(info.title),
            text_string(info.author),
            text_string(info.subject),
            text_string(info.creator),
            info.creation_date.encode("ascii"),
        )
    )
    kids = b" ".join(b"%d 0 R" % number for number in page_numbers)
    add(b"<< /Type /Pages /Kids [%s] /Count %d /MediaBox %s >>" % (kids, len(pages), _MEDIA_BOX))
    font_refs = b" ".join(b"/F%d %d 0 R" % (i, 5 + EmbeddedFont.OBJECTS * (i - 1)) for i in range(1, len(fonts) + 1))
    add(b"<< /Font << %s >> /ProcSet [/PDF /Text] >>" % font_refs)
    for font in fonts:
        data, starts = font.objects(len(offsets) + 1)
        base = len(out)
        offsets.extend(base + start for start in starts)
        out += data
    for number, page in zip(page_numbers, pages, strict=True):
        add(b"<< /Type /Page /Parent 3 0 R /Resources 4 0 R /Contents %d 0 R >>" % (number + 1))
        add(_stream(zlib.compress(page.content)))
    xref = len(out)
    identifier = hashlib.md5(out, usedforsecurity=False).hexdigest().upper().encode("ascii")
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 2 0 R /ID [<%s> <%s>] >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(offsets) + 1,
        identifier,
        identifier,
        xref,
    )
    return bytes(out)


def missing_characters(font: EmbeddedFont, characters: Iterable[str]) -> list[str]:
    """The characters of ``characters`` the font lacks, logged once per document."""
    lacking = sorted(set(characters).difference(font.face.characters))
    if lacking:
        shown = ", ".join(f"{char!r} (U+{ord(char):04X})" for char in lacking[:10])
        more = f" and {len(lacking) - 10} more" if len(lacking) > 10 else ""
        log.warning("the font %s lacks %s%s: left out of the PDF", font.face.postscript_name, shown, more)
    return lacking
