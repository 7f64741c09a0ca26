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


_SR_V1 = "https://sr.oots.tech.europa.eu/"
_SR_V2 = "https://sr.oots.tech.ec.europa.eu/"
_SR_URLS = (_SR_V1, _SR_V2)


def sr_url(value: str, *, v2: bool) -> str:
    """A Semantic Repository URL in the domain a version uses (v1.0 rules accept only the old one)."""
    old, new = (_SR_V1, _SR_V2) if v2 else (_SR_V2, _SR_V1)
    return new + value[len(old) :] if value.startswith(old) else value


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


def _text(el: etree._Element) -> str:
    if len(el):
        raise ModelError(f"{_local(el.tag)} must hold text, not elements")
    return el.text or ""


def _scalar(f: _Field, el: etree._Element) -> Any:
    kind = f.kind
    if kind == "obj":
        return read(f.type, el)
    if kind == "ident":
        return model.Identifier(_text(el), el.get("schemeID"))
    if kind == "text":
        return model.Text(_text(el), el.get("lang"))
    value = _text(el)
    if kind == "str":
        return value
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
    # bool
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
        if not isinstance(child.tag, str):
            continue  # comments, processing instructions
        f = by_tag.get(child.tag)
        if f is None:
            raise ModelError(f"unexpected element {_local(child.tag)} in {_local(el.tag)}")
        value = _scalar(f, child)
        if f.repeated:
            values.setdefault(f.name, []).append(value)
        elif f.name in values:
            raise ModelError(f"{_local(el.tag)} has more than one {_local(f.tag)}")
        else:
            values[f.name] = value
    for f in fields:
        if f.repeated and f.name in values:
            values[f.name] = tuple(values[f.name])
        elif f.required and f.name not in values:
            raise ModelError(f"{_local(el.tag)} has no {_local(f.tag)}")
    return cls(**values)


def _put(f: _Field, parent: etree._Element, value: Any, v2: bool | None) -> None:
    kind = f.kind
    if kind == "obj":
        write(parent, f.tag, value, v2=v2)
        return
    el: etree._Element = etree.SubElement(parent, f.tag)
    if kind == "ident":
        el.text = value.value
        if value.scheme_id is not None:
            el.set("schemeID", value.scheme_id)
    elif kind == "text":
        el.text = value.value
        if value.lang is not None:
            el.set("lang", value.lang)
    elif kind == "enum":
        el.text = value.value
    elif kind == "date":
        el.text = value.isoformat()
    elif kind == "bool":
        el.text = "true" if value else "false"
    elif v2 is not None and value.startswith(_SR_URLS):
        el.text = sr_url(value, v2=v2)
    else:
        el.text = value


def write(parent: etree._Element, tag: str, obj: Any, *, v2: bool | None = True) -> etree._Element:
    """Append ``obj`` as element ``tag`` (Clark notation) to ``parent``; return the new element.

    ``v2`` picks the profile: False writes v1.0 (no ``_since_v2`` fields, v1.0 Semantic Repository
    domain), True v2.0 (the ``ec`` domain), None writes the object as it is (LCM, versionless).
    """
    el: etree._Element = etree.SubElement(parent, tag)
    for f in _fields(type(obj)):
        if f.since_v2 and v2 is False:
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
