"""`oots demo` brings a whole network up as separate processes and takes it down on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

from oots.errors import ConfigError
from oots.network import load_topology, plan
from oots.network.local import free_base_port as _free_base_port


def free_base_port() -> int:
    """A base port whose next 20 ports are free right now."""
    return _free_base_port((*range(2), *range(10, 15)))


def test_the_default_topology_plans_every_service(tmp_path: Path) -> None:
    network = plan(load_topology(), tmp_path, base_port=9100)
    names = [s.name for s in network.services]
    assert names == ["cs", "eid", "be-node", "fr-node", "de-node"]
    assert [s.port for s in network.services] == [9100, 9101, 9110, 9111, 9112]
    # each process is a command that limits its malloc arenas at start (tests/unit/node/test_node_memory.py)
    commands = [s.argv[1:5] if s.argv[3] in ("cs", "eid") else s.argv[1:4] for s in network.services]
    assert commands == [("-m", "oots", "cs", "serve"), ("-m", "oots", "eid", "serve"), *[("-m", "oots", "serve")] * 3]
    config = (tmp_path / "be-node.toml").read_text(encoding="utf-8")
    assert 'party_id = "AP_BE_01"' in config
    assert 'endpoint = "http://127.0.0.1:9111/as4"' in config
    done = subprocess.run(
        [sys.executable, "-m", "oots", "config", "check", str(tmp_path / "be-node.toml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_a_wrong_topology_is_explained(tmp_path: Path) -> None:
    bad = tmp_path / "t.toml"
    bad.write_text('[[node]]\ncountry = "Belgium"\n[[node]]\ncountry = "FR"\ncolour = 1\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_topology(bad)
    paths = [p for p, _ in info.value.problems]
    assert "node.0.country" in paths
    assert "node.1.colour" in paths


@pytest.mark.slow
def test_demo_starts_every_service_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    base = free_base_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OOTS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "oots", "demo", "--base-port", str(base), "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Press Ctrl-C" in line:
            break
    out = "".join(lines)
    try:
        assert "all 5 services are up" in out, out
        for port in (base, base + 1, base + 10, base + 11, base + 12):
            assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "oots demo: stopped" in rest
    for port in (base, base + 1, base + 10):
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)


def test_every_node_config_turns_on_what_the_demo_guide_promises(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    from oots.node import build_context, create_app
    from oots.node.admin import verify_password
    from oots.settings import load_settings

    network = plan(load_topology(), tmp_path, base_port=9100)
    password = (tmp_path / "admin-password.txt").read_text(encoding="utf-8").strip()
    assert password == network.admin_password
    settings = load_settings(tmp_path / "be-node.toml")
    assert settings.admin.password_hash is not None
    assert verify_password(password, settings.admin.password_hash.get_secret_value())
    if "requester" in settings.node.roles:
        assert settings.requester.demo_portal
        assert settings.requester.identifier == "OOTS-DEMO-BE-PORTAL"
    # the node starts from it, with every role the build has
    app = create_app(build_context(settings, config_dir=tmp_path))
    paths = {getattr(r, "path", "") for r in app.routes}
    assert {"/health", "/metrics", "/admin"} <= paths
    if "requester" in settings.node.roles:
        assert "/portal" in paths
        assert settings.requester.allow_http_preview_hosts == ("127.0.0.1", "localhost")
    if "provider" in settings.node.roles:
        # the preview space runs (eID configured) and sends users back only to the network's portals
        assert {"/preview/{token}", "/preview/eid"} <= paths
        assert settings.provider.preview_return_origins == (
            "http://127.0.0.1:9110",
            "http://127.0.0.1:9111",
            "http://127.0.0.1:9112",
        )


def test_the_guide_names_real_test_people(tmp_path: Path) -> None:
    from oots.cli.demo import guide
    from oots.eid.testidp.people import load_people

    network = plan(load_topology(), tmp_path, base_port=9100)
    # as it reads once both roles are in the build
    network.nodes = {c: (spec, service, ("requester", "provider")) for c, (spec, service, _) in network.nodes.items()}
    text = guide(network)
    france = load_people().country("FR")
    assert france is not None
    first = france.people[0].subject
    assert f"as {first.given_name} {first.family_name} ({first.identifier})" in text  # type: ignore[union-attr]
    assert "Outis Nemo (FR/FR/999999990)" in text
    assert "http://127.0.0.1:9110/portal/" in text
    assert f"password {network.admin_password}" in text


def test_the_eid_people_are_the_registers_people(tmp_path: Path) -> None:
    """One source: the eID provider's file is exactly what the script derives from the provider's data."""
    root = Path(__file__).resolve().parents[3]
    out = tmp_path / "people.json"
    done = subprocess.run(
        [sys.executable, str(root / "scripts" / "make_eid_people.py"), str(root / "src/oots/provider/data"), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shipped = root / "src/oots/eid/testidp/people.json"
    assert out.read_text(encoding="utf-8") == shipped.read_text(encoding="utf-8"), (
        "run scripts/make_eid_people.py after changing src/oots/provider/data"
    )


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_base_in_9500s(offsets: tuple[int, ...]) -> int:
    """A base port whose ``offsets`` are free, all within 9500-9599."""
    for base in range(9500, 9600 - max(offsets)):
        if all(_bindable(base + o) for o in offsets):
            return base
    pytest.skip("no free base port in 9500-9599")


def test_a_second_demo_on_busy_ports_stops_before_writing_or_starting_anything(tmp_path: Path) -> None:
    """Another program (here a plain listening socket) holds a node's port: exit 2, the port named, what to do."""
    base = _free_base_in_9500s((0, 1, 10, 11, 12))
    data = tmp_path / "second"
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", base + 11))
        other.listen()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OOTS_")}
        done = subprocess.run(
            [sys.executable, "-m", "oots", "demo", "--base-port", str(base), "--data-dir", str(data)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"port(s) already in use: {base + 11} (fr-node)" in done.stderr
    assert "perhaps another oots demo" in done.stderr
    assert "oots demo --base-port " in done.stderr
    assert "services are up" not in done.stdout
    assert "starting" not in done.stdout
    assert not data.exists()  # nothing written: a running demo's keys and password stay as they are


def test_a_base_port_too_high_is_explained(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from oots.cli import app

    done = CliRunner().invoke(app, ["demo", "--base-port", "65530", "--data-dir", str(tmp_path / "d")])
    assert isinstance(done.exception, ConfigError)
    assert "65530 to 65542" in done.exception.message
    assert not (tmp_path / "d").exists()


def test_the_guide_aligns_its_rows_and_links_pages_that_answer(tmp_path: Path) -> None:
    from oots.cli.demo import guide
    from oots.cs.datafile import load_catalogue
    from oots.cs.server import create_app

    topology = load_topology()
    network = plan(topology, tmp_path, base_port=9100)
    network.nodes = {c: (spec, service, ("requester", "provider")) for c, (spec, service, _) in network.nodes.items()}
    text = guide(network)
    rows = [line for line in text.splitlines() if "http://127.0.0.1:91" in line and not line.startswith("Start")]
    assert len(rows) == 6, text  # Common Services, its example query, eID, three nodes
    assert len({line.index("http://") for line in rows}) == 1, "\n".join(rows)
    assert "  BE node (requester, provider)   http://127.0.0.1:9110/" in text
    # the Common Services links answer something useful (no EB:ERR:0007 "the requested Query does not exist")
    links = [line.split()[-1].removeprefix("http://127.0.0.1:9100") for line in rows[:2]]
    assert links[0] == "/health"
    catalogue = load_catalogue(Path(str(resources.files("oots.cs").joinpath("data/demo-catalogue.toml"))))
    transport = httpx.ASGITransport(app=create_app(catalogue))

    async def get(path: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://cs.test") as client:
            return await client.get(path)

    health, query = asyncio.run(get(links[0])), asyncio.run(get(links[1]))
    assert health.json()["service"] == "oots common services"
    assert 'status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"' in query.text
    assert "Proof of birth" in query.text
    # the DE suggestion says how it ends for this person, as docs/demo.md does
    de = text[text.index("R1 with the documents held by DE") :]
    assert '"The authority found no record for you"' in de.split("  - ")[0]


def test_the_health_names_the_plan_checks_are_the_services_own() -> None:
    from oots.cs.server import SERVICE_NAME as CS
    from oots.eid.testidp.app import SERVICE_NAME as EID
    from oots.network.plan import CS_SERVICE, EID_SERVICE

    assert (CS_SERVICE, EID_SERVICE) == (CS, EID)


def test_the_node_home_page_links_the_portal_and_no_favicon_404(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    from oots.node import build_context, create_app
    from oots.settings import load_settings

    plan(load_topology(), tmp_path, base_port=9100)
    settings = load_settings(tmp_path / "be-node.toml")
    app = create_app(build_context(settings, config_dir=tmp_path))

    async def get(path: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node.test") as client:
            return await client.get(path)

    home = asyncio.run(get("/"))
    links = set(re.findall(r"href='([^']+)'", home.text))
    assert {"/admin", "/health", "/metrics"} <= links
    assert ("/portal/" in links) == ("requester" in settings.node.roles)
    for link in links:
        assert asyncio.run(get(link)).status_code in (200, 303), link  # /admin sends to its login
    icon = asyncio.run(get("/favicon.ico"))
    assert icon.status_code == 204
    assert "max-age" in icon.headers["cache-control"]


@pytest.mark.slow
def test_demo_stops_everything_and_fails_when_a_service_stops(tmp_path: Path) -> None:
    """A service dying under a running demo: the demo stops the others and exits 1, naming it and its log."""
    base = _free_base_in_9500s((0, 1, 10))
    topology = tmp_path / "one.toml"
    one = str(topology)
    topology.write_text('[[node]]\ncountry = "BE"\n', encoding="utf-8")
    data = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OOTS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "oots", "demo", "--base-port", str(base), "--data-dir", str(data), "--topology", one],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        assert "all 3 services are up" in "".join(lines), "".join(lines)
        children = {pid: _cmdline(pid) for pid in _children_of(proc.pid)}
        eid = [pid for pid, argv in children.items() if "eid" in argv and "serve" in argv]
        assert len(eid) == 1, children
        os.kill(eid[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    log = data.resolve() / "logs" / "eid.log"
    assert f"eid (eID test identity provider) stopped unexpectedly (exit -9); its log: {log}" in err
    assert "oots demo: stopped" in out
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists() and _state(pid) != "Z"]


def _children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_text().split("\0")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_the_common_services_and_the_eid_provider_answer_the_favicon_without_a_404(tmp_path: Path) -> None:
    from oots.cs.catalogue import Catalogue
    from oots.cs.server import create_app
    from oots.eid.testidp.app import IdpConfig, create_idp_app

    async def get(app: Any, path: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x.test") as client:
            return await client.get(path)

    idp = create_idp_app(IdpConfig(issuer="http://127.0.0.1:9501", data_dir=tmp_path / "idp"))
    for app in (create_app(Catalogue()), idp):
        assert asyncio.run(get(app, "/favicon.ico")).status_code == 204
