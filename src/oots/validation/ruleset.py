"""A rule set: the XSDs, Schematron files and code lists of one data model version, read from a directory.

Layout (the packaged ``rules/oots-edm-v1.0`` and the official 2.0.1 release both fit it)::

    DIR/xsd/**.xsd               XML Schemas (RegRep 4, SDG profile, xml/xlink/ws-addressing)
    DIR/catalog.xml              optional OASIS XML catalogue: remote schema URLs -> local files
    DIR/sch/*.sch                Schematron files named by kind (EDM-REQ-S.sch, ...)
    DIR/sch/codelist-include/    optional files the Schematron files include
    DIR/codelists/**.gc          optional genericode code lists

Schema imports never touch the network: every URL is mapped to a local file through the catalogue,
then by file name among the rule set's own XSDs; anything else is refused.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from oots import ns
from oots.validation.fixes import CODELIST_FIXES, SCHEMATRON_FIXES
from oots.validation.schematron import RuleSetError, SchematronSource

__all__ = ["BUILTIN_V1", "CodeList", "RuleSet"]

#: The packaged official v1.0 rule set.
BUILTIN_V1 = Path(__file__).resolve().parent / "rules" / "oots-edm-v1.0"

XS = "http://www.w3.org/2001/XMLSchema"
CATALOG_NS = "urn:oasis:names:tc:entity:xmlns:xml:catalog"
GC_NS = "http://docs.oasis-open.org/codelist/ns/genericode/1.0/"
WSA = "http://www.w3.org/2005/08/addressing"
#: Namespaces the XML Schema layer loads, in import order.
SCHEMA_NAMESPACES = (ns.XML, ns.XLINK, WSA, ns.RIM, ns.RS, ns.QUERY, ns.LCM, ns.SDG)


def _rule_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _read_xml(path: Path, data: bytes | None = None) -> etree._Element:
    try:
        raw = path.read_bytes() if data is None else data
        return etree.fromstring(raw, parser=_rule_parser(), base_url=path.as_uri())
    except OSError as exc:
        raise RuleSetError(f"cannot read rule file {path}: {exc.strerror}") from None
    except etree.XMLSyntaxError as exc:
        raise RuleSetError(f"rule file {path} is not well-formed XML: {exc.msg}") from None


class _LocalResolver(etree.Resolver):
    """Maps schema URLs to the rule set's files; refuses the network."""

    def __init__(self, ruleset: RuleSet) -> None:
        super().__init__()
        self.ruleset = ruleset
        self.refused: list[str] = []

    def resolve(self, system_url: str | None, public_id: str | None, context: Any) -> Any:
        url = system_url or ""
        local = self.ruleset.catalogue.get(url) or (self.ruleset.catalogue.get(public_id) if public_id else None)
        if local is None and "://" in url and not url.startswith("file:"):
            local = self.ruleset.xsd_by_name.get(url.rstrip("/").rsplit("/", 1)[-1])
        if local is not None:
            return self.resolve_filename(str(local), context)
        if url.startswith("file:") or "://" not in url:
            return None  # a local file: libxml2 reads it itself
        self.refused.append(url)
        return self.resolve_string("", context)


@dataclass(frozen=True, slots=True)
class CodeList:
    """A genericode list: its short name, canonical URI, version and the values of its key column."""

    name: str
    uri: str
    version: str
    codes: frozenset[str]


