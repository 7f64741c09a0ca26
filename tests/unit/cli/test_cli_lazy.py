"""The ``oots`` command loads a command's dependencies only when that command runs; a node only its roles'.

Every node process is an ``oots`` process: importing every command's dependencies (the requester in a
provider-only node, the demo network, the validator, Alembic) costs each process memory and start-up CPU.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from oots.cli import app
from oots.network import load_topology, plan

#: Packages no command needs before it runs (each command imports its own when it runs): the
#: libraries a light command (``oots --version``, ``oots validate``) has no use for, and every
#: command's own packages.
NOT_AT_IMPORT = (
    "alembic",
    "cryptography",
    "httpx",
    "lxml",
    "pydantic",
    "pydantic_settings",
    "rich",
    "sqlalchemy",
    "uvicorn",
    "oots.as4",
    "oots.audit",
    "oots.cs",
    "oots.edm",
    "oots.eid",
    "oots.network",
    "oots.node",
    "oots.provider",
    "oots.requester",
    "oots.settings",
    "oots.store",
    "oots.validation",
)
#: What Typer loads to print a command's help: rich (with markdown-it and pygments) for the panels,
#: and for a command with parameters pydantic, with which it reads them.
HELP = ("rich", "pydantic")


def _loaded(code: str) -> list[str]:
    """The modules of :data:`NOT_AT_IMPORT` loaded by ``code`` run in a fresh interpreter."""
    probe = (
        f"{code}\nimport sys\n"
        f"prefixes = {NOT_AT_IMPORT!r}\n"
        "dotted = tuple(p + '.' for p in prefixes)\n"
        "loaded = [m for m, module in sys.modules.items() if module is not None]  # None: marked absent\n"
        "print('--- loaded ---')  # after what the code printed\n"
        "print('\\n'.join(sorted(m for m in loaded if m in prefixes or m.startswith(dotted))))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], check=True, timeout=120, capture_output=True, text=True)
    return done.stdout.rpartition("--- loaded ---")[2].split()


def test_importing_the_oots_command_loads_no_command_dependencies() -> None:
    assert _loaded("import oots.cli") == []


def _main(*args: str) -> str:
    """``oots ARGS...`` as the console script runs it (exit 0), for :func:`_loaded`."""
    return (
        "from oots.cli import main\n"
        "try:\n"
        f"    main({list(args)!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
    )


def test_the_root_help_loads_no_command_dependencies() -> None:
    code = (
        "from oots.cli import app\nfrom typer.testing import CliRunner\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0"
    )
    assert [m for m in _loaded(code) if m.split(".")[0] not in HELP] == []
    assert [m for m in _loaded(_main("--help")) if m.split(".")[0] not in HELP] == []
    assert _loaded(_main("--version")) == []


def test_a_commands_help_loads_none_of_its_dependencies() -> None:
    for command in (["validate"], ["as4", "pack"], ["edm", "convert"], ["config", "check"], ["queue", "stats"]):
        assert [m for m in _loaded(_main(*command, "--help")) if m.split(".")[0] not in HELP] == [], command


def test_validating_a_v2_document_loads_the_validator_not_the_node(spec_dir: Path) -> None:
    """``oots validate`` of a v2.0 request: the validator and lxml, not cryptography, the settings, the
    AS4 package nor the database (nor Saxon, which v2.0 documents do not run)."""
    loaded = _loaded(_main("validate", str(spec_dir / "edm-v2.0-captures/reference/messages/requete.xml")))
    assert "oots.validation.v2" in loaded
    assert "lxml" in loaded
    unneeded = ("cryptography", "pydantic_settings", "rich", "sqlalchemy", "oots.as4", "oots.settings", "oots.store")
    assert [m for m in loaded if m.split(".")[0] in unneeded or m.startswith(unneeded)] == []


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under ``group`` (a click group of the click Typer bundles)."""
    found: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        found.append((*prefix, name))
        if hasattr(command, "commands"):
            found += _commands(command, (*prefix, name))
    return found


def test_every_command_still_has_its_help() -> None:
    commands = _commands(typer.main.get_command(app))
    assert {("serve",), ("worker",), ("request",), ("demo",), ("validate",), ("cs", "query", "requirements")} <= set(
        commands
    )
    runner = CliRunner()
    for path in commands:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output


