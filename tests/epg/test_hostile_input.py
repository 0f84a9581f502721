"""Hostile schedules (issue 11): each defect class found by fuzzing, kept as a regression.

Every case runs `skyclass schedule load` in-process and checks the contract: exit
code 2, one line on stderr that names the file (and the row and column when
there is one), well under 5 s and 500 MB, and no row added to any table.
Bombs and damaged workbooks are generated here from a good workbook, never
committed.
"""

from __future__ import annotations

import io
import json
import os
import re
import resource
import shutil
import sqlite3
import struct
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from epg.errors import StorageFullError
from epg.rundown import EventType, StartMode
from epg.schedule import ScheduledEvent
from epg.store import ScheduleStore
from skyclass.database import make_engine, session_factory, upgrade
from tests.epg.conftest import DAY, G03, NOW, ZONE, good_day, write_csv, write_json
from tests.epg.test_schedule_formats import write_xlsx

Run = Callable[..., Any]
SECONDS = 5.0  # the contract; generous for a refusal that takes milliseconds
PEAK_BYTES = 500 * 1024 * 1024


@pytest.fixture
def run(cli: Run, tmp_path: Path, _lite_template: Path) -> Run:
    """The shared `cli` fixture over a copy of the seeded SQLite database."""
    shutil.copyfile(_lite_template, tmp_path / "cli.db")
    return cli


def table_counts(db: Path) -> dict[str, int]:
    """Rows in every table: a refusal must not add or remove any."""
    with sqlite3.connect(db) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def high_water_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def refused(run: Run, path: Path, *fragments: str) -> str:
    """Load `path` and check the refusal contract; returns the one line printed."""
    db = path.parent / "cli.db"
    before = table_counts(db)
    resident, high_before = resident_bytes(), high_water_bytes()
    started = time.monotonic()
    result = run("schedule", "load", str(path))
    elapsed = time.monotonic() - started
    high_after = high_water_bytes()
    assert result.code == 2, result.stderr
    stderr: str = result.stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith("error: ") and path.name in line, line
    for fragment in fragments:
        assert fragment in line, line
    assert elapsed < SECONDS, (elapsed, line)
    # If the load raised the process's high-water mark, it stayed within the bound.
    assert high_after <= max(high_before, resident + PEAK_BYTES), (high_after - resident, line)
    assert table_counts(db) == before
    return line


# -- numbers, dates and text the cell parsers must refuse at row and column ------------

HUGE_NUMBERS = [
    "1e999999999",
    "1e-99999999",
    "00:1e99999999",
    "1e30000000",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "1" + "0" * 5000,
    "0." + "1" * 5000,
]


@pytest.mark.parametrize("value", HUGE_NUMBERS, ids=lambda v: v[:14])
def test_csv_durations_that_used_to_hang_or_crash(run: Run, tmp_path: Path, value: str) -> None:
    rows = good_day()
    rows[1][5] = value  # row 3: the break's duration
    refused(run, write_csv(tmp_path / "week.csv", rows), "row 3, column 'duration'")


@pytest.mark.parametrize("token", ["1e999999999", "NaN", "Infinity", "1e400", "1" + "0" * 5000])
def test_json_number_tokens(run: Run, tmp_path: Path, token: str) -> None:
    path = write_json(tmp_path / "week.json", good_day())
    document = json.loads(path.read_text(encoding="utf-8"))
    document["events"][1]["duration"] = "@@"
    text = json.dumps(document).replace('"@@"', token)  # the raw token, not a string
    path.write_text(text, encoding="utf-8")
    refused(run, path, "events[1], column 'duration'")


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1900-01-01", "1899-12-30"])
@pytest.mark.parametrize("suffix", [".csv", ".json", ".xlsx"])
def test_dates_outside_the_broadcast_years(run: Run, tmp_path: Path, day: str, suffix: str) -> None:
    rows = good_day()
    rows[5][1] = day  # the 08:40 lesson
    path = tmp_path / f"week{suffix}"
    {".csv": write_csv, ".json": write_json, ".xlsx": write_xlsx}[suffix](path, rows)
    where = "events[5]" if suffix == ".json" else "row 7"
    line = refused(run, path, f"{where}, column 'date'")
    if day.startswith(("1899", "1900")):
        assert "empty or time-only date cell" in line  # spreadsheets' day 0
    else:
        assert "2000–2099" in line


