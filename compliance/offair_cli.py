"""`skyclass compliance record|monitor|report`: the off-air side of compliance.

``register(compliance_app)`` adds the three commands to the ``compliance`` group and
the off-air auditor to ``compliance audit`` (so its findings include ``cue_in_lesson``,
``offair_loudness``, ``offair_gap`` and ``ts_errors`` wherever recordings exist).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol, cast
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from channels.registry import ChannelRegistry
from compliance.errors import ComplianceInputError
from compliance.findings import Finding
from compliance.livemonitor import (
    INTERVAL_S,
    LiveMonitor,
    MonitorSummary,
    SummaryFile,
    monitor_path,
    run_live,
)
from compliance.offair import OffairConfig, load_asrun, offair_findings
from compliance.receiver import default_source, parse_source
from compliance.recording import Recorder, RecorderConfig, RecordingStore, recordings_root
from compliance.retention import DEFAULT_RETENTION_DAYS
from core.clock import Clock
from grading import GradingPolicy
from mpegts.monitor import TsReport, check_file

logger = logging.getLogger(__name__)

if TYPE_CHECKING:  # the audit module loads the database stack: only when auditing
    from compliance.audit import AuditContext


class OffairRuntime(Protocol):
    @property
    def registry(self) -> ChannelRegistry: ...

    @property
    def var_dir(self) -> Path: ...

    @property
    def zone(self) -> ZoneInfo: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def media_root(self) -> Path: ...

    @property
    def grading_policy(self) -> GradingPolicy: ...

    def sessions(self) -> sessionmaker[Session]: ...


class ReportFormat(StrEnum):
    HTML = "html"
    CSV = "csv"
    BXF = "bxf"


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (the loop then closes its files cleanly)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread; the caller stops us another way
        return

    def handler(signum: int, _frame: object) -> None:
        logger.info("signal %d: stopping", signum)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# --------------------------------------------------------------------------- record


def record(
    ctx: typer.Context,
    channel_id: Annotated[str, typer.Option("--channel", help="Channel id, e.g. g03.skyclass.cn")],
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="udp://ADDR:PORT[?iface=LOCAL] (default: the channel's UDP output; "
            "multicast is joined, RTP detected per datagram)",
        ),
    ] = None,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Recordings root (default var/recordings)")
    ] = None,
    retention_days: Annotated[
        int,
        typer.Option(
            "--retention-days", help="Keep recordings this many days (at least 7, by law)"
        ),
    ] = DEFAULT_RETENTION_DAYS,
    gap_seconds: Annotated[
        float, typer.Option("--gap-seconds", help="No datagram this long is a journaled gap")
    ] = 1.0,
    with_monitor: Annotated[
        bool,
        typer.Option(
            "--monitor", help="Also run the live monitor on the same socket (var/monitor/ID.jsonl)"
        ),
    ] = False,
) -> None:
    """Record a channel off air into hourly TS files until SIGTERM/SIGINT (播出录像)."""
    runtime = cast(OffairRuntime, ctx.obj)
    channel = runtime.registry.get(channel_id)
    src = parse_source(source) if source else default_source(channel)
    if gap_seconds <= 0:
        raise ComplianceInputError(f"--gap-seconds {gap_seconds}: give a positive number")
    config = RecorderConfig(
        root=directory or recordings_root(runtime.var_dir),
        zone=runtime.zone,
        retention_days=retention_days,
        gap_seconds=gap_seconds,
    )
    live = None
    if with_monitor:
        summaries = SummaryFile(monitor_path(runtime.var_dir, channel.id))
        live = LiveMonitor(channel.id, source=src.url, on_summary=summaries, clock=runtime.clock)
    recorder = Recorder(channel.id, src, config, clock=runtime.clock, tap=live)
    stop = threading.Event()
    typer.echo(f"recording {channel.id} from {src.url} into {recorder.channel_dir}")
    with stop_on_signals(stop):
        recorder.run(stop)
    if live is not None:
        live.finish()
    counters = recorder.counters
    typer.echo(
        f"stopped: {counters.datagrams} datagrams, {counters.bytes} bytes in "
        f"{len(counters.segments)} segment(s), {counters.gaps} gap(s) journaled"
    )


# -------------------------------------------------------------------------- monitor


def _print_report(console: Console, name: str, report: TsReport) -> None:
    console.print(
        f"{name}: priority 1 {'ok' if report.ok_priority1 else 'FAILED'}, "
        f"priority 2 {'ok' if report.ok_priority2 else 'FAILED'}, "
        f"PCR max interval {report.pcr_max_interval_ms} ms"
    )
    for check in report.checks:
        if check.priority in (1, 2):
            console.print(f"  {check.check_id:<5} {check.name:<36} {check.count}")


def _summary_line(summary: MonitorSummary) -> str:
    if not summary.signal:
        return f"{summary.end:%H:%M:%S} {summary.name}: 无信号 NO SIGNAL"
    errors = ", ".join(f"{k} {v}" for k, v in summary.errors.items()) or "ok"
    rate = f"{summary.bitrate_bps / 1e6:.3f} Mb/s" if summary.bitrate_bps else "-"
    ppm = summary.pcr_offset.ppm
    clock = f"PCR {ppm:+.1f} ppm" if ppm is not None else "PCR -"
    return f"{summary.end:%H:%M:%S} {summary.name}: {rate}, {clock}, {errors}"


def monitor(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Argument(metavar="FILE.ts|udp://ADDR:PORT", help="A TS file or a live UDP source"),
    ] = None,
    channel_id: Annotated[
        str | None,
        typer.Option("--channel", help="Channel (its UDP output if no target; names the log)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON (a line per summary)")] = False,
    minutes: Annotated[
        float | None, typer.Option("--minutes", help="Stop a live monitor after N minutes")
    ] = None,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds per live summary")
    ] = INTERVAL_S,
) -> None:
    """TR 101 290 priority 1/2 of a TS file or a live stream (监听监看); exit 1 on P1 errors."""
    runtime = cast(OffairRuntime, ctx.obj)
    console = Console()
    if target is not None and not target.startswith("udp://"):
        report = check_file(Path(target))
        if as_json:
            typer.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
        else:
            _print_report(console, target, report)
        if not report.ok_priority1:
            raise typer.Exit(1)
        return
    if target is None and channel_id is None:
        raise ComplianceInputError("give a FILE.ts, a udp://ADDR:PORT or --channel ID to monitor")
    if interval <= 0 or (minutes is not None and minutes <= 0):
        raise ComplianceInputError("--interval and --minutes must be positive")
    channel = runtime.registry.get(channel_id) if channel_id else None
    if target is not None:
        src = parse_source(target)
    else:
        assert channel is not None
        src = default_source(channel)
    name = channel.id if channel else src.slug
    log = SummaryFile(monitor_path(runtime.var_dir, name))

    def emit(summary: MonitorSummary) -> None:
        log(summary)
        if as_json:
            typer.echo(json.dumps(summary.as_json(), ensure_ascii=False))
        else:
            console.print(_summary_line(summary), markup=False, highlight=False)

    live = LiveMonitor(
        name, source=src.url, interval_s=interval, on_summary=emit, clock=runtime.clock
    )
    stop = threading.Event()
    if not as_json:
        console.print(f"monitoring {src.url} → {log.path}", markup=False, highlight=False)
    with stop_on_signals(stop):
        report = run_live(live, src, stop, seconds=None if minutes is None else minutes * 60)
    if not as_json:
        _print_report(console, name, report)
    if not report.ok_priority1:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- report


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ComplianceInputError(
            f"{option} {text!r} is not a date: use YYYY-MM-DD, e.g. 2026-09-01"
        ) from None


def _audit_findings(
    runtime: OffairRuntime, channel_id: str, first: date, last: date
) -> list[Finding]:
    """The as-run audit's findings (compliance I), without the off-air ones we add ourselves."""
    from compliance.audit import AuditContext, auditors, run_audit

    context = AuditContext(
        channels=[runtime.registry.get(channel_id)],
        first=first,
        last=last,
        zone=runtime.zone,
        sessions=runtime.sessions(),
        grading=runtime.grading_policy,
        now=runtime.clock.now(),
        media_root=runtime.media_root,
        var_dir=runtime.var_dir,
    )
    chosen = [a for a in auditors() if a is not offair_auditor]
    return list(run_audit(context, chosen).findings)


