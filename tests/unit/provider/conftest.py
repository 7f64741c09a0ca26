"""Fixtures of the provider tests: a PDF text extractor."""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable

import pytest

# --- a small PDF text extractor (no pdftotext here): enough for the PDFs fpdf2 writes --------------
_OBJ = re.compile(rb"(\d+) 0 obj(.*?)endobj", re.S)
_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.S)
_TOKEN = re.compile(rb"/(\w+)\s+[\d.]+\s+Tf|\((?:\\.|[^\\)])*\)|<[0-9A-Fa-f\s]*>|\bET\b|\bT\*|\bTd\b", re.S)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f", b"(": b"(", b")": b")", b"\\": b"\\"}


def _stream(body: bytes) -> bytes:
    found = _STREAM.search(body)
    if not found:
        return b""
    head = body[: found.start()]
    return zlib.decompress(found.group(1)) if b"FlateDecode" in head else found.group(1)


def _literal(token: bytes) -> bytes:
    out = bytearray()
    i = 1
    while i < len(token) - 1:
        c = token[i : i + 1]
        if c == b"\\":
            nxt = token[i + 1 : i + 2]
            if nxt in _ESCAPES:
                out += _ESCAPES[nxt]
                i += 2
                continue
            octal = re.match(rb"[0-7]{1,3}", token[i + 1 : i + 4])
            if octal:
                out.append(int(octal.group(0), 8))
                i += 1 + len(octal.group(0))
                continue
            i += 1
            continue
        out += c
        i += 1
    return bytes(out)


def _cmap(data: bytes) -> dict[int, str]:
    mapping: dict[int, str] = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", data, re.S):
        for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            mapping[int(src, 16)] = bytes.fromhex(dst.decode()).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", data, re.S):
        for lo, hi, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            start = int(dst, 16)
            for n, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                mapping[code] = chr(start + n)
    return mapping


def pdf_text(pdf: bytes) -> str:
    """The text of a PDF (Type0 fonts with ToUnicode maps, literal or hex strings), one line per text run."""
    objects = {int(n): body for n, body in _OBJ.findall(pdf)}
    fonts: dict[str, dict[int, str]] = {}
    for body in objects.values():
        for resources in re.findall(rb"/Font\s*<<(.*?)>>", body, re.S):
            for name, ref in re.findall(rb"/(\w+)\s+(\d+) 0 R", resources):
                to_unicode = re.search(rb"/ToUnicode\s+(\d+) 0 R", objects[int(ref)])
                if to_unicode:
                    fonts[name.decode()] = _cmap(_stream(objects[int(to_unicode.group(1))]))
    pages = [
        int(m)
        for body in objects.values()
        if b"/Type /Page\n" in body
        for m in re.findall(rb"/Contents (\d+) 0 R", body)
    ]
    lines: list[str] = []
    for content_id in pages:
        current: dict[int, str] = {}
        line = ""
        for match in _TOKEN.finditer(_stream(objects[content_id])):
            token = match.group(0)
            if match.group(1):
                current = fonts.get(match.group(1).decode(), {})
            elif token.startswith(b"("):
                raw = _literal(token)
                line += "".join(
                    current.get(int.from_bytes(raw[i : i + 2], "big"), "?") for i in range(0, len(raw) - 1, 2)
                )
            elif token.startswith(b"<"):
                raw = bytes.fromhex(re.sub(rb"\s", b"", token[1:-1]).decode())
                line += "".join(
                    current.get(int.from_bytes(raw[i : i + 2], "big"), "?") for i in range(0, len(raw) - 1, 2)
                )
            elif line:
                lines.append(line)
                line = ""
        if line:
            lines.append(line)
    return "\n".join(lines)


@pytest.fixture(scope="session")
def extract_pdf_text() -> Callable[[bytes], str]:
    return pdf_text