def test_json_lone_surrogate(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "week.json"
    path.write_text(json.dumps({"events": [{"channel": G03, "type": "lesson", "asset": "\ud800"}]}))
    refused(run, path, "events[0], column 'asset'", "U+D800")


def test_json_nested_990_deep(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"events": [' + '{"a":' * 990 + "1" + "}" * 990 + "]}")
    refused(run, path)  # "nested too deeply" or "events[0] … not a string", by stack depth
    path.write_text('{"events": ' + "[" * 100_000 + "]" * 100_000 + "}")
    refused(run, path, "nested too deeply")


# -- files accepted silently before ------------------------------------------------------


def test_truncated_csv_is_refused_not_stored_short(run: Run, tmp_path: Path) -> None:
    whole = write_csv(tmp_path / "whole.csv", good_day()).read_bytes()
    cut = whole[: whole.rindex(b"rerun") + 8]  # inside the 19:00 rerun's row: "rerun,L1"
    path = tmp_path / "cut.csv"
    path.write_bytes(cut)
    refused(run, path, "row 9", "cut short")
    path.write_bytes(whole[: whole.rindex(b"19:00")] + b'"19:0')  # an open quote at the end
    refused(run, path, "line 9", "cut short")


@pytest.mark.parametrize(
    ("name", "data", "fragment"),
    [
        ("empty.json", b'{"events": []}', "no events"),
        ("header.csv", b"channel,date,start,type,asset,duration,start_mode\r\n", "no events"),
        ("blank.csv", b"channel,type\r\n,\r\n,\r\n", "no events"),
        ("twice.json", b'{"events": [{"channel": "x", "type": "ad"}], "events": []}', "'events'"),
        ("dup.json", b'{"events": [{"channel": "x", "type": "ad", "type": "lesson"}]}', "twice"),
    ],
)
def test_empty_weeks_and_duplicate_keys(
    run: Run, tmp_path: Path, name: str, data: bytes, fragment: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    refused(run, path, fragment)


def test_a_fifo_is_named_as_such_and_does_not_hang(run: Run, tmp_path: Path) -> None:
    fifo = tmp_path / "week.csv"
    os.mkfifo(fifo)
    refused(run, fifo, "FIFO")
    refused(run, tmp_path / "missing.csv", "no such schedule file")


# -- XLSX: damaged zips, entities in any encoding or part, bombs -------------------------


def workbook_parts(tmp_path: Path) -> dict[str, bytes]:
    good = write_xlsx(tmp_path / "good.xlsx", good_day())
    with zipfile.ZipFile(good) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def zipped(path: Path, parts: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return path


def patch_entry(data: bytearray, name: str, offset_local: int, offset_central: int, fmt: str,
                value: int) -> None:  # fmt: skip
    """Overwrite a field of one entry in both its local header and the central directory."""
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo(name)
    struct.pack_into(fmt, data, info.header_offset + offset_local, value)
    at = data.find(b"PK\x01\x02")
    while at != -1:
        length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + length] == name.encode():
            struct.pack_into(fmt, data, at + offset_central, value)
        at = data.find(b"PK\x01\x02", at + 4)


SHEET = "xl/worksheets/sheet1.xml"
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 or "")) * 10}">' for i in range(1, 10))
    + "]><lolz>&lol9;</lolz>"
)


def entity_cases(parts: dict[str, bytes]) -> dict[str, dict[str, bytes]]:
    sheet = parts[SHEET].decode()
    doctype = '<!DOCTYPE x [<!ENTITY e "boom">]>'
    utf16 = doctype + sheet.replace('encoding="UTF-8"', "")
    ebcdic = ('<?xml version="1.0" encoding="cp037"?>' + utf16).encode("cp037")
    surrogate = sheet.replace("g03.skyclass.cn", "&#xD800;", 1).encode()
    return {
        "utf16": {**parts, SHEET: utf16.encode("utf-16")},
        "utf16-no-bom": {**parts, SHEET: utf16.encode("utf-16-le")},
        "utf32": {**parts, SHEET: utf16.encode("utf-32")},
        "ebcdic": {**parts, SHEET: ebcdic},
        "not-named-xml": {**parts, "xl/sharedStrings.bin": LAUGHS.encode()},
        "billion-laughs": {**parts, "docProps/app.xml": LAUGHS.encode()},
        "char-ref-surrogate": {**parts, SHEET: surrogate},
    }


@pytest.mark.parametrize(
    "case",
    ["utf16", "utf16-no-bom", "utf32", "ebcdic", "not-named-xml", "billion-laughs",
     "char-ref-surrogate"],
)  # fmt: skip
def test_xlsx_entities_in_any_encoding_or_part(run: Run, tmp_path: Path, case: str) -> None:
    parts = entity_cases(workbook_parts(tmp_path))[case]
    line = refused(run, zipped(tmp_path / "evil.xlsx", parts), "part ")
    assert re.search(r"DOCTYPE|ENTITY|UTF-32|EBCDIC|not well-formed", line), line


def test_xlsx_damaged_zips(run: Run, tmp_path: Path) -> None:
    good = write_xlsx(tmp_path / "good.xlsx", good_day())
    data = good.read_bytes()
    path = tmp_path / "damaged.xlsx"
    for cut in (len(data) // 2, len(data) - 30, 100):
        path.write_bytes(data[:cut])
        refused(run, path)
    info = zipfile.ZipFile(good).getinfo(SHEET)
    flipped = bytearray(data)
    start = info.header_offset + 30 + len(SHEET) + 20
    flipped[start : start + 40] = bytes(b ^ 0xFF for b in flipped[start : start + 40])
    path.write_bytes(flipped)
    refused(run, path, "damaged")
    method = bytearray(data)
    patch_entry(method, SHEET, 8, 10, "<H", 99)  # an unknown compression method
    path.write_bytes(method)
    refused(run, path, "zip feature")


def test_xlsx_malformed_parts_and_cell_references(run: Run, tmp_path: Path) -> None:
    parts = workbook_parts(tmp_path)
    sheet = parts[SHEET]
    path = tmp_path / "bad.xlsx"
    for broken, fragment in [
        (sheet.replace(b'r="A2"', b'r="A0x"', 1), "cell reference"),
        (sheet.replace(b'<row r="2"', b'<row r="-2"', 1), "row number"),
        (sheet[: len(sheet) // 2], "not well-formed"),
        (sheet.replace(b"<v>46083</v>", b"<v>" + b"9" * 5000 + b"</v>", 1), "row"),
    ]:
        refused(run, zipped(path, {**parts, SHEET: broken}), fragment)
    workbook = parts["xl/workbook.xml"].replace(b"<sheets>", b"<sheets><oops>", 1)
    refused(run, zipped(path, {**parts, "xl/workbook.xml": workbook}), "not well-formed")


def test_xlsx_numeric_cells_that_used_to_hang(run: Run, tmp_path: Path) -> None:
    parts = workbook_parts(tmp_path)
    sheet = parts[SHEET].decode()
    cell = re.search(r'<c r="F3"[^>]*>.*?</c>', sheet)
    assert cell is not None
    path = tmp_path / "numbers.xlsx"
    for value in ("1e999999999", "1e-99999999", "NaN", "1e400"):
        patched = sheet.replace(cell[0], f'<c r="F3" t="n"><v>{value}</v></c>')
        refused(run, zipped(path, {**parts, SHEET: patched.encode()}), "row 3")
    for text in ("1e999999999", "00:1e99999999"):
        rows = good_day()
        rows[1][5] = text
        refused(run, write_xlsx(path, rows), "row 3, column 'duration'")


def test_xlsx_claimed_dimension_and_far_last_row(run: Run, tmp_path: Path) -> None:
    parts = workbook_parts(tmp_path)
    sheet = re.sub(
        r'<dimension ref="[^"]*"/>', '<dimension ref="A1:XFD100000"/>', parts[SHEET].decode()
    )
    far = '<row r="100000"><c r="XFD100000" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'
    path = zipped(
        tmp_path / "bomb.xlsx", {**parts, SHEET: sheet.replace("</sheetData>", far).encode()}
    )
    assert path.stat().st_size < 10_000
    refused(run, path, "row 100000")
    # The claimed dimension alone is ignored: the 8 real rows load.
    alone = zipped(tmp_path / "dim.xlsx", {**parts, SHEET: sheet.encode()})
    assert run("schedule", "load", str(alone), "--dry-run").code == 0  # fmt: skip


def test_xlsx_inflation_bombs(run: Run, tmp_path: Path) -> None:
    parts = workbook_parts(tmp_path)
    # A part whose headers say 1 000 bytes but which inflates to 40 MB.
    under = bytearray(
        zipped(tmp_path / "u.xlsx", {**parts, "xl/media/a.bin": bytes(40 << 20)}).read_bytes()
    )
    patch_entry(under, "xl/media/a.bin", 22, 24, "<I", 1000)
    path = tmp_path / "understated.xlsx"
    path.write_bytes(under)
    refused(run, path)
    # Many parts of zeros: refused once the bytes actually inflated pass the bound.
    many = {**parts, **{f"xl/media/{i}.bin": bytes(8 << 20) for i in range(6)}}
    refused(run, zipped(tmp_path / "many.xlsx", many), "inflates the workbook past")
    tiny = {**parts, **{f"xl/media/{i}.bin": b"x" for i in range(300)}}
    refused(run, zipped(tmp_path / "parts.xlsx", tiny), "parts")
    styles = parts["xl/styles.xml"].replace(b"</cellXfs>", b"<xf/>" * 200_000 + b"</cellXfs>")
    refused(run, zipped(tmp_path / "styles.xlsx", {**parts, "xl/styles.xml": styles}), "styles")
    cells = "".join(f'<c r="H{n}"><v>1</v></c>' for n in range(2, 2 + 120_000))
    one_row = (
        parts[SHEET].decode().replace("</sheetData>", f'<row r="10">{cells}</row></sheetData>')
    )
    wide = zipped(tmp_path / "cells.xlsx", {**parts, SHEET: one_row.encode()})
    refused(run, wide, "cells")


# -- error output ---------------------------------------------------------------------


def test_many_errors_show_twenty_and_a_count_json_lists_all(run: Run, tmp_path: Path) -> None:
    rows = [
        [G03, DAY.isoformat(), f"{h:02d}:00:00", "lesson", f"NOPE{h}", "", ""] for h in range(24)
    ]
    rows += [[G03, "", "", "break", "", f"bad{n}", "sequential"] for n in range(26)]
    path = write_csv(tmp_path / "week.csv", rows)
    result = run("schedule", "load", str(path))
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 + 20 + 1, result.stderr
    assert "50 errors" in lines[0] and "30 more" in lines[-1] and "--json" in lines[-1]
    listed = run("schedule", "load", str(path), "--json")
    assert listed.code == 2 and len(json.loads(listed.stdout)["errors"]) == 50
    unreadable = tmp_path / "bad.json"
    unreadable.write_text("{oops")
    as_json = run("schedule", "load", str(unreadable), "--json")
    assert as_json.code == 2 and json.loads(as_json.stdout)["ok"] is False


def test_full_disk_during_a_sqlite_write_is_one_line_naming_the_place(tmp_path: Path) -> None:
    db = tmp_path / "full.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)

    @event.listens_for(engine, "connect")
    def _tiny(connection: Any, _record: Any) -> None:
        # SQLite answers SQLITE_FULL, exactly as on a full disk, once the file would grow.
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {pages}")

    engine.dispose()
    store = ScheduleStore(session_factory(engine), ZONE)
    filler = ScheduledEvent(seq=0, type=EventType.FILLER, start_mode=StartMode.FIXED,
                            start_frame=0, duration_frames=25, asset_id=None,
                            source_row="x" * 4000)  # fmt: skip
    days = {(G03, DAY): (filler,) * 200}
    with pytest.raises(StorageFullError) as caught:
        store.commit(days, created_by="t", at=NOW, source_name="w", source_sha256="0")
    message = str(caught.value)
    assert "\n" not in message and "is full" in message and str(tmp_path) in message
    assert "INSERT" not in message and store.stamp() == 0
    engine.dispose()


def test_full_disk_writing_a_guide_is_one_line(run: Run, tmp_path: Path) -> None:
    assert run("schedule", "load", str(write_csv(tmp_path / "w.csv", good_day()))).code == 0
    # /dev/full answers every write with ENOSPC: a full disk without filling one.
    result = run("epg", "xmltv", "--from", DAY.isoformat(), "-o", "/dev/full")
    assert result.code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "/dev/full" in lines[0] and "disk is full" in lines[0], lines
