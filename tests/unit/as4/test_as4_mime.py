from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oots.as4 import mime
from oots.errors import LocalProtocolError, RemoteProtocolError


def _parts(*bodies: bytes) -> list[mime.MimePart]:
    root = mime.MimePart(
        (("content-type", "application/soap+xml; charset=UTF-8"), ("content-id", "<root@x>")), b"<env/>"
    )
    rest = [
        mime.MimePart((("content-type", "application/octet-stream"), ("content-id", f"<p{i}@x>")), body)
        for i, body in enumerate(bodies)
    ]
    return [root, *rest]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=2000), max_size=4))
def test_round_trip_is_binary_safe(bodies: list[bytes]) -> None:
    content_type, body = mime.build_related(_parts(*bodies), boundary="b-" + os.urandom(12).hex())
    related = mime.split_related(content_type, body)
    assert related.root.body == b"<env/>"
    assert [p.body for p in related.attachments] == bodies
    assert [p.content_id for p in related.attachments] == [f"p{i}@x" for i in range(len(bodies))]


def test_awkward_bytes_survive() -> None:
    tricky = b"\r\n--\r\n\r\n--b\n--b-\r\n" + bytes(range(256)) + b"\r\n"
    content_type, body = mime.build_related(_parts(tricky, b"", b"\r\n"), boundary="b-123")
    assert [p.body for p in mime.split_related(content_type, body).attachments] == [tricky, b"", b"\r\n"]


def test_content_type_has_the_profile_parameters() -> None:
    content_type, _ = mime.build_related(_parts(b"x"), boundary="bnd")
    media, params = mime.header_params(content_type)
    assert media == "multipart/related"
    assert params == {
        "type": "application/soap+xml",
        "boundary": "bnd",
        "start": "<root@x>",
        "start-info": "application/soap+xml",
    }


def test_boundary_inside_a_part_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        mime.build_related(_parts(b"xx--bnd yy"), boundary="bnd")


def test_lf_only_and_root_chosen_by_start() -> None:
    body = (
        b"preamble\n--B\ncontent-type: application/octet-stream\ncontent-id: <a@x>\n\nAAA\n"
        b"--B\ncontent-type: application/soap+xml\ncontent-id: <r@x>\n\n<e/>\n--B--\n"
    )
    related = mime.split_related('multipart/related; boundary=B; start="<r@x>"', body)
    assert related.root.body == b"<e/>"
    assert related.attachment("a@x") is not None
    assert related.attachments[0].body == b"AAA"


def test_base64_parts_are_decoded() -> None:
    body = (
        b"--B\r\nContent-Type: application/soap+xml\r\n\r\n<e/>\r\n--B\r\nContent-Type: text/plain\r\n"
        b"Content-ID: <a@x>\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--B--\r\n"
    )
    assert mime.split_related("multipart/related; boundary=B", body).attachments[0].body == b"hello"


def test_golden_message_splits(spec_dir: Path) -> None:
    data = (spec_dir / "edelivery" / "phase4-signed-encrypted-usermessage.as4out").read_bytes()
    headers, body = mime.read_message_file(data)
    related = mime.split_related(headers["content-type"], body)
    assert related.root.body.startswith(b"<?xml")
    assert related.root.body.endswith(b"</S12:Envelope>")
    (part,) = related.attachments
    assert part.content_id == "phase4-att-ff0f8ad5-f982-48ba-b8e2-26997600f496@cid"
    assert len(part.body) == 2263


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b"--B\r\n\r\nx\r\n--B--"),
        ("multipart/related", b"--B\r\n\r\nx\r\n--B--"),
        ("multipart/related; boundary=B", b"no boundary here"),
        ("multipart/related; boundary=B", b"--B\r\nContent-Type: application/soap+xml\r\n\r\n<e/>"),
        ("multipart/related; boundary=B", b"--B--\r\n"),
        ("multipart/related; boundary=B", b"--B\r\nnot a header\r\n\r\n<e/>\r\n--B--"),
        ("multipart/related; boundary=B", b"--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B--"),
        (
            'multipart/related; boundary=B; start="<nope@x>"',
            b"--B\r\nContent-Type: application/soap+xml\r\n\r\nx\r\n--B--",
        ),
        (
            "multipart/related; boundary=B",
            b"--B\r\nContent-Type: application/soap+xml\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\nx\r\n--B--",
        ),
        ('multipart/related; boundary="B', b"--B\r\n\r\nx\r\n--B--"),
    ],
)
def test_malformed_mime_is_ebms_0007(content_type: str, body: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        mime.split_related(content_type, body)
    assert info.value.code == "EBMS:0007"


def test_too_many_parts() -> None:
    content_type, body = mime.build_related(_parts(*[b"x"] * 5), boundary="bnd")
    with pytest.raises(RemoteProtocolError, match="more than 3"):
        mime.split_related(content_type, body, max_parts=3)


def test_message_file_round_trip() -> None:
    data = mime.write_message_file('multipart/related; boundary="b"', b"BODY", headers=[("Message-Id", "<1@x>")])
    headers, body = mime.read_message_file(data)
    assert headers["content-type"] == 'multipart/related; boundary="b"'
    assert headers["message-id"] == "<1@x>"
    assert body == b"BODY"


def test_content_id_forms() -> None:
    assert mime.content_id_of("<a@b>") == "a@b"
    assert mime.content_id_of("cid:a%40b") == "a@b"
    assert mime.content_id_of(" a@b ") == "a@b"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('multipart/related; a="x;y"; b = c ; C="q\\"d"', {"a": "x;y", "b": "c", "c": 'q"d'}),
        ("text/plain;charset=utf-8;", {"charset": "utf-8"}),
        ("text/plain; a= spaced value ", {"a": "spaced value"}),
        ("text/plain; a=", {"a": ""}),
    ],
)
def test_header_parameters(value: str, expected: dict[str, str]) -> None:
    assert mime.header_params(value)[1] == expected


@pytest.mark.timeout(30)  # a guard against hanging: the parse takes microseconds
@pytest.mark.parametrize(
    "value",
    [
        "multipart/related; a=" + " " * 4000 + '"',
        "multipart/related; a=" + "x " * 2000 + '"',
        'multipart/related; a="' + "x" * 4000,
    ],
)
def test_a_malformed_parameter_after_many_characters_is_refused_in_one_pass(value: str) -> None:
    """Before any signature is checked: a lazy pattern took 9 s for a 1 KB header and minutes for 4 KB."""
    with pytest.raises(RemoteProtocolError, match="malformed") as refused:
        mime.header_params(value)
    assert refused.value.code == "EBMS:0007"
