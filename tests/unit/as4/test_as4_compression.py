from __future__ import annotations

import gzip
import os

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


def test_incompressible_large_part_is_stored_gzip() -> None:
    data = os.urandom(300 * 1024)
    assert not compression.compressible(data)
    packed = compression.compress(data)
    assert packed[:2] == b"\x1f\x8b"
    assert len(data) < len(packed) < len(data) + 200  # stored blocks: a few bytes per 64 KB
    assert gzip.decompress(packed) == data
    assert compression.decompress(packed) == data
    assert compression.compress(data) == packed  # deterministic


def test_large_compressible_part_is_deflated() -> None:
    data = b"<evidence>" + b"<line>some repeated text</line>" * 20000 + b"</evidence>"
    assert compression.compressible(data)
    assert len(compression.compress(data)) < len(data) // 50


def test_part_compressible_only_in_the_middle_is_stored_when_samples_say_so() -> None:
    # The sampling is a heuristic: whatever it decides, the result is valid gzip of the same bytes.
    data = os.urandom(40 * 1024) + bytes(200 * 1024) + os.urandom(40 * 1024)
    assert compression.decompress(compression.compress(data)) == data


def test_small_parts_are_always_deflated() -> None:
    data = os.urandom(1000)
    assert compression.compressible(data)
    assert gzip.decompress(compression.compress(data)) == data
