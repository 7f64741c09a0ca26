"""Files made once in a node's data directory: one winner, every reader sees it whole."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

from oots.store.files import write_once


def test_the_first_text_is_kept_and_the_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "some.key"
    assert write_once(path, "first") == "first"
    assert write_once(path, "second") == "first"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_processes_starting_together_all_read_the_one_winner(tmp_path: Path) -> None:
    path = tmp_path / "audit.keys"
    start = threading.Barrier(8)
    seen: list[str] = []

    def one(i: int) -> None:
        start.wait()
        seen.append(write_once(path, f"key of starter {i}" * 1000))

    starters = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in starters:
        t.start()
    for t in starters:
        t.join()
    assert len(seen) == 8
    assert len(set(seen)) == 1  # all the same, and whole
    assert seen[0] == path.read_text(encoding="utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["audit.keys"]  # no drafts left behind
