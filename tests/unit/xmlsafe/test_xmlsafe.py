from __future__ import annotations

import pytest

from oots.errors import XmlError
from oots.xmlsafe import parse


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
