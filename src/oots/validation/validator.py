"""The validator: XML Schema, then the official Schematron rules, then code lists, per document kind.

A :class:`Validator` caches what is expensive: the loaded rule sets, their XML Schemas and one compiled
Saxon executable per (rule set, document kind) that holds the patterns of every Schematron file of that
kind. A document is parsed once by the hardened parser (for detection and XSD) and once by Saxon.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from lxml import etree

from oots.errors import XmlError
from oots.validation import codelists as codelist_layer
from oots.validation import envelope, payloadinfo, v2
from oots.validation.detect import EBMS_HEADER, KINDS, Detected, detect
from oots.validation.findings import MAX_FINDINGS_PER_RULE, Finding, Layer, Part, Report, Severity, cap, closing
from oots.validation.ruleset import BUILTIN_V1, RuleSet
from oots.validation.schematron import (
    FS,
    LIMITS_PARAM,
    REPLACEMENT,
    RS,
    CompiledSchematron,
    RuleSetError,
    compile_schematron,
)
from oots.xmlsafe import DEFAULT_MAX_BYTES, parse_tree

__all__ = ["SOAP_ENVELOPE", "Validator", "validate"]

#: The kind of a SOAP envelope without an ebMS header.
SOAP_ENVELOPE = "soap-envelope"

_ENCODING = re.compile(rb"""^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_SPACES = re.compile(r"\s+")
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


class _Saxon:
    """One process-wide Saxon processor (SaxonC allows one Java VM per process)."""

    _lock = threading.Lock()
    _processor: Any = None

    @classmethod
    def processor(cls) -> Any:
        with cls._lock:
            if cls._processor is None:
                from saxonche import PySaxonProcessor

                cls._processor = PySaxonProcessor(license=False)
            return cls._processor


