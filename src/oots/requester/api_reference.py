"""The portal API's reference page (``/api/docs``), rendered on the node from its OpenAPI document.

A node often runs where the internet is out of reach (an administration's closed network), so the
page loads nothing from elsewhere: no script, no font, no style sheet from a CDN. It is plain HTML built
once from the same OpenAPI document that ``/api/openapi.json`` serves, so the two cannot disagree.

Sans-I/O: :func:`reference_html` takes the document (a mapping) and returns the page's text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

__all__ = ["reference_html"]

_METHODS = ("get", "post", "put", "patch", "delete")
_REF_PREFIX = "#/components/schemas/"


@dataclass(frozen=True, slots=True)
class TypeText:
    """How a schema reads in the page: words, and the schema it links to (if it names one)."""

    words: str
    link: str | None = None
    suffix: str = ""


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    where: str
    required: bool
    type: TypeText
    description: str


@dataclass(frozen=True, slots=True)
class Body:
    media_type: str
    type: TypeText
    fields: Sequence[Property] = ()


@dataclass(frozen=True, slots=True)
class Answer:
    status: str
    description: str
    bodies: Sequence[Body]
    #: The response headers the answer declares: (name, meaning).
    headers: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True, slots=True)
class Operation:
    anchor: str
    method: str
    path: str
    summary: str
    description: str
    parameters: Sequence[Parameter]
    request: Sequence[Body]
    request_required: bool
    answers: Sequence[Answer]


@dataclass(frozen=True, slots=True)
class Property:
    name: str
    required: bool
    type: TypeText
    description: str
    values: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Schema:
    name: str
    description: str
    properties: Sequence[Property] = ()
    values: Sequence[str] = ()


def _ref_name(ref: str) -> str:
    return ref[len(_REF_PREFIX) :] if ref.startswith(_REF_PREFIX) else ref.rsplit("/", 1)[-1]


def _type_text(schema: Mapping[str, Any] | None) -> TypeText:
    """One line for a schema: ``string (date)``, ``array of Evidence``, ``Person or null`` …"""
    if not schema:
        return TypeText("any")
    if "$ref" in schema:
        name = _ref_name(str(schema["$ref"]))
        return TypeText("", link=name)
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            options = [s for s in schema[combinator] if s.get("type") != "null"]
            nullable = len(options) < len(schema[combinator])
            if len(options) == 1:
                inner = _type_text(options[0])
                return TypeText(inner.words, inner.link, inner.suffix + (" or null" if nullable else ""))
            words = " or ".join(_plain(_type_text(o)) for o in options)
            return TypeText(words + (" or null" if nullable else ""))
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _type_text(schema["allOf"][0])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return TypeText(" or ".join(str(k) for k in kind))
    if kind == "array":
        inner = _type_text(schema.get("items"))
        return TypeText("array of " + inner.words, inner.link, inner.suffix)
    if kind == "object" and isinstance(schema.get("additionalProperties"), Mapping):
        inner = _type_text(schema["additionalProperties"])
        return TypeText("map of string to " + inner.words, inner.link, inner.suffix)
    words = str(kind)
    if "format" in schema:
        words += f" ({schema['format']})"
    return TypeText(words)


def _plain(text: TypeText) -> str:
    return f"{text.words}{text.link or ''}{text.suffix}"


def _values(schema: Mapping[str, Any] | None) -> list[str]:
    """The allowed values of an enum (also inside ``anyOf`` with null, or ``allOf`` of one)."""
    if not schema:
        return []
    if "enum" in schema:
        return [str(v) for v in schema["enum"]]
    if "const" in schema:
        return [str(schema["const"])]
    for combinator in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(combinator, ()):
            found = _values(option)
            if found:
                return found
    return []


def _properties(schema: Mapping[str, Any]) -> list[Property]:
    required = set(schema.get("required", ()))
    out = []
    for name, prop in (schema.get("properties") or {}).items():
        out.append(
            Property(
                name=name,
                required=name in required,
                type=_type_text(prop),
                description=str(prop.get("description") or prop.get("title") or ""),
                values=[] if "$ref" in prop else _values(prop),
            )
        )
    return out


def _bodies(content: Mapping[str, Any] | None) -> list[Body]:
    out = []
    for media_type, item in (content or {}).items():
        schema = item.get("schema") or {}
        inline = _properties(schema) if "properties" in schema else []
        out.append(Body(media_type, _type_text(schema) if not inline else TypeText("object"), inline))
    return out


def _anchor(method: str, path: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in path).strip("-")
    return f"{method}-{cleaned}"


def _operations(document: Mapping[str, Any]) -> list[Operation]:
    out = []
    for path, item in (document.get("paths") or {}).items():
        shared = list(item.get("parameters", ()))
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            parameters = [
                Parameter(
                    name=str(p.get("name", "")),
                    where=str(p.get("in", "")),
                    required=bool(p.get("required", False)),
                    type=_type_text(p.get("schema")),
                    description=str(p.get("description") or (p.get("schema") or {}).get("description") or ""),
                )
                for p in [*shared, *op.get("parameters", ())]
            ]
            request = op.get("requestBody") or {}
            answers = [
                Answer(
                    str(status),
                    str(answer.get("description", "")),
                    _bodies(answer.get("content")),
                    [
                        (str(name), str(header.get("description", "")))
                        for name, header in answer.get("headers", {}).items()
                    ],
                )
                for status, answer in sorted((op.get("responses") or {}).items())
            ]
            out.append(
                Operation(
                    anchor=_anchor(method, path),
                    method=method.upper(),
                    path=path,
                    summary=str(op.get("summary") or op.get("operationId") or ""),
                    description=str(op.get("description") or ""),
                    parameters=parameters,
                    request=_bodies(request.get("content")),
                    request_required=bool(request.get("required", False)),
                    answers=answers,
                )
            )
    return out


def _schemas(document: Mapping[str, Any]) -> list[Schema]:
    found = (document.get("components") or {}).get("schemas") or {}
    return [
        Schema(
            name=name,
            description=str(schema.get("description") or ""),
            properties=_properties(schema),
            values=_values(schema),
        )
        for name, schema in sorted(found.items())
    ]


def _security(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    schemes = (document.get("components") or {}).get("securitySchemes") or {}
    out = []
    for name, scheme in schemes.items():
        kind = str(scheme.get("type", ""))
        if kind == "http":
            kind = f"HTTP {scheme.get('scheme', '')}".strip()
        elif kind == "apiKey":
            kind = f"API key in the {scheme.get('in', '')} {scheme.get('name', '')}".strip()
        elif kind == "oauth2":
            grant = (scheme.get("flows") or {}).get("clientCredentials") or {}
            if grant.get("tokenUrl"):
                kind = f"OAuth2, token from {grant['tokenUrl']}"
            scopes = ", ".join(f"{k} ({v})" for k, v in (grant.get("scopes") or {}).items())
            if scopes:
                kind += f"; scopes {scopes}"
        out.append((name, kind + (f": {scheme['description']}" if scheme.get("description") else "")))
    return out


_ENV = Environment(
    loader=PackageLoader("oots.requester", "templates"), autoescape=select_autoescape(default=True), auto_reload=False
)


def reference_html(document: Mapping[str, Any], *, openapi_url: str = "openapi.json") -> str:
    """The reference page for an OpenAPI 3 ``document``; ``openapi_url`` links the machine-readable form."""
    info = document.get("info") or {}
    return _ENV.get_template("api_reference.html").render(
        title=str(info.get("title", "API")),
        version=str(info.get("version", "")),
        description=str(info.get("description", "")),
        openapi_version=str(document.get("openapi", "")),
        openapi_url=openapi_url,
        operations=_operations(document),
        schemas=_schemas(document),
        security=_security(document),
    )
