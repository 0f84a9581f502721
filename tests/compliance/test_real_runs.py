"""Real runs audited: the whole chain through the CLI, with seconds-long SD lessons.

synth → ingest → review → schedule load → rundown compile → playout run → audit.
* a `--fast` day whose lesson media file vanished before air: `substituted`, nothing else;
* a real-time `playout run` killed (SIGKILL) mid-lesson and restarted: `truncated`.
The media are checked by the ingest verification (ffprobe-free: the project's own
probe); the audit reads only the database the runs wrote.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ingest.synth import SynthFormat, synthesize

ZONE = ZoneInfo("Asia/Shanghai")
G03 = "g03.skyclass.cn"
CHANNELS = """
[network]
original_network_id = 8400

[[channel]]
id = "g03.skyclass.cn"
name_zh = "空中课堂 三年级"
name_en = "Sky Classroom Grade 3"
service_id = 103
transport_stream_id = 3
grades = ["g03"]
profile = "sd"
mux_rate = 5_000_000

[[channel.output]]
kind = "file"
url = "file:{out}"
"""
CONFIG = """
channels_file = "{channels}"

[grading.durations.primary]
min_seconds = 4
max_seconds = 10

[grading.screen_time.primary]
max_lesson_minutes_per_day = 60
min_break_minutes = 0
"""
# No filler asset: gaps compile to slate (a short filler would tile 24 h into a huge rundown).
SOURCES = {"L1": (6, "数学 第一课"), "L2": (6, "语文 第二课")}


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """House-format SD sources (ingest stream-copies them: fast)."""
    folder = tmp_path_factory.mktemp("sources")
    out = {}
    for ref, (seconds, title) in SOURCES.items():
        out[ref] = synthesize(
            folder / f"{ref}.mkv", seconds=seconds, fmt=SynthFormat.HOUSE_SD, title=title
        ).path
    return out


@pytest.fixture
def operator(tmp_path: Path, cli: Any, sources: dict[str, Path]) -> Any:
    channels = tmp_path / "channels.toml"
    channels.write_text(CHANNELS.format(out=tmp_path / "air.ts"), encoding="utf-8")
    config = tmp_path / "skyclass.toml"
    config.write_text(CONFIG.format(channels=channels), encoding="utf-8")

    def run(*args: str) -> str:
        result = cli("--config", str(config), *args)
        assert result.code == 0, f"skyclass {' '.join(args)}\n{result.stdout}\n{result.stderr}"
        return str(result.stdout)

    run.config = config  # type: ignore[attr-defined]
    for ref, (_seconds, title) in SOURCES.items():
        run("ingest", str(sources[ref]), "--grade", "g03", "--subject", "数学", "--title", title,
            "--lesson-id", ref, "--channel-profile", "sd")  # fmt: skip
        run("assets", "review", ref, "--approve", "--reviewer", "审核员")
    return run


def load(operator: Any, tmp_path: Path, rows: list[tuple[str, ...]]) -> None:
    schedule = tmp_path / "day.csv"
    with schedule.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["channel", "date", "start", "type", "asset", "start_mode"])
        writer.writerows(rows)
    operator("schedule", "load", str(schedule))


def audit(operator: Any, day: date) -> list[dict[str, Any]]:
    out = operator("compliance", "audit", "--channel", G03, "--from", day.isoformat(),
                   "--to", day.isoformat(), "--json")  # fmt: skip
    return list(json.loads(out)["findings"])


def test_a_fast_day_with_a_vanished_lesson_file_gives_substituted(
    operator: Any, tmp_path: Path
) -> None:
    day = date(2027, 1, 5)  # ahead of the clock: the schedule and guides precede air
    d = day.isoformat()
    load(operator, tmp_path, [
        (G03, d, "08:00:00", "lesson", "L1", "fixed"),
        (G03, d, "08:00:16", "lesson", "L2", "fixed"),
    ])  # fmt: skip
    rundown = tmp_path / "rundown.json"
    operator("rundown", "compile", "--channel", G03, "--date", d, "-o", str(rundown))
    vanished = Path(json.loads(operator("assets", "show", "L2", "--json"))["path"])
    vanished.unlink()
    operator("playout", "run", "--channel", G03, "--rundown", str(rundown), "--start",
             f"{d}T07:59:58+08:00", "--duration", "30", "--fast",
             "--output", f"file:{tmp_path / 'day.ts'}")  # fmt: skip
    findings = audit(operator, day)
    assert [f["code"] for f in findings] == ["substituted"], [f["message"] for f in findings]
    (finding,) = findings
    evidence = finding["evidence"]
    assert (
        evidence["scheduled_asset_id"]
        == json.loads(operator("assets", "show", "L2", "--json"))["asset_id"]
    )
    assert evidence["outcome"] == "substituted" and evidence["asset_id"] is None
    assert str(vanished.name) in evidence["reason"] or "no such file" in evidence["reason"].lower()
    assert len(evidence["asrun_hash"]) == 64
    assert finding["at"] == f"{d}T00:00:16+00:00"
    verified = operator("compliance", "verify", "--channel", G03)
    assert f"{G03}: ok" in verified


def test_playout_killed_mid_lesson_gives_truncated(operator: Any, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    start = (now + timedelta(seconds=14)).astimezone(ZONE).replace(microsecond=0)
    if (
        start.date() != (start + timedelta(seconds=30)).date()
        or start.date() != now.astimezone(ZONE).date()
    ):
        pytest.skip("too close to midnight Beijing time for a one-day rundown")
    day = start.date()
    load(operator, tmp_path, [
        (G03, day.isoformat(), start.strftime("%H:%M:%S"), "lesson", "L1", "fixed"),
    ])  # fmt: skip
    operator("rundown", "compile", "--channel", G03, "--date", day.isoformat())
    env = {
        **os.environ,
        "SKYCLASS_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "SKYCLASS_MEDIA_ROOT": str(tmp_path / "media"),
        "SKYCLASS_VAR_DIR": str(tmp_path / "var"),
    }
    progress = tmp_path / "var" / "asrun" / f"{G03}.onair.json"
    lesson_id = f"{day.isoformat()}-0000"
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; from skyclass.cli import main; sys.exit(main())",
         "--config", str(operator.config), "playout", "run",
         "--channel", G03, "--output", f"file:{tmp_path / 'air.ts'}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        aired = 0
        while time.monotonic() < deadline and child.poll() is None:
            try:
                mark = json.loads(progress.read_text(encoding="utf-8"))
            except (FileNotFoundError, ValueError):
                mark = {}
            if mark.get("record", {}).get("event_id") == lesson_id:
                aired = int(mark["aired_frames"])
                if aired >= 50:  # two seconds of the six-second lesson are on air
                    break
            time.sleep(0.05)
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
        assert aired >= 50, f"the lesson never went on air (mark: {aired} frames)"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    # The restart records the cut lesson (recover), joins what is on air and syncs.
    operator("playout", "run", "--channel", G03, "--fast", "--duration", "1",
             "--output", f"file:{tmp_path / 'again.ts'}")  # fmt: skip
    findings = audit(operator, day)
    codes = [f["code"] for f in findings]
    assert codes == ["truncated"], [f["message"] for f in findings]
    evidence = findings[0]["evidence"]
    assert evidence["outcome"] == "truncated" and "interrupted" in evidence["reason"]
    assert 50 <= evidence["aired_frames"] < 150
    assert findings[0]["at"] == start.astimezone(UTC).isoformat()