class RuleSet:
    """The rule files in ``directory``. Loading is lazy and cached; corrections are applied on load."""

    def __init__(self, directory: Path, *, fixes: Collection[str] | None = None) -> None:
        self.directory = Path(directory).resolve()
        if not self.directory.is_dir():
            raise RuleSetError(f"rule set directory {directory} does not exist")
        sch_dir = self.directory / "sch"
        xsd_dir = self.directory / "xsd"
        if not sch_dir.is_dir() and not xsd_dir.is_dir():
            raise RuleSetError(f"{directory} holds neither an xsd/ nor a sch/ folder: not a rule set")
        known = {f.name for f in SCHEMATRON_FIXES} | {f.name for f in CODELIST_FIXES}
        #: Names of the corrections this rule set applies (all by default).
        self.fixes = frozenset(known if fixes is None else fixes)
        if unknown := self.fixes - known:
            raise RuleSetError(f"unknown corrections: {', '.join(sorted(unknown))}")
        self.name = self.directory.name
        self.schematron_files: dict[str, Path] = {p.stem: p for p in sorted(sch_dir.glob("*.sch"))}
        self.xsd_files = sorted(xsd_dir.rglob("*.xsd")) if xsd_dir.is_dir() else []
        self.xsd_by_name: dict[str, Path] = {}
        for path in self.xsd_files:
            self.xsd_by_name.setdefault(path.name, path)
        self.catalogue = self._read_catalogue()
        self.applied_fixes: set[str] = set()
        self._lock = threading.Lock()
        self._schema: etree.XMLSchema | None = None
        self._schema_loaded = False
        self._codelists: dict[str, CodeList] | None = None

    def __repr__(self) -> str:
        return f"RuleSet({str(self.directory)!r})"

    # -- catalogue and XML Schema ------------------------------------------------------------------------

    def _read_catalogue(self) -> dict[str, Path]:
        path = self.directory / "catalog.xml"
        if not path.is_file():
            return {}
        root = _read_xml(path)
        entries: dict[str, Path] = {}
        for entry in root.iter(f"{{{CATALOG_NS}}}system", f"{{{CATALOG_NS}}}uri", f"{{{CATALOG_NS}}}public"):
            key = entry.get("systemId") or entry.get("name") or entry.get("publicId")
            target = entry.get("uri")
            if key and target:
                local = (self.directory / target).resolve()
                if not local.is_relative_to(self.directory):
                    raise RuleSetError(f"catalogue entry {key} points outside the rule set: {target}")
                entries[key] = local
        return entries

    def _schema_entry_points(self) -> dict[str, Path]:
        """One XSD per namespace: files that another file ``xs:include``s are reached through it."""
        included: set[Path] = set()
        by_ns: dict[str, list[Path]] = {}
        for path in self.xsd_files:
            root = _read_xml(path)
            for inc in root.iter(f"{{{XS}}}include"):
                location = inc.get("schemaLocation")
                if location and "://" not in location:
                    included.add((path.parent / location).resolve())
            by_ns.setdefault(root.get("targetNamespace") or "", []).append(path.resolve())
        chosen: dict[str, Path] = {}
        for namespace in SCHEMA_NAMESPACES:
            candidates = [p for p in by_ns.get(namespace, []) if p not in included]
            if candidates:
                chosen[namespace] = sorted(candidates, key=lambda p: (len(p.parts), str(p)))[0]
        return chosen

    @property
    def schema(self) -> etree.XMLSchema | None:
        """The combined XML Schema of the rule set (``None`` when it has no XSDs)."""
        with self._lock:
            if not self._schema_loaded:
                self._schema = self._load_schema()
                self._schema_loaded = True
            return self._schema

    def _load_schema(self) -> etree.XMLSchema | None:
        chosen = self._schema_entry_points()
        if not chosen:
            return None
        imports = "".join(
            f'<xs:import namespace="{namespace}" schemaLocation="{path.as_uri()}"/>'
            for namespace, path in chosen.items()
        )
        wrapper = f'<xs:schema xmlns:xs="{XS}" targetNamespace="urn:oots:validation:wrapper">{imports}</xs:schema>'
        parser = _rule_parser()
        resolver = _LocalResolver(self)
        parser.resolvers.add(resolver)
        doc = etree.fromstring(wrapper.encode(), parser=parser, base_url=(self.directory / "xsd" / "_.xsd").as_uri())
        try:
            schema = etree.XMLSchema(doc)
        except etree.XMLSchemaParseError as exc:
            problem = str(exc)
        else:
            problem = ""
        if resolver.refused:
            raise RuleSetError(f"schema imports outside the rule set were refused: {', '.join(resolver.refused)}")
        if problem:
            raise RuleSetError(f"the XML Schemas of {self.directory} do not load: {problem}")
        return schema

    # -- Schematron ---------------------------------------------------------------------------------------

    def schematron(self, stem: str) -> SchematronSource | None:
        """The parsed (and corrected) Schematron file ``stem`` (e.g. ``EDM-REQ-S``), or ``None``."""
        path = self.schematron_files.get(stem)
        if path is None:
            return None
        root = _read_xml(path)
        for fix in SCHEMATRON_FIXES:
            if fix.name in self.fixes and fix.apply(stem, root):
                with self._lock:
                    self.applied_fixes.add(fix.name)
        return SchematronSource(stem, root, path)

    # -- code lists ---------------------------------------------------------------------------------------

    @property
    def codelists(self) -> dict[str, CodeList]:
        """Every genericode list under ``codelists/`` (and ``sch/codelist-include``), by short name."""
        with self._lock:
            if self._codelists is None:
                self._codelists = self._load_codelists()
            return self._codelists

    def _load_codelists(self) -> dict[str, CodeList]:
        lists: dict[str, CodeList] = {}
        for folder in (self.directory / "codelists", self.directory / "sch" / "codelist-include"):
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*.gc")):
                data = path.read_bytes()
                for fix in CODELIST_FIXES:
                    fixed = fix.apply(path.name, data) if fix.name in self.fixes else data
                    if fixed != data:
                        self.applied_fixes.add(fix.name)
                        data = fixed
                code_list = read_genericode(path, data)
                lists.setdefault(code_list.name, code_list)
        return lists


def read_genericode(path: Path, data: bytes | None = None) -> CodeList:
    """Read a genericode 1.0 code list: the values of its (first) key column."""
    root = _read_xml(path, data)
    ident = root.find("Identification")
    name = (ident.findtext("ShortName") if ident is not None else None) or path.stem
    uri = (ident.findtext("CanonicalUri") if ident is not None else None) or ""
    version = (ident.findtext("Version") if ident is not None else None) or ""
    key_ref = root.find("ColumnSet/Key/ColumnRef")
    column = key_ref.get("Ref") if key_ref is not None else None
    codes: set[str] = set()
    for row in root.iterfind("SimpleCodeList/Row"):
        for value in row.iterfind("Value"):
            if column is None or value.get("ColumnRef") == column:
                text = value.findtext("SimpleValue")
                if text is not None:
                    codes.add(text.strip())
                if column is None:
                    break
    return CodeList(name.strip(), uri.strip(), version.strip(), frozenset(codes))
