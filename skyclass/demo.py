"""`skyclass demo`: a 空中课堂 station on air on this machine, in minutes.

It does what an operator would, with the real commands (each is printed as it runs):

1. synthesize a small library in house format (so ingest stream-copies): a lesson for
   three grade channels across the bands (小学 g03, 初中 g08, 高中 g11) within their
   duration rules, each with a resource package (学习任务单, 课后练习); a 专题教育
   lesson; the 眼保健操 break, filler, a 公益广告 and a promo, for HD and SD;
2. ingest it (progress bars) and approve it (审核: 政治性、科学性、规范性);
3. load this week's schedule for those channels and the 专题教育 channel: a morning
   block every day, and today a block that starts a minute or two from now;
4. compile today's rundowns, then run ``skyclass up`` in real time: every channel to
   UDP multicast on the loopback interface and to HLS, recorded and monitored, with
   the console, the JSON API and the XMLTV pull;
5. print the console URL with a login per role, the XMLTV URL with a partner key (as
   a curl command), and the UDP and HLS addresses with commands that play them;
6. run until Ctrl-C (or ``--minutes``), stop cleanly, and print the compliance audit
   of what aired.

Everything lives in ``--work-dir`` (default ``var/demo``): its own database, media,
channel registry and var/. A second run reuses the library and is on air in seconds.
"""

from __future__ import annotations

import csv
import os
import shlex
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.rule import Rule

from core.errors import SkyclassError
from grading import GradingPolicy
from ingest import AssetLibrary
from skyclass.runtime import Runtime

DEMO_PASSWORD = "skyclass-demo"
ROLES = ("operator", "reviewer", "compliance", "admin")
PARTNER = "演示省级台"
#: Seconds at least from "now" to today's first lesson: to compile and start the station.
LEAD_SECONDS = 45
#: Lessons per channel in a block (then reruns); screen-time rules allow far more.
BLOCK_LESSONS = 4


class DemoStepFailed(SkyclassError):
    """A step of the demo failed; its own message said why."""


@dataclass(frozen=True, kw_only=True)
class DemoChannel:
    id: str
    short: str
    multicast: str  # the channel's cable group on the loopback interface
    profile: str  # hd | sd
    grade: str | None  # None: the 专题教育 channel
    subject: str
    title: str

    @property
    def lesson_grade(self) -> str:
        """The grade a lesson of this channel is made for (专题 lessons: a 小学 grade)."""
        return self.grade or "g05"


# The demo sends on 239.10.200.N, never on the lineup's own groups (239.10.0.N in
# channels.toml): a demo on a machine that also runs or tests the real station must not
# mix its datagrams into the station's groups, nor take theirs into its recordings.
DEMO_CHANNELS = (
    DemoChannel(
        id="g03.skyclass.cn",
        short="g03",
        multicast="239.10.200.3",
        profile="hd",
        grade="g03",
        subject="数学",
        title="两位数乘两位数",
    ),
    DemoChannel(
        id="g08.skyclass.cn",
        short="g08",
        multicast="239.10.200.8",
        profile="hd",
        grade="g08",
        subject="物理",
        title="光的折射",
    ),
    DemoChannel(
        id="g11.skyclass.cn",
        short="g11",
        multicast="239.10.200.11",
        profile="hd",
        grade="g11",
        subject="化学",
        title="化学反应的速率",
    ),
    DemoChannel(
        id="zt.skyclass.cn",
        short="zt",
        multicast="239.10.200.20",
        profile="sd",
        grade=None,
        subject="心理健康教育",
        title="学会调节情绪",
    ),
)
PORT = 1234

#: What fills a break between lessons, per house profile: (kind, schedule type, title).
EXTRAS = (
    ("eye_break", "filler", "眼保健操"),
    ("ad", "ad", "公益广告 · 爱护眼睛"),
    ("promo", "promo", "空中课堂 宣传片"),
    ("filler", "filler", "空中课堂 · 课间"),
)
AD_SECONDS, PROMO_SECONDS = 15.0, 20.0


