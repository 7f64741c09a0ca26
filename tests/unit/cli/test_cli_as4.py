from __future__ import annotations

import json
from pathlib import Path

import pytest

from clirun import run_cli
from oots.cli import main


@pytest.fixture(scope="module")
def dev_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    with pytest.raises(SystemExit) as info:
        main(["keys", "init", str(directory), "be", "fr"])
    assert info.value.code == 0
    return directory


def _pack(capsys: pytest.CaptureFixture[str], pki: Path, tmp_path: Path, *extra: str) -> Path:
    (tmp_path / "req.xml").write_bytes(b'<?xml version="1.0"?><q>request</q>')
    (tmp_path / "ev.bin").write_bytes(bytes(range(256)) * 8)
    out = tmp_path / "m.as4"
    code, stdout, err = run_cli(
        capsys, "as4", "pack",
        "--sign-key", str(pki / "be" / "sign.key.pem"), "--sign-cert", str(pki / "be" / "sign.pem"),
        "--encrypt-cert", str(pki / "fr" / "encrypt.pem"),
        "--payload", str(tmp_path / "req.xml"), "--payload", f"{tmp_path / 'ev.bin'}:application/pdf",
        "--original-sender", "urn:oasis:names:tc:ebcore:partyid-type:unregistered:BE::C1",
        "--out", str(out), *extra,
    )  # fmt: skip
    assert code == 0, err
    assert "2 payload(s)" in stdout
    return out


def test_pack_then_inspect(capsys: pytest.CaptureFixture[str], dev_pki: Path, tmp_path: Path) -> None:
    out = _pack(capsys, dev_pki, tmp_path, "--action", "ExecuteQueryResponse")
    assert out.read_bytes().startswith(b"MIME-Version: 1.0\r\nContent-Type: multipart/related;")
    code, stdout, _ = run_cli(
        capsys, "as4", "inspect", str(out), "--trust", str(dev_pki / "ca.pem"),
        "--decrypt-key", str(dev_pki / "fr" / "encrypt.key.pem"), "--json",
    )  # fmt: skip
    assert code == 0
    report = json.loads(stdout)
    assert report["holds"] is True
    assert report["header"]["action"] == "ExecuteQueryResponse"
    assert {
        "name": "originalSender",
        "value": "C1",
        "type": "urn:oasis:names:tc:ebcore:partyid-type:unregistered:BE",
    } in report["header"]["properties"]
    assert [r["status"] for r in report["signature"]["references"]] == ["ok"] * 4
    assert all(p["decrypted"] for p in report["parts"])
    assert report["signature"]["trust"] == "trusted"


def test_inspect_with_the_decryption_certificate(
    capsys: pytest.CaptureFixture[str], dev_pki: Path, tmp_path: Path
) -> None:
    out = _pack(capsys, dev_pki, tmp_path, "--no-compress")
    code, stdout, _ = run_cli(
        capsys, "as4", "inspect", str(out), "--decrypt-key", str(dev_pki / "fr" / "encrypt.key.pem"),
        "--decrypt-cert", str(dev_pki / "fr" / "encrypt.pem"),
    )  # fmt: skip
    assert code == 0
    assert stdout.count(", decrypted") == 2
    assert "application/pdf" in stdout


def test_inspect_failures(capsys: pytest.CaptureFixture[str], dev_pki: Path, tmp_path: Path) -> None:
    out = _pack(capsys, dev_pki, tmp_path)
    # the wrong decryption key
    code, _, err = run_cli(capsys, "as4", "inspect", str(out), "--decrypt-key", str(dev_pki / "be" / "encrypt.key.pem"))
    assert code == 1
    assert "not encrypted for this decryption key" in err
    # the wrong trust anchor
    leaf = (dev_pki / "fr" / "sign.pem").read_bytes().split(b"-----END CERTIFICATE-----")[0]
    (tmp_path / "leaf.pem").write_bytes(leaf + b"-----END CERTIFICATE-----\n")
    code, stdout, _ = run_cli(capsys, "as4", "inspect", str(out), "--trust", str(tmp_path / "leaf.pem"))
    assert code == 1
    assert "NOT hold" in stdout
    # a flipped header byte
    data = out.read_bytes().replace(b">C4</eb:Property>", b">C5</eb:Property>")
    out.write_bytes(data)
    code, stdout, _ = run_cli(capsys, "as4", "inspect", str(out))
    assert code == 1
    assert "mismatch" in stdout


def test_golden_message_inspects(capsys: pytest.CaptureFixture[str], spec_dir: Path) -> None:
    code, stdout, _ = run_cli(
        capsys, "as4", "inspect", str(spec_dir / "edelivery" / "phase4-signed-encrypted-usermessage.as4out")
    )
    assert code == 0
    assert "signature value valid" in stdout
    assert "encrypted (the part is encrypted and no decryption key was given)" in stdout


def test_unreadable_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "as4", "inspect", str(tmp_path / "missing.as4"))
    assert code == 2
    assert "cannot read" in err
