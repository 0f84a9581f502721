"""The commands end to end, in-process: schedule load, rundown compile, epg xmltv/si/partners."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from epg.rundown import Rundown
from epg.si import (
    EIT_PID,
    SDT_PID,
    TDT_PID,
    SectionReassembler,
    decode_eit,
    decode_sdt,
    decode_tdt,
    decode_tot,
    parse_section,
)
from epg.xmltv import check_rules, check_schema
from skyclass.database import make_engine, upgrade
from tests.epg.conftest import DAY, G03, World, good_day, write_csv

Run = Callable[..., Any]


@pytest.fixture
def run(cli: Run, tmp_path: Path) -> Run:
    """The shared `cli` fixture over a database seeded with the test assets."""
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    upgrade(engine)
    World(engine, tmp_path).seed()
    engine.dispose()
    return cli


def test_schedule_load_dry_run_json_and_refusal(run: Run, tmp_path: Path) -> None:
    good = write_csv(tmp_path / "good.csv", good_day())
    dry = run("schedule", "load", str(good), "--dry-run", "--json")
    assert dry.code == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["ok"] and report["version"] is None and report["events"] == 8
    assert [w["where"] for w in report["warnings"]] == ["row 7", "row 8", "row 9"]

    loaded = run("schedule", "load", str(good), "--user", "张工")
    assert loaded.code == 0, loaded.stderr
    assert "schedule version 1" in loaded.stdout

    rows = good_day()
    rows[4][4] = "NOPE"  # row 6: an unknown asset
    bad = write_csv(tmp_path / "bad.csv", rows)
    refused = run("schedule", "load", str(bad), "--json")
    assert refused.code == 2
    body = json.loads(refused.stdout)
    assert {(e["where"], e["column"]) for e in body["errors"]} == {("row 6", "asset")}
    assert "row 6, column 'asset'" in refused.stderr

    history = run("schedule", "history", "--channel", G03, "--date", DAY.isoformat(), "--json")
    versions = json.loads(history.stdout)
    assert [v["version"] for v in versions] == [1] and versions[0]["created_by"] == "张工"


def test_rundown_xmltv_si_and_partners(run: Run, tmp_path: Path) -> None:
    good = write_csv(tmp_path / "good.csv", good_day())
    assert run("schedule", "load", str(good)).code == 0

    out = tmp_path / "rundown.json"
    compiled = run(
        "rundown", "compile", "--channel", G03, "--date", DAY.isoformat(), "-o", str(out)
    )
    assert compiled.code == 0, compiled.stderr
    assert Rundown.load(out).schedule_version == 1
    assert run("rundown", "compile", "--channel", G03, "--date", "2026-04-01").code == 2

    guide = tmp_path / "guide.xml"
    exported = run("epg", "xmltv", "--channel", G03, "--from", DAY.isoformat(), "-o", str(guide))
    assert exported.code == 0, exported.stderr
    # independent judge: XMLTV schema (py-xmltv xmltv.xsd)
    assert check_schema(guide.read_bytes()) == [] and check_rules(guide.read_bytes()) == []

    ts = tmp_path / "si.ts"
    at = "2026-03-02T08:10:00+08:00"
    made = run("epg", "si", "--channel", G03, "--at", at, "-o", str(ts))
    assert made.code == 0, made.stderr
    check_si(ts.read_bytes(), datetime.fromisoformat(at).astimezone(UTC))

    added = run("epg", "partners", "add", "湖北广电", "--channels", G03, "--json")
    assert added.code == 0 and json.loads(added.stdout)["key"].startswith("skc_")
    listed = json.loads(run("epg", "partners", "list", "--json").stdout)
    assert listed[0]["name"] == "湖北广电" and "key" not in listed[0]
    assert run("epg", "partners", "revoke", "湖北广电").code == 0
    assert run("epg", "partners", "revoke", "nobody").code == 2
    assert run("epg", "partners", "add", "x", "--channels", "g99.skyclass.cn").code == 2


def mjd_bcd(moment: datetime) -> bytes:
    """EN 300 468 Annex C, written out here as an independent check of the encoder's TDT."""
    y, m, d = moment.year - 1900, moment.month, moment.day
    leap = 1 if m in (1, 2) else 0
    mjd = 14956 + d + int((y - leap) * 365.25) + int((m + 1 + leap * 12) * 30.6001)

    def bcd(value: int) -> int:
        return (value // 10) << 4 | value % 10

    return mjd.to_bytes(2, "big") + bytes(
        bcd(v) for v in (moment.hour, moment.minute, moment.second)
    )


def sections(data: bytes, pid: int) -> list[bytes]:
    assert len(data) % 188 == 0
    reassembler = SectionReassembler(pid)
    found: list[bytes] = []
    for offset in range(0, len(data), 188):
        found += reassembler.feed(data[offset : offset + 188])
    assert reassembler.continuity_errors == 0
    return found


def check_si(data: bytes, at: datetime) -> None:
    """Decode the command's TS with epg.si's decoder, plus a hand-computed TDT."""
    pids = {((data[i + 1] & 0x1F) << 8) | data[i + 2] for i in range(0, len(data), 188)}
    assert pids == {SDT_PID, EIT_PID, TDT_PID}

    (sdt_raw,) = sections(data, SDT_PID)
    sdt = decode_sdt(parse_section(sdt_raw))
    assert [(s.service_id, s.name) for s in sdt.services] == [(103, "空中课堂 三年级")]

    eit = [decode_eit(parse_section(raw)) for raw in sections(data, EIT_PID)]
    pf = sorted((s for s in eit if s.table_id == 0x4E), key=lambda s: s.section_number)
    present, following = pf[0].events[0], pf[1].events[0]
    assert present.name == "语文 L1" and present.start == datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    assert following.name == "数学 L2"  # 08:40 Beijing
    assert present.content_nibbles == ((0x5, 0x4),)
    schedule = [e for s in eit if s.table_id >= 0x50 for e in s.events]
    assert {e.name for e in schedule} >= {"语文 L1", "数学 L2", "英语 L3"}

    tdt_raw, tot_raw = sections(data, TDT_PID)
    assert decode_tdt(parse_section(tdt_raw, verify_crc=False)) == at
    assert tdt_raw[3:8] == mjd_bcd(at)
    tot = decode_tot(parse_section(tot_raw))
    assert tot.utc == at and tot.offsets[0].offset_minutes == 480
    assert tot.offsets[0].country == "CHN"
