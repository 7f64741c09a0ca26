"""The portal API's reference page: made on the node from its OpenAPI document, loads nothing from elsewhere."""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from oots.cs.keys import CsPki
from oots.requester.api_reference import reference_html
from requester.helpers import Node, make_node
from requester.test_api import client_of


class _Page(HTMLParser):
    """What the tests look at in a page: tags, their addresses and ids, and the visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.addresses: list[tuple[str, str, str]] = []
        self.ids: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        for name, value in attrs:
            if name in ("href", "src", "action", "srcset"):
                self.addresses.append((tag, name, value or ""))
            if name == "id":
                self.ids.append(value or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.fixture
def node(tmp_path: Path, pki: CsPki) -> Node:
    return make_node(tmp_path, pki)


def test_the_reference_page_covers_every_call_and_schema_and_loads_nothing_from_elsewhere(node: Node) -> None:
    client = client_of(node)
    document = client.get("/api/openapi.json").json()
    answer = client.get("/api/docs")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    page = _parse(answer.text)
    # nothing to fetch: no script, no external style sheet, no image; links stay on the page or the document
    assert page.tags["script"] == 0
    assert page.tags["link"] == 0
    assert page.tags["img"] == 0
    assert page.addresses, "the page links its calls and schemas"
    for tag, name, value in page.addresses:
        assert value.startswith("#") or value == "openapi.json", (tag, name, value)
    anchors = set(page.ids)
    assert len(anchors) == len(page.ids), "ids are unique"
    for _tag, _name, value in page.addresses:
        if value.startswith("#"):
            assert value[1:] in anchors, f"{value} points nowhere"
    text = " ".join(page.text)
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"{method.upper()} {path}" in " ".join(text.split()), (method, path)
    for name, schema in document["components"]["schemas"].items():
        assert f"schema-{name}" in anchors
        for field in schema.get("properties", {}):
            assert field in text, (name, field)


def _document(description: str = "") -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "7", "description": description},
        "paths": {
            "/things/{id}": {
                "get": {
                    "summary": "Read a thing",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                        {"name": "wait", "in": "query", "schema": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
                    ],
                    "responses": {
                        "200": {
                            "description": "the thing",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}},
                        },
                        "404": {"description": "no such thing"},
                    },
                }
            }
        },
        "components": {
            "schemas": {
                "Thing": {
                    "type": "object",
                    "required": ["state"],
                    "properties": {
                        "state": {"type": "string", "enum": ["new", "done"], "description": "where it is"},
                        "parts": {"type": "array", "items": {"$ref": "#/components/schemas/Part"}},
                        "owner": {"anyOf": [{"$ref": "#/components/schemas/Part"}, {"type": "null"}]},
                    },
                },
                "Part": {"type": "object", "properties": {"n": {"type": "integer", "format": "int32"}}},
            }
        },
    }


def test_types_read_as_words_with_links_to_their_schemas() -> None:
    html = reference_html(_document())
    flat = " ".join(html.split())
    assert '<a href="#schema-Thing">Thing</a>' in html
    assert 'array of <a href="#schema-Part">Part</a>' in flat
    assert '<a href="#schema-Part">Part</a> or null' in flat
    assert "integer or null" in flat
    assert "integer (int32)" in flat
    assert "One of: <code>new</code>, <code>done</code>." in flat
    assert "<td>404</td><td>no such thing</td>" in flat


def test_texts_from_the_document_are_escaped() -> None:
    html = reference_html(_document(description="<script>alert(1)</script> & more"))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
