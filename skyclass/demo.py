"""`skyclass demo`: the main job, end to end on this machine.

It walks one grade channel through a broadcast morning exactly as an operator would,
by running the real `skyclass` commands in order (each is printed before it runs):

1. database and channel lineup;
2. synthesize lessons (16-minute HD house format) plus an eye-exercise break, an ad
   and a promo, and ingest them (QC, loudness, verify, register);
3. approve them (审核), load a schedule, compile the frame-exact rundown;
4. export XMLTV and check it against the DTD;
5. play the morning in --fast mode into the TS checker and a rolling HLS output;
6. show the as-run ledger.

A failed step stops the demo with that step's exit code.
"""

from __future__ import annotations

import csv
import json
import shlex
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.rule import Rule

from channels.cli import lineup_table
from core.errors import SkyclassError
from epg.xmltv import check_document
from ingest import AssetLibrary
from skyclass.database import current_revisions, upgrade
from skyclass.runtime import Runtime


class DemoStepFailed(SkyclassError):
    pass


class _Operator:
    """Runs `skyclass …` commands in-process on the demo's runtime, printing each one."""

    def __init__(self, runtime: Runtime, console: Console) -> None:
        self.runtime = runtime
        self.console = console

    def run(self, *args: str) -> None:
        from skyclass.cli import main  # the CLI module imports this one

        self.console.print(f"[bold cyan]$ skyclass {shlex.join(args)}[/bold cyan]")
        code = main(list(args), obj=self.runtime)
        if code != 0:
            raise DemoStepFailed(f"demo step `skyclass {shlex.join(args)}` exited with {code}")


def _schedule_rows(
    channel_id: str, day: date, lessons: list[str], eye_break: str, ad: str, promo: str
) -> list[dict[str, str]]:
    """A broadcast morning: lessons at fixed times, a break with eye exercises and ads."""
    rows: list[dict[str, str]] = []
    start = datetime.combine(day, time(8, 0))
    for n, lesson in enumerate(lessons):
        rows.append(_row(channel_id, day, start, "lesson", lesson))
        if n + 1 < len(lessons):
            # Lessons are 16 min; the break from :16 to :30 holds 眼保健操 and the ads.
            rows.append(_row(channel_id, None, None, "filler", eye_break, sequential=True))
            rows.append(_row(channel_id, None, None, "ad", ad, sequential=True))
            rows.append(_row(channel_id, None, None, "promo", promo, sequential=True))
        start += timedelta(minutes=30)
    return rows


