"""`skyclass schedule …`, `skyclass rundown …` and `skyclass epg …` commands."""

from __future__ import annotations

import errno
import getpass
import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from core.errors import BadInputError
from epg.cells import FIRST_DAY, LAST_DAY, shown
from epg.eit import si_events, si_transport_stream
from epg.errors import ScheduleRejected, StorageFullError
from epg.rundown import rundown_path
from epg.schedule import broadcast_date_of
from epg.si import TextEncoding
from epg.xmltv import check_document

if TYPE_CHECKING:
    from epg.context import EpgRuntime, EpgServices

schedule_app = typer.Typer(
    help="Weekly schedules (周播表): load, history, rollback.", no_args_is_help=True
)
rundown_app = typer.Typer(help="Rundowns (播出单) for playout.", no_args_is_help=True)
epg_app = typer.Typer(help="Guides: XMLTV, DVB SI, partner keys.", no_args_is_help=True)
partners_app = typer.Typer(help="Partner (省级台) API keys.", no_args_is_help=True)
epg_app.add_typer(partners_app, name="partners")


def _services(ctx: typer.Context) -> EpgServices:
    # The importer pulls in openpyxl and the compiler: only for the commands that use them.
    from epg.context import EpgServices

    return EpgServices(cast("EpgRuntime", ctx.obj))


