"""`skyclass playout run|check|asrun` (and `up`, registered by playout.supervisor).

Hook for the real-time side: ``playout.supervisor.register(playout_app)`` adds
``up``; ``run`` paces with ``playout.pacer.Pacer`` and builds outputs with
``playout.outputs.open_output``, except ``check:`` outputs (playout.check_sink).

``run --epoch`` is one of a main/backup pair of twins (主备, SMPTE ST 2022-7): both
mux the channel from the same epoch, so their datagrams are byte-identical, RTP
headers included, from wherever each one joins the air (``_run_twin``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Protocol, TypeVar, cast
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from channels.registry import ChannelRegistry
from core.clock import Clock
from core.timecode import FPS
from epg.rundown import Rundown, RundownError, rundown_path
from mpegts import UDP_PAYLOAD
from mpegts.monitor import check_file
from playout.asrun.journal import AsRunJournal, recover
from playout.asrun.ledger import AsRunLedger, journal_path
from playout.check_sink import CheckSink, open_check_output
from playout.engine import CUE_PREROLL_SECONDS, PlayoutEngine
from playout.outputs.base import OutputSink
from playout.reload import check_rundown_for, install_reload_signal, slate_start
from playout.stream import AsRunMark, PlayoutError, PlayoutInputError, TsChunk
from playout.supervisor import ON_AIR, StopRequested, StopSignal, notify_supervisor

logger = logging.getLogger(__name__)

# Real time: byte 0 is due this much later than the warmed-up engine's measured
# start-up (scheduling on a busy machine); a start still late is tried again, later.
START_MARGIN = 0.15
START_ATTEMPTS = 3
WARM_UP_AHEAD = 1.0  # seconds after launch the warm-up starts at (near the real join)
# Datagrams per pacer wake-up (PCR-carrying ones still go exactly on time): a third of
# the wake-ups, the largest CPU cost of a channel (docs/benchmarks.md "## Playout").
PACING_BURST = 3
# The pacing thread's nice value where allowed (CAP_SYS_NICE): sends on time on a busy host.
PACING_NICE = -10
# A twin joins with the first chunk due at least this long after it was muxed: the
# pacer's read-ahead (0.5 s) is then filled long before its deadlines.
TWIN_JOIN_MARGIN = 0.3
CATCH_UP_NICE = 10
_T = TypeVar("_T")


class PlayoutRuntime(Protocol):
    @property
    def registry(self) -> ChannelRegistry: ...

    @property
    def var_dir(self) -> Path: ...

    @property
    def zone(self) -> ZoneInfo: ...

    @property
    def clock(self) -> Clock: ...

    def sessions(self) -> sessionmaker[Session]: ...


playout_app = typer.Typer(help="Playout (播出): run a channel, check a TS, read the as-run.")


def _parse_start(
    text: str | None, clock: Clock, zone: ZoneInfo, option: str = "--start"
) -> datetime:
    if text is None:
        return clock.now()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise PlayoutInputError(
            f"{option} {text!r} is not an ISO time: use e.g. 2026-09-01T08:00:00+08:00"
        ) from None
    return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)


@playout_app.command("run")
def run(
    ctx: typer.Context,
    channel_id: Annotated[str, typer.Option("--channel", help="Channel id, e.g. zt.skyclass.cn")],
    rundown_file: Annotated[
        Path | None, typer.Option("--rundown", help="Rundown JSON (default: var/rundowns/…)")
    ] = None,
    output: Annotated[
        list[str] | None,
        typer.Option("--output", help="udp://…, hls:DIR, file:PATH or check:[REPORT.json]"),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="Rundown position at launch (ISO time)")
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds")
    ] = None,
    fast: Annotated[bool, typer.Option("--fast", help="No pacing: as fast as possible")] = False,
    cue_preroll: Annotated[
        float,
        typer.Option("--cue-preroll", help="Seconds SCTE-35 cues arrive before their splice"),
    ] = CUE_PREROLL_SECONDS,
    epoch: Annotated[
        str | None,
        typer.Option(
            "--epoch",
            help="Main/backup twin: the rundown position (ISO time) both twins mux from; "
            "this one airs byte-identical datagrams from the first it can send on time",
        ),
    ] = None,
) -> None:
    """Play a channel's rundown as one continuous CBR MPEG-TS."""
    runtime = cast(PlayoutRuntime, ctx.obj)
    channel = runtime.registry.get(channel_id)
    # The rundown is at ``at`` at monotonic ``launch``: read together, or the stream is
    # early by whatever ran between them (the registry took 5-25 ms).
    launch = runtime.clock.monotonic()
    at = _parse_start(start, runtime.clock, runtime.zone)
    twin_epoch = (
        None if epoch is None else _parse_start(epoch, runtime.clock, runtime.zone, "--epoch")
    )
    if twin_epoch is not None and fast:
        raise PlayoutInputError("--epoch is for real time (twins on air): drop --fast")
    if twin_epoch is not None and twin_epoch > at:
        raise PlayoutInputError(
            f"--epoch {epoch} is after the rundown position at launch ({at.isoformat()}): "
            "give the start both twins share, e.g. the hour or the broadcast day's start"
        )
    rundown_dir = runtime.var_dir / "rundowns"
    day = at.astimezone(runtime.zone).date()
    path = rundown_file or rundown_path(rundown_dir, channel.id, day)
    try:
        rundown = Rundown.load(path)
        check_rundown_for(
            rundown, channel_id=channel.id, day=None if rundown_file else day, source=str(path)
        )
    except RundownError as exc:
        if fast:  # an offline render has no air to keep: say what is wrong (exit 2)
            raise
        # Never off air: the slate, an alarm, and the engine keeps watching the file.
        from epg.compiler import service_of

        service = service_of(channel, runtime.registry)
        rundown = slate_start(
            path, str(exc), service=service, day=day, zone=runtime.zone, clock=runtime.clock
        )
    urls = list(output or [o.url for o in channel.outputs])
    # A torn tail is set aside (and journaled as a gap), never a reason not to start.
    ledger = AsRunLedger.for_writer(journal_path(runtime.var_dir, channel.id))
    # A previous process that died mid-event: record what it aired, and say why we join late.
    interrupted = recover(ledger)
    # A new version of the file (or SIGHUP from `playout up`) splices in future events.
    install_reload_signal()
    engine = PlayoutEngine(
        rundown,
        rundown_dir=rundown_dir,
        rundown_file=path,
        cue_preroll=cue_preroll,
        verify=fast,  # real time hashes files off the air path (playout.clip)
        ad_policy=channel.ad_policy,  # withholds ads that break it (playout.adrules)
    )
    frames = None if duration is None else max(1, round(duration * FPS))
    sinks: list[OutputSink] = []
    checks: list[CheckSink] = []
    # The as-run follows the bytes: journaled when the chunk that proves it has been sent.
    # The first one sent tells `playout up` this run is healthy (no restart backoff).
    # SIGTERM stops the run after the chunk on the wire: the event on air is journaled
    # as cut at the last chunk sent.
    stop = StopSignal().install()
    journal = AsRunJournal(
        ledger, on_air=lambda: notify_supervisor(ON_AIR), checkpoint=stop.checkpoint
    )
    try:
        for url in urls:
            if url.startswith("check:"):
                check = open_check_output(url)
                checks.append(check)
                sinks.append(check)
            else:
                from playout.outputs import open_output

                sinks.append(
                    open_output(url, channel=channel, epoch=rundown.day_start, zone=rundown.zone)
                )
        join_note = interrupted.join_note if interrupted else ""
        if twin_epoch is not None:
            _run_twin(
                engine,
                sinks,
                journal,
                channel.mux_rate,
                runtime.clock,
                launch,
                at,
                twin_epoch,
                frames,
                join_note,
            )
        elif fast:
            for chunk in engine.chunks(at, duration_frames=frames, join_note=join_note):
                if chunk.data:
                    for sink in sinks:
                        sink.write(chunk)
                journal.sent(chunk)
        else:
            _run_paced(
                engine,
                sinks,
                journal,
                channel.mux_rate,
                runtime.clock,
                launch,
                at,
                frames,
                join_note,
            )
    except StopRequested as exc:
        logger.warning("%s: %s: stopped; the event on air is cut where it left", channel.id, exc)
    finally:
        journal.close(stopped=stop.reason)
        stop.restore()
        for sink in sinks:
            sink.close()
    try:
        from playout.asrun.store import sync_journal  # SQLAlchemy only at the end

        sync_journal(ledger, runtime.sessions())
    except Exception as exc:  # the journal is the record; the DB catches up next time
        logger.warning("as-run DB sync failed (journal kept): %s", exc)
    failed = False
    for check in checks:
        report = check.final or check.report()
        typer.echo(
            f"check: priority 1 {'ok' if report.ok_priority1 else 'FAILED'}, "
            f"priority 2 {'ok' if report.ok_priority2 else 'FAILED'}"
        )
        for result in report.errors:
            typer.echo(f"  {result.check_id} {result.name}: {result.count}")
        failed = failed or not report.ok_priority1
    if failed:
        raise typer.Exit(1)