@dataclass(frozen=True, kw_only=True)
class Lengths:
    """How long the demo's items are, from the grading policy (a config may shorten them).

    Each lesson is as short as its band allows; the break's 眼保健操 and filler each
    last half the band's minimum rest, so ads and promo come on top of a legal break.
    """

    lesson: dict[str, float]  # channel id → seconds
    half_break: float

    @classmethod
    def from_policy(cls, policy: GradingPolicy) -> Lengths:
        lesson = {
            c.id: float(policy.duration_rule(c.lesson_grade).min_seconds) for c in DEMO_CHANNELS
        }
        rest = max(policy.screen_time_for(c.lesson_grade).min_break_minutes for c in DEMO_CHANNELS)
        return cls(lesson=lesson, half_break=max(10.0, rest * 60 / 2))

    def extra(self, kind: str) -> float:
        return {"ad": AD_SECONDS, "promo": PROMO_SECONDS}.get(kind, self.half_break)

    @property
    def break_seconds(self) -> float:
        return sum(self.extra(kind) for kind, _type, _title in EXTRAS)


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


# -- the demo's own registry and settings ---------------------------------------------------


def write_channels(sample: Path, out: Path, hls_root: Path) -> None:
    """The sample registry, cut to the demo's channels, with loopback outputs.

    Each channel sends plain UDP to its multicast group on the loopback interface (so
    the recorder and any player can join at once) and rolling HLS under ``hls_root``.
    """
    import tomli_w

    data = tomllib.loads(sample.read_text(encoding="utf-8"))
    wanted = {c.id: c for c in DEMO_CHANNELS}
    kept = []
    for entry in data["channel"]:
        demo = wanted.get(entry["id"])
        if demo is None:
            continue
        entry["output"] = [
            {"kind": "cable", "url": f"udp://{demo.multicast}:{PORT}?ttl=1&iface=127.0.0.1"},
            {"kind": "5g", "url": f"hls:{hls_root / demo.short}"},
        ]
        entry.pop("filler", None)
        kept.append(entry)
    data["channel"] = kept
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(tomli_w.dumps(data), encoding="utf-8")


def demo_runtime(base: Runtime, work: Path) -> Runtime:
    """A runtime whose database, media, registry and var/ all live in ``work``."""
    from channels.registry import SAMPLE_CHANNELS_FILE

    work = work.resolve()
    channels_file = work / "channels.toml"
    write_channels(SAMPLE_CHANNELS_FILE, channels_file, work / "var" / "hls")
    settings = base.settings.model_copy(
        update={
            "database_url": f"sqlite:///{work / 'skyclass.db'}",
            "media_root": work / "media",
            "var_dir": work / "var",
            "channels_file": channels_file,
        }
    )
    return Runtime(settings, clock=base.clock, debug=base.debug)


# -- library ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Item:
    ref: str  # lesson id in the library
    source: Path
    kind: str
    seconds: float
    title: str
    fmt: str
    subject: str = "数学"
    grade: str = "g03"
    profile: str = "hd"
    channel: DemoChannel | None = None
    ad_category: str | None = None


def _library_items(sources: Path, lengths: Lengths) -> list[_Item]:
    items = [
        _Item(
            ref=f"demo-{c.short}-lesson",
            source=sources / f"{c.short}-lesson-{lengths.lesson[c.id]:g}s.mkv",
            kind="lesson",
            seconds=lengths.lesson[c.id],
            title=c.title,
            fmt=f"house-{c.profile}",
            subject=c.subject,
            grade=c.lesson_grade,
            profile=c.profile,
            channel=c,
        )
        for c in DEMO_CHANNELS
    ]
    for profile in ("hd", "sd"):
        for kind, _type, title in EXTRAS:
            seconds = lengths.extra(kind)
            items.append(
                _Item(
                    ref=f"demo-{profile}-{kind}",
                    source=sources / f"{profile}-{kind}-{seconds:g}s.mkv",
                    kind=kind,
                    seconds=seconds,
                    title=title,
                    fmt=f"house-{profile}",
                    profile=profile,
                    ad_category="public_service" if kind == "ad" else None,
                )
            )
    return items


