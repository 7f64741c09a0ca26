from __future__ import annotations

import gzip

import pytest

from oots.as4 import compression
from oots.errors import RemoteProtocolError


def test_round_trip_and_is_gzip() -> None:
    data = b"<a>" + b"x" * 10000 + b"</a>"
    packed = compression.compress(data)
    assert packed[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed) == data
    assert compression.decompress(packed) == data
    assert compression.compress(data) == packed  # deterministic


def test_bomb_is_refused_at_the_limit() -> None:
    bomb = compression.compress(bytes(20 * 1024 * 1024))
    assert len(bomb) < 100_000
    with pytest.raises(RemoteProtocolError) as info:
        compression.decompress(bomb, max_size=1024 * 1024)
    assert info.value.code == "EBMS:0303"


def test_exact_limit_is_accepted() -> None:
    assert compression.decompress(compression.compress(b"a" * 100), max_size=100) == b"a" * 100


@pytest.mark.parametrize(
    "data",
    [
        b"not gzip at all",
        compression.compress(b"hello world")[:-6],
        compression.compress(b"hello") + b"trailing",
        b"",
    ],
)
def test_broken_gzip_is_ebms_0303(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        compression.decompress(data)
    assert info.value.code == "EBMS:0303"
