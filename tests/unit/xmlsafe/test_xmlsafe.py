from __future__ import annotations

import pytest

from oots.errors import XmlError
from oots.xmlsafe import parse, parse_head


def test_plain_document() -> None:
    assert parse(b"<a><b>x</b></a>").tag == "a"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"not xml", "not well-formed"),
        (b"<a><b></a>", "not well-formed"),
        (b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', "DTD"),
        (b'<!DOCTYPE a SYSTEM "http://127.0.0.1:9/x.dtd"><a/>', "DTD"),
        (b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>', "DTD"),
        (b"<a>" * 10_000 + b"</a>" * 10_000, "not well-formed"),
    ],
)
def test_hostile_input_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(XmlError, match=reason):
        parse(data)


@pytest.mark.parametrize(
    "prolog",
    [
        b'<?xml version="1.0"?>\n<!-- a comment --><?pi data?> \t',
        b"\xef\xbb\xbf<!-- ?> --><?pi <!-- ?>",
        b"",
    ],
)
def test_a_doctype_after_the_prolog_is_refused(prolog: bytes) -> None:
    with pytest.raises(XmlError, match="DTD"):
        parse(prolog + b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>')


@pytest.mark.timeout(30)  # a guard against hanging: the check takes microseconds
@pytest.mark.parametrize("unit", [b"<?a?>", b"<!---->", b" <?a?><!---->"])
def test_many_short_prolog_items_before_no_doctype_do_not_hang_the_check(unit: bytes) -> None:
    """A DOCTYPE anywhere in the first 64 KB and a run of processing instructions or comments before
    something else: a backtracking pattern took seconds for 24 of them and days for 40."""
    with pytest.raises(XmlError, match="not well-formed"):
        parse(unit * 200 + b"x<!DOCTYPE")


def test_billion_laughs_is_refused_quickly() -> None:
    lol = (
        b'<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(b'<!ENTITY %c "%s">' % (98 + i, (b"&%c;" % (97 + i)) * 10) for i in range(9))
        + b"]><l>&j;</l>"
    )
    with pytest.raises(XmlError):
        parse(lol)


def test_size_limit() -> None:
    with pytest.raises(XmlError, match="over the limit"):
        parse(b"<a>" + b"x" * 2000 + b"</a>", max_bytes=1000)


def test_the_head_of_a_refused_document_keeps_only_what_ended_in_it() -> None:
    data = b'<a id="x"><b>1</b><c>' + b"y" * 100_000 + b"</c></a>"
    root = parse_head(data)
    assert root is not None
    assert (root.tag, root.get("id")) == ("a", "x")
    assert [child.tag for child in root] == ["b"]  # <c> is cut off by the head: left out


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not xml",
        b'<a id="x',
        b'<!DOCTYPE a [<!ENTITY x "y">]><a id="&x;"/>',
        b"<" + b"a" * 70_000 + b"/>",
    ],
)
def test_the_head_of_what_has_no_root_start_tag_is_none(data: bytes) -> None:
    assert parse_head(data) is None