class _Executable:
    """A compiled Schematron stylesheet for one document kind."""

    def __init__(self, compiled: CompiledSchematron, layer: Layer = Layer.SCHEMATRON) -> None:
        self.compiled = compiled
        self.layer = layer
        self._lock = threading.Lock()  # one transformation at a time on the shared executable
        processor = _Saxon.processor()
        xslt = processor.new_xslt30_processor()
        try:
            self.executable = xslt.compile_stylesheet(stylesheet_text=compiled.xslt)
        except Exception as exc:  # saxonche raises PySaxonApiError with the static error text
            raise RuleSetError(f"the Schematron rules {', '.join(compiled.sources)} do not compile: {exc}") from None
        if self.executable is None:
            raise RuleSetError(f"the Schematron rules {', '.join(compiled.sources)} do not compile")

    def run(self, document: str | Any) -> list[Finding]:
        """Run the rules on ``document``: its text or a parsed Saxon node.

        Text is parsed by Saxon's document builder and the rules applied to the node: a little less CPU
        than handing the text to the stylesheet's entry template
        (:data:`~oots.validation.schematron.ENTRY_TEMPLATE`, ``parse-xml`` inside Saxon) — about 15 % on
        a provider's evidence request — with the same findings (``tests/unit/validation/test_compiler.py``
        compares both on every sample and corrupted case).
        """
        try:
            if isinstance(document, str):
                document = _Saxon.processor().parse_xml(xml_text=document)
            with self._lock:
                out = self.executable.transform_to_string(xdm_node=document) or ""
            limits = self._limits(out)
            if limits:
                # an assertion failed at fewer than MAX_FINDINGS_PER_RULE of the first context nodes and
                # again further on: once more, with full records up to the positions still to be listed
                processor = _Saxon.processor()
                with self._lock:
                    self.executable.set_parameter(LIMITS_PARAM, processor.make_string_value(limits))
                    try:
                        out = self.executable.transform_to_string(xdm_node=document) or ""
                    finally:
                        self.executable.clear_parameters()
        except Exception as exc:
            return [
                Finding(
                    "OOTS-SCH-ERROR",
                    Severity.FATAL,
                    Layer.SCHEMATRON,
                    f"a rule of {', '.join(self.compiled.sources)} could not be evaluated: {exc}",
                    "/",
                )
            ]
        return self.findings(out)

    def _limits(self, out: str) -> str:
        """``index:position`` for each assertion whose short records hold findings a report lists."""
        if f"{RS}~" not in out and not out.startswith("~"):
            return ""
        full: dict[int, int] = {}
        deferred: dict[int, list[int]] = {}
        for record in out.split(RS):
            fields = record.split(FS)
            try:
                if record.startswith("~") and len(fields) == 2:
                    deferred.setdefault(int(fields[0][1:]), []).append(int(fields[1]))
                elif len(fields) == 3:
                    full[int(fields[0])] = full.get(int(fields[0]), 0) + 1
            except ValueError:
                continue  # reported by findings()
        wanted = []
        for index, positions in sorted(deferred.items()):
            missing = MAX_FINDINGS_PER_RULE - full.get(index, 0)
            if missing > 0:
                wanted.append(f"{index}:{positions[min(missing, len(positions)) - 1]}")
        return " ".join(wanted)

    def findings(self, out: str) -> list[Finding]:
        """The findings in the compiled stylesheet's text output: records of index, location, message,
        and ``+index``, count for the records an assertion left out past its cap. A record that cannot be
        read gives one ``FATAL`` ``OOTS-SCH-ERROR`` finding (the others are still reported)."""
        findings = []
        unreadable = 0
        left_out: dict[int, int] = {}
        for record in out.split(RS):
            if not record.strip():
                continue
            try:
                if record.startswith("~"):
                    index = int(record.split(FS)[0][1:])
                    self.compiled.assertions[index]  # an unknown index makes the record unreadable
                    left_out[index] = left_out.get(index, 0) + 1
                else:
                    findings.append(self._finding(record))
            except (ValueError, IndexError):
                unreadable += 1
        for index, more in left_out.items():
            assertion = self.compiled.assertions[index]
            findings.append(closing(assertion.rule_id, Severity(assertion.severity), self.layer, more))
        if unreadable:
            findings.append(
                Finding(
                    "OOTS-SCH-ERROR",
                    Severity.FATAL,
                    Layer.SCHEMATRON,
                    f"{unreadable} result record(s) of {', '.join(self.compiled.sources)} could not be read",
                    "/",
                )
            )
        return findings

    def _finding(self, record: str) -> Finding:
        fields = record.split(FS)
        if len(fields) != 3 or not fields[0].isdigit():
            raise ValueError("not a record")
        assertion = self.compiled.assertions[int(fields[0])]
        return Finding(
            assertion.rule_id,
            Severity(assertion.severity),
            self.layer,
            _SPACES.sub(" ", _clean(fields[2])).strip(),
            _clean(fields[1].strip()),
        )


def _clean(text: str) -> str:
    """``text`` with the characters XML 1.0 forbids (an XML 1.1 document can carry them) as U+FFFD."""
    return _FORBIDDEN.sub(REPLACEMENT, text)


