"""`skyclass compliance …`: verify the as-run, export its heads, list it, audit what aired.

Commands hang off ``compliance_app``; another module adds its own with
``@compliance_app.command(...)`` and is imported by ``register`` below.
Exit codes: 0 done (an audit with findings is done too), 1 the as-run failed
verification, 2 bad input (unknown channel, inverted dates, unreadable file).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Protocol, cast
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from channels import Channel, ChannelRegistry
from compliance.asrun import AsRunTable
from compliance.audit import AuditContext, audit_window, day_start, run_audit
from compliance.errors import AsRunTampered, ComplianceInputError
from compliance.verify import ChainHead, Verifier, VerifyReport, heads_json, load_heads
from core.clock import Clock
from grading import GradingPolicy

logger = logging.getLogger(__name__)


class ComplianceRuntime(Protocol):
    """The slice of the shell's Runtime that compliance commands use."""

    @property
    def registry(self) -> ChannelRegistry: ...

    @property
    def grading_policy(self) -> GradingPolicy: ...

    @property
    def zone(self) -> ZoneInfo: ...

    @property
    def media_root(self) -> Path: ...

    @property
    def var_dir(self) -> Path: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def engine(self) -> Engine: ...

    def sessions(self) -> sessionmaker[Session]: ...


compliance_app = typer.Typer(
    help="Compliance (安全播出与稽核): verify the as-run, list it, audit what aired.",
    no_args_is_help=True,
)


def _runtime(ctx: typer.Context) -> ComplianceRuntime:
    return cast(ComplianceRuntime, ctx.obj)


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ComplianceInputError(
            f"{option} {text!r} is not a date: use YYYY-MM-DD, e.g. 2026-09-01"
        ) from None