def _run_paced(
    engine: PlayoutEngine,
    sinks: list[OutputSink],
    journal: AsRunJournal,
    mux_rate: int,
    clock: Clock,
    launch: float,
    at: datetime,
    frames: int | None,
    join_note: str = "",
) -> None:
    """Pace the stream so each frame is presented at its rundown time (minus the --start offset).

    The rundown is at ``at`` at monotonic ``launch``, so later it is at ``at +
    (now - launch)``. Byte 0 leaves on its deadline with no backlog: the engine
    is warmed up first (``PlayoutEngine.warm_up``: slate, first items opened,
    first GOPs muxed), then the join is picked from the clock at that moment,
    the earliest frame whose first byte is due once the measured start-up has
    run again (``join_frame``); byte 0 is due at ``engine.due_at(first chunk)``.
    If the machine was slower than that, the join is picked again, later. The
    pacer never runs fast: lateness becomes an offset the schedule absorbs
    (``on_late`` → ``engine.absorb_late``), and the as-run of an event that
    started late says so (``engine.as_aired``).
    """
    from playout.outputs import FanOut
    from playout.pacer import Pacer
    from playout.pacing_process import PacingProcess

    def rundown_now() -> datetime:
        return at + timedelta(seconds=clock.monotonic() - launch)

    # The paced outputs (UDP) go with the pacer into its own process; the rest (HLS,
    # files, checks) are written here as each chunk is reported sent.
    paced = FanOut([s for s in sinks if hasattr(s, "paced")])
    unpaced = FanOut([s for s in sinks if not hasattr(s, "paced")])
    pacer = Pacer(paced, mux_rate=mux_rate, clock=clock, burst=PACING_BURST, nice=PACING_NICE)
    try:
        warm = engine.warm_up(rundown_now() + timedelta(seconds=WARM_UP_AHEAD))
        ready_in = warm.seconds + START_MARGIN
        for attempt in range(1, START_ATTEMPTS + 1):
            join = engine.join_frame(rundown_now(), ready_in=ready_in, lead=warm.lead)
            stream = engine.chunks(join, duration_frames=frames, join_note=join_note)
            first = next(stream, None)
            if first is None:
                return
            try:
                due: float | None = launch + (engine.due_at(first) - at).total_seconds()
            except PlayoutError as exc:  # no PCR in the first bytes: send on arrival instead
                logger.warning("cannot align the stream with the wall clock: %s", exc)
                due = None
            spare = 0.0 if due is None else due - clock.monotonic()
            if spare >= 0 or attempt == START_ATTEMPTS:
                break
            logger.warning("start attempt %d was %.3f s late: joining later", attempt, -spare)
            stream.close()
            ready_in = 2 * ready_in - spare
        logger.info(
            "warm-up %.3f s; joined at frame %d, first byte due %.3f s after launch "
            "(%.3f s to spare)",
            warm.seconds,
            join,
            (clock.monotonic() if due is None else due) - launch,
            spare,
        )

        def sent(chunk: TsChunk) -> None:
            unpaced.write(chunk)
            journal.sent(engine.as_aired(chunk))

        assert first is not None  # the loop returned otherwise
        PacingProcess(pacer).run(
            itertools.chain((first,), stream),
            first_due=due,
            on_sent=sent,
            on_late=engine.absorb_late,
        )
    finally:
        paced.close()  # this process's copies: the pacing process sent and closed its own
        unpaced.close()  # drains the queued outputs (file, HLS) before they close


