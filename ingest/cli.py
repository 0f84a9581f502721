"""`skyclass synth|ingest|loudness|assets …`: the operator's side of ingest.

Library code yields progress fractions; only this module draws bars (rich).

The pipeline, the loudness meter and the synthesizer (SciPy, PIL: about a second
of imports) are imported inside the commands that use them, so every other
`skyclass` command (a playout restart above all) starts without them.
"""

from __future__ import annotations

import csv
import json
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from channels.ads import AdCategory
from channels.profiles import HouseProfile, profile_by_name
from channels.registry import ChannelRegistry
from core.clock import Clock
from core.errors import SkyclassError
from grading import GradingPolicy
from ingest.asset import Asset, AssetKind, LessonMetadata, ReviewCheck, ReviewState
from ingest.config import IngestConfig
from ingest.errors import IngestInputError
from ingest.library import AssetLibrary

if TYPE_CHECKING:
    from ingest.pipeline import Ingester, IngestOutcome, IngestRequest

logger = logging.getLogger(__name__)


class IngestRuntime(Protocol):
    """The slice of the shell's Runtime that ingest commands use."""

    @property
    def registry(self) -> ChannelRegistry: ...

    @property
    def grading_policy(self) -> GradingPolicy: ...

    @property
    def ingest_config(self) -> IngestConfig: ...

    @property
    def media_root(self) -> Path: ...

    @property
    def clock(self) -> Clock: ...

    def sessions(self) -> sessionmaker[Session]: ...


class QueuedIngestJob(Protocol):
    """An ingest job in the queue as this CLI shows it (farm.jobs.IngestJob is one)."""

    @property
    def id(self) -> int: ...

    @property
    def label(self) -> str: ...

    @property
    def state(self) -> str: ...  # queued | running | retrying | succeeded | failed

    @property
    def stage(self) -> str | None: ...

    @property
    def fraction(self) -> float: ...

    @property
    def worker(self) -> str | None: ...

    @property
    def asset_id(self) -> str | None: ...

    @property
    def error(self) -> str | None: ...

    def as_json(self) -> dict[str, Any]: ...


class IngestQueueClient(Protocol):
    """The queue `--queue` hands work to (the shell wires in farm.queue.IngestFarm)."""

    def submit(self, files: Sequence[tuple[str, IngestRequest]]) -> Sequence[QueuedIngestJob]: ...

    def poll(self, job_ids: Sequence[int]) -> Sequence[QueuedIngestJob]: ...


class QueueingRuntime(IngestRuntime, Protocol):
    def ingest_farm(self) -> IngestQueueClient:
        """The queue, or a BadInputError saying why there is none (off, or not PostgreSQL)."""
        ...


#: States after which a queued job changes no more.
FINISHED = ("succeeded", "failed")
#: How often `ingest --queue --wait` reads the jobs' progress.
WAIT_POLL_SECONDS = 0.5


def _runtime(ctx: typer.Context) -> IngestRuntime:
    return cast(IngestRuntime, ctx.obj)


def _library(runtime: IngestRuntime) -> AssetLibrary:
    return AssetLibrary(runtime.sessions(), runtime.media_root)


