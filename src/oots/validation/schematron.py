"""A small ISO Schematron to XSLT 3.0 compiler, run through Saxon (``saxonche``).

It supports what the official OOTS rule files use: ``sch:ns``, ``sch:let`` (schema, pattern and rule
level), ``sch:pattern``, ``sch:rule`` with ``@context``, ``sch:assert`` / ``sch:report`` with ``@id``,
``@flag`` / ``@role`` (severity), ``sch:value-of`` and ``sch:name`` in messages, ``sch:include``,
abstract rules (``sch:extends``), abstract patterns (``is-a`` with ``sch:param``) and, as the xslt2
binding allows, top-level ``xsl:function`` / ``xsl:key`` elements.

Several schema files can be combined into one stylesheet (one per document kind), so a document is
parsed once and walked by a single compiled executable.

Semantics kept from ISO Schematron: within one pattern a node is the context of at most the first rule
whose context matches it; every pattern sees every node (elements and attributes). Rather than a
recursive walk per pattern (what the ISO skeleton does), each rule context pattern is turned into the
equivalent absolute path (``a/b`` matches exactly the nodes ``//a/b`` selects), so Saxon evaluates each
rule only on the nodes it applies to. Earlier rules of the same pattern are subtracted with ``except``
(the union of their nodes is kept in a variable: each context is evaluated once).

The compiled stylesheet writes one text record per failed assertion / successful report: the index of
the assertion, the location (an XPath with the rule files' prefixes) and the message. Its entry point is
the named template ``v:validate`` with the document text in the parameter ``v:document`` (see
:data:`ENTRY_TEMPLATE`); applying it to a parsed document node works too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from oots.errors import OotsError

__all__ = [
    "SCH_NS",
    "Assertion",
    "CompiledSchematron",
    "RuleSetError",
    "SchematronSource",
    "compile_schematron",
    "context_to_select",
    "severity_of",
]

SCH_NS = "http://purl.oclc.org/dsdl/schematron"
XSL_NS = "http://www.w3.org/1999/XSL/Transform"
XS_NS = "http://www.w3.org/2001/XMLSchema"
#: Namespace of the helper functions the compiler adds.
FN_NS = "urn:oots:validation:schematron"
MAP_NS = "http://www.w3.org/2005/xpath-functions/map"
#: The compiled stylesheet's named entry template and its document parameter (Clark names).
ENTRY_TEMPLATE = f"{{{FN_NS}}}validate"
DOCUMENT_PARAM = f"{{{FN_NS}}}document"
#: Record and field separators in the compiled stylesheet's text output (private-use characters; the
#: stylesheet replaces them with U+FFFD wherever text from the document goes into a record, see ``v:safe``).
RS = "\ue01e"
FS = "\ue01f"
#: What replaces a separator character found in the document's text.
REPLACEMENT = "\ufffd"
#: Full records (location, message) for failures at the first this many context nodes of a rule; past
#: them a short record (``~index``, position) unless the ``v:limit-text`` parameter asks for more. Ten
#: times the report's cap of 100 per rule, so the validator seldom needs a second run to list 100.
MAX_RECORDS = 1000
#: The stylesheet parameter giving, per assertion index, the context position up to which full records
#: are written (``"3:250 7:1200"``).
LIMITS_PARAM = f"{{{FN_NS}}}limit-text"

#: Query bindings this compiler implements (XPath 2 or later, evaluated by Saxon as XPath 3.1).
SUPPORTED_BINDINGS = frozenset({"xslt2", "xslt3", "xpath2", "xpath3", "xpath31"})

_S = f"{{{SCH_NS}}}"


class RuleSetError(OotsError):
    """A rule set directory or a rule file cannot be used (missing, malformed, unsupported)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class SchematronSource:
    """One Schematron schema: ``name`` (the file stem, e.g. ``EDM-REQ-S``) and its parsed root."""

    name: str
    root: etree._Element
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class Assertion:
    """What the compiler knows about one ``sch:assert``/``sch:report`` (the output refers to it by index)."""

    rule_id: str
    severity: str
    source: str
    kind: str  # "assert" or "report"
    test: str
    context: str


