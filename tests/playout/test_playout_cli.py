"""`skyclass playout run|check|asrun` in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import Media
from playout_media import build_rundown

from epg.rundown import EventType as T


def test_run_fast_to_file_and_check_then_asrun(cli: Any, media: Media, tmp_path: Path) -> None:
    rundown = build_rundown(
        [("L1", T.LESSON, media.short, 100), ("A1", T.AD, media.ad, 75)],
        ad_break={"A1": "B1"},
    )
    path = tmp_path / "rundown.json"
    rundown.save(path)
    ts = tmp_path / "out.ts"
    result = cli(
        "playout",
        "run",
        "--channel",
        "zt.skyclass.cn",
        "--rundown",
        str(path),
        "--start",
        "2026-09-01T00:00:02+08:00",
        "--duration",
        "6",
        "--fast",
        "--output",
        f"file:{ts}",
        "--output",
        f"check:{tmp_path / 'report.json'}",
    )
    assert result.code == 0, result.stderr
    assert "priority 1 ok" in result.stdout
    assert json.loads((tmp_path / "report.json").read_text())["ok_priority1"] is True
    assert abs(ts.stat().st_size - 6 * 5_000_000 // 8) < 2 * 188 * 200  # CBR, ~6 s

    checked = cli("playout", "check", str(ts), "--json")
    assert checked.code == 0, checked.stderr
    assert json.loads(checked.stdout)["ok_priority1"] is True

    asrun = cli("playout", "asrun", "--channel", "zt.skyclass.cn", "--json")
    assert asrun.code == 0, asrun.stderr
    records = json.loads(asrun.stdout)
    assert records[0]["event_id"] == "L1" and records[0]["actual_frame"] == 50
    assert "joined mid-event" in records[0]["reason"]


def test_check_exits_1_on_priority_1_errors(cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.ts"
    bad.write_bytes(b"\x00" * 188 * 100)
    result = cli("playout", "check", str(bad))
    assert result.code == 1


def test_run_without_rundown_is_bad_input(cli: Any) -> None:
    result = cli(
        "playout",
        "run",
        "--channel",
        "zt.skyclass.cn",
        "--start",
        "2030-01-01T08:00:00+08:00",
        "--fast",
        "--output",
        "check:",
    )
    assert result.code == 2
    assert "rundown" in result.stderr
