"""The C heap of a node process: how many glibc ``malloc`` arenas its threads may spread it over.

glibc gives a thread that finds the arena it would use locked by another thread an arena of its own, up
to eight per core (16 on the 2-core development machine). A node runs its database and crypto work on a
pool of threads (:mod:`oots.threads`), plus the event loop, the worker and the AS4 sender, so under load
many of them allocate at once and the process ends up with as many arenas, each holding freed memory it
cannot give back while one live block sits near its top. Python's own objects come from ``pymalloc``
(memory outside ``malloc``'s arenas), but lxml, libxml2, OpenSSL, SQLite and the
large Python buffers (a request, a rendered PDF) are ``malloc``'s.

:func:`limit_malloc_arenas` lowers that limit to :data:`DEFAULT_ARENAS` with ``mallopt(M_ARENA_MAX)``
when ``oots serve``, ``oots worker``, ``oots cs serve`` and ``oots eid serve`` start, before any thread
exists — the same as starting the process with ``MALLOC_ARENA_MAX=2``, without depending on how it is
started (systemd, a container, the local network). Those threads mostly hold the interpreter lock
while they allocate, so two arenas cost no measurable CPU; the figures are in ``docs/operations.md``
("Memory"). A ``MALLOC_ARENA_MAX`` already in the environment is the operator's choice: glibc read it
at start and it is left alone.
Elsewhere than on glibc (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping

__all__ = ["DEFAULT_ARENAS", "limit_malloc_arenas"]

#: The arenas a node process's threads share by default.
DEFAULT_ARENAS = 2

#: glibc's ``M_ARENA_MAX`` parameter of ``mallopt`` (``malloc.h``).
_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = DEFAULT_ARENAS, *, environ: Mapping[str, str] = os.environ) -> int | None:
    """Let this process's threads use at most ``arenas`` glibc ``malloc`` arenas; return the limit set.

    ``None`` when nothing was set: ``MALLOC_ARENA_MAX`` is in ``environ`` (glibc applies it itself), or
    the C library has no ``mallopt`` or refuses the value. Call it before the process starts threads:
    arenas that exist stay.
    """
    if arenas < 1:
        raise ValueError(f"arenas must be at least 1, not {arenas}")
    if "MALLOC_ARENA_MAX" in environ or not sys.platform.startswith("linux"):
        return None
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no such symbol: not glibc
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return arenas if mallopt(_M_ARENA_MAX, arenas) == 1 else None
