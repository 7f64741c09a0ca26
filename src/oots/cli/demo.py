"""``oots demo``: start a whole OOTS network on this machine and print where to click."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from oots.eid.testidp.people import TestSubject
    from oots.network import NetworkPlan, Topology

#: ``oots.network.topology.DEFAULT_TOPOLOGY``, spelt out so that ``oots`` loads the network package only
#: when ``oots demo`` runs (a test checks the two agree).
DEFAULT_TOPOLOGY = "builtin:default"


def _citizens(network: NetworkPlan, country: str) -> tuple[TestSubject | None, TestSubject | None]:
    """A person of ``country`` the registers know, and one they do not (from the eID provider's people)."""
    from oots.eid.testidp.people import load_people

    people = load_people(None if network.eid_people == "builtin" else network.eid_people).country(country)
    if people is None:
        return None, None
    known = next((p for p in people.people if "nobody" not in p.note), None)
    unknown = next((p for p in people.people if "nobody" in p.note), None)
    return known, unknown


def _who(item: TestSubject | None, fallback: str) -> str:
    if item is None:
        return fallback
    subject = item.subject
    name = f"{getattr(subject, 'given_name', '')} {getattr(subject, 'family_name', '')}".strip()
    return f"{name} ({subject.identifier})"


_COUNT = {2: "two", 3: "three", 4: "four"}


def _study_grant(country: str) -> list[str]:
    """The guide's T3 lines: the preview, and the choice of provider where the diploma has several."""
    from oots.provider.samples import SAMPLE_COUNTRIES, sample_data_service

    others = sample_data_service(country, "diplomas").other_authorities if country in SAMPLE_COUNTRIES else ()
    if not others:
        return [
            "  - T3 (a study grant): the diploma service shows you the diploma and its supplement first, in its",
            "    preview space (log in there again); accept one and refuse the other: only the accepted one arrives;",
        ]
    return [
        f"  - T3 (a study grant): {_COUNT.get(len(others) + 1, len(others) + 1)} authorities issue the diploma"
        " certificate, so the portal asks who",
        "    should provide it; the diploma service then shows you the diploma and its supplement first, in its",
        "    preview space (log in there again); accept one and refuse the other: only the accepted one arrives,",
        "    issued by the authority you chose;",
    ]


#: The Evidence Broker's requirements query (``oots.cs.queries.EB_REQUIREMENTS``).
_REQUIREMENTS_QUERY = "urn:fdc:oots:eb:ebxml-regrep:queries:requirements-by-procedure-and-jurisdiction"


def _example_query(country: str | None) -> str:
    """The query string of an Evidence Broker query that answers from the demo catalogue."""
    return f"queryId={_REQUIREMENTS_QUERY}&procedure-id=R1" + (f"&country-code={country}" if country else "")


def guide(network: NetworkPlan) -> str:
    """The short text that tells a newcomer where to start and what to try."""
    requesters = [(c, s) for c, (_, s, roles) in network.nodes.items() if "requester" in roles]
    cs = network.common_services.url
    rows = [
        ("Common Services (EB + DSD)", f"{cs}/health"),
        (
            "  e.g. the requirements of R1",
            f"{cs}/rest/search?{_example_query(requesters[0][0] if requesters else None)}",
        ),
        ("eID test identity provider", f"{network.eid.url}/"),
    ]
    rows += [(f"{c} node ({', '.join(roles) or 'no role'})", f"{s.url}/") for c, (_, s, roles) in network.nodes.items()]
    width = max(len(label) for label, _ in rows)
    lines = ["", "The local OOTS network is running:", ""]
    lines += [f"  {label:<{width}}   {url}" for label, url in rows]
    providers = [c for c, (_, _, roles) in network.nodes.items() if "provider" in roles]
    lines.append("")
    if requesters and providers:
        country, portal = requesters[0]
        other = next((c for c in providers if c != country), providers[0])
        known, unknown = _citizens(network, other)
        lines += [
            f"Start here: {portal.url}/portal/  (the {country} procedure portal)",
            f"  log in with eID as {_who(known, f'a citizen of {other}')}: at the eID test provider choose {other},",
            "  the first person and level High (some documents need it). Then apply, with the documents held by",
            f"  {other}, for:",
            *_study_grant(other),
            '  - R1 (a birth certificate) with "no preview" ticked: the certificate arrives at once; without it,',
            "    you see it first, and refusing it ends the application with a clear reason;",
        ]
        if "DE" in providers and other != "DE":
            lines.append(
                "  - R1 with the documents held by DE: the portal first asks where you were born (a follow-up"
                " question;\n    answer with a region code, DE6 for Hamburg) and then names the registry office it"
                " will ask;\n    you are in no German register, so it ends with"
                ' "The authority found no record for you";'
            )
        lines.append(
            f"  - as {_who(unknown, 'a person the registers do not know')}, whom no register knows: a clear refusal."
        )
    else:
        lines.append("Start here: the node pages above (the requester and provider roles are not in this build).")
    if network.admin_password:
        lines += [
            "",
            f"Admin area of every node: <node URL>/admin  (password {network.admin_password});"
            " metrics: <node URL>/metrics",
        ]
    if network.skipped_roles:
        lines.append("")
        lines.append("Roles not available in this build, skipped: " + ", ".join(network.skipped_roles))
    lines += ["", f"Files, databases and logs: {network.directory}", "Press Ctrl-C to stop everything.", ""]
    return "\n".join(lines)


def _check_ports(topology: Topology, base_port: int) -> None:
    """Refuse to start (:class:`PortsInUse`) when a port the network needs is taken, before writing anything."""
    from oots.errors import ConfigError
    from oots.network.plan import planned_ports
    from oots.network.supervisor import PortsInUse, ports_in_use

    ports = planned_ports(topology, base_port)
    if min(ports.values()) < 1 or max(ports.values()) > 65535:
        raise ConfigError(
            f"--base-port {base_port}: this network needs the ports {min(ports.values())} to {max(ports.values())},"
            " which must lie between 1 and 65535; choose another --base-port",
            [("base_port", "out of range")],
        )
    taken = ports_in_use(ports.values())
    if not taken:
        return
    named = ", ".join(f"{port} ({name})" for name, port in ports.items() if port in taken)
    offsets = [port - base_port for port in ports.values()]
    hint = next(
        (b for b in range(base_port + 100, 65536 - max(offsets), 100) if not ports_in_use(b + o for o in offsets)),
        None,
    )
    other = f"oots demo --base-port {hint}" if hint is not None else "oots demo --base-port N"
    raise PortsInUse(
        f"port(s) already in use: {named}. Another program listens there, perhaps another oots demo. "
        f"Stop it (Ctrl-C where it runs), or start this one on other ports: {other}",
        taken,
    )


def demo(
    base_port: Annotated[int, typer.Option("--base-port", help="First port; every service gets one from here.")] = 8000,
    topology: Annotated[
        str, typer.Option("--topology", help="A topology file (TOML); default: three countries.")
    ] = DEFAULT_TOPOLOGY,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Where keys, configs, databases and logs go.")] = Path(
        "var/demo"
    ),
) -> int:
    """Start the local OOTS network (Common Services, eID provider, Member State nodes); Ctrl-C stops it.

    Exit codes: 0 stopped with Ctrl-C (or SIGTERM); 1 a service did not start, or stopped on its own;
    2 a port the network needs is in use or out of range (nothing is written or started), or the topology
    is wrong.
    """
    from oots.network import Supervisor, load_topology, plan

    shape = load_topology(topology)
    _check_ports(shape, base_port)
    network = plan(shape, data_dir, base_port=base_port)
    supervisor = Supervisor(network.services, progress=typer.echo)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        supervisor.start()
        typer.echo(guide(network))
        while not stop.wait(0.5):
            supervisor.check()  # a service that stopped on its own stops the demo (exit 1)
    finally:
        typer.echo("oots demo: stopping ...")
        supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        typer.echo("oots demo: stopped")
    return 0


def register(root: typer.Typer) -> None:
    root.command("demo")(demo)
