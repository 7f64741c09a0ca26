"""``oots cs``: verify, keys init, query (against a real server process), serve's input checks."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cs.cs_helpers import DEMO
from oots.cli import main
from oots.network.local import free_port, oots_process, wait_until_up

ACC = "common-services/acceptance-captures"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_verify_real_capture(spec_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = spec_dir / ACC
    code, out, _ = run(
        [
            "cs",
            "verify",
            str(folder / "eb_requirements_fr.xml"),
            str(folder / "eb_requirements_fr.headers"),
            "--at",
            "2026-07-29T09:02:00",
        ],
        capsys,
    )
    assert code == 0
    assert "EC-OOTS-CS-ACC" in out
    assert "signed at 2026-07-29T09:01:50+00:00" in out


def test_verify_refuses_an_old_answer_unless_told(spec_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = spec_dir / ACC
    files = [str(folder / "eb_requirements_fr.xml"), str(folder / "eb_requirements_fr.headers")]
    code, _, err = run(["cs", "verify", *files, "--at", "2026-08-01T00:00:00"], capsys)
    assert code == 1
    assert "signing-time" in err
    assert "--at" in err
    code, _, _ = run(["cs", "verify", *files, "--at", "2026-08-01T00:00:00", "--max-age", str(7 * 86400)], capsys)
    assert code == 0


def test_verify_refuses(spec_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = spec_dir / ACC
    body = tmp_path / "body.xml"
    body.write_bytes((folder / "dsd_aucun_service_fr.xml").read_bytes().replace(b"Failure", b"Success"))
    code, _, err = run(["cs", "verify", str(body), str(folder / "dsd_aucun_service_fr.headers")], capsys)
    assert code == 1
    assert "bad-digest" in err
    prod = spec_dir / "common-services" / "ec-cs-prod-trust.pem"
    code, _, err = run(
        [
            "cs",
            "verify",
            str(folder / "eb_requirements_fr.xml"),
            str(folder / "eb_requirements_fr.headers"),
            "--trust",
            str(prod),
        ],
        capsys,
    )
    assert code == 1
    assert "untrusted-chain" in err
    code, _, _ = run(
        ["cs", "verify", str(tmp_path / "missing.xml"), str(folder / "eb_requirements_fr.headers")], capsys
    )
    assert code == 2


def test_keys_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, _ = run(["cs", "keys", "init", str(tmp_path / "k")], capsys)
    assert code == 0
    assert (tmp_path / "k" / "cs-signing-key.pem").stat().st_mode & 0o077 == 0
    code, _, err = run(["cs", "keys", "init", str(tmp_path / "k")], capsys)
    assert code == 2
    assert "exists already" in err


def test_serve_refuses_a_broken_catalogue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[procedure]]\nid = "x"\n')
    code, _, err = run(["cs", "serve", "--data", str(bad), "--database", f"sqlite:///{tmp_path / 'x.db'}"], capsys)
    assert code == 2
    assert "procedure.0" in err


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    keys = tmp_path_factory.mktemp("keys")
    assert oots_process("cs", "keys", "init", str(keys), "--force", stdout=subprocess.DEVNULL).wait() == 0
    port = free_port()
    proc = oots_process(
        *("cs", "serve", "--data", str(DEMO), "--port", str(port), "--keys", str(keys)),
        *("--database", f"sqlite:///{keys / 'cs.db'}"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", proc, seconds=30)
        yield f"http://127.0.0.1:{port}", keys / "cs-trust.pem"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_query_a_real_server(server: tuple[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    url, trust = server
    code, out, _ = run(
        ["cs", "query", "requirements", "--url", url, "--trust", str(trust), "--procedure", "V2", "--country", "PL"],
        capsys,
    )
    assert code == 0
    assert "Proof of vehicle registration" in out
    code, out, _ = run(
        ["cs", "query", "requirements", "--url", url, "--trust", str(trust), "--country", "BE", "--json"], capsys
    )
    assert code == 0
    assert out.count('"requirement"') == 5
    text = DEMO.read_text()
    de = next(
        line.split('"')[1]
        for line in text.splitlines()
        if "evidencetypeclassifications/DE/" in line and line.startswith("classification")
    )
    code, out, _ = run(
        [
            "cs",
            "query",
            "data-services",
            "--url",
            url,
            "--trust",
            str(trust),
            "--classification",
            de,
            "--country",
            "DE",
        ],
        capsys,
    )
    assert code in (0, 1)
    # an answer signed by keys the client does not trust is refused
    other = Path(str(trust) + ".other")
    other.write_bytes((Path(__file__).parents[3] / "src/oots/cs/trust/ec-cs-acc-trust.pem").read_bytes())
    code, _, err = run(["cs", "query", "requirements", "--url", url, "--trust", str(other)], capsys)
    assert code == 1
    assert "does not end at a trusted root" in err


@pytest.mark.parametrize("query", [["requirements"], ["evidence-types", "--requirement", "https://r.example/x"]])
def test_a_registry_that_cannot_be_reached_ends_the_query_with_exit_code_1(
    query: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, out, err = run(["cs", "query", *query, "--url", url, "--api", "1", "--no-verify"], capsys)
    assert code == 1
    assert out == ""
    assert f"error: cannot reach the registry at {url}" in err


def test_load_replaces_the_stored_catalogue(spec_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cs.db'}"
    lcm = spec_dir / "edm-v1.0/samples/LCM/Complete XML Examples/3.1.5 LCM Interface Specification of the DSD"
    code, out, _ = run(["cs", "load", "--data", str(DEMO), "--database", url], capsys)
    assert code == 0
    assert "revision 1" in out
    assert "42 data services" in out
    files = sorted(lcm.glob("*.xml"))
    code, out, _ = run(["cs", "load", "--database", url, *(x for f in files for x in ("--lcm", str(f)))], capsys)
    assert code == 0
    assert "revision 2" in out
    assert "3 data services" in out
    code, _, err = run(["cs", "load", "--database", url], capsys)
    assert code == 2
    assert "give a catalogue" in err
