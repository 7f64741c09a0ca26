"""Generic codec between the ``sdg:`` dataclasses of :mod:`oots.edm.model` and XML elements.

Each dataclass is described once (fields in XSD order, element names, value kinds) from its type
hints; the description is cached, so reading and writing is a walk over a precomputed table.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from lxml import etree

from oots import ns
from oots.edm import model
from oots.errors import ModelError

__all__ = ["read", "write"]

T = TypeVar("T")

_SDG = "{" + ns.SDG + "}"


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    tag: str  # Clark notation
    kind: str  # str | enum | date | bool | ident | text | obj
    type: Any
    repeated: bool
    required: bool
    since_v2: bool


_SubElement = etree.SubElement
_Text = model.Text
_Identifier = model.Identifier
_NO_ATTRS: dict[str, str] = {}

_SR_V1 = "https://sr.oots.tech.europa.eu/"
_SR_V2 = "https://sr.oots.tech.ec.europa.eu/"
_SR_URLS = (_SR_V1, _SR_V2)


def sr_url(value: str, *, v2: bool) -> str:
    """A Semantic Repository URL in the spelling a version uses: v1.0 rules accept only the old
    domain, and data models under ``distributions/`` (v2.0: the new domain and ``datamodels/``)."""
    old, new = (_SR_V1, _SR_V2) if v2 else (_SR_V2, _SR_V1)
    if not value.startswith(old):
        return value
    rest = value[len(old) :]
    was, becomes = ("distributions/", "datamodels/") if v2 else ("datamodels/", "distributions/")
    if rest.startswith(was):
        rest = becomes + rest[len(was) :]
    return new + rest


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _kind(tp: Any) -> str:
    if tp is str:
        return "str"
    if tp is dt.date:
        return "date"
    if tp is bool:
        return "bool"
    if tp is model.Identifier:
        return "ident"
    if tp is model.Text:
        return "text"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "enum"
    if dataclasses.is_dataclass(tp):
        return "obj"
    raise TypeError(f"no XML mapping for {tp!r}")  # pragma: no cover - a programming error


def _fields(cls: type) -> tuple[_Field, ...]:
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = _describe(cls)
    return found


_FIELDS: dict[type, tuple[_Field, ...]] = {}
_BY_TAG: dict[type, dict[str, _Field]] = {}


def _describe(cls: type) -> tuple[_Field, ...]:
    hints = typing.get_type_hints(cls)
    names: dict[str, str] = getattr(cls, "_xml_names", {})
    since_v2: frozenset[str] = getattr(cls, "_since_v2", frozenset())
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    order: tuple[str, ...] = getattr(cls, "_order", tuple(by_name))
    out = []
    for name in order:
        f = by_name[name]
        tp = hints[name]
        repeated = False
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        origin = typing.get_origin(tp)
        if origin is tuple:
            tp = typing.get_args(tp)[0]
            repeated = True
        elif origin in (typing.Union, types.UnionType):
            tp = next(arg for arg in typing.get_args(tp) if arg is not type(None))
        out.append(
            _Field(name, _SDG + names.get(name, _camel(name)), _kind(tp), tp, repeated, required, name in since_v2)
        )
    return tuple(out)


def _local(tag: object) -> str:
    text = str(tag)
    return "sdg:" + text[len(_SDG) :] if text.startswith(_SDG) else text


def _convert(f: _Field, value: str) -> Any:
    """Text of an enum, date or boolean element to its value."""
    kind = f.kind
    if kind == "enum":
        try:
            return f.type(value.strip())
        except ValueError:
            allowed = ", ".join(m.value for m in f.type)
            raise ModelError(f"{_local(f.tag)} is {value!r}; expected one of {allowed}") from None
    if kind == "date":
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ModelError(f"{_local(f.tag)} is {value!r}, not a date (YYYY-MM-DD)") from None
    token = value.strip()
    if token in ("true", "1"):
        return True
    if token in ("false", "0"):
        return False
    raise ModelError(f"{_local(f.tag)} is {value!r}, not a boolean")


def read(cls: type[T], el: etree._Element) -> T:
    """Map the element ``el`` onto the dataclass ``cls``; raise ModelError with a plain reason."""
    fields = _fields(cls)
    by_tag = _BY_TAG.get(cls)
    if by_tag is None:
        by_tag = _BY_TAG[cls] = {f.tag: f for f in fields}
    values: dict[str, Any] = {}
    for child in el:
        f = by_tag.get(child.tag)  # type: ignore[arg-type]
        if f is None:
            if not isinstance(child.tag, str):
                continue  # comments, processing instructions
            raise ModelError(f"unexpected element {_local(child.tag)} in {_local(el.tag)}")
        kind = f.kind
        if kind == "obj":
            value: Any = read(f.type, child)
        else:
            if len(child):
                raise ModelError(f"{_local(child.tag)} must hold text, not elements")
            text = child.text or ""
            if kind == "str":
                value = text
            elif kind == "text":
                value = _Text(text, child.get("lang"))
            elif kind == "ident":
                value = _Identifier(text, child.get("schemeID"))
            else:
                value = _convert(f, text)
        name = f.name
        if f.repeated:
            found = values.get(name)
            if found is None:
                values[name] = [value]
            else:
                found.append(value)
        elif name in values:
            raise ModelError(f"{_local(el.tag)} has more than one {_local(f.tag)}")
        else:
            values[name] = value
    for f in fields:
        name = f.name
        if name in values:
            if f.repeated:
                values[name] = tuple(values[name])
        elif f.required:
            raise ModelError(f"{_local(el.tag)} has no {_local(f.tag)}")
    return cls(**values)


def _put(f: _Field, parent: etree._Element, value: Any, v2: bool | None) -> None:
    kind = f.kind
    if kind == "str":
        if v2 is not None and value.startswith(_SR_URLS):
            value = sr_url(value, v2=v2)
        _SubElement(parent, f.tag).text = value
    elif kind == "text":
        lang = value.lang
        _SubElement(parent, f.tag, _NO_ATTRS if lang is None else {"lang": lang}).text = value.value
    elif kind == "ident":
        scheme = value.scheme_id
        _SubElement(parent, f.tag, _NO_ATTRS if scheme is None else {"schemeID": scheme}).text = value.value
    elif kind == "obj":
        write(parent, f.tag, value, v2=v2)
    elif kind == "enum":
        _SubElement(parent, f.tag).text = value.value
    elif kind == "date":
        _SubElement(parent, f.tag).text = value.isoformat()
    else:
        _SubElement(parent, f.tag).text = "true" if value else "false"


def write(parent: etree._Element, tag: str, obj: Any, *, v2: bool | None = True) -> etree._Element:
    """Append ``obj`` as element ``tag`` (Clark notation) to ``parent``; return the new element.

    ``v2`` picks the profile: False writes v1.0 (no ``_since_v2`` fields, v1.0 Semantic Repository
    domain), True v2.0 (the ``ec`` domain), None writes the object as it is (LCM, versionless).
    """
    el: etree._Element = _SubElement(parent, tag)
    v1 = v2 is False
    for f in _fields(type(obj)):
        if v1 and f.since_v2:
            continue
        value = getattr(obj, f.name)
        if f.repeated:
            for item in value:
                _put(f, el, item, v2)
        elif value is not None:
            _put(f, el, value, v2)
    return el


def tag(local: str) -> str:
    """Clark notation of an ``sdg:`` element."""
    return _SDG + local