def _synthesize(items: list[_Item], console: Console) -> None:
    """Make the missing source files, two at a time (ffmpeg does the work)."""
    from ingest.synth import SynthFormat, synthesize

    todo = [item for item in items if not item.source.exists()]
    for stale in {p for item in todo for p in item.source.parent.glob("*.partial.mkv")}:
        stale.unlink()  # from a demo that was stopped while synthesizing
    if not todo:
        console.print(f"library sources already made ({len(items)} files)")
        return
    for item in todo:
        console.print(
            "[bold cyan]$ skyclass "
            + shlex.join(
                [
                    "synth",
                    "--grade",
                    item.grade,
                    "--seconds",
                    f"{item.seconds:g}",
                    "--format",
                    item.fmt,
                    "--subject",
                    item.subject,
                    "--title",
                    item.title,
                    "--out",
                    str(item.source),
                ]
            )
            + "[/bold cyan]"
        )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        tasks = {item.ref: progress.add_task(item.source.name, total=1.0) for item in todo}

        def make(item: _Item) -> None:
            partial = item.source.with_suffix(".partial.mkv")
            synthesize(
                partial,
                grade=item.grade,
                subject=item.subject,
                seconds=item.seconds,
                fmt=SynthFormat(item.fmt),
                title=item.title,
                progress=lambda f: progress.update(tasks[item.ref], completed=f),
            )
            partial.replace(item.source)  # a killed demo never leaves half a file
            progress.update(tasks[item.ref], completed=1.0)

        with ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(make, item) for item in todo]:
                future.result()


def _package(directory: Path, item: _Item) -> Path:
    """学习任务单 and 课后练习 as one-page PDFs with the lesson's title (Pillow)."""
    from PIL import Image, ImageDraw, ImageFont

    from ingest.fonts import cjk_font

    directory.mkdir(parents=True, exist_ok=True)
    font = cjk_font(40) or ImageFont.load_default()
    for name, heading in (("学习任务单", "学习任务单"), ("课后练习", "课后练习")):
        path = directory / f"{name}.pdf"
        if path.exists():
            continue
        page = Image.new("RGB", (1240, 1754), "white")
        draw = ImageDraw.Draw(page)
        draw.text((100, 120), f"{heading} · {item.title}", fill="black", font=font)
        draw.text((100, 220), f"学科：{item.subject}", fill="black", font=font)
        page.save(path, "PDF", resolution=150)
    return directory


INGEST_JOBS = 2  # files ingested at once: a stream-copy ingest is half reads and hashing


def _ingest_and_approve(items: list[_Item], runtime: Runtime, op: _Operator, work: Path) -> None:
    """Ingest what the library lacks as one batch (a manifest, a bar per file), then approve."""
    todo = [item for item in items if _approval(runtime, item.ref) is None]
    if todo:
        sources = todo[0].source.parent
        manifest = work / "manifest.csv"
        columns = ["file", "kind", "title", "lesson_id", "profile", "grade", "subject",
                   "textbook_edition", "unit", "lesson_number", "teacher", "package",
                   "ad_category"]  # fmt: skip
        with manifest.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for item in todo:
                row = {"file": item.source.name, "kind": item.kind, "title": item.title,
                       "lesson_id": item.ref, "profile": item.profile,
                       "ad_category": item.ad_category or ""}  # fmt: skip
                if item.kind == "lesson":
                    package = _package(work / "packages" / item.ref, item)
                    row |= {"grade": item.grade, "subject": item.subject,
                            "textbook_edition": "人教版", "unit": "第一单元",
                            "lesson_number": "1", "teacher": "王老师",
                            "package": os.path.relpath(package, sources)}  # fmt: skip
                writer.writerow(row)
        op.run("ingest", str(sources), "--manifest", str(manifest), "--jobs", str(INGEST_JOBS))
    for item in items:
        if not _approval(runtime, item.ref):
            op.run("assets", "review", item.ref, "--approve", "--reviewer", "演示审核员",
                   "--notes", "政治性、科学性、规范性 通过")  # fmt: skip


