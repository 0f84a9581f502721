"""The `skyclass` command. Each package registers its own commands here.

Exit codes: 0 success, 2 bad input (one clear line), 1 any other failure.
`--debug` shows tracebacks.
"""

from __future__ import annotations

import errno
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

import channels.cli
import compliance.cli
import epg.cli
import farm.cli
import grading.cli
import ingest.cli
import playout.cli
import skyclass.demo
import skyclass.station
import skyclass.up
import skyclass.web
from core.errors import BadInputError, SkyclassError
from skyclass import __version__
from skyclass.database import current_revisions, head_revisions, upgrade
from skyclass.logs import configure_logging
from skyclass.runtime import Runtime
from skyclass.settings import load_settings

app = typer.Typer(
    name="skyclass",
    help="空中课堂 playout and scheduling.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"skyclass {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML settings file (or SKYCLASS_CONFIG).", dir_okay=False),
    ] = None,
) -> None:
    configure_logging(debug=debug)
    if ctx.obj is None:
        ctx.obj = Runtime(load_settings(config), debug=debug)


db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Bring the database schema up to date."""
    runtime: Runtime = ctx.obj
    upgrade(runtime.engine)
    typer.echo(f"database at revision {', '.join(current_revisions(runtime.engine)) or '(empty)'}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the schema revision and the newest one available."""
    runtime: Runtime = ctx.obj
    current = ", ".join(current_revisions(runtime.engine)) or "(none)"
    heads = ", ".join(head_revisions(runtime.engine)) or "(none)"
    typer.echo(f"current: {current}  heads: {heads}")


app.add_typer(db_app, name="db")
grading.cli.register(app)
channels.cli.register(app)
epg.cli.register(app)
ingest.cli.register(app)
farm.cli.register(app)
playout.cli.register(app)
compliance.cli.register(app)
skyclass.station.register(app)
skyclass.up.register(app)
skyclass.demo.register(app)
skyclass.web.register(app)


def main(argv: list[str] | None = None, *, obj: Runtime | None = None) -> int:
    """Run the CLI; returns the exit code (the console script passes it to sys.exit)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    err = Console(stderr=True, soft_wrap=True)
    try:
        result = app(args=args, prog_name="skyclass", standalone_mode=False, obj=obj)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        return 130
    except typer.TyperException as exc:  # usage errors (Typer vendors click): exit code 2
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"error: {exc}", markup=False, highlight=False)
        return int(getattr(exc, "exit_code", 2))
    except BadInputError as exc:
        if debug:
            traceback.print_exc()
        err.print(f"error: {exc}", markup=False, highlight=False)
        return 2
    except SkyclassError as exc:
        if debug:
            traceback.print_exc()
        err.print(f"error: {exc}", markup=False, highlight=False)
        return 1
    except Exception as exc:  # a bug or the machine: say so, keep the traceback behind --debug
        if debug:
            traceback.print_exc()
        err.print(_unexpected(exc), markup=False, highlight=False)
        return 1
    return result if isinstance(result, int) else 0


def _unexpected(exc: Exception) -> str:
    """One line for an error nobody raised on purpose: a full disk says so and where;
    a database error shows the driver's message, not SQLAlchemy's statement dump."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = f" writing {exc.filename}" if exc.filename else ""
        return f"error: the disk is full{where}: free space there and run the command again"
    from sqlalchemy.exc import DBAPIError  # only when something failed

    if isinstance(exc, DBAPIError):
        orig = " ".join(str(exc.orig).split())[:200]
        return f"error: database error: {orig} (run with --debug for the statement)"
    text = " ".join(str(exc).split())[:300]
    return f"error: unexpected {type(exc).__name__}: {text} (run with --debug for the traceback)"


def run() -> None:
    sys.exit(main())
