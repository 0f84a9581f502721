"""`skyclass up`: a whole 空中课堂 station as one service.

It composes, in one process tree:

* playout for every channel, one process each, restarted on failure
  (``playout.supervisor``; the daily rundown compile and the as-run sync run on the
  station's scheduler, ``skyclass.station``);
* the console, its JSON API, /metrics and the EPG pull API (uvicorn, in a thread);
* off-air recording of every channel's real UDP output, each with a live TS monitor
  whose per-minute summaries the console and metrics read (``compliance``).

SIGTERM or SIGINT stops it cleanly: the channels first (each journals the event on
air as cut at its last frame), then the final as-run sync, the console, and the
recorders last, so the recording covers the end of air. Each part also runs on its
own (``skyclass playout up``, ``skyclass serve``, ``skyclass compliance record``),
so a larger station spreads them over machines.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from datetime import time as dtime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from core.errors import BadInputError, SkyclassError

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from compliance.recording import Recorder
    from playout.supervisor import Supervisor
    from skyclass.runtime import Runtime

logger = logging.getLogger(__name__)

CONSOLE_START_TIMEOUT = 15.0


@dataclass(frozen=True, kw_only=True)
class StationOptions:
    channels: tuple[str, ...]  # empty: every channel in the registry
    host: str = "127.0.0.1"
    port: int = 8080
    console: bool = True
    record: bool = True
    compile: bool = True
    compile_at: dtime = dtime(20, 0)
    standby: bool = True
    retention_days: int = 90
    metrics_token: str | None = None
    config_file: Path | None = None  # the --config the station was started with


class Station:
    """The station's parts, started and stopped in order; see the module docstring."""

    def __init__(self, runtime: Runtime, options: StationOptions) -> None:
        self.runtime = runtime
        self.options = options
        registry = runtime.registry
        self.channels = [registry.get(c) for c in options.channels] or list(registry)
        self.supervisor: Supervisor | None = None
        self.scheduler: BackgroundScheduler | None = None
        self.recorders: list[Recorder] = []
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        #: When the stop was asked for (signal or ``--minutes``): what aired after it is
        #: the shutdown, so an audit of the run ends here (skyclass.demo).
        self.stop_requested_at: datetime | None = None

    @property
    def channel_ids(self) -> list[str]:
        return [c.id for c in self.channels]

    # -- start -----------------------------------------------------------------------

    def start(self) -> None:
        runtime = self.runtime
        runtime.sessions()  # migrate once, before any part needs the database
        if self.options.record:
            self._start_recorders()
        self._start_scheduler()
        if self.options.console:
            self._start_console()
        self.supervisor = self._make_supervisor()
        self.supervisor.start()

    def _start_recorders(self) -> None:
        from compliance.livemonitor import LiveMonitor, SummaryFile, monitor_path
        from compliance.receiver import default_source
        from compliance.recording import Recorder, RecorderConfig, recordings_root

        var_dir, zone = self.runtime.var_dir, self.runtime.zone
        config = RecorderConfig(
            root=recordings_root(var_dir), zone=zone, retention_days=self.options.retention_days
        )
        for channel in self.channels:
            try:
                source = default_source(channel)
            except BadInputError as exc:  # a channel with HLS only: nothing to record
                logger.warning("%s: not recorded: %s", channel.id, exc)
                continue
            live = LiveMonitor(
                channel.id,
                source=source.url,
                on_summary=SummaryFile(monitor_path(var_dir, channel.id)),
                clock=self.runtime.clock,
            )
            recorder = Recorder(channel.id, source, config, clock=self.runtime.clock, tap=live)
            recorder.start()
            self.recorders.append(recorder)

    def _start_scheduler(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        from skyclass.station import (
            compile_once,
            compile_with_epg,
            missing_days,
            schedule_asrun_sync,
            schedule_compile,
        )

        runtime = self.runtime
        scheduler = BackgroundScheduler(timezone=runtime.zone)
        rundown_dir = runtime.var_dir / "rundowns"
        if self.options.compile:
            compile_day = compile_with_epg(runtime)
            schedule_compile(
                scheduler,
                compile_day,
                clock=runtime.clock,
                zone=runtime.zone,
                at=self.options.compile_at,
            )
            for day in missing_days(rundown_dir, self.channel_ids, runtime.clock, runtime.zone):
                scheduler.add_job(compile_once, args=(compile_day, day), id=f"compile-{day}")
        schedule_asrun_sync(scheduler, runtime.var_dir, self.channel_ids, runtime.sessions())
        scheduler.start()
        self.scheduler = scheduler

    def _start_console(self) -> None:
        import uvicorn

        from skyclass.web.app import create_app

        app = create_app(self.runtime, metrics_token=self.options.metrics_token)
        config = uvicorn.Config(
            app, host=self.options.host, port=self.options.port, log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="console", daemon=True)
        thread.start()
        self._server, self._server_thread = server, thread
        deadline = time.monotonic() + CONSOLE_START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise SkyclassError(
                    f"the console could not listen on {self.options.host}:{self.options.port} "
                    "(is the port in use?): pass --port or --no-console"
                )
            time.sleep(0.05)

    def _make_supervisor(self) -> Supervisor:
        from playout.supervisor import ChildSpec, Supervisor, playout_argv, standby_argv

        runtime = self.runtime
        var_dir = runtime.var_dir
        env = tuple(self._child_env().items())
        specs = [
            ChildSpec(
                channel_id=cid,
                argv=standby_argv(cid) if self.options.standby else playout_argv(cid),
                log_path=var_dir / "log" / "playout" / f"{cid}.log",
                env=env,
                standby=self.options.standby,
            )
            for cid in self.channel_ids
        ]
        return Supervisor(
            specs,
            zone=runtime.zone,
            clock=runtime.clock,
            rundown_dir=var_dir / "rundowns",
            pid_dir=var_dir / "run",
        )

    def _child_env(self) -> dict[str, str]:
        """The settings the channel processes must share with us (paths, database)."""
        settings = self.runtime.settings
        config = (
            {"SKYCLASS_CONFIG": str(self.options.config_file.resolve())}
            if self.options.config_file
            else {}
        )
        return config | {
            "SKYCLASS_DATABASE_URL": settings.database_url,
            "SKYCLASS_MEDIA_ROOT": str(Path(settings.media_root).resolve()),
            "SKYCLASS_VAR_DIR": str(Path(settings.var_dir).resolve()),
            "SKYCLASS_CHANNELS_FILE": str(Path(settings.channels_file).resolve()),
            "SKYCLASS_TIMEZONE": settings.timezone,
        }

    # -- run and stop ------------------------------------------------------------------

    def run(self, stop: threading.Event, *, interval: float = 0.5) -> None:
        """Keep the channels on air until ``stop`` is set (``stop()`` is the caller's)."""
        assert self.supervisor is not None, "start() first"
        while not stop.wait(interval):
            self.supervisor.poll()

    def stop(self) -> None:
        """Stop whatever was started, in order; safe to call after a failed start."""
        from playout.asrun.store import sync_asrun

        if self.supervisor is not None:
            self.supervisor.stop()  # each channel journals its event on air as cut
            self.supervisor = None
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        sync_asrun(self.runtime.var_dir, self.channel_ids, self.runtime.sessions())
        if self._server is not None:
            self._server.should_exit = True
            if self._server_thread is not None:
                self._server_thread.join(10)
            self._server = self._server_thread = None
        for recorder in self.recorders:
            recorder.stop()  # last: the recording covers the end of air
        self.recorders = []
        logger.info("station stopped: %d channel(s)", len(self.channels))


def up(
    ctx: typer.Context,
    channel: Annotated[
        list[str] | None,
        typer.Option("--channel", help="Only these channels (repeatable; default: all)."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Console address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Console port.")] = 8080,
    no_console: Annotated[bool, typer.Option("--no-console", help="No web console.")] = False,
    no_record: Annotated[bool, typer.Option("--no-record", help="No off-air recording.")] = False,
    no_compile: Annotated[
        bool, typer.Option("--no-compile", help="Do not compile rundowns (another host does).")
    ] = False,
    compile_at: Annotated[
        str, typer.Option("--compile-at", help="Local time of the daily compile, HH:MM.")
    ] = "20:00",
    standby: Annotated[
        bool, typer.Option("--standby/--no-standby", help="A preloaded process per channel.")
    ] = True,
    retention_days: Annotated[
        int, typer.Option("--retention-days", help="Keep recordings this long (≥ 7).")
    ] = 90,
    metrics_token: Annotated[
        str | None,
        typer.Option("--metrics-token", envvar="SKYCLASS_METRICS_TOKEN", help="/metrics bearer."),
    ] = None,
    minutes: Annotated[
        float | None, typer.Option("--minutes", help="Stop after this long (default: run on).")
    ] = None,
) -> None:
    """Run the whole station: playout, compile, console and EPG, recording, as-run sync."""
    runtime: Runtime = ctx.obj
    try:
        at = dtime.fromisoformat(compile_at)
    except ValueError:
        raise BadInputError(f"--compile-at {compile_at!r}: use HH:MM, e.g. 20:00") from None
    if retention_days < 7:
        raise BadInputError(
            f"--retention-days {retention_days}: recordings must be kept more than a week "
            "(SARFT Order 62); use 7 or more"
        )
    options = StationOptions(
        channels=tuple(channel or ()),
        host=host,
        port=port,
        console=not no_console,
        record=not no_record,
        compile=not no_compile,
        compile_at=at,
        standby=standby,
        retention_days=retention_days,
        metrics_token=metrics_token,
        config_file=ctx.find_root().params.get("config"),
    )
    run_station(runtime, options, minutes=minutes)


def run_station(
    runtime: Runtime,
    options: StationOptions,
    *,
    minutes: float | None,
    on_started: Callable[[Station], object] | None = None,
) -> Station:
    """Start the station, run until SIGTERM/SIGINT (or ``minutes``), stop it cleanly."""
    station = Station(runtime, options)
    stop = threading.Event()

    def request_stop() -> None:
        if station.stop_requested_at is None:
            station.stop_requested_at = runtime.clock.now()
        stop.set()

    def _stop(signum: int, frame: object) -> None:
        logger.info("signal %d: stopping the station", signum)
        request_stop()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    # Like nohup; children inherit SIG_IGN, so a reload SIGHUP never kills a child
    # that has no handler for it.
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    timer = None
    if minutes is not None:
        timer = threading.Timer(minutes * 60, request_stop)
        timer.daemon = True
    try:
        station.start()
        typer.echo(
            f"skyclass up: {len(station.channels)} channel(s) on air; "
            + (
                f"console http://{options.host}:{options.port}/"
                if options.console
                else "no console"
            )
        )
        if on_started is not None:
            on_started(station)
        if timer is not None:
            timer.start()
        station.run(stop)
    finally:
        if timer is not None:
            timer.cancel()
        if station.stop_requested_at is None:
            station.stop_requested_at = runtime.clock.now()
        station.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return station


def register(app: typer.Typer) -> None:
    app.command("up")(up)