def _approval(runtime: Runtime, ref: str) -> bool | None:
    """None if the library lacks `ref`, else whether it is approved (reruns skip done work)."""
    asset = AssetLibrary(runtime.sessions(), runtime.media_root).find(ref)
    return None if asset is None else asset.approved


# -- schedule -----------------------------------------------------------------------------


def week_schedule(today: date, first_today: datetime, lengths: Lengths) -> list[dict[str, str]]:
    """This week (Monday to Sunday) for every demo channel, as schedule rows.

    Each day has a block at 08:00: lessons, each followed (but the last) by a break of
    眼保健操, an ad, a promo and filler (≥ 10 min, the screen-time rule); later lessons
    are reruns. Today's block starts at ``first_today`` instead, so the channels go from
    filler to a lesson a minute after the station starts.
    """
    monday = today - timedelta(days=today.weekday())
    rows: list[dict[str, str]] = []
    for n in range(7):
        day = monday + timedelta(days=n)
        start = first_today if day == today else datetime.combine(day, datetime.min.time())
        if day != today:
            start = start.replace(hour=8)
        for channel in DEMO_CHANNELS:
            rows += _block(channel, day, start, lengths)
    return rows


def _block(
    channel: DemoChannel, day: date, start: datetime, lengths: Lengths
) -> list[dict[str, str]]:
    lesson_seconds = lengths.lesson[channel.id]
    break_seconds = lengths.break_seconds
    end_of_day = datetime.combine(day + timedelta(days=1), datetime.min.time())
    room = (end_of_day - start).total_seconds()
    count = 0
    while count < BLOCK_LESSONS and (count + 1) * lesson_seconds + count * break_seconds <= room:
        count += 1
    rows: list[dict[str, str]] = []
    for n in range(count):
        rows.append(
            _row(
                channel.id,
                "lesson" if n == 0 else "rerun",
                f"demo-{channel.short}-lesson",
                at=start if n == 0 else None,
            )
        )
        if n + 1 < count:
            for kind, schedule_type, _title in EXTRAS:
                rows.append(_row(channel.id, schedule_type, f"demo-{channel.profile}-{kind}"))
    return rows


def _row(channel_id: str, kind: str, asset: str, *, at: datetime | None = None) -> dict[str, str]:
    return {
        "channel": channel_id,
        "date": at.date().isoformat() if at else "",
        "start": at.strftime("%H:%M:%S") if at else "",
        "type": kind,
        "asset": asset,
        "duration": "",
        "start_mode": "fixed" if at else "sequential",
    }


# -- on air ---------------------------------------------------------------------------------


def _accounts(runtime: Runtime) -> None:
    """A console login per role (password DEMO_PASSWORD), made once."""
    from skyclass.web.users import Role, UserStore

    users = UserStore(runtime.sessions())
    existing = {u.name for u in users.list()}
    for role in ROLES:
        name = f"demo-{role}"
        if name not in existing:
            users.add(name, Role(role), DEMO_PASSWORD, at=runtime.clock.now())


def _partner_key(runtime: Runtime, work: Path) -> str:
    """The demo partner's XMLTV key: made once, kept in the work dir (it is shown once)."""
    from epg.context import EpgServices

    keep = work / "partner-key.txt"
    if keep.exists():
        return keep.read_text(encoding="utf-8").strip()
    services = EpgServices(runtime)
    _partner, key = services.partners.add(
        PARTNER, [c.id for c in DEMO_CHANNELS], at=runtime.clock.now()
    )
    keep.write_text(key + "\n", encoding="utf-8")
    keep.chmod(0o600)
    return key