def _bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def synth_command(
    grade: Annotated[str, typer.Option("--grade", help="Grade code, e.g. g03.")] = "g03",
    minutes: Annotated[float, typer.Option("--minutes", help="Length in minutes.")] = 16.0,
    seconds: Annotated[
        float | None, typer.Option("--seconds", help="Length in seconds (overrides --minutes).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Output file (.mkv, .ts, .mp4 …).")] = Path(
        "lesson.mkv"
    ),
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="Source format to imitate: house-hd, house-sd, 720p30, portrait, sd43, "
            "mono44k, surround, vfr.",
        ),
    ] = "house-hd",
    defects: Annotated[
        str, typer.Option("--defects", help="Comma list: black,freeze,silence,loud,quiet,clipping.")
    ] = "",
    subject: Annotated[str, typer.Option("--subject", help="Subject on the slides.")] = "数学",
    title: Annotated[str | None, typer.Option("--title", help="Title on the slides.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed for the speech.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Generate a synthetic lesson (slides with the Chinese title, speech-like audio)."""
    from ingest.synth import SynthFormat, parse_defects, synthesize

    try:
        source_format = SynthFormat(fmt)
    except ValueError:
        known = ", ".join(f.value for f in SynthFormat)
        raise IngestInputError(f"--format {fmt!r} is not a source format: use {known}") from None
    length = seconds if seconds is not None else minutes * 60
    console = Console(stderr=True)
    with _bar(console) as bar:
        task = bar.add_task(f"synth {out.name}", total=1.0)
        result = synthesize(
            out,
            grade=grade,
            subject=subject,
            seconds=length,
            fmt=source_format,
            defects=parse_defects(defects),
            title=title,
            seed=seed,
            progress=lambda f: bar.update(task, completed=f),
        )
    facts = {
        "path": str(result.path),
        "format": result.format.value,
        "title": result.title,
        "duration_frames": result.duration_frames,
        "duration_seconds": result.duration_seconds,
        "width": result.width,
        "height": result.height,
        "fps": result.fps,
        "audio_rate": result.audio_rate,
        "audio_layout": result.audio_layout,
        "defects": [d.value for d in result.defects],
        "defect_spans": {k: list(v) for k, v in result.defect_spans.items()},
    }
    if as_json:
        typer.echo(json.dumps(facts, ensure_ascii=False, indent=2))
    else:
        typer.echo(f"{result.path}  ({result.duration_frames} frames at 25 fps)")


# -- ingest -------------------------------------------------------------------------------


def _profile_for(runtime: IngestRuntime, name: str | None, grade: str | None) -> HouseProfile:
    """--channel-profile, else the profile of the channel carrying the grade, else HD."""
    if name:
        return profile_by_name(name)
    if grade:
        for channel in runtime.registry.channels:
            if not channel.thematic and channel.carries(grade):
                return channel.profile
    return profile_by_name("hd")


def _kind(value: str) -> AssetKind:
    try:
        return AssetKind(value.strip().lower())
    except ValueError:
        known = ", ".join(k.value for k in AssetKind)
        raise IngestInputError(f"unknown --kind {value!r}: use one of {known}") from None


def _ad_category(value: str | None, where: str = "--ad-category") -> AdCategory | None:
    if value is None or not value.strip():
        return None
    try:
        return AdCategory.parse(value)
    except ValueError as exc:
        raise IngestInputError(f"{where}: {exc}") from None


def _optional_int(value: str | None, where: str) -> int | None:
    if value is None or not str(value).strip():
        return None
    try:
        return int(value)
    except ValueError:
        raise IngestInputError(f"{where}: lesson number {value!r} is not a whole number") from None


@dataclass(frozen=True, kw_only=True)
class _Job:
    label: str
    request: IngestRequest


def _manifest_jobs(
    runtime: IngestRuntime, folder: Path, manifest: Path, default_profile: str | None
) -> list[_Job]:
    """lessons.csv: file,grade,subject,title[,lesson_id,kind,profile,package,…] per row."""
    from ingest.pipeline import IngestRequest

    if not manifest.is_file():
        raise IngestInputError(f"--manifest {manifest}: no such file")
    jobs: list[_Job] = []
    with manifest.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"file", "title"} - set(reader.fieldnames or [])
        if missing:
            raise IngestInputError(
                f"{manifest}: missing column(s) {', '.join(sorted(missing))}; "
                "the header needs at least file,grade,subject,title"
            )
        for number, row in enumerate(reader, start=2):
            where = f"{manifest.name} row {number}"

            def cell(key: str, row: dict[str, Any] = row) -> str | None:
                value = (row.get(key) or "").strip()
                return value or None

            name = cell("file")
            if name is None:
                raise IngestInputError(f"{where}: column 'file' is empty")
            grade = cell("grade")
            package = cell("package")
            request = IngestRequest(
                source=folder / name,
                metadata=LessonMetadata(
                    title=cell("title") or "",
                    grade=grade,
                    subject=cell("subject"),
                    textbook_edition=cell("textbook_edition"),
                    unit=cell("unit"),
                    lesson_number=_optional_int(cell("lesson_number"), where),
                    teacher=cell("teacher"),
                    school=cell("school"),
                ),
                profile=_profile_for(runtime, cell("profile") or default_profile, grade),
                kind=_kind(cell("kind") or "lesson"),
                lesson_id=cell("lesson_id"),
                package=folder / package if package else None,
                ad_category=_ad_category(cell("ad_category"), f"{where}, column 'ad_category'"),
            )
            jobs.append(_Job(label=name, request=request))
    return jobs


def ingest_command(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(metavar="FILE|DIR …", help="Lesson file(s).")],
    grade: Annotated[str | None, typer.Option("--grade", help="Grade code g01…g12.")] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="Subject (学科).")] = None,
    title: Annotated[
        str | None, typer.Option("--title", help="Title (defaults to file name).")
    ] = None,
    lesson_id: Annotated[str | None, typer.Option("--lesson-id", help="Lesson id.")] = None,
    channel_profile: Annotated[
        str | None,
        typer.Option("--channel-profile", help="hd | sd (default: the grade's channel)."),
    ] = None,
    kind: Annotated[
        str, typer.Option("--kind", help="lesson | filler | ident | psa | eye_break | ad | promo.")
    ] = "lesson",
    package: Annotated[
        Path | None, typer.Option("--package", help="Resource package folder (任务单, 练习).")
    ] = None,
    ad_category: Annotated[
        str | None,
        typer.Option(
            "--ad-category",
            help="What an ad sells (广告类别; required for ads): public_service, food, books, "
            "toys, sports, household, other, … (banned for minors: medical, drugs, "
            "medical_devices, health_food, cosmetics, alcohol, beauty, tutoring, tv_shopping).",
        ),
    ] = None,
    textbook_edition: Annotated[str | None, typer.Option("--textbook-edition")] = None,
    unit: Annotated[str | None, typer.Option("--unit")] = None,
    lesson_number: Annotated[int | None, typer.Option("--lesson-number")] = None,
    teacher: Annotated[str | None, typer.Option("--teacher")] = None,
    school: Annotated[str | None, typer.Option("--school")] = None,
    manifest: Annotated[
        Path | None, typer.Option("--manifest", help="lessons.csv for a DIR batch.")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Files ingested at once.")] = 1,
    queue: Annotated[
        bool,
        typer.Option("--queue", help="Queue the files for `skyclass worker`s (needs the farm)."),
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="With --queue: show progress until every job ends.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Probe, validate, analyze, normalize, verify and register lesson files."""
    from ingest.pipeline import Ingester, IngestRequest

    runtime = _runtime(ctx)
    if wait and not queue:
        raise IngestInputError("--wait goes with --queue (without it, ingest always waits)")
    client = cast(QueueingRuntime, runtime).ingest_farm() if queue else None
    work: list[_Job] = []
    for path in paths:
        if path.is_dir():
            if manifest is None:
                raise IngestInputError(
                    f"{path} is a folder: give --manifest lessons.csv for a batch"
                )
            work += _manifest_jobs(runtime, path, manifest, channel_profile)
            continue
        request = IngestRequest(
            source=path,
            metadata=LessonMetadata(
                title=title or path.stem,
                grade=grade,
                subject=subject,
                textbook_edition=textbook_edition,
                unit=unit,
                lesson_number=lesson_number,
                teacher=teacher,
                school=school,
            ),
            profile=_profile_for(runtime, channel_profile, grade),
            kind=_kind(kind),
            lesson_id=lesson_id if len(paths) == 1 else None,
            package=package,
            ad_category=_ad_category(ad_category),
        )
        work.append(_Job(label=path.name, request=request))
    ingester = Ingester(
        _library(runtime),
        policy=runtime.grading_policy,
        config=runtime.ingest_config,
        clock=runtime.clock,
    )
    if client is not None:
        _queue(ingester, client, work, wait=wait, as_json=as_json)
        return
    if len(work) == 1 and not (manifest and jobs > 1):
        ingester.check_metadata(work[0].request)  # one clear line, before any progress bar
        outcome = _run_one(ingester, work[0], as_json)
        _print_outcomes([outcome], as_json)
        return
    _run_batch(ingester, work, jobs, as_json)


def _run_one(ingester: Ingester, job: _Job, as_json: bool) -> IngestOutcome:
    console = Console(stderr=True)
    with _bar(console) as bar:
        task = bar.add_task(job.label, total=1.0)
        return ingester.ingest(
            job.request,
            progress=lambda stage, f: bar.update(
                task, completed=f, description=f"{job.label} {stage}"
            ),
        )


def _print_outcomes(outcomes: list[IngestOutcome], as_json: bool) -> None:
    if as_json:
        data: Any = outcomes[0].as_json() if len(outcomes) == 1 else [o.as_json() for o in outcomes]
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for outcome in outcomes:
        warnings = len(outcome.qc.warnings)
        typer.echo(
            outcome.asset.asset_id
            + ("" if not warnings else f"  ({warnings} QC warning(s): see `skyclass assets show`)")
        )


def _run_batch(ingester: Ingester, work: list[_Job], jobs: int, as_json: bool) -> None:
    """Ingest many files, a bar per file plus a total; carry on past bad files."""
    console = Console(stderr=True)
    outcomes: list[IngestOutcome] = []
    failures: list[tuple[str, str]] = []
    lock = threading.Lock()
    with _bar(console) as bar:
        total = bar.add_task(f"total ({len(work)} files)", total=len(work))
        tasks: dict[str, TaskID] = {
            job.label: bar.add_task(job.label, total=1.0, start=False) for job in work
        }

        def run(job: _Job) -> None:
            task = tasks[job.label]
            bar.start_task(task)
            try:
                outcome = ingester.ingest(
                    job.request,
                    progress=lambda stage, f: bar.update(
                        task, completed=f, description=f"{job.label} {stage}"
                    ),
                )
            except SkyclassError as exc:
                with lock:
                    failures.append((job.label, str(exc)))
                bar.update(task, description=f"[red]{job.label} failed")
            else:
                with lock:
                    outcomes.append(outcome)
                bar.update(task, completed=1.0, description=f"[green]{job.label} done")
            finally:
                bar.advance(total)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for future in [pool.submit(run, job) for job in work]:
                future.result()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ingested": [o.as_json() for o in outcomes],
                    "failed": [{"file": f, "error": e} for f, e in failures],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        for outcome in outcomes:
            typer.echo(f"{outcome.asset.source_name}: {outcome.asset.asset_id}")
    if failures:
        err = Console(stderr=True, soft_wrap=True)
        for name, message in failures:
            err.print(f"failed: {name}: {message}", markup=False, highlight=False)
        raise IngestInputError(f"{len(failures)} of {len(work)} file(s) failed to ingest")


def _queue(
    ingester: Ingester, client: IngestQueueClient, work: list[_Job], *, wait: bool, as_json: bool
) -> None:
    """Check every file here, then queue them all (or, on the first bad one, none)."""
    for job in work:
        source = job.request.source
        if not source.is_file():
            raise IngestInputError(
                f"{source}: no such file: queued files must exist, at the same path on "
                "every worker (a shared mount)"
            )
        ingester.check_metadata(job.request)  # one clear line now, not a failed job later
    queued = client.submit([(job.label, job.request) for job in work])
    if wait:
        queued = _watch(client, queued)
    if as_json:
        typer.echo(json.dumps([j.as_json() for j in queued], ensure_ascii=False, indent=2))
    elif wait:
        for done in queued:
            if done.state == "succeeded":
                typer.echo(f"{done.label}: {done.asset_id}")
    else:
        for waiting in queued:
            typer.echo(f"queued job {waiting.id}: {waiting.label}")
    failed = [j for j in queued if j.state == "failed"]
    if failed:
        err = Console(stderr=True, soft_wrap=True)
        for bad in failed:
            err.print(f"failed: {bad.label}: {bad.error}", markup=False, highlight=False)
        raise IngestInputError(f"{len(failed)} of {len(queued)} queued file(s) failed to ingest")


def _watch(
    client: IngestQueueClient, queued: Sequence[QueuedIngestJob]
) -> Sequence[QueuedIngestJob]:
    """Poll the queue and draw a bar per job (and a total) until every job has ended."""
    console = Console(stderr=True)
    ids = [job.id for job in queued]
    with _bar(console) as bar:
        total = bar.add_task(f"total ({len(ids)} files)", total=len(ids))
        tasks = {job.id: bar.add_task(f"{job.label} queued", total=1.0) for job in queued}
        while True:
            current = client.poll(ids)
            for job in current:
                where = f" @ {job.worker}" if job.worker and job.state == "running" else ""
                if job.state == "succeeded":
                    text = f"[green]{job.label} done"
                elif job.state == "failed":
                    text = f"[red]{job.label} failed"
                else:
                    text = f"{job.label} {job.stage if job.state == 'running' else job.state}"
                fraction = 1.0 if job.state in FINISHED else job.fraction
                bar.update(tasks[job.id], completed=fraction, description=text + where)
            done = sum(job.state in FINISHED for job in current)
            bar.update(total, completed=done)
            if done == len(ids):
                return current
            time.sleep(WAIT_POLL_SECONDS)


# -- loudness -----------------------------------------------------------------------------


def loudness_command(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="Any media file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Measure loudness (BS.1770-4, EBU Tech 3341/3342) with the meter ingest uses."""
    from ingest.loudness import measure_file

    result = measure_file(path).as_json()
    keys = (
        "integrated_lufs",
        "lra",
        "true_peak_dbtp",
        "max_momentary_lufs",
        "max_short_term_lufs",
    )
    if as_json:
        typer.echo(json.dumps({k: result[k] for k in keys}, indent=2))
        return
    units = {"lra": "LU", "true_peak_dbtp": "dBTP"}
    for key in keys:
        value = result[key]
        shown = "-inf" if value is None else f"{value:.1f}"
        typer.echo(f"{key}: {shown} {units.get(key, 'LUFS')}")


# -- assets -------------------------------------------------------------------------------

assets_app = typer.Typer(
    help="The asset library (素材库): list, show, verify, review.", no_args_is_help=True
)


@assets_app.command("list")
def assets_list(
    ctx: typer.Context,
    grade: Annotated[str | None, typer.Option("--grade")] = None,
    state: Annotated[str | None, typer.Option("--state", help="pending|approved|rejected")] = None,
    kind: Annotated[str | None, typer.Option("--kind")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List assets."""
    try:
        review_state = ReviewState(state) if state else None
    except ValueError:
        raise IngestInputError(f"--state {state!r}: use pending, approved or rejected") from None
    assets = _library(_runtime(ctx)).list(
        kind=_kind(kind) if kind else None, grade=grade, state=review_state
    )
    if as_json:
        typer.echo(json.dumps([a.as_json() for a in assets], ensure_ascii=False, indent=2))
        return
    table = Table(title=f"assets ({len(assets)})")
    for column in ("id", "lesson id", "kind", "年级", "学科", "title", "duration", "QC", "审核"):
        table.add_column(column)
    for a in assets:
        table.add_row(
            a.asset_id,
            a.lesson_id or "",
            a.kind.value,
            a.grade or "",
            a.subject or "",
            a.title,
            f"{a.duration_seconds:.1f} s",
            f"{len(a.qc_warnings)} warn" if a.qc_warnings else "ok",
            a.review_state.value,
        )
    Console().print(table)


@assets_app.command("show")
def assets_show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="ID", help="Asset id or lesson id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one asset with its QC report, loudness, reviews and attachments."""
    asset = _library(_runtime(ctx)).get(ref)
    data = asset.as_json()
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    _show(asset)


def _show(asset: Asset) -> None:
    console = Console()
    data = asset.as_json()
    keys = ("asset_id", "lesson_id", "kind", "ad_category", "title", "grade", "subject")
    for key in (*keys, "profile", "path"):
        console.print(f"[bold]{key}[/bold]: {data[key]}", highlight=False)
    console.print(f"[bold]duration[/bold]: {asset.duration_frames} frames")
    after = asset.loudness_after
    console.print(
        f"[bold]loudness[/bold]: {after.get('integrated_lufs')} LUFS, "
        f"TP {after.get('true_peak_dbtp')} dBTP, LRA {after.get('lra')} LU"
    )
    for finding in asset.qc.get("findings", []):
        console.print(f"[yellow]{finding['severity']}[/yellow] {finding['message']}")
    console.print(f"[bold]review[/bold]: {asset.review_state.value}")
    for review in asset.reviews:
        console.print(
            f"  {review.at.isoformat()} {review.state.value} by {review.reviewer}: {review.notes}"
        )
    for attachment in asset.attachments:
        console.print(
            f"  📎 {attachment.kind.value}: {attachment.filename} {attachment.sha256[:12]}…"
        )


@assets_app.command("verify")
def assets_verify(
    ctx: typer.Context,
    refs: Annotated[list[str], typer.Argument(metavar="ID …", help="Asset or lesson id(s).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Re-check stored assets: the file's sha256, house format, frames and loudness.

    Exit 1 when any asset fails (its file changed, went missing or misses the spec).
    """
    from ingest.normalize import verify
    from ingest.package import sha256_of

    runtime = _runtime(ctx)
    library = _library(runtime)
    results: list[dict[str, Any]] = []
    for ref in refs:
        asset = library.get(ref)
        problems: list[str] = []
        if not asset.path.is_file():
            problems.append(f"{asset.path}: the stored file is missing")
        elif sha256_of(asset.path) != asset.sha256:
            problems.append(f"{asset.path}: sha256 differs from the library's {asset.sha256[:12]}…")
        else:
            report = verify(
                asset.path,
                profile=profile_by_name(asset.profile),
                frames=asset.duration_frames,
                config=runtime.ingest_config,
            )
            problems += report.problems
        results.append({"asset_id": asset.asset_id, "ok": not problems, "problems": problems})
    if as_json:
        typer.echo(json.dumps(results, ensure_ascii=False, indent=2))
    else:
        for result in results:
            verdict = "ok" if result["ok"] else "FAILED: " + "; ".join(result["problems"])
            typer.echo(f"{result['asset_id']}: {verdict}")
    if not all(r["ok"] for r in results):
        raise typer.Exit(1)


@assets_app.command("review")
def assets_review(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="ID", help="Asset id or lesson id.")],
    reviewer: Annotated[str, typer.Option("--reviewer", help="Reviewer's name.")],
    approve: Annotated[bool, typer.Option("--approve", help="Approve the asset.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Reject the asset.")] = False,
    notes: Annotated[str, typer.Option("--notes", help="Review notes.")] = "",
    failed: Annotated[
        list[str] | None,
        typer.Option("--failed", help="A check that failed: political|scientific|normative."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Record a review (政治性, 科学性, 规范性): --approve or --reject."""
    if approve == reject:
        raise IngestInputError("give exactly one of --approve or --reject")
    runtime = _runtime(ctx)
    checks = None
    if failed:
        known = {c.value for c in ReviewCheck}
        bad = [f for f in failed if f not in known]
        if bad:
            raise IngestInputError(f"--failed {bad[0]!r}: use political, scientific or normative")
        checks = {c.value: c.value not in failed for c in ReviewCheck}
    asset = _library(runtime).review(
        ref,
        approve=approve,
        reviewer=reviewer,
        at=runtime.clock.now(),
        notes=notes,
        checks=checks,
    )
    if as_json:
        typer.echo(json.dumps(asset.as_json(), ensure_ascii=False, indent=2))
    else:
        typer.echo(f"{asset.asset_id}: {asset.review_state.value}")


@assets_app.command("categorize")
def assets_categorize(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="ID", help="Asset id or lesson id.")],
    ad_category: Annotated[
        str, typer.Option("--ad-category", help="What the ad sells, e.g. public_service.")
    ],
) -> None:
    """Set the ad category (广告类别) of an ad or promo ingested without one."""
    category = _ad_category(ad_category)
    if category is None:
        raise IngestInputError("--ad-category is empty: name a category, e.g. public_service")
    asset = _library(_runtime(ctx)).set_ad_category(ref, category)
    typer.echo(f"{asset.asset_id}: {category.value} ({category.name_zh})")


def register(app: typer.Typer) -> None:
    app.command("synth")(synth_command)
    app.command("ingest")(ingest_command)
    app.command("loudness")(loudness_command)
    app.add_typer(assets_app, name="assets")