def _run_twin(
    engine: PlayoutEngine,
    sinks: list[OutputSink],
    journal: AsRunJournal,
    mux_rate: int,
    clock: Clock,
    launch: float,
    at: datetime,
    epoch: datetime,
    frames: int | None,
    join_note: str = "",
) -> None:
    """A main/backup twin: mux from ``epoch`` unsent, then send in step with the partner.

    The stream is a pure function of the rundown and the frame it starts at
    (playout.engine), so two twins that both start at ``epoch`` produce the same
    bytes however late either was launched. This one muxes from the epoch as fast
    as it can, sending nothing, until a chunk is still ``TWIN_JOIN_MARGIN`` ahead of
    its deadline; from that chunk on (cut to a datagram boundary of the epoch's byte
    count) it sends in real time. Outputs are anchored on the epoch (an empty chunk
    at byte 0), so RTP sequence numbers and timestamps are the partner's too: a
    restarted twin rejoins in step and a ST 2022-7 receiver merges the two (compliance.merge).

    ``frames`` (``--duration``) counts from the launch position, so twins given the
    same ``--start``/``--duration`` stop at the same frame. Sender lateness is not
    absorbed in the schedule (that would change the bytes): it stays a delay the
    receiver's path-differential buffer covers; restarting the twin puts it back on time.
    """
    from playout.outputs import FanOut, UdpOutput
    from playout.pacer import Pacer

    first_frame = engine.frame_of(epoch)
    total = None if frames is None else engine.frame_of(at) - first_frame + frames
    origin = TsChunk(data=b"", byte_offset=0, frame=first_frame, idr=False, pcr_90k=None)
    for sink in sinks:
        if isinstance(sink, UdpOutput):  # RTP sequence and timestamp count from the epoch
            sink.write(origin)
    fanout = FanOut(sinks)
    pacer = Pacer(fanout, mux_rate=mux_rate, clock=clock, burst=PACING_BURST, nice=PACING_NICE)
    began = clock.monotonic()
    stream = engine.chunks(epoch, duration_frames=total, join_note=join_note)
    try:
        joined = _in_background(lambda: _catch_up(engine, stream, clock, launch, at))
        if joined is None:
            logger.error("twin: the run ended before it could join the air")
            return
        first, due = joined
        logger.info(
            "twin: muxed %.1f s of stream from the epoch %s in %.2f s unsent; joins at "
            "frame %d, byte %d (%.3f s to spare)",
            first.byte_offset * 8 / mux_rate,
            epoch.isoformat(),
            clock.monotonic() - began,
            first.frame,
            first.byte_offset,
            due - clock.monotonic(),
        )

        def sent(chunk: TsChunk) -> None:
            journal.sent(engine.as_aired(chunk))

        def late(seconds: float) -> None:
            logger.error(
                "twin %.3f s behind its partner for good: the receiver's path-differential "
                "buffer must cover it; restart this twin to put it back in step",
                seconds,
            )

        pacer.run(itertools.chain((first,), stream), first_due=due, on_sent=sent, on_late=late)
    finally:
        fanout.close()  # drains the queued outputs (file, HLS) before they close


