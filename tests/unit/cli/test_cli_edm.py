"""``oots edm``: XML ⇄ JSON and version conversion from the command line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from clirun import run_cli
from oots import edm


def _sample(spec_dir: Path) -> Path:
    return spec_dir / "edm-v2.0-captures/reference/messages/requete.xml"


def test_to_json_then_from_json(capsys: pytest.CaptureFixture[str], spec_dir: Path, tmp_path: Path) -> None:
    code, out, _ = run_cli(capsys, "edm", "to-json", str(_sample(spec_dir)))
    assert code == 0
    form = json.loads(out)
    assert form["kind"] == "QueryRequest"
    path = tmp_path / "req.json"
    path.write_text(out, encoding="utf-8")
    target = tmp_path / "req.xml"
    code, _, _ = run_cli(capsys, "edm", "from-json", str(path), "--version", "oots-edm:v1.0", "-o", str(target))
    assert code == 0
    doc = edm.parse(target.read_bytes())
    assert doc.specification is edm.Version.EDM_V1  # type: ignore[union-attr]
    assert doc.id == form["id"]  # type: ignore[union-attr]


def test_from_json_stdin(capsys: pytest.CaptureFixture[str], spec_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    form = edm.to_json(edm.parse(_sample(spec_dir).read_bytes()))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(json.dumps(form).encode())))
    code, _, err = run_cli(capsys, "edm", "from-json", "-")
    assert code == 0, err


def test_convert(capsys: pytest.CaptureFixture[str], spec_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "v1.xml"
    code, _, _ = run_cli(capsys, "edm", "convert", str(_sample(spec_dir)), "--to", "oots-edm:v1.0", "-o", str(target))
    assert code == 0
    assert b"oots-edm:v1.0" in target.read_bytes()


@pytest.mark.parametrize(
    ("content", "command", "message"),
    [
        (b"<a/>", "to-json", "not an OOTS document"),
        (b"<<<", "to-json", "not well-formed"),
        (b"{", "from-json", "not JSON"),
        (b'{"kind": "QueryRequest"}', "from-json", "QueryRequest needs"),
    ],
)
def test_unusable_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, command: str, message: str
) -> None:
    path = tmp_path / "in"
    path.write_bytes(content)
    code, _, err = run_cli(capsys, "edm", command, str(path))
    assert code == 2
    assert message in err


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "edm", "to-json", str(tmp_path / "nope.xml"))
    assert code == 2
    assert "cannot read" in err
