"""`skyclass compliance verify|heads|asrun|audit` through the real CLI (SQLite).

Bad input exits 2 with one line naming what is wrong; a failed verification exits 1
naming the first bad record; an audit with findings is a successful command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from test_verify import aired, drop_triggers
from week import G03, INJECTIONS, World, build_week, expected

from skyclass.database import make_engine, upgrade


@pytest.fixture
def world(tmp_path: Path) -> World:
    """The database, var/ and media root the `cli` fixture's commands use."""
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    upgrade(engine)
    return World(engine, tmp_path)


def one_line_error(result: Any, *needles: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["verify", "--channel", "g99.skyclass.cn"], ["unknown channel 'g99.skyclass.cn'"]),
        (["heads", "--channel", "nope"], ["unknown channel 'nope'"]),
        (["asrun", "--channel", "nope"], ["unknown channel 'nope'"]),
        (
            ["audit", "--channel", "g99.skyclass.cn", "--from", "2026-03-02", "--to", "2026-03-08"],
            ["unknown channel 'g99.skyclass.cn'"],
        ),
        (
            ["audit", "--all", "--from", "2026-03-08", "--to", "2026-03-02"],
            ["--to 2026-03-02 is before --from 2026-03-08"],
        ),
        (
            ["asrun", "--channel", G03, "--from", "2026-03-08", "--to", "2026-03-02"],
            ["before --from"],
        ),
        (["audit", "--all", "--from", "2026-02-30", "--to", "2026-03-02"], ["not a date"]),
        (["audit", "--from", "2026-03-02", "--to", "2026-03-02"], ["--channel ID", "--all"]),
        (
            ["audit", "--all", "--channel", G03, "--from", "2026-03-02", "--to", "2026-03-02"],
            ["not both"],
        ),
        (["audit", "--all", "--from", "2026-01-01", "--to", "2026-12-31"], ["at most 92"]),
        (["verify", "--against", "/nonexistent/heads.json"], ["no such file"]),
    ],
)
def test_bad_input_is_exit_2_with_one_clear_line(
    cli: Any, args: list[str], needles: list[str]
) -> None:
    result = cli("compliance", *args)
    assert result.code == 2, (result.stdout, result.stderr)
    one_line_error(result, *needles)


def test_a_file_that_is_not_a_heads_file_is_exit_2(cli: Any, tmp_path: Path) -> None:
    bogus = tmp_path / "heads.json"
    bogus.write_text('{"format": "something else"}', encoding="utf-8")
    result = cli("compliance", "verify", "--against", str(bogus))
    assert result.code == 2
    one_line_error(result, "not a skyclass-asrun-heads/1 file")


def test_verify_heads_and_a_tampered_table(cli: Any, world: World, tmp_path: Path) -> None:
    aired(world)
    ok = cli("compliance", "verify", "--channel", G03)
    assert ok.code == 0, ok.stderr
    assert f"{G03}: ok (journal 12, table 12" in ok.stdout
    heads_file = tmp_path / "heads.json"
    exported = cli("compliance", "heads", "--json", "-o", str(heads_file))
    assert exported.code == 0, exported.stderr
    heads = json.loads(heads_file.read_text(encoding="utf-8"))
    assert heads["format"] == "skyclass-asrun-heads/1"
    assert [(h["channel_id"], h["seq"]) for h in heads["heads"]] == [(G03, 12)]
    again = cli("compliance", "verify", "--against", str(heads_file))
    assert again.code == 0, again.stderr

    drop_triggers(world.engine)
    with world.engine.begin() as conn:
        conn.execute(text("UPDATE asrun SET asset_id = 'OTHER' WHERE seq = 7"))
    broken = cli("compliance", "verify", "--channel", G03)
    assert broken.code == 1
    one_line_error(broken, "verification failed", G03, "table", "seq 7", "edited")
    assert "FAILED" in broken.stdout and "trigger" in broken.stdout
    refused = cli("compliance", "heads")
    assert refused.code == 1
    one_line_error(refused, "no heads exported", "seq 7")


def test_asrun_lists_records_with_their_hashes(cli: Any, world: World) -> None:
    aired(world)
    listed = cli("compliance", "asrun", "--channel", G03, "--json")
    assert listed.code == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["seq"] for r in rows] == list(range(1, 13))
    assert all(len(r["hash"]) == 64 for r in rows)
    assert rows[1]["prev"] == rows[0]["hash"]
    other_day = cli("compliance", "asrun", "--channel", G03, "--from", "2026-03-03", "--json")
    assert other_day.code == 0 and json.loads(other_day.stdout) == []
    table = cli("compliance", "asrun", "--channel", G03, "--from", "2026-03-02", "--to",
                "2026-03-02")  # fmt: skip
    assert table.code == 0 and f"as-run {G03} (12 records)" in table.stdout


def test_audit_json_of_the_week(cli: Any, world: World) -> None:
    build_week(world, set(INJECTIONS))
    result = cli("compliance", "audit", "--all", "--from", "2026-03-02", "--to", "2026-03-08",
                 "--json")  # fmt: skip
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    got = {(f["code"], f["at"]) for f in report["findings"]}
    assert {code for code, _ in got} == {code for code, _ in expected(set(INJECTIONS))}
    assert report["counts"] == {code: 1 for code in INJECTIONS}
    for finding in report["findings"]:
        assert set(finding) == {"id", "code", "severity", "channel_id", "at", "message",
                                "evidence"}  # fmt: skip
        assert finding["evidence"].get("asrun_hash") or finding["evidence"].get("ads")
    shown = cli("compliance", "audit", "--channel", G03, "--from", "2026-03-02", "--to",
                "2026-03-02")  # fmt: skip
    assert shown.code == 0 and "guide_mismatch" in shown.stdout