def _in_background(work: Callable[[], _T]) -> _T:
    """``work()`` on a thread at ``CATCH_UP_NICE``: a twin catching up (flat out) must not
    make the channels already on air on this host late, its partner included."""
    done: list[_T] = []
    failed: list[BaseException] = []

    def run() -> None:
        with contextlib.suppress(OSError):  # Linux: per thread; lowering needs no privilege
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), CATCH_UP_NICE)
        try:
            done.append(work())
        except BaseException as exc:  # re-raised on the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=run, name="twin catch-up", daemon=True)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return done[0]


def _catch_up(
    engine: PlayoutEngine,
    stream: Iterator[TsChunk],
    clock: Clock,
    launch: float,
    at: datetime,
) -> tuple[TsChunk, float] | None:
    """Skip the chunks already due; return the first one to send and its monotonic deadline.

    It starts at a multiple of 1316 bytes of the epoch's byte count, so datagram k
    is the same bytes on both twins. The event on air when the twin joins is opened
    on that chunk (its start was in the chunks skipped), so the as-run and a restart's
    recovery know it.
    """
    opened: AsRunMark | None = None
    for chunk in stream:
        for mark in chunk.asrun:
            if not mark.final:
                opened = mark
            elif opened is not None and opened.record.event_id == mark.record.event_id:
                opened = None
        skip = -chunk.byte_offset % UDP_PAYLOAD
        if skip >= len(chunk.data):
            continue
        try:
            due = (
                launch
                + (engine.due_at(chunk) - at).total_seconds()
                + skip * 8 / engine.service.mux_rate
            )
        except PlayoutError:  # no PCR yet: the first bytes of the epoch, long due
            continue
        if due - clock.monotonic() < TWIN_JOIN_MARGIN:
            continue
        marks = tuple(m for m in chunk.asrun if not m.final)
        carried = () if opened is None or opened in marks else (opened,)
        return (
            TsChunk(
                data=chunk.data[skip:],
                byte_offset=chunk.byte_offset + skip,
                frame=chunk.frame,
                idr=chunk.idr and not skip,
                pcr_90k=chunk.pcr_90k if not skip else None,
                asrun=carried + chunk.asrun,
            ),
            due,
        )
    return None