def _date(text: str, option: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadInputError(f"{option} {shown(text)} is not a date: use YYYY-MM-DD") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BadInputError(f"{option} {day} is outside {FIRST_DAY.year}–{LAST_DAY.year}")
    return day


def _instant(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadInputError(
            f"{option} {text!r} is not an ISO time, e.g. 2026-03-02T08:10:00+08:00"
        ) from None
    if value.tzinfo is None:
        raise BadInputError(f"{option} {text!r} has no UTC offset: add +08:00 (Beijing) or Z")
    return value.astimezone(UTC)


def _user(given: str | None) -> str:
    return given or os.environ.get("SKYCLASS_USER") or getpass.getuser()


def _write(data: bytes, output: Path | None) -> None:
    if output is None:
        typer.echo(data.decode("utf-8"), nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(data)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        raise StorageFullError(
            f"{output}: the disk is full, the file is incomplete: free space there and run "
            "the command again"
        ) from None


# -- schedule ------------------------------------------------------------------


@schedule_app.command("load")
def load(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Schedule: .xlsx, .csv or .json", dir_okay=False)],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate only; store nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    user: Annotated[
        str | None, typer.Option("--user", help="Who loads it (default: $USER).")
    ] = None,
) -> None:
    """Validate a weekly schedule and store it as a new version (all or nothing)."""
    services = _services(ctx)
    err = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=err,
        transient=True,
        disable=as_json or not err.is_terminal,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=max(total, 1))
            bar.update(tasks[stage], completed=done)

        try:
            result = services.importer.load(
                file,
                created_by=_user(user),
                at=services.runtime.clock.now(),
                dry_run=dry_run,
                progress=progress,
            )
        except ScheduleRejected as exc:
            if as_json:
                typer.echo(json.dumps(exc.as_json(), ensure_ascii=False, indent=2))
            raise
        except BadInputError as exc:
            if as_json:  # the file could not be read at all: one error, no row list
                refusal = {"source": file.name, "ok": False, "errors": [{"message": str(exc)}]}
                typer.echo(json.dumps(refusal, ensure_ascii=False, indent=2))
            raise
    if as_json:
        typer.echo(json.dumps(result.as_json(), ensure_ascii=False, indent=2))
        return
    console = Console()
    for warning in result.report.warnings:
        console.print(f"warning: {result.report.source.name}: {warning}", markup=False)
    days = len(result.report.days)
    if result.version is None:
        console.print(
            f"{file.name}: valid, {result.report.event_count} events on {days} "
            "channel-day(s) (dry run: nothing stored)"
        )
        return
    console.print(
        f"{file.name}: stored as schedule version {result.version.number}: "
        f"{result.report.event_count} events on {days} channel-day(s)"
    )
    for diff in result.version.diffs:
        if not diff.unchanged:
            console.print(
                f"  {diff.channel_id} {diff.broadcast_date}: "
                f"+{len(diff.added)} -{len(diff.removed)}"
            )


@schedule_app.command("history")
def history(
    ctx: typer.Context,
    channel: Annotated[str, typer.Option("--channel", help="Channel id.")],
    day: Annotated[str, typer.Option("--date", help="Broadcast day YYYY-MM-DD.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List the versions of one channel-day, newest (current) first."""
    services = _services(ctx)
    versions = services.schedules.history(
        services.runtime.registry.get(channel).id, _date(day, "--date")
    )
    if as_json:
        typer.echo(json.dumps([v.as_json() for v in versions], ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{channel} {day}")
    for column in ("version", "by", "at (北京时间)", "source", "sha256", "changes", "note"):
        table.add_column(column)
    zone = services.runtime.zone
    for index, v in enumerate(versions):
        diff = v.diffs[0] if v.diffs else None
        changes = f"+{len(diff.added)} -{len(diff.removed)}" if diff else ""
        table.add_row(
            f"{v.number}{' (current)' if index == 0 else ''}",
            v.created_by,
            v.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            v.source_name,
            v.source_sha256[:12],
            changes,
            v.note,
        )
    Console().print(table)


@schedule_app.command("rollback")
def rollback(
    ctx: typer.Context,
    channel: Annotated[str, typer.Option("--channel", help="Channel id.")],
    day: Annotated[str, typer.Option("--date", help="Broadcast day YYYY-MM-DD.")],
    to: Annotated[
        int | None, typer.Option("--to", help="Version to restore (default: the one before).")
    ] = None,
    user: Annotated[str | None, typer.Option("--user")] = None,
) -> None:
    """Make an earlier version of a channel-day current again (stored as a new version)."""
    services = _services(ctx)
    version = services.schedules.rollback(
        services.runtime.registry.get(channel).id,
        _date(day, "--date"),
        to=to,
        created_by=_user(user),
        at=services.runtime.clock.now(),
    )
    typer.echo(f"schedule version {version.number}: {version.note}")


# -- rundown -------------------------------------------------------------------


@rundown_app.command("compile")
def compile_rundown(
    ctx: typer.Context,
    channel: Annotated[str, typer.Option("--channel", help="Channel id.")],
    day: Annotated[str, typer.Option("--date", help="Broadcast day YYYY-MM-DD (Beijing).")],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Rundown JSON (default: var/rundowns/ID/DATE.json)."),
    ] = None,
) -> None:
    """Compile one channel's frame-exact rundown for one broadcast day."""
    services = _services(ctx)
    broadcast = _date(day, "--date")
    rundown = services.compiler.compile(channel, broadcast)
    path = output or rundown_path(services.rundown_dir, rundown.channel_id, broadcast)
    rundown.save(path)
    typer.echo(f"{path}: {len(rundown.events)} events, schedule version {rundown.schedule_version}")


@rundown_app.command("compile-all")
def compile_all(
    ctx: typer.Context,
    day: Annotated[str, typer.Option("--date", help="Broadcast day YYYY-MM-DD (Beijing).")],
) -> None:
    """Compile every channel's rundown for a day into var/rundowns (for the playout supervisor)."""
    services = _services(ctx)
    written = services.compiler.compile_all(_date(day, "--date"), services.rundown_dir)
    for channel_id, path in written.items():
        typer.echo(f"{channel_id}: {path if path else 'no schedule'}")


# -- epg -----------------------------------------------------------------------


@epg_app.command("xmltv")
def xmltv(
    ctx: typer.Context,
    channel: Annotated[
        list[str] | None, typer.Option("--channel", help="Channel id (repeat; default all).")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="First day YYYY-MM-DD (default: today, Beijing).")
    ] = None,
    days: Annotated[int, typer.Option("--days", min=1, max=31, help="Number of days.")] = 7,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File (default: stdout).")
    ] = None,
) -> None:
    """Export the guide as XMLTV (UTF-8, Beijing times with +0800)."""
    services = _services(ctx)
    runtime = services.runtime
    ids = (
        [runtime.registry.get(c).id for c in channel]
        if channel
        else [c.id for c in runtime.registry]
    )
    first = (
        _date(start, "--from") if start else broadcast_date_of(runtime.clock.now(), runtime.zone)
    )
    document = services.xmltv.export(ids, first, days)
    check_document(document.body)
    _write(document.body, output)


@epg_app.command("si")
def si(
    ctx: typer.Context,
    channel: Annotated[str, typer.Option("--channel", help="Channel id.")],
    at: Annotated[
        str, typer.Option("--at", help="ISO time with offset, e.g. 2026-03-02T08:10:00+08:00")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="TS file to write.")],
    utf8: Annotated[
        bool, typer.Option("--utf8", help="Code text as UTF-8 (0x15) instead of GB2312.")
    ] = False,
) -> None:
    """Write the DVB SI valid at an instant (SDT 0x11, EIT 0x12, TDT/TOT 0x14) as TS packets."""
    services = _services(ctx)
    runtime = services.runtime
    target = runtime.registry.get(channel)
    moment = _instant(at, "--at")
    day = broadcast_date_of(moment, runtime.zone)
    events = si_events(services.compiler.epg_horizon(target.id, day))
    encoding = TextEncoding.UTF8 if utf8 else TextEncoding.GB2312
    data = si_transport_stream(
        target, runtime.registry, events, moment, zone=runtime.zone, encoding=encoding
    )
    _write(data, output)
    typer.echo(f"{output}: {len(data) // 188} TS packets, {len(events)} EIT events")


@partners_app.command("add")
def partners_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Partner name, e.g. 湖北广电")],
    channels: Annotated[str, typer.Option("--channels", help="Channel ids, comma separated.")],
    as_json: Annotated[bool, typer.Option("--json", help='Print {"key": ...}.')] = False,
) -> None:
    """Create a partner and print its API key (shown once; only its hash is stored)."""
    services = _services(ctx)
    registry = services.runtime.registry
    ids = [registry.get(c.strip()).id for c in channels.split(",") if c.strip()]
    if not ids:
        raise BadInputError("--channels names no channel: e.g. --channels g03.skyclass.cn")
    partner, key = services.partners.add(name, ids, at=services.runtime.clock.now())
    if as_json:
        typer.echo(
            json.dumps(
                {"key": key, "name": partner.name, "channels": list(partner.channels)},
                ensure_ascii=False,
            )
        )
        return
    typer.echo(f"partner {partner.name}: {', '.join(partner.channels)}")
    typer.echo(f"key (shown once, send it securely): {key}")


@partners_app.command("list")
def partners_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List partners and the channels each may pull (keys are never shown)."""
    partners = _services(ctx).partners.list()
    if as_json:
        typer.echo(json.dumps([p.as_json() for p in partners], ensure_ascii=False, indent=2))
        return
    table = Table(title="EPG partners (省级台)")
    for column in ("name", "channels", "created", "state"):
        table.add_column(column)
    for p in partners:
        table.add_row(
            p.name,
            ", ".join(p.channels),
            p.created_at.isoformat(timespec="seconds"),
            "active" if p.active else f"revoked {p.revoked_at:%Y-%m-%d}",
        )
    Console().print(table)


@partners_app.command("revoke")
def partners_revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Partner name.")],
) -> None:
    """Revoke a partner's key at once."""
    services = _services(ctx)
    partner = services.partners.revoke(name, at=services.runtime.clock.now())
    typer.echo(f"partner {partner.name}: key revoked")


def register(app: typer.Typer) -> None:
    app.add_typer(schedule_app, name="schedule")
    app.add_typer(rundown_app, name="rundown")
    app.add_typer(epg_app, name="epg")