def report(
    ctx: typer.Context,
    channel_id: Annotated[str, typer.Option("--channel", help="Channel id")],
    first_text: Annotated[str, typer.Option("--from", help="First broadcast day, YYYY-MM-DD")],
    last_text: Annotated[str, typer.Option("--to", help="Last broadcast day, YYYY-MM-DD")],
    fmt: Annotated[ReportFormat, typer.Option("--format", help="html, csv or bxf")] = (
        ReportFormat.HTML
    ),
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here")] = None,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Recordings root (default var/recordings)")
    ] = None,
) -> None:
    """A daily or weekly compliance report: findings, as-run vs schedule, chain heads, loudness."""
    from compliance.reports import gather_report, render_bxf, render_csv, render_html

    runtime = cast(OffairRuntime, ctx.obj)
    channel = runtime.registry.get(channel_id)
    first, last = _day(first_text, "--from"), _day(last_text, "--to")
    if last < first:
        raise ComplianceInputError(
            f"--to {last.isoformat()} is before --from {first.isoformat()}: swap them"
        )
    extra = _audit_findings(runtime, channel.id, first, last)
    result = gather_report(
        channel_id=channel.id,
        channel_name=channel.name_zh,
        first=first,
        last=last,
        zone=runtime.zone,
        var_dir=runtime.var_dir,
        now=runtime.clock.now(),
        recordings=directory,
        extra_findings=extra,
    )
    body: bytes
    if fmt is ReportFormat.HTML:
        body = render_html(result).encode("utf-8")
    elif fmt is ReportFormat.CSV:
        body = render_csv(result).encode("utf-8-sig")
    else:
        body = render_bxf(result)
    if output is None:
        typer.echo(body.decode("utf-8-sig"))
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(body)
    typer.echo(
        f"{result.kind} report of {channel.id} {first.isoformat()}..{last.isoformat()}: "
        f"{len(result.findings)} finding(s) → {output}"
    )


# ------------------------------------------------------------------------ the auditor


def offair_auditor(context: AuditContext) -> Iterable[Finding]:
    """``compliance audit``'s view of the recordings: the off-air findings of each channel."""
    root = recordings_root(context.var_dir)
    found: list[Finding] = []
    for channel_id in context.channel_ids:
        if not RecordingStore(root, channel_id).exists:
            continue
        found += offair_findings(
            channel_id=channel_id,
            start=context.start,
            end=context.end,
            var_dir=context.var_dir,
            now=context.now if context.until is None else min(context.now, context.until),
            recordings=root,
            # The database copy if it has the period, else the channel's own journal.
            entries=context.asrun.get(channel_id) or load_asrun(context.var_dir, channel_id),
            config=OffairConfig(),
        )
    return found


def register(compliance_app: typer.Typer) -> None:
    """Add ``record``, ``monitor`` and ``report`` to the compliance group, and the off-air
    auditor to ``compliance audit``."""
    from compliance.audit import register_auditor

    compliance_app.command("record")(record)
    compliance_app.command("monitor")(monitor)
    compliance_app.command("report")(report)
    register_auditor(offair_auditor)


__all__ = ["offair_auditor", "register", "stop_on_signals"]
