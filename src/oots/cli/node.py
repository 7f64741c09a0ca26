"""``oots serve`` and ``oots worker``: run a node from its configuration file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer


def serve(
    config: Annotated[Path, typer.Argument(help="The node's TOML configuration file.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: the port of node.base_url).")] = None,
    with_worker: Annotated[
        bool, typer.Option("--with-worker", help="Also run the queue worker and AS4 sender in this process.")
    ] = False,
) -> int:
    """Serve the node's web endpoint (pages, APIs, AS4) until Ctrl-C or SIGTERM."""
    from oots.node.memory import limit_malloc_arenas

    limit_malloc_arenas()  # before any thread: see oots.node.memory
    from oots.node import build_context, create_app
    from oots.node.observe import configure_logging
    from oots.node.server import bind
    from oots.node.server import serve as serve_app
    from oots.settings import load_settings

    settings = load_settings(config)
    configure_logging(settings.log, node=settings.node.name)
    listen = port if port is not None else (urlsplit(settings.node.base_url).port or 8000)
    sock = bind(host, listen)  # a port in use is told before the database is migrated
    ctx = build_context(settings, config_dir=config.resolve().parent)
    app = create_app(ctx, with_worker=with_worker)
    typer.echo(f"{settings.node.name}: serving on http://{host}:{listen}/ (Ctrl-C stops)")
    serve_app(app, host=host, port=listen, sock=sock, shutdown_seconds=settings.node.shutdown_seconds)
    return 0


def worker(config: Annotated[Path, typer.Argument(help="The node's TOML configuration file.")]) -> int:
    """Run the node's background work (queue jobs, AS4 sending) until SIGTERM or SIGINT."""
    from oots.node.memory import limit_malloc_arenas

    limit_malloc_arenas()  # before any thread: see oots.node.memory
    from oots.node import build_context, create_worker
    from oots.node.observe import configure_logging
    from oots.settings import load_settings

    settings = load_settings(config)
    configure_logging(settings.log, node=settings.node.name)
    ctx = build_context(settings, config_dir=config.resolve().parent)
    typer.echo(f"{settings.node.name}: worker running (Ctrl-C stops after the current job)")
    create_worker(ctx).run_forever()
    return 0


def register(root: typer.Typer) -> None:
    root.command("serve")(serve)
    root.command("worker")(worker)
