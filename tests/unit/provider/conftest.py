"""Fixtures of the provider tests: the text of a PDF, read by pypdf in strict mode."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from pypdf import PdfReader


def pdf_text(pdf: bytes) -> str:
    """The text of every page of a PDF, in reading order (pypdf refuses a malformed file)."""
    reader = PdfReader(io.BytesIO(pdf), strict=True)
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture(scope="session")
def extract_pdf_text() -> Callable[[bytes], str]:
    return pdf_text