class Validator:
    """Validates OOTS documents; keeps the compiled rules between calls (thread-safe).

    ``rules`` is a rule set directory (see :mod:`oots.validation.ruleset`) used for every document;
    without it, v1.x documents get the packaged official v1.0 rules and v2.x documents the provisional
    structural checks of :mod:`oots.validation.v2`. ``fixes`` names the corrections of
    :mod:`oots.validation.fixes` to apply (default: all; an empty list shows the official files' defects).
    """

    def __init__(
        self, rules: Path | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES, fixes: Collection[str] | None = None
    ) -> None:
        self.fixes = fixes
        self.rules = RuleSet(rules, fixes=fixes) if rules is not None else None
        self.max_bytes = max_bytes
        self._builtin: RuleSet | None = None
        self._executables: dict[tuple[Path, str], _Executable] = {}
        self._lock = threading.Lock()
        self._xsd_lock = threading.Lock()

    def ruleset_for(self, detected: Detected) -> RuleSet | None:
        """The rule set that applies to a document (``None``: provisional v2 checks instead)."""
        if self.rules is not None:
            return self.rules
        if detected.version is not None and not detected.version.startswith("1."):
            return None
        with self._lock:
            if self._builtin is None:
                self._builtin = RuleSet(BUILTIN_V1, fixes=self.fixes)
            return self._builtin

    def executable(self, ruleset: RuleSet, kind: str) -> _Executable | None:
        """The compiled Schematron of ``kind`` in ``ruleset`` (compiled on first use, then reused)."""
        key = (ruleset.directory, kind)
        with self._lock:
            cached = self._executables.get(key)
        if cached is not None:
            return cached
        sources = [s for s in (ruleset.schematron(stem) for stem in KINDS[kind]) if s is not None]
        if not sources:
            return None
        layer = Layer.EBMS_HEADER if kind == EBMS_HEADER else Layer.SCHEMATRON
        compiled = _Executable(compile_schematron(sources), layer)
        with self._lock:
            return self._executables.setdefault(key, compiled)

    def validate(self, data: bytes) -> Report:
        """Validate one document, or one message around documents (a SOAP envelope, a MIME multipart AS4
        message: its ebMS header and its payloads, see :mod:`oots.validation.envelope`). Raises
        :class:`oots.errors.XmlError` if it is not acceptable XML."""
        if envelope.is_mime(data):
            return self._validate_mime(data)
        tree = parse_tree(data, max_bytes=self.max_bytes)
        root = tree.getroot()
        if root.tag in envelope.ENVELOPES:
            return self._validate_envelope(root, None, "")
        return self._validate(data, tree, root)

    def validate_document(self, data: bytes) -> tuple[Report, etree._Element]:
        """Validate one document (never a message: an envelope is an unknown document here), and return
        the document's root element as the hardened parser read it, for a caller that maps the document
        onto the model next (one parse instead of two; the rules only read the tree)."""
        tree = parse_tree(data, max_bytes=self.max_bytes)
        root = tree.getroot()
        return self._validate(data, tree, root), root

    def _validate_mime(self, data: bytes) -> Report:
        """A MIME multipart AS4 message: its SOAP envelope part (the root part) and the other parts."""
        if len(data) > self.max_bytes:
            raise XmlError(f"the message is {len(data):,} bytes, over the limit of {self.max_bytes:,}")
        parts = envelope.split_mime(data)
        main = envelope.root_part(parts)
        where = f"MIME part {main.number}, {main.content_type or 'no content type'}"
        if main.content is None:
            raise XmlError(f"{where}, the SOAP envelope, cannot be read: {main.note}")
        tree = parse_tree(main.content, max_bytes=self.max_bytes)
        root = tree.getroot()
        others = [part for part in parts if part is not main]
        if root.tag in envelope.ENVELOPES:
            return self._validate_envelope(root, others, where)
        unread = tuple(
            Part(f"MIME part {p.number}", p.content_type, None, "not read: the message has no SOAP envelope")
            for p in others
        )
        return replace(self._validate(main.content, tree, root), found_at=where, parts=unread)

    def _validate_envelope(
        self, root: etree._Element, attachments: list[envelope.MimePart] | None, where: str
    ) -> Report:
        """A SOAP envelope: its ebMS header as the ``ebms-header`` kind, and each reachable EDM payload
        (the Body's content, Domibus ``payload`` values, MIME parts) as a document of its own."""
        unwrapped = envelope.unwrap(root, attachments, limit=self.max_bytes)
        findings: list[Finding] = []
        checked = [self._payload(payload, findings) for payload in unwrapped.payloads]
        parts = [part for part, _ in checked]
        inside = f"inside {unwrapped.container}" + (f" ({where})" if where else "")
        header = (
            self._validate_header(unwrapped.header, detect(unwrapped.header)) if unwrapped.header is not None else None
        )
        counts: dict[str, int] = {}  # the header's checks and those of every checked payload
        for report in [header, *(part.report for part in parts)]:
            for layer, n in report.checks_by_layer.items() if report is not None else ():
                counts[layer] = counts.get(layer, 0) + n
        if header is None:
            missing = Finding(
                "OOTS-MSG-001",
                Severity.FATAL,
                Layer.DOCUMENT,
                f"{unwrapped.container} without an ebMS header (eb:Messaging in its Header): not an AS4 message "
                f"of OOTS, no header checked (its Body holds {unwrapped.body or 'nothing'})",
                "/*[1]",
            )
            return Report(
                SOAP_ENVELOPE,
                None,
                (missing, *findings),
                found_at=f"/ ({unwrapped.container}" + (f", {where})" if where else ")"),
                parts=tuple(parts),
                checks_by_layer=counts,
            )
        # capped as they come: a header of a million PartInfo elements costs no more than 100 findings of a rule
        findings = cap(itertools.chain(findings, payloadinfo.check(unwrapped, [oots for _, oots in checked])))
        if unwrapped.header_misplaced:
            findings.insert(
                0,
                Finding(
                    "OOTS-MSG-003",
                    Severity.ERROR,
                    Layer.DOCUMENT,
                    "eb:Messaging is not a block of the SOAP Header (ebMS 3 carries it there)",
                    unwrapped.header_path,
                ),
            )
        return replace(
            header,
            findings=(*header.findings, *findings),
            found_at=f"{unwrapped.header_path}, {inside}",
            parts=tuple(parts),
            checks=0,
            checks_by_layer=counts,
        )

    def _payload(self, payload: envelope.Payload, findings: list[Finding]) -> tuple[Part, bool | None]:
        """Validate one payload of a message if it is an OOTS document; say why not otherwise. A payload
        the hardened parser refuses is a ``FATAL`` ``OOTS-MSG-002`` finding of the message. With the part,
        whether it is an OOTS document (``None``: not known, it could not be read)."""
        if payload.data is None:
            return Part(payload.where, payload.content_type, None, payload.note), False if payload.seen else None
        try:
            tree = parse_tree(payload.data, max_bytes=self.max_bytes)
        except XmlError as exc:
            findings.append(
                Finding(
                    "OOTS-MSG-002",
                    Severity.FATAL,
                    Layer.DOCUMENT,
                    f"the payload {payload.where} is not acceptable XML: {exc.message}",
                    "/",
                )
            )
            return Part(payload.where, payload.content_type, None, f"refused: {exc.message}"), None
        root = tree.getroot()
        if root.tag in envelope.ENVELOPES or detect(root).kind in {"unknown", EBMS_HEADER}:
            note = f"XML but not an OOTS document (root {_clark_to_text(str(root.tag))}, e.g. an evidence): not checked"
            return Part(payload.where, payload.content_type, None, note), False
        return Part(payload.where, payload.content_type, self._validate(payload.data, tree, root)), True

    def _validate(self, data: bytes, tree: etree._ElementTree, root: etree._Element) -> Report:
        detected = detect(root)
        if detected.kind == "unknown":
            return Report(
                "unknown",
                detected.version,
                (
                    Finding(
                        "OOTS-DOC-001",
                        Severity.FATAL,
                        Layer.DOCUMENT,
                        f"the root element {_clark_to_text(detected.root)} is not an OOTS document "
                        "(query:QueryRequest, query:QueryResponse, lcm:SubmitObjectsRequest or rs:RegistryResponse)",
                        "/*[1]",
                    ),
                ),
            )
        if detected.kind == EBMS_HEADER:
            return self._validate_header(root, detected)
        ruleset = self.ruleset_for(detected)
        if ruleset is None:
            provisional = v2.check(root, detected)
            return Report(
                detected.kind,
                detected.version,
                tuple(cap(provisional)),
                (v2.RULE_SET,),
                provisional=True,
                checks_by_layer={Layer.STRUCTURE.value: v2.checks(detected.kind)},
            )
        findings: list[Finding] = []
        counts: dict[str, int] = {}
        schema = ruleset.schema
        if schema is not None:
            counts[Layer.XSD.value] = 1  # one validation against the rule set's XML Schema
            with self._xsd_lock:  # an XMLSchema keeps its error log on itself
                if not schema.validate(tree):
                    findings.extend(_xsd_findings(schema.error_log))
        executable = self.executable(ruleset, detected.kind)
        if executable is not None:
            counts[Layer.SCHEMATRON.value] = len(executable.compiled.assertions)
            findings.extend(executable.run(_as_text(data, tree)))
        codelist_findings, bindings = codelist_layer.check_counted(root, ruleset, detected.kind)
        counts[Layer.CODELIST.value] = bindings
        findings.extend(codelist_findings)
        sources = executable.compiled.sources if executable is not None else ()
        if not any(counts.values()):
            # a rule set with neither XSDs nor rules of this kind: nothing ran, which proves nothing
            note = Finding(
                "OOTS-RULES-000",
                Severity.INFO,
                Layer.DOCUMENT,
                f"the rule set {ruleset.name} has no XML Schema and no rules for {detected.kind} "
                f"({', '.join(KINDS[detected.kind])}.sch): nothing checked",
                "/",
            )
            return Report(detected.kind, detected.version, (note,), (ruleset.name,), checked=False)
        return Report(
            detected.kind, detected.version, tuple(cap(findings)), (ruleset.name, *sources), checks_by_layer=counts
        )

    def _validate_header(self, root: etree._Element, detected: Detected) -> Report:
        """An ebMS header (``eb:Messaging``): the rule set's ``EDM-ebMS.sch`` if it has one (no XSD, no
        code lists: the rule set's schemas are RegRep's)."""
        ruleset = self.rules or self.ruleset_for(Detected(detected.kind, "1.0", detected.root, None))
        assert ruleset is not None
        executable = self.executable(ruleset, detected.kind)
        if executable is None:
            note = Finding(
                "OOTS-EBMS-000",
                Severity.INFO,
                Layer.EBMS_HEADER,
                f"no ebMS header rules ({', '.join(KINDS[EBMS_HEADER])}.sch) in the rule set {ruleset.name}: "
                "nothing checked",
                "/",
            )
            return Report(detected.kind, detected.version, (note,), (ruleset.name,), checked=False)
        text = etree.tostring(root, encoding="unicode")
        findings = executable.run(text)
        return Report(
            detected.kind,
            detected.version,
            tuple(cap(findings)),
            (ruleset.name, *executable.compiled.sources),
            checks_by_layer={Layer.EBMS_HEADER.value: len(executable.compiled.assertions)},
        )

    def unused_schematron(self) -> list[str]:
        """The ``.sch`` files of the ``rules`` directory that no document kind uses (never run)."""
        if self.rules is None:
            return []
        used = {stem for stems in KINDS.values() for stem in stems}
        return [path.name for stem, path in self.rules.schematron_files.items() if stem not in used]


