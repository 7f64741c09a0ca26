"""The JSON form of every document: plain dicts, lists and strings a portal or register can write.

- A document is an object with ``"kind"`` (the class name: ``QueryRequest``, ``QueryResponse``,
  ``QueryError``, ``CommonServicesResponse``, ``CommonServicesError``, ``SubmitObjectsRequest``,
  ``RegistryResponse``) and its fields by their Python names (snake_case).
- Fields that are absent (None) and optional empty lists are left out; on input they take their
  defaults.
- Dates are ``YYYY-MM-DD``; date-times ISO 8601 with an offset (``2026-11-27T10:00:00.000Z``);
  booleans are JSON booleans; codes (level of assurance, gender, severity, version) their XML values.
- Where a field holds one of several object kinds (a registry object's ``content``, an LCM
  ``objects`` entry) the object carries its ``"kind"`` too.
- Unknown fields are refused with their path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from typing import Any

from oots.edm import documents, registry
from oots.edm._regrep import format_datetime
from oots.edm.codec import Document
from oots.errors import ModelError

_T = typing.TypeVar("_T")

__all__ = ["DOCUMENT_KINDS", "from_json", "object_from_json", "object_to_json", "to_json"]

#: The document classes by the ``kind`` the JSON form names them with.
DOCUMENT_KINDS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        documents.QueryRequest,
        documents.QueryResponse,
        documents.QueryError,
        registry.CommonServicesResponse,
        registry.CommonServicesError,
        registry.SubmitObjectsRequest,
        registry.RegistryResponse,
    )
}

_KINDS: dict[str, type[Any]] = {
    **DOCUMENT_KINDS,
    **{cls.__name__: cls for cls in registry.SLOT_OF},
    "RegistryItem": registry.RegistryItem,
    "Association": registry.Association,
}


def _value_to_json(value: Any, tagged: bool) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"kind": type(value).__name__} if tagged else {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if v is None or (v == () and f.default is not dataclasses.MISSING):
                continue
            out[f.name] = _value_to_json(v, _is_union_of_classes(type(value), f.name))
        return out
    if isinstance(value, tuple):
        return [_value_to_json(v, tagged) for v in value]
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def to_json(doc: Document) -> dict[str, Any]:
    """The JSON form of ``doc`` (a dict ready for ``json.dumps``)."""
    if type(doc).__name__ not in DOCUMENT_KINDS:
        raise ModelError(f"{type(doc).__name__} is not a document")
    form: dict[str, Any] = _value_to_json(doc, True)
    # kind and version first, for the reader
    head: dict[str, Any] = {key: form.pop(key) for key in ("kind", "specification") if key in form}
    return {**head, **form}


def object_to_json(obj: Any) -> dict[str, Any]:
    """The JSON form of one model object that is not a document (an ``sdg:Person``, an ``Agent``...)."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise ModelError(f"{type(obj).__name__} is not a model object")
    result: dict[str, Any] = _value_to_json(obj, False)
    return result


# ------------------------------------------------------------------------------------------------- reading


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    found = _HINTS.get(cls)
    if found is None:
        found = _HINTS[cls] = typing.get_type_hints(cls)
    return found


def _members(tp: Any) -> list[Any]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(tp) if a is not type(None)]
    return [tp]


def _is_union_of_classes(cls: type, name: str) -> bool:
    tp = _hints(cls)[name]
    if typing.get_origin(tp) is tuple:
        tp = typing.get_args(tp)[0]
    return sum(1 for m in _members(tp) if dataclasses.is_dataclass(m)) > 1


def _fail(path: str, reason: str) -> ModelError:
    return ModelError(f"{path or 'the document'}: {reason}")


def _from(tp: Any, data: Any, path: str) -> Any:
    if typing.get_origin(tp) is tuple:
        if not isinstance(data, list):
            raise _fail(path, "expected a list")
        item = typing.get_args(tp)[0]
        return tuple(_from(item, v, f"{path}[{i}]") for i, v in enumerate(data))
    members = _members(tp)
    if data is None:
        if len(members) < len(typing.get_args(tp)) or tp is type(None):
            return None
        raise _fail(path, "must not be null")
    classes: list[type] = [m for m in members if isinstance(m, type) and dataclasses.is_dataclass(m)]
    if len(classes) > 1:
        if not isinstance(data, dict) or data.get("kind") not in {c.__name__ for c in classes}:
            names = ", ".join(c.__name__ for c in classes)
            raise _fail(path, f"expected an object with kind one of {names}")
        return _object(_KINDS[data["kind"]], data, path)
    target = members[0]
    if dataclasses.is_dataclass(target):
        return _object(typing.cast(type, target), data, path)
    return _scalar(target, data, path)


def _scalar(tp: Any, data: Any, path: str) -> Any:
    if tp is bool:
        if not isinstance(data, bool):
            raise _fail(path, "expected true or false")
        return data
    if tp is int:
        if not isinstance(data, int) or isinstance(data, bool):
            raise _fail(path, "expected an integer")
        return data
    if not isinstance(data, str):
        raise _fail(path, "expected a string")
    if tp is str:
        return data
    if tp is dt.datetime:
        try:
            return dt.datetime.fromisoformat(data)
        except ValueError:
            raise _fail(path, f"{data!r} is not an ISO 8601 date-time") from None
    if tp is dt.date:
        try:
            return dt.date.fromisoformat(data)
        except ValueError:
            raise _fail(path, f"{data!r} is not a date (YYYY-MM-DD)") from None
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(data)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in tp)
            raise _fail(path, f"{data!r} is not one of {allowed}") from None
    raise _fail(path, f"cannot read a {tp!r}")  # pragma: no cover - a programming error


def _object(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise _fail(path, f"expected an object ({cls.__name__})")
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "kind":
            if value != cls.__name__:
                raise _fail(path, f"kind is {value!r}, expected {cls.__name__!r}")
            continue
        if key not in names:
            raise _fail(f"{path}.{key}" if path else key, f"unknown field of {cls.__name__}")
        values[key] = _from(hints[key], value, f"{path}.{key}" if path else key)
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise _fail(path, f"{cls.__name__} needs {', '.join(missing)}")
    return cls(**values)


def from_json(data: Any) -> Document:
    """The document a JSON form describes (as :func:`to_json` writes it); ModelError with the path."""
    if not isinstance(data, dict):
        raise ModelError("a JSON document is an object with a 'kind'")
    kind = data.get("kind")
    cls = DOCUMENT_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ModelError(f"unknown document kind {kind!r}; known: {', '.join(DOCUMENT_KINDS)}")
    doc: Document = _object(cls, data, "")
    return doc


def object_from_json(cls: type[_T], data: Any, path: str = "") -> _T:
    """The model object of class ``cls`` a JSON form describes; ModelError naming the path of a fault."""
    if not dataclasses.is_dataclass(cls):
        raise ModelError(f"{cls.__name__} is not a model class")
    obj: _T = _object(cls, data, path)
    return obj
