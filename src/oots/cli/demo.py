"""``oots demo``: start a local OOTS network on this machine and print where to click."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from oots.node import create_app
from oots.settings import DatabaseSettings, NodeSettings, Settings


def demo(
    base_port: Annotated[int, typer.Option("--base-port", help="First port; every service gets one from here.")] = 8000,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Where the demo keeps its databases.")] = Path(
        "var/demo"
    ),
) -> int:
    """Start the local demo network (for now: one node) and stop it cleanly on Ctrl-C."""
    node_dir = data_dir / "node"
    node_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{base_port}/"
    settings = Settings(
        node=NodeSettings(name="demo-node", country="EU", data_dir=node_dir, base_url=url.rstrip("/")),
        database=DatabaseSettings(),
    )
    typer.echo(f"oots demo: node running at {url}  (Ctrl-C stops it)")
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=base_port, log_level="warning")
    uvicorn.Server(config).run()
    typer.echo("oots demo: stopped")
    return 0


def register(root: typer.Typer) -> None:
    root.command("demo")(demo)