def _as_text(data: bytes, tree: etree._ElementTree) -> str:
    """The document as text for Saxon: the bytes themselves when UTF-8, else lxml's decoding of them."""
    match = _ENCODING.match(data[:200])
    if match is None or match.group(1).lower() in {b"utf-8", b"utf8"}:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            pass
    return etree.tostring(tree, encoding="unicode")


def _clark_to_text(tag: str) -> str:
    if tag.startswith("{"):
        uri, local = tag[1:].split("}", 1)
        return f"{local} (namespace {uri})"
    return tag


def _xsd_findings(log: Any) -> list[Finding]:
    findings = []
    for error in log:
        findings.append(
            Finding(
                f"XSD:{error.type_name}",
                Severity.FATAL,
                Layer.XSD,
                error.message,
                error.path or f"line {error.line}",
            )
        )
    return findings


class _Defaults:
    """The validators :func:`validate` uses, one per rule set directory (``None``: the packaged rules)."""

    lock = threading.Lock()
    validators: ClassVar[dict[Path | None, Validator]] = {}

    @classmethod
    def get(cls, rules: Path | None) -> Validator:
        key = Path(rules).resolve() if rules is not None else None
        with cls.lock:
            validator = cls.validators.get(key)
            if validator is None:
                validator = cls.validators[key] = Validator(key)
            return validator


def validate(data: bytes, *, rules: Path | None = None) -> Report:
    """Validate one document with the packaged rules (or the rule set in ``rules``)."""
    return _Defaults.get(rules).validate(data)