def test_the_defaults_spelt_out_in_the_commands_match_their_sources() -> None:
    from oots import edm
    from oots.as4 import profile
    from oots.cli import admin, as4, demo
    from oots.cli import edm as edm_cli
    from oots.network.topology import DEFAULT_TOPOLOGY
    from oots.node.admin import DEFAULT_ITERATIONS

    assert demo.DEFAULT_TOPOLOGY == DEFAULT_TOPOLOGY
    assert admin.DEFAULT_ITERATIONS == DEFAULT_ITERATIONS
    assert as4.ACTION_EXECUTE_QUERY_REQUEST == profile.ACTION_EXECUTE_QUERY_REQUEST
    assert tuple(v.value for v in edm.Version) == edm_cli.VERSIONS


def test_loading_the_tables_does_not_load_the_node_application() -> None:
    """``load_models()`` (``oots db``, the migrations, the scratch databases) imports ``oots.node.models``,
    not the package's application, admin area and server with it."""
    loaded = _loaded("from oots.store import load_models\nload_models()")
    assert "oots.node.models" in loaded
    heavy = ("oots.node.app", "oots.node.admin", "oots.node.admin_state", "oots.node.observe", "oots.node.server")
    assert [m for m in loaded if m in heavy] == []
    # the package's names are still there, loaded at their first use
    code = "import oots.node\nassert oots.node.create_app.__module__ == 'oots.node.app'\nfrom oots.node import *"
    assert "oots.node.app" in _loaded(code)


# --- a node process loads only its roles -----------------------------------------------------------


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The configurations of a requester-only node (BE) and a provider-only node (FR), databases migrated."""
    directory = tmp_path_factory.mktemp("pair")
    topology = directory / "topology.toml"
    topology.write_text(
        '[[node]]\ncountry = "BE"\nroles = ["requester"]\n\n[[node]]\ncountry = "FR"\nroles = ["provider"]\n',
        encoding="utf-8",
    )
    network = plan(load_topology(topology), directory / "net", base_port=9300)
    for node in ("be-node", "fr-node"):
        migrate = [sys.executable, "-m", "oots", "db", "migrate", str(network.directory / f"{node}.toml")]
        subprocess.run(migrate, check=True, timeout=120, capture_output=True)
    return network.directory


def _serve(config: Path) -> str:
    """``oots serve CONFIG --with-worker`` up to the point where uvicorn would take over (it is replaced, and
    so is the taking of the port)."""
    return (
        "import uvicorn\n"
        "import oots.node.server as server\n"
        "served = []\n"
        "server.bind = lambda host, port: None\n"
        "server.serve = lambda app, **kw: served.append(app)\n"
        "from oots.cli import main\n"
        "try:\n"
        f"    main(['serve', {str(config)!r}, '--with-worker'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "assert served\n"
    )


def test_a_provider_only_node_does_not_load_the_requester_nor_alembic(pair: Path) -> None:
    loaded = _loaded(_serve(pair / "fr-node.toml"))
    assert "oots.provider.role" in loaded
    assert [m for m in loaded if m.startswith(("oots.requester", "alembic", "oots.network"))] == []


def test_a_requester_only_node_does_not_load_the_provider_nor_the_validator(pair: Path) -> None:
    loaded = _loaded(_serve(pair / "be-node.toml"))
    assert "oots.requester.role" in loaded
    assert [m for m in loaded if m.startswith(("oots.provider", "oots.validation", "alembic", "oots.network"))] == []


# --- what a provider node holds when it starts ----------------------------------------------------------

#: Loaded on first use, not at start: Saxon (its library and Java heap, about 110 MB resident once the
#: v1.0 request rules are compiled; a node that receives only v2.0 requests never needs it) with the
#: first v1.x request, fontTools with the first PDF.
FIRST_USE = ("saxonche", "fontTools")
#: Never loaded by a node: httpx's own command-line client brings these (see ``oots.cli``).
NEVER = ("rich", "pygments")


def test_a_provider_node_starts_without_saxon_fonttools_or_rich_and_with_two_malloc_arenas(pair: Path) -> None:
    probe = (
        "import sys\n"
        "import oots.cli  # first, as in `python -m oots`\n"
        "import oots.node.memory as memory\n"
        "limits = []\n"
        "real = memory.limit_malloc_arenas\n"
        "memory.limit_malloc_arenas = lambda *a, **k: limits.append(real(*a, **k))\n"
        f"{_serve(pair / 'fr-node.toml')}"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {(*FIRST_USE, *NEVER)!r})\n"
        "print(limits, heavy)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", probe], check=True, timeout=120, capture_output=True, text=True, env=env
    )
    limits, heavy = done.stdout.strip().splitlines()[-1].split(" ", 1)
    assert heavy == "[]"
    assert limits == ("[2]" if platform.libc_ver()[0] == "glibc" else "[None]")