def _row(
    channel_id: str,
    day: date | None,
    start: datetime | None,
    kind: str,
    asset: str,
    *,
    sequential: bool = False,
) -> dict[str, str]:
    return {
        "channel": channel_id,
        "date": day.isoformat() if day else "",
        "start": start.strftime("%H:%M:%S") if start else "",
        "type": kind,
        "asset": asset,
        "duration": "",
        "start_mode": "sequential" if sequential else "fixed",
    }


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        ctx: typer.Context,
        lineup_only: Annotated[
            bool, typer.Option("--lineup-only", help="Only set up the database and show channels.")
        ] = False,
        channel_id: Annotated[
            str, typer.Option("--channel", help="The grade channel to take on air.")
        ] = "g03.skyclass.cn",
        lessons: Annotated[
            int, typer.Option("--lessons", min=1, max=6, help="How many 16-minute lessons.")
        ] = 2,
        day: Annotated[
            str | None,
            typer.Option("--date", help="Broadcast day YYYY-MM-DD (default: tomorrow, Beijing)."),
        ] = None,
        work_dir: Annotated[
            Path | None, typer.Option("--work-dir", help="Where demo files go (default var/demo).")
        ] = None,
    ) -> None:
        """Run the whole chain for one channel: ingest, approve, schedule, EPG, playout, as-run."""
        runtime: Runtime = ctx.obj
        console = Console()
        upgrade(runtime.engine)
        revisions = ", ".join(current_revisions(runtime.engine)) or "base"
        console.print(
            f"database ready: {runtime.engine.url.render_as_string()} (revision {revisions})"
        )
        console.print(lineup_table(runtime.registry))
        if lineup_only:
            return

        channel = runtime.registry.get(channel_id)
        if channel.thematic:
            raise typer.BadParameter(
                "pick a grade channel, e.g. g03.skyclass.cn", param_hint="--channel"
            )
        grade = channel.grades[0]
        zone = runtime.zone
        broadcast_day = (
            date.fromisoformat(day)
            if day
            else (runtime.clock.now().astimezone(zone).date() + timedelta(days=1))
        )
        work = work_dir or runtime.var_dir / "demo"
        work.mkdir(parents=True, exist_ok=True)
        profile = channel.profile.name
        house = f"house-{profile}"
        op = _Operator(runtime, console)
        tag = f"{channel.id.split('.')[0]}-{broadcast_day:%Y%m%d}"

        console.print(Rule("1 · 入库 ingest"))
        lesson_ids: list[str] = []
        subjects = ["数学", "语文", "英语", "科学", "道德与法治", "美术"]
        for n in range(lessons):
            source = work / f"lesson{n + 1}.mkv"
            title = f"{subjects[n]} 第{n + 1}课"
            if not source.exists():
                op.run("synth", "--grade", grade, "--minutes", "16", "--format", house,
                       "--subject", subjects[n], "--title", title, "--seed", str(n + 1),
                       "--out", str(source))  # fmt: skip
            lesson_id = f"{tag}-{n + 1}"
            found = _approval(runtime, lesson_id)
            if found is None:
                op.run("ingest", str(source), "--grade", grade, "--subject", subjects[n],
                       "--title", title, "--lesson-id", lesson_id, "--channel-profile", profile,
                       "--textbook-edition", "人教版", "--unit", "第一单元",
                       "--lesson-number", str(n + 1), "--teacher", "王老师",
                       "--school", "示范小学")  # fmt: skip
            lesson_ids.append(lesson_id)
        extras = {
            "eye_break": ("眼保健操", 300.0),
            "ad": ("公益广告 · 爱护眼睛", 15.0),
            "promo": ("空中课堂 宣传片", 20.0),
        }
        extra_ids: dict[str, str] = {}
        for kind, (title, seconds) in extras.items():
            source = work / f"{kind}.mkv"
            if not source.exists():
                op.run("synth", "--grade", grade, "--seconds", str(seconds), "--format", house,
                       "--title", title, "--out", str(source))  # fmt: skip
            extra_id = f"{tag}-{kind}"
            if _approval(runtime, extra_id) is None:
                op.run("ingest", str(source), "--kind", kind, "--title", title,
                       "--lesson-id", extra_id, "--channel-profile", profile)  # fmt: skip
            extra_ids[kind] = extra_id

        console.print(Rule("2 · 审核 review"))
        for asset_ref in [*lesson_ids, *extra_ids.values()]:
            found = _approval(runtime, asset_ref)
            if found is not None and not found:
                op.run("assets", "review", asset_ref, "--approve", "--reviewer", "演示审核员",
                       "--notes", "政治性、科学性、规范性 通过")  # fmt: skip

        console.print(Rule("3 · 编排 schedule and rundown"))
        schedule = work / f"schedule-{tag}.csv"
        rows = _schedule_rows(
            channel.id,
            broadcast_day,
            lesson_ids,
            extra_ids["eye_break"],
            extra_ids["ad"],
            extra_ids["promo"],
        )
        with schedule.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        op.run("schedule", "load", str(schedule), "--user", "demo")
        rundown = work / f"rundown-{tag}.json"
        op.run("rundown", "compile", "--channel", channel.id, "--date",
               broadcast_day.isoformat(), "-o", str(rundown))  # fmt: skip

        console.print(Rule("4 · 节目单 XMLTV"))
        xmltv = work / f"xmltv-{tag}.xml"
        op.run("epg", "xmltv", "--channel", channel.id, "--from", broadcast_day.isoformat(),
               "--days", "1", "-o", str(xmltv))  # fmt: skip
        check_document(xmltv.read_bytes())  # py-xmltv's xmltv.xsd + the validator's rules
        console.print(f"XMLTV {xmltv} is valid against the XMLTV schema (xmltv.xsd)")

        console.print(Rule("5 · 播出 playout (--fast)"))
        on_air = datetime.combine(broadcast_day, time(7, 59), tzinfo=zone)
        seconds = 60 + lessons * 30 * 60
        report = work / f"check-{tag}.json"
        op.run("playout", "run", "--channel", channel.id, "--rundown", str(rundown),
               "--start", on_air.isoformat(), "--duration", str(seconds), "--fast",
               "--output", f"check:{report}",
               "--output", f"hls:{work / 'hls' / channel.id}")  # fmt: skip
        checked = json.loads(report.read_text(encoding="utf-8"))
        console.print(
            f"TS check: priority 1 {'OK' if checked.get('ok_priority1') else 'FAILED'}, "
            f"priority 2 {'OK' if checked.get('ok_priority2') else 'FAILED'} "
            f"({report})"
        )
        if not checked.get("ok_priority1"):
            raise DemoStepFailed(f"the played stream failed TR 101 290 priority 1: see {report}")

        console.print(Rule("6 · 播出记录 as-run"))
        op.run("playout", "asrun", "--channel", channel.id)
        console.print(Rule("done"))
        console.print(f"Demo files are in {work}: schedule, rundown, XMLTV, TS check report, HLS.")


def _approval(runtime: Runtime, ref: str) -> bool | None:
    """None if the library lacks `ref`, else whether it is approved (reruns skip done work)."""
    asset = AssetLibrary(runtime.sessions(), runtime.media_root).find(ref)
    return None if asset is None else asset.approved
