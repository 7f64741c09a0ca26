from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clirun import run_cli
from oots import __version__


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0
    assert out.strip() == f"oots {__version__}"


def test_config_check_ok(capsys: pytest.CaptureFixture[str], clean_env: pytest.MonkeyPatch) -> None:
    sample = Path(__file__).resolve().parents[3] / "config" / "node.example.toml"
    code, out, _ = run_cli(capsys, "config", "check", str(sample))
    assert code == 0, out
    assert "OK" in out


def test_config_check_lists_every_problem(
    capsys: pytest.CaptureFixture[str], clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[node]\ncountry = "xx"\ncolour = "blue"\n', encoding="utf-8")
    code, _, err = run_cli(capsys, "config", "check", str(bad))
    assert code == 2
    assert "node.country" in err
    assert "node.colour: unknown key" in err
    assert "Traceback" not in err


def test_usage_error_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "config", "check")
    assert code == 2
    assert "Missing argument" in err


def test_console_script_runs_as_module() -> None:
    done = subprocess.run([sys.executable, "-m", "oots", "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert done.stdout.startswith("oots ")
