"""The limit on glibc malloc arenas a node process sets at start (``oots.node.memory``)."""

from __future__ import annotations

import platform

import pytest

from oots.node.memory import DEFAULT_ARENAS, limit_malloc_arenas

GLIBC = platform.libc_ver()[0] == "glibc"


def test_an_arena_limit_in_the_environment_is_left_to_glibc() -> None:
    assert limit_malloc_arenas(environ={"MALLOC_ARENA_MAX": "4"}) is None


@pytest.mark.skipif(not GLIBC, reason="mallopt(M_ARENA_MAX) is glibc's")
def test_without_one_the_process_gets_two_arenas() -> None:
    assert DEFAULT_ARENAS == 2
    # the test process's own threads exist already: the limit applies to arenas made from now on
    assert limit_malloc_arenas(environ={}) == DEFAULT_ARENAS


def test_fewer_than_one_arena_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        limit_malloc_arenas(0, environ={})
