from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clirun import run_cli
from oots import __version__
from oots.as4.keys import init_dev_pki
from oots.errors import ConfigError
from oots.node import build_context, check_node
from oots.node.admin import hash_password
from oots.settings import load_settings


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0
    assert out.strip() == f"oots {__version__}"


SAMPLE = Path(__file__).resolve().parents[3] / "config" / "node.example.toml"


def test_config_check_ok(capsys: pytest.CaptureFixture[str], clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sample = tmp_path / "node.toml"
    sample.write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    code, _, err = run_cli(capsys, "config", "check", str(sample))
    assert code == 2  # the keys it names are not there yet
    assert "as4.signing_key: cannot read" in err
    init_dev_pki(tmp_path / "var" / "be-node" / "pki", ["be", "fr"], now=datetime.now(UTC))  # as its comment says
    code, out, err = run_cli(capsys, "config", "check", str(sample))
    assert code == 0, err
    assert "OK" in out


def _node_file(tmp_path: Path, extra: str) -> Path:
    pki = tmp_path / "pki"
    if not pki.exists():
        init_dev_pki(pki, ["be", "fr"], now=datetime.now(UTC))
    config = tmp_path / "node.toml"
    config.write_text(
        f"""[node]
name = "be-node"
country = "BE"
data_dir = "{(tmp_path / "var").as_posix()}"
roles = ["requester"]

[as4]
party_id = "be_gw"
signing_key = "pki/be/sign.key.pem"
signing_certificate = "pki/be/sign.pem"
decryption_key = "pki/be/encrypt.key.pem"
decryption_certificate = "pki/be/encrypt.pem"

[[as4.partners]]
name = "fr"
party_id = "fr_gw"
endpoint = "http://127.0.0.1:9499/as4"
signing_certificate = "pki/fr/sign.pem"
encryption_certificate = "pki/fr/encrypt.pem"
trust_anchors = ["pki/ca.pem"]
{extra}""",
        encoding="utf-8",
    )
    return config


@pytest.mark.parametrize(
    ("change", "path", "reason"),
    [
        (("", '[admin]\npassword_hash = "plain"\n'), "admin.password_hash", "oots admin hash-password"),
        (("http://127.0.0.1:9499/as4", "ftp//x"), "partners[fr].endpoint", "http:// or https:// URL"),
        (("pki/fr/sign.pem", "pki/fr/nosuch.pem"), "as4.partners[0].signing_certificate", "nosuch.pem"),
        (("pki/be/sign.pem", "pki/be/nosuch.pem"), "as4.signing_key", "nosuch.pem"),
        (("", '[database]\nurl = "mysql://u:p@h/db"\n'), "database.url", "unsupported database 'mysql'"),
        (("", '[database]\nurl = "garbage"\n'), "database.url", "Could not parse"),
        (("pki/be/sign.key.pem", "pki/be/encrypt.key.pem"), "as4.signing_key", "does not belong to the certificate"),
        (("", '[audit]\nseal_key = "abc"\n'), "audit.seal_key", "64 hexadecimal"),
    ],
)
def test_config_check_refuses_what_serve_refuses(
    capsys: pytest.CaptureFixture[str],
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    change: tuple[str, str],
    path: str,
    reason: str,
) -> None:
    config = _node_file(tmp_path, "")
    old, new = change
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace(old, new) if old else text + new, encoding="utf-8")
    code, out, err = run_cli(capsys, "config", "check", str(config))
    assert (code, out) == (2, ""), err
    assert f"  {path}: " in err, err
    assert reason in err
    assert "Traceback" not in err
    with pytest.raises(ConfigError) as refused:  # what `oots serve` builds refuses it the same way
        build_context(load_settings(config), config_dir=tmp_path)
    assert path in {p for p, _ in refused.value.problems}


