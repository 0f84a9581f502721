"""`skyclass worker` and `skyclass jobs list|show`: the ingest farm from the shell.

`skyclass ingest --queue` (ingest.cli) queues the work; workers run it; these
commands show where every job is. Rendering is here; the state lives in the database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol, cast

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from farm.config import FarmConfig
from farm.errors import FarmInputError
from farm.jobs import IngestJob, JobState
from grading import GradingPolicy
from ingest.config import IngestConfig

if TYPE_CHECKING:
    from farm.queue import IngestFarm


class FarmRuntime(Protocol):
    """The slice of the shell's Runtime that the farm's commands use."""

    @property
    def database_url(self) -> str: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def farm_config(self) -> FarmConfig: ...

    @property
    def grading_policy(self) -> GradingPolicy: ...

    @property
    def ingest_config(self) -> IngestConfig: ...

    @property
    def media_root(self) -> Path: ...

    @property
    def clock(self) -> Clock: ...

    def sessions(self) -> sessionmaker[Session]: ...

    def ingest_farm(self) -> IngestFarm: ...


def _runtime(ctx: typer.Context) -> FarmRuntime:
    return cast(FarmRuntime, ctx.obj)


def worker_command(
    ctx: typer.Context,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency", min=1, max=16, help="Jobs at once on this machine (ffmpeg each)."
        ),
    ] = 1,
    name: Annotated[
        str | None, typer.Option("--name", help="Worker name in the job list (host:pid).")
    ] = None,
    until_empty: Annotated[
        bool, typer.Option("--until-empty", help="Exit once the queue is empty.")
    ] = False,
) -> None:
    """Run ingest jobs from the queue (any number of machines sharing the media store)."""
    from farm.worker import run_worker

    runtime = _runtime(ctx)
    runtime.ingest_farm()  # the queue is on and on PostgreSQL, and the schema is migrated
    run_worker(
        database_url=runtime.database_url,
        engine=runtime.engine,
        sessions=runtime.sessions(),
        media_root=runtime.media_root,
        policy=runtime.grading_policy,
        ingest_config=runtime.ingest_config,
        clock=runtime.clock,
        config=runtime.farm_config,
        concurrency=concurrency,
        name=name,
        until_empty=until_empty,
    )


jobs_app = typer.Typer(help="Ingest jobs in the queue (入库任务).", no_args_is_help=True)


def _states(values: list[str] | None) -> list[JobState]:
    states = []
    for value in values or []:
        try:
            states.append(JobState(value.strip().lower()))
        except ValueError:
            known = ", ".join(s.value for s in JobState)
            raise FarmInputError(f"--state {value!r}: use one of {known}") from None
    return states


def jobs_table(jobs: list[IngestJob], title: str) -> Table:
    table = Table(title=title)
    for column in ("id", "file", "state", "stage", "%", "try", "worker", "asset", "error"):
        table.add_column(column, overflow="fold")
    colour = {JobState.SUCCEEDED: "green", JobState.FAILED: "red", JobState.RETRYING: "yellow"}
    for job in jobs:
        style = colour.get(job.state)
        state = f"[{style}]{job.state.value}[/{style}]" if style else job.state.value
        table.add_row(
            str(job.id),
            job.label,
            state,
            job.stage or "",
            f"{job.percent:.0f}",
            f"{job.attempts}/{job.max_attempts}",
            job.worker or "",
            job.asset_id or "",
            job.error or "",
        )
    return table


@jobs_app.command("list")
def jobs_list(
    ctx: typer.Context,
    state: Annotated[
        list[str] | None,
        typer.Option("--state", help="queued|running|retrying|succeeded|failed (repeatable)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Newest jobs shown.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List ingest jobs, newest first: state, stage, percent, worker, asset id, error."""
    jobs = _runtime(ctx).ingest_farm().list(states=_states(state), limit=limit)
    if as_json:
        typer.echo(json.dumps([j.as_json() for j in jobs], ensure_ascii=False, indent=2))
        return
    Console().print(jobs_table(jobs, f"ingest jobs ({len(jobs)})"))


@jobs_app.command("show")
def jobs_show(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(metavar="ID", help="Job id (from `jobs list`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one ingest job."""
    job = _runtime(ctx).ingest_farm().get(job_id)
    data = job.as_json()
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    console = Console()
    for key, value in data.items():
        console.print(f"[bold]{key}[/bold]: {'' if value is None else value}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker_command)
    app.add_typer(jobs_app, name="jobs")