@dataclass(frozen=True, slots=True)
class CompiledSchematron:
    """The XSLT 3.0 text and the table of assertions its records refer to."""

    xslt: str
    assertions: tuple[Assertion, ...]
    sources: tuple[str, ...]


def severity_of(node: etree._Element) -> str:
    """Severity an assertion declares: ``@flag`` (FATAL, ERROR, WARNING, INFO) first, then ``@role``.

    Rules that declare neither are errors (a failed ``assert`` breaks the message).
    """
    for attr in ("flag", "role"):
        value = (node.get(attr) or "").strip().lower()
        if value in {"fatal"}:
            return "FATAL"
        if value in {"error", "err"}:
            return "ERROR"
        if value in {"warning", "warn"}:
            return "WARNING"
        if value in {"info", "information", "informational"}:
            return "INFO"
    return "ERROR"


def _split_top(expr: str, sep: str) -> list[str]:
    """Split ``expr`` on ``sep`` where it is outside brackets, parentheses and string literals."""
    parts: list[str] = []
    depth = 0
    quote = ""
    start = 0
    i = 0
    while i < len(expr):
        ch = expr[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and expr.startswith(sep, i) and not (sep == "|" and expr.startswith("||", i)):
            parts.append(expr[start:i])
            i += len(sep)
            start = i
            continue
        i += 1
    parts.append(expr[start:])
    return parts


def context_to_select(context: str) -> str:
    """The XPath that selects, from the document node, exactly the nodes a rule context pattern matches.

    ``a/b`` → ``//a/b``; ``/a`` stays; unions are converted branch by branch.
    """
    branches = []
    for raw in _split_top(context, "|"):
        branch = raw.strip()
        if not branch:
            raise RuleSetError(f"empty branch in rule context {context!r}")
        if branch.startswith("/"):
            branches.append(branch if branch != "/" else "/")
        else:
            branches.append("//" + branch)
    return " | ".join(f"({b})" for b in branches) if len(branches) > 1 else branches[0]


def _qname(tag: str) -> str:
    return tag.split("}", 1)[1] if "}" in tag else tag


def _resolve_includes(root: etree._Element, path: Path | None, depth: int = 0) -> None:
    """Replace each ``sch:include`` with the element it points to (relative to the including file)."""
    if depth > 10:
        raise RuleSetError("sch:include nested too deeply")
    for inc in list(root.iter(f"{_S}include")):
        href = inc.get("href") or ""
        if path is None or not href or "://" in href:
            raise RuleSetError(f"cannot resolve sch:include {href!r} (only local relative files are read)")
        target = (path.parent / href.split("#", 1)[0]).resolve()
        from oots.xmlsafe import parse  # local import keeps the module importable without cycles

        try:
            included = parse(target.read_bytes())
        except OSError as exc:
            raise RuleSetError(f"cannot read included rule file {target}: {exc.strerror}") from None
        _resolve_includes(included, target, depth + 1)
        parent = inc.getparent()
        assert parent is not None
        if _qname(str(included.tag)) == "schema":
            index = parent.index(inc)
            parent.remove(inc)
            for offset, child in enumerate(c for c in included if isinstance(c.tag, str)):
                parent.insert(index + offset, child)
        else:
            parent.replace(inc, included)


def _substitute(text: str, params: dict[str, str]) -> str:
    # longest names first so $ab is not mangled by $a
    for name in sorted(params, key=len, reverse=True):
        text = text.replace(f"${name}", params[name])
    return text


def _instantiate(pattern: etree._Element, abstract: dict[str, etree._Element]) -> etree._Element:
    """Expand ``<sch:pattern is-a="x">`` into a copy of abstract pattern ``x`` with its params substituted."""
    base_id = pattern.get("is-a") or ""
    if base_id not in abstract:
        raise RuleSetError(f"abstract pattern {base_id!r} not found")
    params = {p.get("name", ""): p.get("value", "") for p in pattern.iter(f"{_S}param")}
    copy = etree.fromstring(etree.tostring(abstract[base_id]))
    copy.attrib.pop("abstract", None)
    for el in copy.iter():
        for attr in ("context", "test", "select", "value", "path"):
            if attr in el.attrib:
                el.set(attr, _substitute(el.get(attr, ""), params))
    return copy


class _Builder:
    """Builds the XSLT element tree for a set of schematron sources."""

    def __init__(self, strategy: str = "select") -> None:
        if strategy not in {"select", "walk"}:
            raise ValueError(f"unknown strategy {strategy!r}")
        self.strategy = strategy
        self.modes = 0
        self.variables = 0
        self.templates: list[etree._Element] = []
        self.namespaces: dict[str, str] = {}
        self.assertions: list[Assertion] = []
        self.xsl = etree.Element(f"{{{XSL_NS}}}stylesheet", nsmap={"xsl": XSL_NS, "xs": XS_NS, "v": FN_NS})
        self.xsl.set("version", "3.0")
        self.xsl.set("exclude-result-prefixes", "#all")
        out = etree.SubElement(self.xsl, f"{{{XSL_NS}}}output")
        out.set("method", "text")
        out.set("encoding", "UTF-8")
        self.main = etree.Element(f"{{{XSL_NS}}}template")
        self.main.set("match", "/")
        self.globals: list[etree._Element] = []
        self.base: str | None = None

    def _x(self, parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
        el: etree._Element = etree.SubElement(parent, f"{{{XSL_NS}}}{tag}")
        for key, value in attrs.items():
            el.set(key, value)
        return el

    def add_namespace(self, prefix: str, uri: str, source: str) -> None:
        reserved = {"xsl": XSL_NS, "xs": XS_NS, "v": FN_NS, "map": MAP_NS}
        if prefix in reserved:
            if uri != reserved[prefix]:
                raise RuleSetError(f"{source}: the namespace prefix {prefix!r} is reserved by the compiler")
            return
        known = self.namespaces.get(prefix)
        if known is not None and known != uri:
            raise RuleSetError(f"{source}: prefix {prefix!r} bound to {uri!r} and {known!r} in combined rule files")
        self.namespaces[prefix] = uri

    def add_let(self, parent: etree._Element, let: etree._Element) -> etree._Element:
        name = let.get("name")
        if not name:
            raise RuleSetError("sch:let without a name")
        value = let.get("value")
        var = self._x(parent, "variable", name=name)
        if value is not None:
            var.set("select", value)
        else:  # element content as the value
            for child in let:
                var.append(etree.fromstring(etree.tostring(child)))
        return var

    def message(self, parent: etree._Element, node: etree._Element) -> None:
        """Copy an assertion's text, turning ``sch:value-of``/``sch:name`` into ``xsl:value-of``."""
        if node.text:
            self._x(parent, "text").text = node.text
        for child in node:
            if isinstance(child.tag, str):
                local = _qname(child.tag)
                if child.tag == f"{_S}value-of":
                    self._x(
                        parent, "value-of", select=f"v:safe(string-join(({child.get('select', '.')}) ! string(), ' '))"
                    )
                elif child.tag == f"{_S}name":
                    self._x(parent, "value-of", select=f"v:safe(name({child.get('path', '.')}))")
                elif local in {"emph", "dir", "span"}:
                    self.message(parent, child)
            if child.tail:
                self._x(parent, "text").text = child.tail

    def add_source(self, source: SchematronSource) -> None:
        root = source.root
        if root.tag != f"{_S}schema":
            raise RuleSetError(f"{source.name}: the root element is not sch:schema")
        binding = (root.get("queryBinding") or "xslt").strip().lower()
        if binding not in SUPPORTED_BINDINGS:
            raise RuleSetError(
                f"{source.name}: queryBinding {binding!r} is not supported (XPath 2 or later is required)"
            )
        _resolve_includes(root, source.path)
        if source.path is not None and self.base is None:
            # relative doc()/document() URIs in the rules resolve against the rule file's folder
            self.base = source.path.resolve().parent.as_uri() + "/"
        for ns in root.iter(f"{_S}ns"):
            self.add_namespace(ns.get("prefix", ""), ns.get("uri", ""), source.name)
        for foreign in root.iterchildren(f"{{{XSL_NS}}}*"):
            # xslt2 binding: top-level xsl:function / xsl:key / xsl:variable go into the stylesheet as they are
            self.globals.append(etree.fromstring(etree.tostring(foreign)))
        # schema-level lets: visible to this file's patterns only. Several files are combined into one
        # stylesheet, and two of them may declare the same name with different values, so with the select
        # strategy they are local variables of one xsl:for-each over the document node that holds the
        # file's patterns (evaluated once, the document node as context, as ISO says); the walk strategy's
        # templates cannot see locals, so there they stay global variables
        schema_lets = root.findall(f"{_S}let")
        scope = self.main
        if self.strategy == "walk":
            for let in schema_lets:
                self.globals.append(self.add_let(etree.Element("holder"), let))
        elif schema_lets:
            scope = self._x(self.main, "for-each", select="/")
            for let in schema_lets:
                self.add_let(scope, let)
        abstract_rules = {r.get("id", ""): r for r in root.iter(f"{_S}rule") if r.get("abstract") == "true"}
        abstract_patterns = {p.get("id", ""): p for p in root.iter(f"{_S}pattern") if p.get("abstract") == "true"}
        unnamed = 0
        for index, declared in enumerate(root.iter(f"{_S}pattern"), start=1):
            if declared.get("abstract") == "true":
                continue
            pattern = _instantiate(declared, abstract_patterns) if declared.get("is-a") else declared
            comment = etree.Comment(f" {source.name} pattern {index} {pattern.get('id', '')} ")
            scope.append(comment)
            # pattern-level lets: evaluated once, visible to its rules (a fresh xsl:variable per pattern)
            pattern_lets = pattern.findall(f"{_S}let")
            holder = scope
            mode = ""
            if self.strategy == "walk":
                if pattern_lets:
                    raise RuleSetError(f"{source.name}: pattern-level sch:let is not supported by the walk strategy")
                self.modes += 1
                mode = f"v:M{self.modes}"
                declared_mode = etree.Element(f"{{{XSL_NS}}}mode", name=mode)
                declared_mode.set("on-no-match", "shallow-skip")
                self.templates.append(declared_mode)
                self._x(scope, "apply-templates", select="/", mode=mode)
            elif pattern_lets:
                holder = self._x(scope, "for-each", select="/")
                for let in pattern_lets:
                    self.add_let(holder, let)
            previous: list[str] = []
            priority = 1000
            for rule in pattern.findall(f"{_S}rule"):
                if rule.get("abstract") == "true":
                    continue
                context = rule.get("context")
                if not context:
                    raise RuleSetError(f"{source.name}: a non-abstract rule has no context")
                if self.strategy == "walk":
                    # the ISO skeleton's way: one mode per pattern, the first matching rule wins, every
                    # node (attributes too) visited
                    priority -= 1
                    body = etree.Element(f"{{{XSL_NS}}}template", match=context, mode=mode, priority=str(priority))
                    self.templates.append(body)
                items: list[etree._Element] = []
                for child in rule:
                    if child.tag == f"{_S}extends":
                        base = abstract_rules.get(child.get("rule", ""))
                        if base is None:
                            raise RuleSetError(f"{source.name}: abstract rule {child.get('rule')!r} not found")
                        items.extend(c for c in base if isinstance(c.tag, str))
                    elif isinstance(child.tag, str):
                        items.append(child)
                if self.strategy == "walk":
                    for item in items:
                        if item.tag == f"{_S}let":
                            self.add_let(body, item)
                        elif item.tag in {f"{_S}assert", f"{_S}report"}:
                            unnamed = self.add_assertion(body, item, source.name, context, unnamed)
                    self._x(body, "apply-templates", select="@*|node()", mode=mode)
                    continue
                # each context evaluated once: the nodes of the pattern's earlier rules are kept in a
                # variable (re-evaluating every earlier context for each rule scanned a document with
                # 45,000 slots some 200 times)
                self.variables += 1
                nodes = f"v:c{self.variables}"
                self._x(holder, "variable", name=nodes, select=context_to_select(context))
                select = f"${nodes} except ${previous[-1]}" if previous else f"${nodes}"
                if previous:
                    seen = f"v:s{self.variables}"
                    self._x(holder, "variable", name=seen, select=f"${previous[-1]} | ${nodes}")
                    previous.append(seen)
                else:
                    previous.append(nodes)
                unnamed = self.add_capped_rule(holder, select, items, source.name, context, unnamed)

    def declare_assertion(self, item: etree._Element, source: str, context: str, unnamed: int) -> tuple[int, int, str]:
        """Record an assertion in the table: its index, the updated unnamed counter, its failure condition."""
        kind = _qname(str(item.tag))
        test = item.get("test")
        if not test:
            raise RuleSetError(f"{source}: sch:{kind} without a test")
        rule_id = item.get("id")
        if not rule_id:
            unnamed += 1
            rule_id = f"{source}#unnamed-{unnamed}"
        number = len(self.assertions)
        self.assertions.append(Assertion(rule_id, severity_of(item), source, kind, test, context))
        cond = f"not({test})" if kind == "assert" else f"boolean({test})"
        return number, unnamed, cond

    def record(self, parent: etree._Element, number: int, item: etree._Element) -> None:
        """The text record of a failed assertion: index, location, message."""
        self._x(parent, "value-of", select=f"'{number}{FS}', v:safe(v:path(.)), '{FS}'", separator="")
        self.message(parent, item)
        self._x(parent, "text").text = RS

    def add_assertion(self, body: etree._Element, item: etree._Element, source: str, context: str, unnamed: int) -> int:
        number, unnamed, cond = self.declare_assertion(item, source, context, unnamed)
        self.record(self._x(body, "if", test=cond), number, item)
        return unnamed

    def add_capped_rule(  # noqa: PLR0917
        self, holder: etree._Element, select: str, items: list[etree._Element], source: str, context: str, unnamed: int
    ) -> int:
        """One rule as a ``for-each`` over its context nodes. A failed assertion at one of the first
        :data:`MAX_RECORDS` context nodes (or up to the position ``v:limits`` gives for that assertion)
        writes a full record; past that only ``~index`` and the position, without the location (which
        costs as much as the node has preceding siblings: 45,000 failing siblings were quadratic) or the
        message. Nothing is added to the work of an assertion that holds."""
        body = self._x(holder, "for-each", select=select)
        for item in items:
            if item.tag == f"{_S}let":
                self.add_let(body, item)
            elif item.tag in {f"{_S}assert", f"{_S}report"}:
                number, unnamed, cond = self.declare_assertion(item, source, context, unnamed)
                choose = self._x(self._x(body, "if", test=cond), "choose")
                full = self._x(
                    choose,
                    "when",
                    test=f"position() le {MAX_RECORDS} or position() le head((map:get($v:limits, {number}), 0))",
                )
                self.record(full, number, item)
                deferred = self._x(choose, "otherwise")
                self._x(deferred, "value-of", select=f"'~{number}{FS}', position(), '{RS}'", separator="")
        return unnamed

    def finish(self) -> str:
        nsmap: dict[str | None, str] = {p: u for p, u in sorted(self.namespaces.items()) if p}
        nsmap.update({"xsl": XSL_NS, "xs": XS_NS, "v": FN_NS, "map": MAP_NS})
        root = etree.Element(f"{{{XSL_NS}}}stylesheet", nsmap=nsmap)
        for key, value in self.xsl.attrib.items():
            root.set(key, value)
        if self.base is not None:
            root.set("{http://www.w3.org/XML/1998/namespace}base", self.base)
        for child in list(self.xsl):
            root.append(child)
        self.xsl = root
        for var in self.globals:
            self.xsl.append(var)
        self._path_functions()
        for template in self.templates:
            self.xsl.append(template)
        # entry point for a document given as text: parsed inside Saxon (the validator hands over a node
        # from Saxon's document builder instead, a little cheaper); the caller has already refused DTDs
        # and entities
        self._x(self.xsl, "param", name="v:document", select="()", **{"as": "xs:string?"})
        # "index:position ..." — for these assertions, full records up to that context position
        self._x(self.xsl, "param", name="v:limit-text", select="''", **{"as": "xs:string"})
        limits = self._x(
            self.xsl,
            "variable",
            name="v:limits",
            select=(
                "map:merge(for $t in tokenize($v:limit-text) return "
                "map{xs:integer(substring-before($t, ':')): xs:integer(substring-after($t, ':'))})"
            ),
        )
        limits.set("as", "map(xs:integer, xs:integer)")
        entry = self._x(self.xsl, "template", name="v:validate")
        self._x(entry, "apply-templates", select="parse-xml($v:document)")
        self.xsl.append(self.main)
        return etree.tostring(self.xsl, encoding="unicode")

    def _path_functions(self) -> None:
        safe = self._x(self.xsl, "function", name="v:safe", **{"as": "xs:string"})
        self._x(safe, "param", name="s", **{"as": "xs:string"})
        self._x(safe, "sequence", select=f"translate($s, '{RS}{FS}', '{REPLACEMENT}{REPLACEMENT}')")
        entries = ", ".join(f"'{_lit(uri)}': '{_lit(p)}'" for p, uri in sorted(self.namespaces.items()) if p)
        entries = ", ".join(x for x in (entries, "'http://www.w3.org/XML/1998/namespace': 'xml'") if x)
        prefixes = self._x(self.xsl, "variable", name="v:prefixes", select=f"map{{{entries}}}")
        prefixes.set("as", "map(xs:string, xs:string)")
        qn = self._x(self.xsl, "function", name="v:qn", **{"as": "xs:string"})
        self._x(qn, "param", name="n", **{"as": "node()"})
        self._x(
            qn,
            "sequence",
            select=(
                "let $u := namespace-uri($n) return if ($u = '') then local-name($n) "
                "else if (map:contains($v:prefixes, $u)) then $v:prefixes($u) || ':' || local-name($n) "
                "else 'Q{' || $u || '}' || local-name($n)"
            ),
        )
        path = self._x(self.xsl, "function", name="v:path", **{"as": "xs:string"})
        self._x(path, "param", name="n", **{"as": "node()"})
        self._x(
            path,
            "sequence",
            select=(
                "if ($n instance of document-node()) then '/' else string-join("
                "for $a in $n/ancestor-or-self::node()[not(. instance of document-node())] return "
                "if ($a instance of attribute()) then '/@' || v:qn($a) "
                "else if ($a instance of element()) then '/' || v:qn($a) || '[' || "
                "(count($a/preceding-sibling::*[node-name(.) eq node-name($a)]) + 1) || ']' "
                "else if ($a instance of text()) then '/text()' else '/node()', '')"
            ),
        )


def _lit(value: str) -> str:
    return value.replace("'", "''")


def compile_schematron(sources: Sequence[SchematronSource], *, strategy: str = "select") -> CompiledSchematron:
    """Compile one or more Schematron schemas into a single XSLT 3.0 stylesheet.

    ``strategy="select"`` (the default) evaluates each rule on the nodes its context selects;
    ``strategy="walk"`` builds what the ISO skeleton builds (one recursive walk of the whole document per
    pattern, template priorities for "first rule wins"). Both give the same findings; the walk is kept as
    the reference the tests compare against and as the benchmark's naive baseline.
    """
    if not sources:
        raise RuleSetError("no Schematron files to compile")
    builder = _Builder(strategy)
    for source in sources:
        builder.add_source(source)
    xslt = builder.finish()
    return CompiledSchematron(xslt, tuple(builder.assertions), tuple(s.name for s in sources))
