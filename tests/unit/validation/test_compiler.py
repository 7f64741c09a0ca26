"""The Schematron compiler: ISO semantics on synthetic schemas, and the fast strategy agrees with the
ISO-skeleton-style walk on every official sample and every corruption of ``test_rules``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from oots.validation import BUILTIN_V1, KINDS, RuleSet, RuleSetError, Validator, detect
from oots.validation.schematron import SchematronSource, compile_schematron, context_to_select, severity_of
from oots.validation.validator import _Executable, _Saxon

from .test_rules import CASES, SAMPLE_FILES, corrupt
from .test_samples import _complete_samples

SCH = "http://purl.oclc.org/dsdl/schematron"


def _run(
    schema: str, document: str, *, strategy: str = "select", path: Path | None = None
) -> list[tuple[str, str, str, str]]:
    source = SchematronSource("T", etree.fromstring(schema), path)
    executable = _Executable(compile_schematron([source], strategy=strategy))
    node = _Saxon.processor().parse_xml(xml_text=document)
    return [(f.rule, f.severity.value, f.location, f.message) for f in executable.run(node)]


def _schema(body: str, binding: str = 'queryBinding="xslt2"') -> str:
    return f'<sch:schema xmlns:sch="{SCH}" {binding}><sch:ns prefix="e" uri="urn:e"/>{body}</sch:schema>'


DOC = '<e:a xmlns:e="urn:e" id="1"><e:b n="x">1</e:b><e:b n="y">2</e:b><c/></e:a>'


def test_context_to_select() -> None:
    assert context_to_select("a/b") == "//a/b"
    assert context_to_select("/node()") == "/node()"
    assert context_to_select("a[@x='|'] | @id") == "(//a[@x='|']) | (//@id)"


def test_severity_from_flag_and_role() -> None:
    def el(**attrs: str) -> etree._Element:
        node = etree.Element(f"{{{SCH}}}assert")
        for key, value in attrs.items():
            node.set(key, value)
        return node

    assert severity_of(el(flag="FATAL")) == "FATAL"
    assert severity_of(el(flag="ERROR")) == "ERROR"
    assert severity_of(el(role="warning")) == "WARNING"
    assert severity_of(el(role="info")) == "INFO"
    assert severity_of(el()) == "ERROR"


@pytest.mark.parametrize("strategy", ["select", "walk"])
def test_first_matching_rule_of_a_pattern_wins(strategy: str) -> None:
    body = """
    <sch:pattern>
      <sch:rule context="e:b[@n='x']">
        <sch:report test="true()" id="FIRST">first <sch:value-of select="@n"/></sch:report>
      </sch:rule>
      <sch:rule context="e:b">
        <sch:report test="true()" id="SECOND" role="warning">second <sch:name/></sch:report>
      </sch:rule>
    </sch:pattern>
    <sch:pattern>
      <sch:rule context="e:b"><sch:assert test="number(.) lt 2" id="OTHER" flag="FATAL">too big</sch:assert></sch:rule>
    </sch:pattern>
    <sch:pattern>
      <sch:rule context="@id">
        <sch:let name="v" value="xs:integer(.)"/>
        <sch:assert test="$v = 2" id="ATTR">id <sch:value-of select="$v"/></sch:assert>
      </sch:rule>
    </sch:pattern>"""
    schema = _schema('<sch:ns prefix="xs" uri="http://www.w3.org/2001/XMLSchema"/>' + body)
    found = sorted(_run(schema, DOC, strategy=strategy))
    assert found == [
        ("ATTR", "ERROR", "/e:a[1]/@id", "id 1"),
        ("FIRST", "ERROR", "/e:a[1]/e:b[1]", "first x"),
        ("OTHER", "FATAL", "/e:a[1]/e:b[2]", "too big"),
        ("SECOND", "WARNING", "/e:a[1]/e:b[2]", "second e:b"),
    ]


def test_abstract_rules_and_patterns_and_include(tmp_path: Path) -> None:
    (tmp_path / "inc.sch").write_text(
        f'<sch:pattern xmlns:sch="{SCH}"><sch:rule context="c">'
        '<sch:report test="true()" id="INC">c</sch:report></sch:rule></sch:pattern>'
    )
    body = """<sch:include href="inc.sch"/>
    <sch:pattern>
      <sch:rule abstract="true" id="base"><sch:assert test="@n" id="HAS-N">no n</sch:assert></sch:rule>
      <sch:rule context="e:b"><sch:extends rule="base"/></sch:rule>
      <sch:rule context="c"><sch:extends rule="base"/></sch:rule>
    </sch:pattern>
    <sch:pattern abstract="true" id="count">
      <sch:rule context="$parent"><sch:assert test="count($child) = $n" id="COUNT">count</sch:assert></sch:rule>
    </sch:pattern>
    <sch:pattern is-a="count">
      <sch:param name="parent" value="e:a"/><sch:param name="child" value="e:b"/><sch:param name="n" value="3"/>
    </sch:pattern>"""
    found = sorted(r[0] for r in _run(_schema(body), DOC, path=tmp_path / "main.sch"))
    assert found == ["COUNT", "HAS-N", "INC"]


def test_xsl_functions_in_the_schema() -> None:
    body = """<xsl:function xmlns:xsl="http://www.w3.org/1999/XSL/Transform" name="e:twice" as="xs:integer">
      <xsl:param name="n" as="xs:integer"/><xsl:sequence select="2 * $n"/>
    </xsl:function>
    <sch:pattern><sch:rule context="e:b"><sch:assert test="e:twice(xs:integer(.)) lt 4" id="F">f</sch:assert></sch:rule>
    </sch:pattern>"""
    schema = _schema('<sch:ns prefix="xs" uri="http://www.w3.org/2001/XMLSchema"/>' + body)
    assert _run(schema, DOC) == [("F", "ERROR", "/e:a[1]/e:b[2]", "f")]


def test_relative_documents_resolve_against_the_rule_file(tmp_path: Path) -> None:
    # the 2.0.1 layout keeps code lists beside the rules (sch/codelist-include/)
    (tmp_path / "codelist-include").mkdir()
    (tmp_path / "codelist-include" / "codes.xml").write_text("<codes><code>1</code></codes>")
    body = """<sch:pattern><sch:rule context="e:b">
      <sch:assert test=". = doc('codelist-include/codes.xml')//code" id="CODE">not a code</sch:assert>
    </sch:rule></sch:pattern>"""
    assert _run(_schema(body), DOC, path=tmp_path / "X.sch") == [("CODE", "ERROR", "/e:a[1]/e:b[2]", "not a code")]


def test_unsupported_query_binding_and_bad_files() -> None:
    with pytest.raises(RuleSetError, match="queryBinding"):
        compile_schematron([SchematronSource("T", etree.fromstring(_schema("", binding="")))])
    with pytest.raises(RuleSetError, match="not sch:schema"):
        compile_schematron([SchematronSource("T", etree.fromstring("<x/>"))])
    broken = (
        '<sch:pattern><sch:rule context="e:b"><sch:assert test="(((" id="X">x</sch:assert></sch:rule></sch:pattern>'
    )
    with pytest.raises(RuleSetError, match="do not compile"):
        _run(_schema(broken), DOC)


def _documents(samples: Path) -> Iterator[tuple[str, bytes]]:
    for path in _complete_samples():
        yield path.name, path.read_bytes()
    for rule, sample, path_, op, attr, value in CASES:
        yield f"corrupt-{rule}", corrupt((samples / SAMPLE_FILES[sample]).read_bytes(), path_, op, attr, value)


def test_select_strategy_agrees_with_the_iso_walk(samples: Path) -> None:
    rules = RuleSet(BUILTIN_V1)
    walkers: dict[str, _Executable] = {}
    validator = Validator()
    compared = 0
    for name, data in _documents(samples):
        kind = detect(etree.fromstring(data)).kind
        if kind not in walkers:
            sources = [s for s in (rules.schematron(stem) for stem in KINDS[kind]) if s is not None]
            walkers[kind] = _Executable(compile_schematron(sources, strategy="walk"))
        node = _Saxon.processor().parse_xml(xml_text=data.decode("utf-8-sig"))
        walked = sorted(walkers[kind].run(node), key=repr)
        selected = sorted((f for f in validator.validate(data).findings if f.layer == "schematron"), key=repr)
        assert selected == walked, name
        compared += 1
    assert compared == 60 + len(CASES)


def test_text_parsed_by_the_document_builder_gets_the_findings_of_the_entry_template(samples: Path) -> None:
    # Validator hands Saxon a node from its document builder; the stylesheet's own entry template
    # (the text as a parameter, parse-xml inside) must find exactly the same on every document
    from oots.validation.schematron import DOCUMENT_PARAM, ENTRY_TEMPLATE, RS

    rules = RuleSet(BUILTIN_V1)
    executables: dict[str, _Executable] = {}
    processor = _Saxon.processor()
    compared = 0
    for name, data in _documents(samples):
        kind = detect(etree.fromstring(data)).kind
        if kind not in executables:
            sources = [s for s in (rules.schematron(stem) for stem in KINDS[kind]) if s is not None]
            executables[kind] = _Executable(compile_schematron(sources))
        executable = executables[kind]
        text = data.decode("utf-8-sig")
        executable.executable.set_parameter(DOCUMENT_PARAM, processor.make_string_value(text))
        out = executable.executable.call_template_returning_string(ENTRY_TEMPLATE) or ""
        assert sorted(executable.run(text), key=repr) == sorted(executable.findings(out), key=repr), name
        compared += out.count(RS) > 0
    assert compared > 20  # most corrupted documents have findings


def test_lets_are_scoped_to_their_schema_pattern_and_rule() -> None:
    # the same names at every level: each test sees the binding of its own scope, never a neighbour's
    schema = _schema(
        '<sch:let name="x" value="0"/>'
        '<sch:pattern><sch:let name="p" value="10"/>'
        '<sch:rule context="e:b[@n=\'x\']"><sch:let name="x" value="1"/>'
        '<sch:assert id="R-1" test="false()">x=<sch:value-of select="$x"/> p=<sch:value-of select="$p"/></sch:assert>'
        "</sch:rule>"
        '<sch:rule context="e:b"><sch:assert id="R-2" test="false()">x=<sch:value-of select="$x"/></sch:assert>'
        "</sch:rule></sch:pattern>"
        '<sch:pattern><sch:let name="p" value="20"/><sch:rule context="e:a">'
        '<sch:assert id="R-3" test="false()">x=<sch:value-of select="$x"/> p=<sch:value-of select="$p"/></sch:assert>'
        "</sch:rule></sch:pattern>"
    )
    assert [(rule, message) for rule, _, _, message in _run(schema, DOC)] == [
        ("R-1", "x=1 p=10"),
        ("R-2", "x=0"),
        ("R-3", "x=0 p=20"),
    ]


def test_schema_lets_of_combined_files_do_not_collide() -> None:
    def source(name: str, value: str) -> SchematronSource:
        body = (
            f'<sch:let name="v" value="{value}"/><sch:pattern><sch:rule context="e:a">'
            f'<sch:assert id="{name}" test="false()">{name} sees <sch:value-of select="$v"/></sch:assert>'
            "</sch:rule></sch:pattern>"
        )
        return SchematronSource(name, etree.fromstring(_schema(body)))

    executable = _Executable(compile_schematron([source("A", "1"), source("B", "2")]))
    findings = executable.run(_Saxon.processor().parse_xml(xml_text=DOC))
    assert [(f.rule, f.message) for f in findings] == [("A", "A sees 1"), ("B", "B sees 2")]