def _addresses(runtime: Runtime, console: Console, *, port: int, key: str) -> None:
    base = f"http://127.0.0.1:{port}"
    console.print(Rule("on air · 播出中"))
    console.print(f"控制台 console: {base}/")
    for role in ROLES:
        console.print(f"  login {f'demo-{role}':<18} password {DEMO_PASSWORD}   ({role})")
    console.print("节目单 XMLTV (partner key):")
    console.print(
        f"  curl -s -H 'X-API-Key: {key}' {base}/epg/{DEMO_CHANNELS[0].id}.xml | head",
        markup=False,
    )
    console.print("播出流 streams (UDP multicast on lo, and HLS):")
    for channel in DEMO_CHANNELS:
        hls = runtime.var_dir / "hls" / channel.short / "index.m3u8"
        udp = f"udp://{channel.multicast}:{PORT}"
        console.print(f"  {channel.id}", markup=False)
        console.print(f"    ffplay '{udp}?localaddr=127.0.0.1'   |   vlc {udp}", markup=False)
        console.print(f"    ffplay {hls}   |   mpv {hls}", markup=False)
    console.print("Ctrl-C stops the station cleanly, then the audit of what aired is printed.")


def _audit(op: _Operator, day: date, until: datetime) -> None:
    op.run(
        "compliance", "audit", "--all", "--from", day.isoformat(), "--to", day.isoformat(),
        "--until", until.isoformat(timespec="seconds"),
    )  # fmt: skip


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        ctx: typer.Context,
        minutes: Annotated[
            float | None,
            typer.Option("--minutes", help="Stay on air this long (default: until Ctrl-C)."),
        ] = None,
        port: Annotated[int, typer.Option("--port", help="Console port.")] = 8080,
        work_dir: Annotated[
            Path, typer.Option("--work-dir", help="Where the demo station lives.")
        ] = Path("var/demo"),
        lineup_only: Annotated[
            bool, typer.Option("--lineup-only", help="Only set up and show the channels.")
        ] = False,
    ) -> None:
        """Put a 空中课堂 station on air here: library, schedule, playout, console, guide."""
        from channels.cli import lineup_table
        from skyclass.up import StationOptions, run_station

        console = Console()
        runtime = demo_runtime(ctx.obj, work_dir)
        op = _Operator(runtime, console)
        op.run("db", "upgrade")
        console.print(lineup_table(runtime.registry))
        if lineup_only:
            return

        console.print(Rule("1 · 素材 synthesize the library (house format)"))
        lengths = Lengths.from_policy(runtime.grading_policy)
        items = _library_items(work_dir / "sources", lengths)
        _synthesize(items, console)
        console.print(Rule("2 · 入库与审核 ingest and review"))
        _ingest_and_approve(items, runtime, op, work_dir)

        console.print(Rule("3 · 周播表 this week's schedule"))
        zone = runtime.zone
        now = runtime.clock.now().astimezone(zone)
        # The next whole minute at least LEAD_SECONDS away: filler airs until then.
        first = (now + timedelta(seconds=LEAD_SECONDS + 59)).replace(second=0, microsecond=0)
        today = now.date()
        schedule = work_dir / f"schedule-{today:%Y%m%d}-{now:%H%M%S}.csv"
        rows = week_schedule(today, first.replace(tzinfo=None), lengths)
        with schedule.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        op.run("schedule", "load", str(schedule), "--user", "demo")
        op.run("rundown", "compile-all", "--date", today.isoformat())

        _accounts(runtime)
        key = _partner_key(runtime, work_dir)
        console.print(Rule("4 · 开播 skyclass up"))
        console.print(
            f"[bold cyan]$ skyclass up --port {port}"
            + (f" --minutes {minutes:g}" if minutes is not None else "")
            + "[/bold cyan]"
        )
        options = StationOptions(channels=tuple(c.id for c in DEMO_CHANNELS), port=port)
        started = _Started(runtime, console, port=port, key=key)
        station = run_station(runtime, options, minutes=minutes, on_started=started)
        # The audit ends where the stop was asked for: an item still on air then was cut
        # by the stop itself, not by playout (the auditors leave items past --until alone).
        stopped = station.stop_requested_at or runtime.clock.now()

        console.print(Rule("5 · 稽核 audit of what aired"))
        op.run("compliance", "verify")
        _audit(op, today, stopped)


class _Started:
    """Prints the addresses once the station is on air."""

    def __init__(self, runtime: Runtime, console: Console, *, port: int, key: str) -> None:
        self.runtime, self.console, self.port, self.key = runtime, console, port, key

    def __call__(self, *_: Any) -> None:
        _addresses(self.runtime, self.console, port=self.port, key=self.key)
