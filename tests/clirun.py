"""Running the ``oots`` command line inside the test process, for the CLI tests of every package."""

from __future__ import annotations

import pytest

from oots.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``oots ARGS``: its exit status (1 when it exits with a message), what it printed and its errors."""
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    code = info.value.code
    return (0 if code is None else code if isinstance(code, int) else 1), out, err