@playout_app.command("check")
def check(
    path: Annotated[Path, typer.Argument(metavar="FILE.ts", help="A recorded transport stream")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report")] = False,
) -> None:
    """TR 101 290 priority 1/2 and playout checks on a TS file; exit 1 on priority-1 errors."""
    report = check_file(path)
    if as_json:
        typer.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        console = Console()
        console.print(
            f"{path}: priority 1 {'ok' if report.ok_priority1 else 'FAILED'}, "
            f"priority 2 {'ok' if report.ok_priority2 else 'FAILED'}, "
            f"PCR max interval {report.pcr_max_interval_ms} ms"
        )
        for result in report.errors:
            console.print(f"  {result.check_id} {result.name} (P{result.priority}): {result.count}")
    if not report.ok_priority1:
        raise typer.Exit(1)


@playout_app.command("asrun")
def asrun(
    ctx: typer.Context,
    channel_id: Annotated[str, typer.Option("--channel", help="Channel id")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines")] = False,
) -> None:
    """List what aired on a channel (播出记录), from the local journal."""
    runtime = cast(PlayoutRuntime, ctx.obj)
    channel = runtime.registry.get(channel_id)
    ledger = AsRunLedger(journal_path(runtime.var_dir, channel.id))
    ledger.verify()
    records = ledger.records()
    if as_json:
        typer.echo(json.dumps([r.as_json() for r in records], ensure_ascii=False, indent=1))
        return
    table = Table(title=f"as-run {channel.id} ({len(records)} events)")
    for column in ("event", "type", "scheduled", "actual", "frames", "asset", "outcome", "reason"):
        table.add_column(column)
    for r in records:
        table.add_row(
            r.event_id,
            r.event_type,
            r.scheduled_start.astimezone(runtime.zone).strftime("%m-%d %H:%M:%S"),
            r.actual_start.astimezone(runtime.zone).strftime("%m-%d %H:%M:%S"),
            f"{r.duration_frames}/{r.scheduled_frames}",
            r.asset_id or "-",
            r.outcome.value,
            r.reason,
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add the ``playout`` group (the shell adds ``playout up``, the station, to it)."""
    app.add_typer(playout_app, name="playout")
