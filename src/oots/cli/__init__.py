"""The ``oots`` command.

Each command group lives in its own module of this package, which adds itself to :data:`app` through
a ``register(app)`` function (found by :func:`_register`; there is no list to edit here). Those modules
import only Typer and the standard library at the top: a command imports its own packages when it runs
(``tests/unit/cli/test_cli_lazy.py``), so that ``oots --version`` or ``oots validate`` does not load the
node, the AS4 package, cryptography or the settings.
Errors from the :mod:`oots.errors` tree become a plain sentence with an error id and the tree's exit
code; a traceback is printed only with ``--debug``. Exit codes: 0 success, 1 a check failed (an
invalid document, a bad signature), 2 unusable input or configuration, 70 an internal error (a bug: one
line with an error id, the traceback with ``--debug``), 130 interrupted.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
import traceback
import uuid
from collections.abc import Callable
from typing import Annotated, Any

import typer

from oots import __version__
from oots.errors import OotsError

__all__ = ["EXIT_INTERNAL", "app", "main"]

# httpx imports its own command-line client with itself whenever click and rich are installed (typer
# brings both): rich and pygments, about 100 modules and 5-6 MB resident in every oots process that
# imports httpx (a node, the demo, the clients), which never runs that client. A module marked absent
# makes httpx define its stand-in instead. Only the `oots` command does this, not the library: it is
# the program, so the process is its own.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

#: Exit code of an unexpected error (a bug), as sysexits.h's EX_SOFTWARE.
EXIT_INTERNAL = 70

app = typer.Typer(
    name="oots",
    help="oots — the Once-Only Technical System: nodes, access point, common services, validator, demo network.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"oots {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
) -> None:
    """oots — the Once-Only Technical System."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _register() -> None:
    """Add every command group: each module of this package with a ``register(app)`` function."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(app)


_register()


def _usage_piece(argument: Any) -> Callable[[Any], list[str]]:
    """The usage line's word for an argument as docs/cli.md spells it: ``CONFIG``, ``[JOB_IDS]...``.

    Typer writes a required argument as ``{config}``, which reads like a placeholder left unfilled."""
    word = str(argument.metavar or argument.name).upper()
    if not argument.required:
        word = f"[{word}]"
    if argument.nargs != 1:
        word += "..."
    return lambda ctx: [word]


def _readable_usage(command: Any) -> Any:
    """``command`` and every subcommand, each argument's usage word made readable (:func:`_usage_piece`)."""
    for param in getattr(command, "params", ()):
        if getattr(param, "param_type_name", "") == "argument":
            param.get_usage_pieces = _usage_piece(param)
    for sub in getattr(command, "commands", {}).values():
        _readable_usage(sub)
    return command


def _is_usage_error(exc: BaseException) -> bool:
    """Click's own errors (wrong options, missing arguments), whichever click Typer bundles."""
    return hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``oots`` console script."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        result = _readable_usage(typer.main.get_command(app))(args=args, prog_name="oots", standalone_mode=False)
    except OotsError as exc:
        if debug:
            traceback.print_exc()
        typer.echo(f"error: {exc.message} (error id {exc.error_id})", err=True)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        if _is_usage_error(exc):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        error_id = uuid.uuid4().hex[:12]
        if debug:
            traceback.print_exc()
        typer.echo(
            f"internal error: {type(exc).__name__}: {exc} (error id {error_id}); "
            "please report it — `oots --debug ...` shows the traceback",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)
    sys.exit(result if isinstance(result, int) else 0)
