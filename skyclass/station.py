"""The station: the packages composed into services that run for days.

``skyclass playout up`` keeps every channel on air (``playout.supervisor``) and adds
the station's jobs, on one APScheduler in the settings' time zone:

* the daily rundown compile: tomorrow's rundowns at 20:00 local time by default,
  and at start-up whatever is missing for today or tomorrow, at once;
* the as-run sync: the channels' fsynced journals into the append-only ``asrun``
  table every 30 s (channels never wait on the database).

Each piece can run on its own host: ``--no-compile`` leaves compiling to another.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast
from zoneinfo import ZoneInfo

import typer

from core.clock import Clock
from core.errors import BadInputError
from epg.rundown import rundown_path
from playout.asrun.store import sync_asrun
from playout.supervisor import ChildSpec, Supervisor, playout_argv, standby_argv

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from skyclass.runtime import Runtime

logger = logging.getLogger(__name__)

COMPILE_AT = dtime(20, 0)
COMPILE_JOB_ID = "compile-rundowns"
ASRUN_SYNC_JOB_ID = "sync-asrun"
ASRUN_SYNC_SECONDS = 30

CompileDay = Callable[[date], object]


# -- daily rundown compilation -------------------------------------------------------


def tomorrow(clock: Clock, zone: ZoneInfo) -> date:
    """The broadcast date after today's in the station's time zone (days start at 00:00)."""
    return clock.now().astimezone(zone).date() + timedelta(days=1)


def compile_tomorrow(compile_day: CompileDay, clock: Clock, zone: ZoneInfo) -> None:
    """The cron job: compile every channel's rundown for tomorrow; failures are logged.

    The scheduler thread must survive a failure, and today's air is unaffected by it.
    """
    compile_once(compile_day, tomorrow(clock, zone))


def compile_once(compile_day: CompileDay, day: date) -> None:
    """Compile one day now (start-up catch-up); failures are logged."""
    try:
        compile_day(day)
    except Exception:
        logger.exception("compiling the rundowns for %s failed", day)
        return
    logger.info("compiled the rundowns for %s", day)


def schedule_compile(
    scheduler: BackgroundScheduler,
    compile_day: CompileDay,
    *,
    clock: Clock,
    zone: ZoneInfo,
    at: dtime = COMPILE_AT,
) -> Any:
    """Add the daily cron job (local time; a missed run within an hour still runs once)."""
    from apscheduler.triggers.cron import CronTrigger

    return scheduler.add_job(
        compile_tomorrow,
        CronTrigger(hour=at.hour, minute=at.minute, timezone=zone),
        args=(compile_day, clock, zone),
        id=COMPILE_JOB_ID,
        name="compile tomorrow's rundowns",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=3600,
        replace_existing=True,
    )


def missing_days(
    rundown_dir: Path, channel_ids: Sequence[str], clock: Clock, zone: ZoneInfo
) -> list[date]:
    """Today and tomorrow, for each that some channel has no compiled rundown yet."""
    today = clock.now().astimezone(zone).date()
    days = [today, today + timedelta(days=1)]
    return [
        day
        for day in days
        if any(not rundown_path(rundown_dir, ch, day).exists() for ch in channel_ids)
    ]


def compile_with_epg(runtime: Runtime) -> CompileDay:
    """The EPG package's "compile every channel for a date into var/rundowns"."""
    from epg.context import EpgServices

    services = EpgServices(runtime)
    return lambda day: services.compiler.compile_all(day, services.rundown_dir)


# -- as-run sync ---------------------------------------------------------------------


def schedule_asrun_sync(
    scheduler: BackgroundScheduler,
    var_dir: Path,
    channel_ids: Sequence[str],
    sessions: Any,
    *,
    seconds: int = ASRUN_SYNC_SECONDS,
) -> Any:
    """Add the interval job that keeps the ``asrun`` table close behind the journals."""
    from apscheduler.triggers.interval import IntervalTrigger

    return scheduler.add_job(
        sync_asrun,
        IntervalTrigger(seconds=seconds),
        args=(var_dir, tuple(channel_ids), sessions),
        id=ASRUN_SYNC_JOB_ID,
        name="sync as-run journals into the database",
        coalesce=True,
        max_instances=1,
        replace_existing=True,
    )


# -- `skyclass playout up` -------------------------------------------------------------


def up(
    ctx: typer.Context,
    channel: Annotated[
        list[str] | None,
        typer.Option("--channel", help="Run only these channels (repeatable; default: all)."),
    ] = None,
    compile_at: Annotated[
        str, typer.Option("--compile-at", help="Local time of the daily compile, HH:MM.")
    ] = COMPILE_AT.strftime("%H:%M"),
    no_compile: Annotated[
        bool, typer.Option("--no-compile", help="Do not compile rundowns (another host does).")
    ] = False,
    standby: Annotated[
        bool,
        typer.Option(
            "--standby/--no-standby", help="Keep a preloaded process per channel for restarts."
        ),
    ] = True,
) -> None:
    """Run every channel (one process each), restart any that dies, compile rundowns daily."""
    from apscheduler.schedulers.background import BackgroundScheduler

    runtime = cast("Runtime", ctx.obj)
    ids = list(channel) if channel else [c.id for c in runtime.registry]
    for channel_id in ids:
        runtime.registry.get(channel_id)
    try:
        at = dtime.fromisoformat(compile_at)
    except ValueError:
        raise BadInputError(f"--compile-at {compile_at!r}: use HH:MM, e.g. 20:00") from None
    var_dir = runtime.var_dir
    config = ctx.find_root().params.get("config")
    env = (("SKYCLASS_CONFIG", str(Path(config).resolve())),) if config else ()
    specs = [
        ChildSpec(
            channel_id=cid,
            argv=standby_argv(cid) if standby else playout_argv(cid),
            log_path=var_dir / "log" / "playout" / f"{cid}.log",
            env=env,
            standby=standby,
        )
        for cid in ids
    ]
    rundown_dir = var_dir / "rundowns"
    supervisor = Supervisor(
        specs,
        zone=runtime.zone,
        clock=runtime.clock,
        rundown_dir=rundown_dir,
        pid_dir=var_dir / "run",
    )
    scheduler = BackgroundScheduler(timezone=runtime.zone)
    if not no_compile:
        compile_day = compile_with_epg(runtime)
        schedule_compile(scheduler, compile_day, clock=runtime.clock, zone=runtime.zone, at=at)
        for day in missing_days(rundown_dir, ids, runtime.clock, runtime.zone):
            # Run at once in the scheduler's thread: the channels start meanwhile (on slate
            # or filler if today's rundown is missing) and pick the file up when it lands.
            scheduler.add_job(
                compile_once, args=(compile_day, day), id=f"compile-{day}", name=f"compile {day}"
            )

    schedule_asrun_sync(scheduler, var_dir, ids, runtime.sessions())

    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        logger.info("signal %d: stopping every channel", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # Like nohup; children inherit SIG_IGN, so a reload SIGHUP never kills a child
    # that has no handler for it.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    scheduler.start()
    typer.echo(f"playout up: {len(specs)} channel(s); logs in {var_dir / 'log' / 'playout'}")
    try:
        supervisor.run(stop)
    finally:
        scheduler.shutdown(wait=False)
        sync_asrun(var_dir, ids, runtime.sessions())  # what the channels wrote last


def register(app: typer.Typer) -> None:
    """Add ``playout up`` to the ``playout`` command group."""
    import playout.cli

    playout.cli.playout_app.command("up")(up)
