"""`skyclass synth|ingest|loudness|assets …`: the operator's side of ingest.

Library code yields progress fractions; only this module draws bars (rich).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ingest.synth import SynthFormat, parse_defects, synthesize


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
        SynthFormat, typer.Option("--format", help="Source format to imitate.")
    ] = SynthFormat.HOUSE_HD,
    defects: Annotated[
        str, typer.Option("--defects", help="Comma list: black,freeze,silence,loud,quiet,clipping.")
    ] = "",
    subject: Annotated[str, typer.Option("--subject", help="Subject on the slides.")] = "数学",
    title: Annotated[str | None, typer.Option("--title", help="Title on the slides.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed for the speech.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Generate a synthetic lesson (slides with the Chinese title, speech-like audio)."""
    length = seconds if seconds is not None else minutes * 60
    console = Console(stderr=True)
    with _bar(console) as bar:
        task = bar.add_task(f"synth {out.name}", total=1.0)
        result = synthesize(
            out,
            grade=grade,
            subject=subject,
            seconds=length,
            fmt=fmt,
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


def register(app: typer.Typer) -> None:
    app.command("synth")(synth_command)