def _instant(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ComplianceInputError(
            f"{option} {text!r} is not an ISO time with an offset, e.g. 2026-09-01T10:30:00+08:00"
        )
    return value.astimezone(UTC)


def _recorded_channels(runtime: ComplianceRuntime) -> list[str]:
    """Channels with an as-run: in the table or with a journal in var/asrun."""
    found = set(AsRunTable(runtime.sessions()).channels())
    folder = runtime.var_dir / "asrun"
    if folder.is_dir():
        found |= {p.name.removesuffix(".jsonl") for p in folder.glob("*.jsonl")}
    return sorted(found)


def _channel_ids(runtime: ComplianceRuntime, wanted: list[str] | None) -> list[str]:
    """The channels asked for (each known to the registry or the as-run), else all of them."""
    recorded = _recorded_channels(runtime)
    if not wanted:
        listed = [c.id for c in runtime.registry]
        return listed + [c for c in recorded if c not in listed]
    out: list[str] = []
    for channel_id in wanted:
        if runtime.registry.find(channel_id) is None and channel_id not in recorded:
            runtime.registry.get(channel_id)  # raises: unknown channel, naming the known ones
        out.append(channel_id)
    return list(dict.fromkeys(out))


def _verify(
    runtime: ComplianceRuntime, channel_ids: list[str], against: Path | None
) -> VerifyReport:
    verifier = Verifier(
        var_dir=runtime.var_dir,
        table=AsRunTable(runtime.sessions()),
        engine=runtime.engine,
        heads=load_heads(against) if against is not None else {},
    )
    return verifier.run(channel_ids, now=runtime.clock.now())


@compliance_app.command("verify")
def verify_command(
    ctx: typer.Context,
    channel: Annotated[
        list[str] | None, typer.Option("--channel", help="Channel id (repeat; default: all).")
    ] = None,
    against: Annotated[
        Path | None,
        typer.Option("--against", help="Heads exported earlier (`compliance heads --json`)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check the as-run journal and table (hash chains, each other, exported heads).

    Exit 1 names the first edited, deleted, reordered or truncated record.
    """
    runtime = _runtime(ctx)
    report = _verify(runtime, _channel_ids(runtime, channel), against)
    if as_json:
        typer.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        for verdict in report.channels:
            if verdict.journal_records is None and not verdict.table_records:
                continue
            state = "ok" if verdict.ok else "FAILED"
            head = (
                f", head seq {verdict.head.seq} {verdict.head.hash[:16]}…" if verdict.head else ""
            )
            typer.echo(
                f"{verdict.channel_id}: {state} (journal {verdict.journal_records}, "
                f"table {verdict.table_records}{head})"
            )
            for problem in verdict.problems:
                typer.echo(f"  {problem.source}: {problem.message}")
            for note in verdict.notes:
                typer.echo(f"  note: {note}")
        for problem in report.problems:
            typer.echo(f"database: {problem.message}")
    problems = report.all_problems
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise AsRunTampered(f"as-run verification failed: {problems[0]}{more}")


@compliance_app.command("heads")
def heads_command(
    ctx: typer.Context,
    channel: Annotated[
        list[str] | None, typer.Option("--channel", help="Channel id (repeat; default: all).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the heads file (JSON).")] = False,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the heads file here.")
    ] = None,
) -> None:
    """Export each channel's chain head (sequence and hash), after verifying the chains.

    Keep the file away from this machine: `verify --against FILE` later detects a
    rewrite of the whole chain, every hash recomputed.
    """
    runtime = _runtime(ctx)
    report = _verify(runtime, _channel_ids(runtime, channel), None)
    broken = [p for v in report.channels for p in v.problems]
    if broken:
        raise AsRunTampered(
            f"no heads exported: the as-run fails verification: {broken[0]} "
            "(`skyclass compliance verify` lists every problem)"
        )
    heads = [v.head for v in report.channels if v.head is not None]
    data = heads_json(heads, runtime.clock.now())
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        typer.echo(f"{output}: heads of {len(heads)} channel(s)")
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
    elif output is None:
        _heads_table(heads)


def _heads_table(heads: list[ChainHead]) -> None:
    table = Table(title=f"as-run chain heads ({len(heads)} channels)")
    for column in ("channel", "seq", "hash"):
        table.add_column(column)
    for head in heads:
        table.add_row(head.channel_id, str(head.seq), head.hash)
    Console().print(table)


@compliance_app.command("asrun")
def asrun_command(
    ctx: typer.Context,
    channel_id: Annotated[str, typer.Option("--channel", help="Channel id.")],
    start: Annotated[
        str | None, typer.Option("--from", help="First broadcast day YYYY-MM-DD.")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last broadcast day YYYY-MM-DD.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the as-run (播出记录) of a channel from the database, with each record's hash."""
    runtime = _runtime(ctx)
    (channel,) = _channel_ids(runtime, [channel_id])
    first, last = _day(start, "--from"), _day(end, "--to")
    if first is not None and last is not None:
        audit_window(first, last)
    zone = runtime.zone
    entries = AsRunTable(runtime.sessions()).entries(
        [channel],
        scheduled_from=day_start(first, zone) if first else None,
        scheduled_to=day_start(last + timedelta(days=1), zone) if last else None,
    )
    if as_json:
        rows = [
            {"seq": e.seq, "prev": e.prev, "hash": e.hash, **e.record.as_json()} for e in entries
        ]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    table = Table(title=f"as-run {channel} ({len(entries)} records)")
    columns = ("seq", "event", "type", "scheduled", "actual", "frames", "asset", "outcome")
    for column in (*columns, "reason", "hash"):
        table.add_column(column)
    for e in entries:
        r = e.record
        table.add_row(
            str(e.seq),
            r.event_id,
            r.event_type,
            r.scheduled_start.astimezone(zone).strftime("%m-%d %H:%M:%S"),
            r.actual_start.astimezone(zone).strftime("%m-%d %H:%M:%S.%f")[:-4],
            f"{r.duration_frames}/{r.scheduled_frames}",
            r.asset_id or "-",
            r.outcome.value,
            r.reason,
            e.hash[:12],
        )
    Console().print(table)


@compliance_app.command("audit")
def audit_command(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--from", help="First broadcast day YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--to", help="Last broadcast day YYYY-MM-DD.")],
    channel: Annotated[
        list[str] | None, typer.Option("--channel", help="Channel id (repeat).")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Every channel of the registry.")] = False,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="Audit air only up to this ISO time (e.g. when a run was stopped); "
            "an event on air then is judged on its start only.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Audit what aired against the schedule, the ad rules, the library and the guides."""
    runtime = _runtime(ctx)
    if bool(channel) == every:
        raise ComplianceInputError("give --channel ID (repeatable) or --all, not both or neither")
    first, last = _day(start, "--from"), _day(end, "--to")
    assert first is not None and last is not None
    channels: list[Channel] = (
        list(runtime.registry) if every else [runtime.registry.get(c) for c in channel or []]
    )
    context = AuditContext(
        channels=list(dict.fromkeys(channels)),
        first=first,
        last=last,
        zone=runtime.zone,
        sessions=runtime.sessions(),
        grading=runtime.grading_policy,
        now=runtime.clock.now(),
        media_root=runtime.media_root,
        var_dir=runtime.var_dir,
        until=_instant(until, "--until"),
    )
    report = run_audit(context)
    if as_json:
        typer.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
        return
    console = Console()
    table = Table(title=f"audit {first} – {last}: {len(report.findings)} finding(s)")
    for column in ("time", "channel", "code", "severity", "finding", "id"):
        table.add_column(column)
    for finding in report.findings:
        table.add_row(
            finding.at.astimezone(runtime.zone).strftime("%Y-%m-%d %H:%M:%S"),
            finding.channel_id,
            finding.code,
            finding.severity.value,
            finding.message,
            finding.id,
        )
    console.print(table)
    counts = ", ".join(f"{code} {n}" for code, n in report.counts.items()) or "none"
    console.print(f"findings by code: {counts}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``compliance`` group, with the commands (and auditors) of the off-air side."""
    from compliance import offair_cli  # record, monitor, report; the off-air auditor

    offair_cli.register(compliance_app)
    app.add_typer(compliance_app, name="compliance")
    from compliance import receive_cli  # `skyclass receive --merge`: the ST 2022-7 receiver

    receive_cli.register(app)
    from compliance.offair_cli import register as register_offair  # record, monitor, report

    register_offair(compliance_app)
