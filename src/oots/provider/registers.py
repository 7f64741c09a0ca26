"""Registers: where a data service reads its records, behind one small interface.

A register owner connects a register by choosing an adapter and saying which of its fields hold the
identity attributes (:class:`FieldMap`); every other field is evidence data. The adapters:

* :class:`SqlRegister` — a table or a ``SELECT`` on any SQLAlchemy URL (SQLite, PostgreSQL, ...).
  ``build_keys()`` writes a companion table of match keys (normalised name parts by date of birth,
  normalised identifiers) so that a lookup is one indexed query whatever the register's size.
* :class:`CsvRegister` — a CSV file (UTF-8, header row), indexed in memory when loaded.
* :class:`HttpJsonRegister` — an HTTP JSON API the register owner runs (``GET /persons``,
  ``GET /legal-persons``, ``GET /records/{id}``; see ``docs/provider.md``).

Every adapter returns *candidates*: records that could be the person, found by identifier or by
date of birth and a shared name part. The decision belongs to :mod:`oots.provider.matching`.
Failures of the register (unreachable, timeout, an error status, an unreadable answer, a bad row)
become :class:`oots.errors.RegisterError`, which the intake answers with ``EDM:ERR:0005`` (timeout)
or ``EDM:ERR:0008``. A register that could not be loaded at start stands behind an
:class:`UnavailableRegister`, which loads it again later.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

import httpx
import sqlalchemy as sa

from oots.errors import ConfigError, NotFound, RegisterError, RegisterUnavailable
from oots.provider.matching import (
    LegalPersonQuery,
    LegalPersonRecord,
    PersonQuery,
    PersonRecord,
    legal_name_key,
    normalise_identifier,
    normalise_legal_identifier,
)
from oots.provider.normalise import name_keys

log = logging.getLogger(__name__)

__all__ = [
    "CsvRegister",
    "FieldMap",
    "HttpJsonRegister",
    "Register",
    "RegisterRecord",
    "SqlRegister",
    "UnavailableRegister",
    "check_columns",
    "identity_model_fields",
    "model_fields",
    "person_lookup_keys",
]


@dataclass(frozen=True, slots=True)
class RegisterRecord:
    """One record of a register as text: ``data`` holds every non-empty field (dates in ISO form)."""

    record_id: str
    data: Mapping[str, str]


@runtime_checkable
class Register(Protocol):
    """What a data service needs from a register."""

    name: str

    def find_persons(self, query: PersonQuery, *, swapped_names: bool = False) -> Sequence[PersonRecord]:
        """Natural persons who could be ``query``: same identifier, or same birth date and a part of the
        family name (with ``swapped_names``, also a part of the given name as family name)."""
        ...

    def find_legal_persons(self, query: LegalPersonQuery) -> Sequence[LegalPersonRecord]:
        """Legal persons who could be ``query``: an identifier in common, or the same legal name."""
        ...

    def fetch(self, record_id: str) -> RegisterRecord:
        """The whole record; :class:`oots.errors.NotFound` when there is none."""
        ...


@dataclass(frozen=True, slots=True)
class FieldMap:
    """Which register field holds which identity attribute (empty string: the register has none).

    ``legal_identifiers`` maps an identifier scheme of the code list ``IdentifierSchemes`` (``VAT``,
    ``LEI``, ``EORI``, ``BusinessCode``, ...) to the field that holds it. ``evidence`` maps any other
    field a data model reads (``registration_number``, ``registered_on``, ...) to the register's field
    that holds it; a field of the model's name needs no entry.
    """

    record_id: str = "id"
    family_name: str = "family_name"
    given_name: str = "given_name"
    date_of_birth: str = "date_of_birth"
    identifier: str = "identifier"
    birth_name: str = "birth_name"
    place_of_birth: str = "place_of_birth"
    gender: str = "gender"
    post_code: str = "post_code"
    legal_name: str = "legal_name"
    legal_person_identifier: str = "eidas_identifier"
    legal_identifiers: Mapping[str, str] = field(
        default_factory=lambda: {"VAT": "vat", "LEI": "lei", "EORI": "eori", "BusinessCode": "business_code"}
    )
    evidence: Mapping[str, str] = field(default_factory=dict)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def _get(row: Mapping[str, Any], name: str) -> str | None:
    return _text(row.get(name)) if name else None


def _date(value: Any, register: str, column: str, at: str = "") -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise RegisterError(
            f"register {register}{at}: the column {column!r} (the date of birth) holds something that is not "
            "a date (write YYYY-MM-DD)",
            register=register,
        ) from None


def _person(row: Mapping[str, Any], fields: FieldMap, register: str, at: str = "") -> PersonRecord | None:
    record_id = _get(row, fields.record_id)
    family = _get(row, fields.family_name)
    given = _get(row, fields.given_name)
    born = row.get(fields.date_of_birth)
    if record_id is None or family is None or given is None or born in (None, ""):
        return None
    return PersonRecord(
        record_id=record_id,
        family_name=family,
        given_name=given,
        date_of_birth=_date(born, register, fields.date_of_birth, at),
        identifier=_get(row, fields.identifier),
        birth_name=_get(row, fields.birth_name),
        place_of_birth=_get(row, fields.place_of_birth),
        gender=_get(row, fields.gender),
        post_code=_get(row, fields.post_code),
    )


def _legal(row: Mapping[str, Any], fields: FieldMap) -> LegalPersonRecord | None:
    record_id = _get(row, fields.record_id)
    name = _get(row, fields.legal_name)
    if record_id is None or name is None:
        return None
    identifiers = tuple(
        (scheme, value) for scheme, column in fields.legal_identifiers.items() if (value := _get(row, column))
    )
    return LegalPersonRecord(
        record_id=record_id,
        legal_name=name,
        identifiers=identifiers,
        legal_person_identifier=_get(row, fields.legal_person_identifier),
        post_code=_get(row, fields.post_code),
    )


#: The data models' field for each scheme of ``FieldMap.legal_identifiers`` (``oots.provider.datamodels``).
_LEGAL_MODEL_FIELDS = {"VAT": "vat", "LEI": "lei", "EORI": "eori", "BusinessCode": "business_code"}
_PERSON_ATTRIBUTES = ("family_name", "given_name", "date_of_birth", "identifier", "birth_name", "place_of_birth")
_OTHER_ATTRIBUTES = ("gender", "post_code", "legal_name")
_MAPPED_ATTRIBUTES = ("record_id", *_PERSON_ATTRIBUTES, *_OTHER_ATTRIBUTES, "legal_person_identifier")


def identity_model_fields(fields: FieldMap) -> list[tuple[str, str]]:
    """``(data model field, register column)`` of each identity attribute ``fields`` maps: the names the
    data models read (``family_name``, ..., ``eidas_identifier``, ``vat``, ``business_code``) and the
    columns that hold them, ``""`` where the register has none."""
    pairs = [(attr, getattr(fields, attr)) for attr in (*_PERSON_ATTRIBUTES, *_OTHER_ATTRIBUTES)]
    pairs.append(("eidas_identifier", fields.legal_person_identifier))
    pairs += [(_LEGAL_MODEL_FIELDS.get(s, s.lower()), column) for s, column in fields.legal_identifiers.items()]
    return pairs


def model_fields(fields: FieldMap) -> list[tuple[str, str]]:
    """``(data model field, register column)`` of each field ``fields`` maps: the identity attributes
    (:func:`identity_model_fields`), then the evidence fields of ``fields.evidence``. Columns of ``""``
    (the register has none) are left out."""
    pairs = [*identity_model_fields(fields), *fields.evidence.items()]
    return [(name, column) for name, column in pairs if column]


def _record(row: Mapping[str, Any], fields: FieldMap) -> RegisterRecord:
    """The record as text under the data model's names: each identity attribute from the column the
    field map names (``family_name`` from ``achternaam``), every other column under its own name."""
    record_id = _get(row, fields.record_id) or ""
    data = {str(k): text for k, v in row.items() if (text := _text(v)) is not None}
    for name, column in model_fields(fields):
        if column == name:
            continue
        value = _text(row.get(column))
        if value is None:
            data.pop(name, None)  # a column of the model's name is not what the field map says holds it
        else:
            data[name] = value
    return RegisterRecord(record_id, data)


def check_columns(register: str, columns: Iterable[str], fields: FieldMap, where: Mapping[str, str]) -> None:
    """Raise :class:`ConfigError` when the field map or ``where`` names a column the register does not
    have: a wrong name would otherwise make every row drop out quietly, and every request look like a
    person the register does not know.

    The record id's column must exist; any other column the field map names must exist unless it is the
    default name (a register may simply not hold that attribute: a company register has no
    ``family_name``)."""
    have = set(columns)
    defaults = FieldMap()
    setting = f"provider.registers.{register}"
    problems = [(f"{setting}.where.{column}", column) for column in where if column not in have]
    mapped = [(attr, getattr(fields, attr), getattr(defaults, attr)) for attr in _MAPPED_ATTRIBUTES]
    mapped += [
        (f"legal_identifiers.{scheme}", column, defaults.legal_identifiers.get(scheme))
        for scheme, column in fields.legal_identifiers.items()
    ]
    mapped += [(name, column, None) for name, column in fields.evidence.items()]
    for attr, column, default in mapped:
        if column and column not in have and (attr == "record_id" or column != default):
            problems.append((f"{setting}.fields.{attr}", column))
    if problems:
        listed = "; ".join(f"{name} names the column {column!r}" for name, column in problems)
        raise ConfigError(
            f"register {register} has no such column: {listed}. Its columns are {', '.join(sorted(have))}",
            [(name, f"no column {column!r} in register {register}") for name, column in problems],
        )


def person_lookup_keys(query: PersonQuery, *, swapped_names: bool = False) -> frozenset[str]:
    """The name keys a lookup searches: every part of the family name and, with ``swapped_names``
    (family and given names may have been given the other way round), of the given name."""
    keys = name_keys(query.family_name)
    return keys | name_keys(query.given_name) if swapped_names else keys


def _could_be(query: PersonQuery, person: PersonRecord, swapped_names: bool) -> bool:
    """The lookup rule every adapter applies: same identifier, or same birth date and a name key."""
    if (
        query.identifier
        and person.identifier
        and normalise_identifier(query.identifier) == normalise_identifier(person.identifier)
    ):
        return True
    if person.date_of_birth != query.date_of_birth:
        return False
    return not name_keys(person.family_name).isdisjoint(person_lookup_keys(query, swapped_names=swapped_names))


def _legal_lookup(query: LegalPersonQuery) -> tuple[set[str], str]:
    ids = {"|".join(normalise_legal_identifier(s, v)) for s, v in query.identifiers}
    if query.legal_person_identifier:
        ids.add("EIDAS|" + normalise_identifier(query.legal_person_identifier))
    return ids, legal_name_key(query.legal_name)


def _legal_keys(record: LegalPersonRecord) -> set[str]:
    keys = {"|".join(normalise_legal_identifier(s, v)) for s, v in record.identifiers}
    if record.legal_person_identifier:
        keys.add("EIDAS|" + normalise_identifier(record.legal_person_identifier))
    return keys


# ---------------------------------------------------------------------------------------------------
class CsvRegister:
    """A register in a CSV file (UTF-8, header row), read once and indexed in memory.

    ``where`` keeps only the rows whose fields equal the given values (``{"country": "BE"}``).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        name: str = "",
        fields: FieldMap | None = None,
        where: Mapping[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = name or self.path.stem
        self.fields = fields or FieldMap()
        self.where = dict(where or {})
        self._rows: dict[str, dict[str, str]] = {}
        self._people: dict[str, PersonRecord] = {}
        self._legal: dict[str, LegalPersonRecord] = {}
        self._by_name: dict[tuple[dt.date, str], set[str]] = defaultdict(set)
        self._by_id: dict[str, set[str]] = defaultdict(set)
        self._by_legal_id: dict[str, set[str]] = defaultdict(set)
        self._by_legal_name: dict[str, set[str]] = defaultdict(set)
        self._load()

    def _load(self) -> None:
        try:
            with self.path.open(encoding="utf-8-sig", newline="") as fh:
                reader = csv.DictReader(fh)
                header = list(reader.fieldnames or ())
                rows = [(reader.line_num, row) for row in reader]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise RegisterError(f"register {self.name}: cannot read its file ({exc})", register=self.name) from None
        check_columns(self.name, header, self.fields, self.where)
        for line, row in rows:
            if any(row.get(k) != v for k, v in self.where.items()):
                continue
            clean = {k: v for k, v in row.items() if k is not None}
            record_id = _get(clean, self.fields.record_id)
            if record_id is None:
                continue
            self._rows[record_id] = clean
            person = _person(clean, self.fields, self.name, f", line {line} of {self.path.name}")
            if person is not None:
                self._people[record_id] = person
                for key in name_keys(person.family_name):
                    self._by_name[(person.date_of_birth, key)].add(record_id)
                if person.identifier:
                    self._by_id[normalise_identifier(person.identifier)].add(record_id)
            legal = _legal(clean, self.fields)
            if legal is not None:
                self._legal[record_id] = legal
                for key in _legal_keys(legal):
                    self._by_legal_id[key].add(record_id)
                self._by_legal_name[legal_name_key(legal.legal_name)].add(record_id)

    def __len__(self) -> int:
        return len(self._rows)

    def find_persons(self, query: PersonQuery, *, swapped_names: bool = False) -> Sequence[PersonRecord]:
        found: set[str] = set()
        for key in person_lookup_keys(query, swapped_names=swapped_names):
            found |= self._by_name.get((query.date_of_birth, key), set())
        if query.identifier:
            found |= self._by_id.get(normalise_identifier(query.identifier), set())
        return [self._people[i] for i in sorted(found)]

    def find_legal_persons(self, query: LegalPersonQuery) -> Sequence[LegalPersonRecord]:
        ids, name_key = _legal_lookup(query)
        found: set[str] = set(self._by_legal_name.get(name_key, set()))
        for key in ids:
            found |= self._by_legal_id.get(key, set())
        return [self._legal[i] for i in sorted(found)]

    def fetch(self, record_id: str) -> RegisterRecord:
        row = self._rows.get(record_id)
        if row is None:
            raise NotFound(f"register {self.name} has no record with that id")
        return _record(row, self.fields)


# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    defaults: dict[str, Any]
    processors: Mapping[str, Callable[[Any], Any] | None]
    order: list[str] | None


KIND_NAME = "n"
KIND_IDENTIFIER = "i"
KIND_LEGAL_ID = "l"
KIND_LEGAL_NAME = "m"


class SqlRegister:
    """A register in a SQL database: a table, or a ``SELECT`` statement, on any SQLAlchemy engine.

    Without a key table, a lookup selects the rows with the person's date of birth (index that
    column) or identifier. With ``keys_table`` (written by :meth:`build_keys`, possibly in another
    database the provider owns via ``keys_engine``) a lookup is one indexed query on the normalised
    name parts, whatever the size of the register. Rebuild the keys when the register changes.
    """

    def __init__(
        self,
        engine: sa.Engine,
        source: str,
        *,
        name: str = "",
        fields: FieldMap | None = None,
        where: Mapping[str, str] | None = None,
        keys_table: str | None = None,
        keys_engine: sa.Engine | None = None,
    ) -> None:
        self.engine = engine
        self.name = name or (source if source.isidentifier() else "sql")
        self.fields = fields or FieldMap()
        self.where = dict(where or {})
        self.keys_engine = keys_engine or engine
        try:
            self._source = self._reflect(source)
        except sa.exc.SQLAlchemyError as exc:
            raise RegisterError(
                f"register {self.name}: cannot read its table ({type(exc).__name__})", register=self.name
            ) from None
        self._columns = {c.name for c in self._source.c}
        check_columns(self.name, self._columns, self.fields, self.where)
        self._keys = self._keys_table(keys_table) if keys_table else None
        self._statements: tuple[sa.Select[Any], sa.Select[Any]] | None = None
        self._compiled_cache: dict[tuple[int, bool], _Compiled] = {}

    def _reflect(self, source: str) -> sa.FromClause:
        if source.lstrip().lower().startswith("select"):
            with self.engine.connect() as conn:
                probe = conn.execute(sa.text(f"SELECT * FROM ({source}) AS q WHERE 1 = 0"))  # noqa: S608
                names = list(probe.keys())
            return sa.text(source).columns(*[sa.column(n) for n in names]).subquery("register")
        return sa.Table(source, sa.MetaData(), autoload_with=self.engine)

    def _keys_table(self, name: str) -> sa.Table:
        id_type = self._source.c[self.fields.record_id].type
        if isinstance(id_type, sa.types.NullType):
            id_type = sa.String()
        meta = sa.MetaData()
        return sa.Table(
            name,
            meta,
            sa.Column("kind", sa.String(1), nullable=False),
            sa.Column("key", sa.String(200), nullable=False),
            sa.Column("born", sa.Date, nullable=True),
            sa.Column("record_id", id_type, nullable=False),
            sa.Index(f"ix_{name}_lookup", "kind", "key", "born", "record_id"),
        )

    def _col(self, name: str) -> sa.ColumnElement[Any] | None:
        return self._source.c[name] if name and name in self._columns else None

    def _filtered(self, stmt: sa.Select[Any]) -> sa.Select[Any]:
        for key, value in self.where.items():
            stmt = stmt.where(self._source.c[key] == value)
        return stmt

    def _rows(self, stmt: sa.Select[Any], params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        try:
            with self.engine.connect() as conn:
                return [dict(r) for r in conn.execute(stmt, dict(params or {})).mappings()]
        except sa.exc.OperationalError as exc:
            timeout = "timeout" in str(exc).lower() or "canceling statement" in str(exc).lower()
            raise RegisterError(
                f"register {self.name} failed ({type(exc).__name__})", register=self.name, timeout=timeout
            ) from None
        except sa.exc.SQLAlchemyError as exc:
            raise RegisterError(f"register {self.name} failed ({type(exc).__name__})", register=self.name) from None

    def _pages(self, size: int) -> Iterator[list[dict[str, Any]]]:
        """The (filtered) register in pages ordered by record id, each read on its own connection (so
        that writing the keys in between never waits for a reader, as SQLite would)."""
        id_column = self._source.c[self.fields.record_id]
        last: Any = None
        while True:
            stmt = self._filtered(sa.select(self._source)).order_by(id_column).limit(size)
            if last is not None:
                stmt = stmt.where(id_column > last)
            rows = self._rows(stmt)
            if not rows:
                return
            yield rows
            last = rows[-1][self.fields.record_id]

    def build_keys(self, batch: int = 20_000) -> int:
        """(Re)write the key table from the register; returns the number of keys written."""
        if self._keys is None:
            raise RegisterError(f"register {self.name} has no key table configured", register=self.name)
        keys = self._keys
        keys.metadata.drop_all(self.keys_engine, tables=[keys], checkfirst=True)
        keys.metadata.create_all(self.keys_engine, tables=[keys])
        written = 0
        id_column = self.fields.record_id
        for page in self._pages(batch):
            pending = [key for row in page for key in self._row_keys(row, row[id_column])]
            if pending:
                with self.keys_engine.begin() as out:
                    out.execute(keys.insert(), pending)
                written += len(pending)
        return written

    def _row_keys(self, row: Mapping[str, Any], raw_id: Any) -> Iterable[dict[str, Any]]:
        person = _person(row, self.fields, self.name)
        if person is not None:
            for key in name_keys(person.family_name):
                yield {"kind": KIND_NAME, "key": key[:200], "born": person.date_of_birth, "record_id": raw_id}
            if person.identifier:
                yield {
                    "kind": KIND_IDENTIFIER,
                    "key": normalise_identifier(person.identifier)[:200],
                    "born": None,
                    "record_id": raw_id,
                }
        legal = _legal(row, self.fields)
        if legal is not None:
            for key in _legal_keys(legal):
                yield {"kind": KIND_LEGAL_ID, "key": key[:200], "born": None, "record_id": raw_id}
            yield {
                "kind": KIND_LEGAL_NAME,
                "key": legal_name_key(legal.legal_name)[:200],
                "born": None,
                "record_id": raw_id,
            }

    def _id_value(self, record_id: str) -> Any:
        column = self._source.c[self.fields.record_id]
        try:
            python_type = column.type.python_type
        except NotImplementedError:
            return record_id
        if python_type is int:
            try:
                return int(record_id)
            except ValueError:
                raise NotFound(f"register {self.name} has no record with that id") from None
        return record_id

    def _prepared(self) -> tuple[sa.Select[Any], sa.Select[Any]]:
        """Statements of a keyed lookup in a separate key database, built once: ids by name, and ids
        by name or identifier."""
        if self._statements is None:
            assert self._keys is not None
            k = self._keys
            by_name = sa.and_(
                k.c.kind == KIND_NAME,
                k.c.key.in_(sa.bindparam("keys", expanding=True)),
                k.c.born == sa.bindparam("born", type_=sa.Date),
            )
            by_id = sa.and_(k.c.kind == KIND_IDENTIFIER, k.c.key == sa.bindparam("ident"))
            ids_name = sa.select(k.c.record_id).where(by_name)
            ids_both = sa.select(k.c.record_id).where(sa.or_(by_name, by_id))
            self._statements = (ids_name, ids_both)
        return self._statements

    def _compiled(self, n_keys: int, with_identifier: bool) -> _Compiled:
        """The keyed lookup for ``n_keys`` name keys as driver-level SQL, compiled once per shape."""
        shape = (n_keys, with_identifier)
        found = self._compiled_cache.get(shape)
        if found is not None:
            return found
        assert self._keys is not None
        k = self._keys
        dialect = self.engine.dialect
        conditions: list[sa.ColumnElement[bool]] = []
        if n_keys:
            conditions.append(
                sa.and_(
                    k.c.kind == KIND_NAME,
                    k.c.key.in_([sa.bindparam(f"oots_key_{i}", type_=sa.String) for i in range(n_keys)]),
                    k.c.born == sa.bindparam("born", type_=sa.Date),
                )
            )
        if with_identifier:
            conditions.append(
                sa.and_(k.c.kind == KIND_IDENTIFIER, k.c.key == sa.bindparam("oots_ident", type_=sa.String))
            )
        cond = sa.or_(*conditions)
        id_column = self._source.c[self.fields.record_id]
        stmt = self._filtered(sa.select(self._source).where(id_column.in_(sa.select(k.c.record_id).where(cond))))
        compiled = stmt.compile(dialect=dialect)
        processors = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect) for name, bind in compiled.binds.items()
        }
        order = list(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        result = _Compiled(str(compiled), dict(compiled.params), processors, order)
        self._compiled_cache[shape] = result
        return result

    def _lookup(self, query: PersonQuery, swapped_names: bool) -> list[dict[str, Any]]:
        """The keyed lookup on the driver's own connection: the statement is compiled once, so a lookup
        costs one indexed query and little Python (the bench measures it)."""
        keys = sorted(person_lookup_keys(query, swapped_names=swapped_names))
        if not keys and not query.identifier:
            return []
        compiled = self._compiled(len(keys), bool(query.identifier))
        values: dict[str, Any] = dict(compiled.defaults)
        values.update({f"oots_key_{i}": key for i, key in enumerate(keys)})
        if keys:
            values["born"] = query.date_of_birth
        if query.identifier:
            values["oots_ident"] = normalise_identifier(query.identifier)
        for name, processor in compiled.processors.items():
            if processor is not None:
                values[name] = processor(values[name])
        args: Any = [values[name] for name in compiled.order] if compiled.order is not None else values
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        try:
            raw = self.engine.raw_connection()
        except sa.exc.SQLAlchemyError as exc:
            raise RegisterError(f"register {self.name} failed ({type(exc).__name__})", register=self.name) from None
        try:
            cursor = raw.cursor()
            cursor.execute(compiled.sql, args)
            names = [d[0] for d in cursor.description or ()]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            cursor.close()
            return rows
        except dbapi_error as exc:
            text = str(exc).lower()
            timeout = "timeout" in text or "canceling statement" in text
            raise RegisterError(
                f"register {self.name} failed ({type(exc).__name__})", register=self.name, timeout=timeout
            ) from None
        finally:
            raw.close()

    def find_persons(self, query: PersonQuery, *, swapped_names: bool = False) -> Sequence[PersonRecord]:
        id_column = self._source.c[self.fields.record_id]
        if self._keys is not None:
            if self.keys_engine is self.engine:
                rows = self._lookup(query, swapped_names)
            else:
                ids_name, ids_both = self._prepared()
                params: dict[str, Any] = {
                    "keys": sorted(person_lookup_keys(query, swapped_names=swapped_names)),
                    "born": query.date_of_birth,
                }
                if query.identifier:
                    params["ident"] = normalise_identifier(query.identifier)
                found = [r[0] for r in self._keys_rows(ids_both if query.identifier else ids_name, params)]
                rows = self._rows(self._filtered(sa.select(self._source).where(id_column.in_(found))))
            return self._people(rows)
        else:
            born = self._col(self.fields.date_of_birth)
            if born is None:
                raise RegisterError(f"register {self.name} has no date-of-birth column", register=self.name)
            condition: sa.ColumnElement[bool] = born == query.date_of_birth
            ident = self._col(self.fields.identifier)
            if query.identifier and ident is not None:
                # The stored form may carry any destination country: compare on the value part too.
                value = query.identifier.rsplit("/", 1)[-1].strip()
                condition = sa.or_(condition, ident == query.identifier, ident.like(f"%/{value}"))
            stmt = sa.select(self._source).where(condition)
            people = self._people(self._rows(self._filtered(stmt)))
            return [p for p in people if _could_be(query, p, swapped_names)]

    def _people(self, rows: list[dict[str, Any]]) -> list[PersonRecord]:
        out = [p for row in rows if (p := _person(row, self.fields, self.name)) is not None]
        return sorted(out, key=lambda p: p.record_id)

    def _keys_rows(self, stmt: sa.Select[Any], params: Mapping[str, Any] | None = None) -> list[Any]:
        try:
            with self.keys_engine.connect() as conn:
                return list(conn.execute(stmt, dict(params or {})))
        except sa.exc.SQLAlchemyError as exc:
            raise RegisterError(
                f"register {self.name}: key table failed ({type(exc).__name__})", register=self.name
            ) from None

    def find_legal_persons(self, query: LegalPersonQuery) -> Sequence[LegalPersonRecord]:
        ids, name_key = _legal_lookup(query)
        id_column = self._source.c[self.fields.record_id]
        if self._keys is not None:
            k = self._keys
            cond = sa.and_(k.c.kind == KIND_LEGAL_NAME, k.c.key == name_key)
            if ids:
                cond = sa.or_(cond, sa.and_(k.c.kind == KIND_LEGAL_ID, k.c.key.in_(sorted(ids))))
            found = [r[0] for r in self._keys_rows(sa.select(k.c.record_id).where(cond))]
            stmt = sa.select(self._source).where(id_column.in_(found))
        else:
            # Without keys, legal names can only be compared here: the whole (filtered) register is read.
            # Fine for small registers; configure a key table for large ones.
            rows = self._rows(self._filtered(sa.select(self._source)))
            records = [r for row in rows if (r := _legal(row, self.fields)) is not None]
            return [r for r in records if _legal_keys(r) & ids or legal_name_key(r.legal_name) == name_key]
        records = [r for row in self._rows(self._filtered(stmt)) if (r := _legal(row, self.fields)) is not None]
        return sorted(records, key=lambda r: r.record_id)

    def fetch(self, record_id: str) -> RegisterRecord:
        stmt = self._filtered(
            sa.select(self._source).where(self._source.c[self.fields.record_id] == self._id_value(record_id))
        )
        rows = self._rows(stmt)
        if not rows:
            raise NotFound(f"register {self.name} has no record with that id")
        return _record(rows[0], self.fields)


# ---------------------------------------------------------------------------------------------------
class HttpJsonRegister:
    """A register behind an HTTP JSON API run by its owner.

    * ``GET {base}/persons?family_name=&given_name=&date_of_birth=[&identifier=]`` → a JSON list of
      records (or ``{"records": [...]}``), each an object with the fields of :class:`FieldMap`;
    * ``GET {base}/legal-persons?legal_name=[&identifier=SCHEME:VALUE...]`` → the same for legal persons;
    * ``GET {base}/records/{id}`` → one record object; 404 when there is none.

    The API may return more candidates than match: the matching is done here. A timeout, a refused
    connection, a status other than 200 (and 404 on a record) or a body that is not the expected JSON
    raise :class:`oots.errors.RegisterError`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        name: str = "",
        fields: FieldMap | None = None,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name or base_url
        self.fields = fields or FieldMap()
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/", timeout=timeout, headers=dict(headers or {}), transport=transport
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpJsonRegister:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, params: Sequence[tuple[str, str]] = (), *, missing_ok: bool = False) -> Any:
        try:
            response = self._client.get(path, params=httpx.QueryParams(list(params)))
        except httpx.TimeoutException:
            raise RegisterError(
                f"register {self.name} did not answer in time", register=self.name, timeout=True
            ) from None
        except httpx.HTTPError as exc:
            raise RegisterError(
                f"register {self.name} is unreachable ({type(exc).__name__})", register=self.name
            ) from None
        if missing_ok and response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RegisterError(f"register {self.name} answered HTTP {response.status_code}", register=self.name)
        try:
            return response.json()
        except ValueError:
            raise RegisterError(
                f"register {self.name} answered something that is not JSON", register=self.name
            ) from None

    def _objects(self, body: Any) -> list[Mapping[str, Any]]:
        if isinstance(body, Mapping):
            body = body.get("records")
        if not isinstance(body, list) or not all(isinstance(o, Mapping) for o in body):
            raise RegisterError(f"register {self.name} answered JSON of an unexpected shape", register=self.name)
        return body

    def find_persons(self, query: PersonQuery, *, swapped_names: bool = False) -> Sequence[PersonRecord]:
        params = [
            ("family_name", query.family_name),
            ("given_name", query.given_name),
            ("date_of_birth", query.date_of_birth.isoformat()),
        ]
        if query.identifier:
            params.append(("identifier", query.identifier))
        out = []
        for obj in self._objects(self._get("persons", params)):
            person = _person(obj, self.fields, self.name)
            if person is None:
                raise RegisterError(
                    f"register {self.name} answered a person record without its identity", register=self.name
                )
            out.append(person)
        return [p for p in out if _could_be(query, p, swapped_names)]

    def find_legal_persons(self, query: LegalPersonQuery) -> Sequence[LegalPersonRecord]:
        params = [("legal_name", query.legal_name)]
        params += [("identifier", f"{s}:{v}") for s, v in query.identifiers]
        if query.legal_person_identifier:
            params.append(("identifier", f"eidas:{query.legal_person_identifier}"))
        out = []
        for obj in self._objects(self._get("legal-persons", params)):
            legal = _legal(obj, self.fields)
            if legal is None:
                raise RegisterError(
                    f"register {self.name} answered a legal person without id or name", register=self.name
                )
            out.append(legal)
        ids, name_key = _legal_lookup(query)
        return [r for r in out if _legal_keys(r) & ids or legal_name_key(r.legal_name) == name_key]

    def fetch(self, record_id: str) -> RegisterRecord:
        body = self._get("records/" + quote(record_id, safe=""), missing_ok=True)
        if body is None:
            raise NotFound(f"register {self.name} has no record with that id")
        if not isinstance(body, Mapping):
            raise RegisterError(f"register {self.name} answered JSON of an unexpected shape", register=self.name)
        return _record(body, self.fields)


# ---------------------------------------------------------------------------------------------------
class UnavailableRegister:
    """A register that could not be loaded at start, standing in for it until it loads.

    Each call first loads the register again when a new attempt is due, and raises
    :class:`oots.errors.RegisterUnavailable` with ``problem`` while it still fails, so the data services
    that read it answer ``EDM:ERR:0008`` and the node's other data services go on. ``load`` builds the
    register (raising :class:`RegisterError` or :class:`ConfigError`).

    With ``stamp`` (a CSV file's size and modification time), a new attempt is due when the stamp has
    changed: a file with a bad row stays refused until it is fixed, not read again and again. Without
    it (a database), attempts follow each other after ``first_wait`` seconds, doubling up to
    ``max_wait``. ``problem`` is ``None`` once the register has loaded.
    """

    def __init__(
        self,
        name: str,
        load: Callable[[], Register],
        problem: str,
        *,
        stamp: Callable[[], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        first_wait: float = 5.0,
        max_wait: float = 300.0,
    ) -> None:
        self.name = name
        self.problem: str | None = problem
        self._load = load
        self._stamp = stamp
        self._clock = clock
        self._wait = first_wait
        self._max_wait = max_wait
        self._last_stamp = stamp() if stamp is not None else None
        self._next = clock() + first_wait
        self._loaded: Register | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> Register | None:
        """The register, once it has loaded."""
        return self._loaded

    def _due(self) -> bool:
        if self._stamp is not None:
            return self._stamp() != self._last_stamp
        return self._clock() >= self._next

    def _retry(self) -> None:
        stamp = self._stamp() if self._stamp is not None else None
        try:
            register = self._load()
        except (RegisterError, ConfigError) as exc:
            self._last_stamp = stamp
            self._wait = min(self._wait * 2, self._max_wait)
            self._next = self._clock() + self._wait
            if exc.message != self.problem:
                log.error("register %s is still unavailable: %s", self.name, exc.message)
            self.problem = exc.message
            return
        self._loaded, self.problem = register, None
        log.warning("register %s has loaded: its data services answer again", self.name)

    def refresh(self) -> str | None:
        """Load the register again if an attempt is due (never waiting for another thread's attempt);
        ``problem`` then: ``None`` once it has loaded. Also called to show the state (``/ready``), so
        that a process that answers no request (the web process of a node whose worker runs apart)
        shows it as it is."""
        if self._loaded is None and self._due() and self._lock.acquire(blocking=False):
            try:
                if self._loaded is None:
                    self._retry()
            finally:
                self._lock.release()
        return self.problem

    def current(self) -> Register:
        """The register, loaded again if an attempt is due; :class:`RegisterUnavailable` while it fails."""
        self.refresh()
        if self._loaded is not None:
            return self._loaded
        raise RegisterUnavailable(f"register {self.name} is unavailable: {self.problem}", register=self.name)

    def find_persons(self, query: PersonQuery, *, swapped_names: bool = False) -> Sequence[PersonRecord]:
        return self.current().find_persons(query, swapped_names=swapped_names)

    def find_legal_persons(self, query: LegalPersonQuery) -> Sequence[LegalPersonRecord]:
        return self.current().find_legal_persons(query)

    def fetch(self, record_id: str) -> RegisterRecord:
        return self.current().fetch(record_id)
