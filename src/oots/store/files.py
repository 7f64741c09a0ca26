"""Files a node makes once in its data directory (generated keys), safe when its processes start together."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["write_once"]


def write_once(path: Path, text: str) -> str:
    """The text of ``path``; when there is no such file, ``text`` is written there first (mode 0600).

    Several processes of a node may start at once and each generate a key: the file is written whole
    under a temporary name and linked into place, so exactly one of them wins, and every process (the
    winner included) reads a complete file, never a half-written one.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            with contextlib.suppress(FileExistsError):  # another process of the node made it first
                os.link(draft, path)
        finally:
            draft.unlink()
    return path.read_text(encoding="utf-8")
