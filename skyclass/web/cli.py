"""`skyclass serve` and `skyclass users add|passwd|list`.

Users are managed here, on the machine, not in the browser. The password comes
from SKYCLASS_PASSWORD (for scripts) or a prompt that does not echo. Every user
change is written to the audit log as ``cli:<os user>``.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from skyclass.runtime import Runtime
    from skyclass.web.users import UserStore

logger = logging.getLogger(__name__)

PASSWORD_ENV = "SKYCLASS_PASSWORD"

users_app = typer.Typer(
    help="Console users (roles: operator, reviewer, compliance, admin).", no_args_is_help=True
)


def _password(confirm: bool = True) -> str:
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    first = getpass.getpass("password: ")
    if confirm and getpass.getpass("again: ") != first:
        from skyclass.web.errors import UserError

        raise UserError("the two passwords differ: nothing was changed")
    return first


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _store(runtime: Runtime) -> UserStore:
    from skyclass.web.users import UserStore

    return UserStore(runtime.sessions())


def _audit(runtime: Runtime, action: str, target: str, **detail: object) -> None:
    from skyclass.web.audit import AuditLog

    AuditLog(runtime.sessions()).record(
        actor=_cli_actor(), action=action, target=target, at=runtime.clock.now(), detail=detail
    )


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Login name, e.g. wangfang or 王芳.")],
    role: Annotated[str, typer.Option("--role", help="operator, reviewer, compliance or admin.")],
) -> None:
    """Add a console user (password from SKYCLASS_PASSWORD or a prompt)."""
    from skyclass.web.users import parse_role

    runtime: Runtime = ctx.obj
    parsed = parse_role(role)
    user = _store(runtime).add(name, parsed, _password(), at=runtime.clock.now())
    _audit(runtime, "user.add", user.name, role=user.role.value)
    typer.echo(f"user {user.name} added ({user.role.value}, {user.role.name_zh})")


@users_app.command("passwd")
def users_passwd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Login name.")],
) -> None:
    """Set a user's password (from SKYCLASS_PASSWORD or a prompt); logs them out everywhere."""
    from skyclass.web.sessions import SessionStore

    runtime: Runtime = ctx.obj
    store = _store(runtime)
    if store.get(name) is None:
        from skyclass.web.errors import UserError

        raise UserError(f"no user {name!r}: `skyclass users list` shows them")
    user = store.set_password(name, _password(), at=runtime.clock.now())
    closed = SessionStore(runtime.sessions()).close_all(user)
    _audit(runtime, "user.passwd", user.name, sessions_closed=closed)
    typer.echo(f"password of {user.name} changed; {closed} session(s) logged out")


@users_app.command("list")
def users_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List console users and their roles."""
    runtime: Runtime = ctx.obj
    users = _store(runtime).list()
    if as_json:
        typer.echo(json.dumps([u.as_json() for u in users], ensure_ascii=False, indent=1))
        return
    if not users:
        typer.echo("no users yet: `skyclass users add NAME --role admin`")
        return
    zone = runtime.zone
    for user in users:
        typer.echo(
            f"{user.name}\t{user.role.value}\t{user.role.name_zh}\t"
            f"since {user.created_at.astimezone(zone):%Y-%m-%d %H:%M}"
        )


def register(app: typer.Typer) -> None:
    """Add `serve` and the `users` group to the skyclass CLI."""

    @app.command("serve")
    def serve(
        ctx: typer.Context,
        host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8080,
        guide_cache: Annotated[
            int, typer.Option("--guide-cache", min=0, help="Rendered guides kept (0: none).")
        ] = 64,
        metrics_token: Annotated[
            str | None,
            typer.Option(
                "--metrics-token",
                envvar="SKYCLASS_METRICS_TOKEN",
                help="Bearer token that lets Prometheus scrape /metrics without a login.",
            ),
        ] = None,
    ) -> None:
        """Serve the operator console, its JSON API, /metrics and the EPG pull API."""
        import uvicorn

        from skyclass.web.app import create_app

        runtime: Runtime = ctx.obj
        runtime.sessions()  # migrate before the first request, not during it
        logger.info("serving on http://%s:%d", host, port)
        uvicorn.run(
            create_app(runtime, guide_cache_size=guide_cache, metrics_token=metrics_token),
            host=host,
            port=port,
            log_level="warning",
        )

    app.add_typer(users_app, name="users")