def test_config_check_reads_relative_files_from_the_configuration_files_folder(
    capsys: pytest.CaptureFixture[str], clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    init_dev_pki(tmp_path / "tls", ["be"], now=datetime.now(UTC) - timedelta(days=20), days=30)  # ends in 10 days
    lines = (
        'tls_client_certificate = "tls/be/sign.pem"\ntls_client_key = "tls/be/sign.key.pem"\n'
        'tls_ca_file = "tls/ca.pem"\n'
    )
    config = _node_file(tmp_path, "")
    config.write_text(config.read_text(encoding="utf-8").replace("[[as4.partners]]", lines + "[[as4.partners]]"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clean_env.chdir(elsewhere)
    code, out, err = run_cli(capsys, "config", "check", str(config))
    assert code == 0, err
    assert "OK" in out
    tls = tmp_path / "tls" / "be" / "sign.pem"
    assert f"warning: as4.tls_client_certificate: the node's own TLS client certificate in {tls} expires on " in err
    assert "cannot be used" not in err
    clean_env.setenv("OOTS_AS4__TLS_CLIENT_CERTIFICATE", "tls/nosuch.pem")  # the environment's: the same folder
    code, _, err = run_cli(capsys, "config", "check", str(config))
    assert code == 0, err
    assert f"TLS client certificate in {tmp_path / 'tls' / 'nosuch.pem'} cannot be used" in err


def test_config_check_from_another_directory_reads_every_relative_path_from_the_configuration_files_folder(
    capsys: pytest.CaptureFixture[str], clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "admin.hash").write_text(
        hash_password("correct horse battery", iterations=1000) + "\n", encoding="utf-8"
    )
    config = _node_file(tmp_path, '[admin]\npassword_hash_file = "secrets/admin.hash"\n')
    text = config.read_text(encoding="utf-8").replace(f'"{(tmp_path / "var").as_posix()}"', '"var/be-node"')
    config.write_text(text + '[audit]\nseal_key_file = "secrets/seal.key"\n', encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clean_env.chdir(elsewhere)
    code, _, err = run_cli(capsys, "config", "check", "../node.toml")
    assert code == 2
    assert "cannot read the secret file secrets/seal.key" in err  # named as written, looked for in the folder
    (tmp_path / "secrets" / "seal.key").write_text("ab" * 32, encoding="utf-8")
    code, out, err = run_cli(capsys, "config", "check", "../node.toml")
    assert code == 0, err
    assert f"database: sqlite:///{(tmp_path / 'var' / 'be-node' / 'oots.db').as_posix()}" in out
    assert not list(elsewhere.iterdir())  # nothing made in the working directory


def test_config_check_warns_of_an_unreadable_tls_ca_file_or_client_key(
    capsys: pytest.CaptureFixture[str], clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lines = (
        'tls_client_certificate = "pki/be/sign.pem"\ntls_client_key = "pki/be/nosuch.key.pem"\ntls_ca_file = "ca.pem"\n'
    )
    config = _node_file(tmp_path, "")
    config.write_text(config.read_text(encoding="utf-8").replace("[[as4.partners]]", lines + "[[as4.partners]]"))
    code, _, err = run_cli(capsys, "config", "check", str(config))
    assert code == 0, err  # warned, as the start warns: the node still receives
    assert f"warning: as4.tls_ca_file: the CA bundle {tmp_path / 'ca.pem'} cannot be used (No such file" in err
    key = tmp_path / "pki" / "be" / "nosuch.key.pem"
    assert f"warning: as4.tls_client_key: the TLS client key {key} cannot be used (" in err
    warnings: list[str] = []
    assert check_node(load_settings(config), warnings=warnings) == []  # the start's checks, its warnings
    assert [w.split(":")[0] for w in warnings] == ["as4.tls_ca_file", "as4.tls_client_key"]


def test_config_check_lists_every_problem_of_the_node_at_once(
    capsys: pytest.CaptureFixture[str], clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = _node_file(
        tmp_path,
        '[admin]\npassword_hash = "plain"\n[audit]\nseal_key = "abc"\ndata_key = "00"\n'
        '[database]\nurl = "mysql://u:p@h/db"\n',
    )
    config.write_text(config.read_text(encoding="utf-8").replace("pki/be/sign.key.pem", "pki/be/encrypt.key.pem"))
    code, _, err = run_cli(capsys, "config", "check", str(config))
    assert code == 2
    for path in ("admin.password_hash", "audit.seal_key", "audit.data_key", "database.url", "as4.signing_key"):
        assert f"  {path}: " in err, err
    assert "5 problem(s)" in err
    with pytest.raises(ConfigError, match="5 problem"):  # and `oots serve` says the same, all at once
        build_context(load_settings(config), config_dir=tmp_path)
    assert not (tmp_path / "var").exists()


def test_config_check_hides_the_database_password(
    capsys: pytest.CaptureFixture[str], clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = _node_file(tmp_path, '[database]\nurl = "postgresql://oots:S3cretPassw0rd@db.invalid/oots"\n')
    code, out, err = run_cli(capsys, "config", "check", str(config))
    assert code == 0, err
    assert "S3cretPassw0rd" not in out + err
    assert "postgresql+psycopg://oots:***@db.invalid/oots" in out
    assert not (tmp_path / "var").exists()  # nothing written, no database opened


def test_config_check_lists_the_environment_with_the_file(
    capsys: pytest.CaptureFixture[str], clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[node]\ncountry = "xx"\n', encoding="utf-8")
    clean_env.setenv("OOTS_NODE__COLOUR", "blue")
    code, _, err = run_cli(capsys, "config", "check", str(bad))
    assert code == 2
    assert "OOTS_NODE__COLOUR: unknown setting" in err
    assert "node.country" in err
    assert "node.colour" not in err.replace("(node.colour)", "")


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


def test_an_unexpected_error_is_one_line_and_exit_70(tmp_path: Path) -> None:
    # A bug inside a command, made here by breaking what `oots config check` calls.
    code = (
        "import sys, oots.settings as s\n"
        "def broken(path): raise RuntimeError('boom')\n"
        "s.load_settings = broken\n"
        "from oots.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    config = tmp_path / "node.toml"
    config.write_text("", encoding="utf-8")
    plain = subprocess.run(
        [sys.executable, "-c", code, "config", "check", str(config)], capture_output=True, text=True, check=False
    )
    assert plain.returncode == 70
    assert "Traceback" not in plain.stderr
    lines = plain.stderr.strip().splitlines()
    assert len(lines) == 1, plain.stderr
    assert lines[0].startswith("internal error: RuntimeError: boom (error id ")
    assert "--debug" in lines[0]
    debug = subprocess.run(
        [sys.executable, "-c", code, "--debug", "config", "check", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert debug.returncode == 70
    assert "Traceback" in debug.stderr
    assert "RuntimeError: boom" in debug.stderr


def _commands(capsys: pytest.CaptureFixture[str], *path: str) -> list[tuple[str, ...]]:
    """Every command of ``oots`` (groups walked), read from the help pages."""
    code, out, _ = run_cli(capsys, *path, "--help")
    assert code == 0
    listed = out.partition("Commands")[2]
    names = [line.split()[1] for line in listed.splitlines() if line.startswith("│ ") and line[2] != " "]
    found: list[tuple[str, ...]] = []
    for name in names:
        code, sub, _ = run_cli(capsys, *path, name, "--help")
        found += _commands(capsys, *path, name) if "Commands" in sub else [(*path, name)]
    return found


def test_usage_lines_name_arguments_readably(capsys: pytest.CaptureFixture[str]) -> None:
    # Before, typer wrote a required argument as {config} ("Usage: oots serve [OPTIONS] {config}").
    commands = _commands(capsys)
    assert ("serve",) in commands
    assert ("queue", "requeue") in commands
    for command in commands:
        _, out, _ = run_cli(capsys, *command, "--help")
        usage = next(line for line in out.splitlines() if "Usage:" in line)
        assert "{" not in usage, usage
    _, out, _ = run_cli(capsys, "serve", "--help")
    assert "Usage: oots serve [OPTIONS] CONFIG" in out
    _, out, _ = run_cli(capsys, "queue", "requeue", "--help")
    assert "Usage: oots queue requeue [OPTIONS] CONFIG [JOB_IDS]..." in out
    _, out, _ = run_cli(capsys, "queue", "discard", "--help")
    assert "Usage: oots queue discard [OPTIONS] CONFIG [JOB_IDS]..." in out
    code, _, err = run_cli(capsys, "serve")
    assert code == 2
    assert "Usage: oots serve [OPTIONS] CONFIG" in err
