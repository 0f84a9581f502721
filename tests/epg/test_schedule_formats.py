"""One schedule, four encodings: XLSX (Chinese headers, typed cells), CSV ±BOM, GB18030, JSON."""

from __future__ import annotations

import zipfile
from datetime import date, time
from pathlib import Path

import pytest
from openpyxl import Workbook

from epg.errors import ScheduleFormatError
from epg.formats import reader_for
from tests.epg.conftest import HEADER_ZH, World, good_day, write_csv, write_json


def write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    """Chinese headers, real date and time cells, as an operator's Excel sheet has them."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "周播表"
    sheet.append(HEADER_ZH)
    for row in rows:
        cells: list[object] = list(row)
        if cells[1]:
            cells[1] = date.fromisoformat(str(cells[1]))
        if cells[2]:
            cells[2] = time.fromisoformat(str(cells[2]))
        cells[3] = {"lesson": "课程", "rerun": "重播", "break": "课间", "ad": "广告",
                    "promo": "宣传片", "filler": "垫片"}[str(cells[3])]  # fmt: skip
        cells[6] = {"fixed": "定时", "sequential": "顺序", "": None}[str(cells[6])]
        sheet.append([None if c == "" else c for c in cells])
    book.save(path)
    return path


def test_all_formats_give_the_same_schedule(lite: World, tmp_path: Path) -> None:
    rows = good_day()
    files = [
        write_csv(tmp_path / "utf8.csv", rows),
        write_csv(tmp_path / "bom.csv", rows, encoding="utf-8-sig"),
        write_csv(tmp_path / "gb.csv", rows, header=HEADER_ZH, encoding="gb18030"),
        write_json(tmp_path / "week.json", rows),
        write_xlsx(tmp_path / "week.xlsx", rows),
    ]
    reports = [lite.services.importer.check(f) for f in files]
    for report in reports:
        assert report.ok, (report.source.name, report.errors)
    expected = {k: [(e.type, e.start_frame, e.duration_frames, e.asset_id) for e in v]
                for k, v in reports[0].days.items()}  # fmt: skip
    for report in reports[1:]:
        got = {k: [(e.type, e.start_frame, e.duration_frames, e.asset_id) for e in v]
               for k, v in report.days.items()}  # fmt: skip
        assert got == expected, report.source.name
    assert reports[2].source.rows[0].cells["channel"] == "g03.skyclass.cn"


def test_xlsx_rows_are_spreadsheet_rows(lite: World, tmp_path: Path) -> None:
    rows = good_day()
    rows[5][4] = "NOPE"
    report = lite.services.importer.check(write_xlsx(tmp_path / "bad.xlsx", rows))
    assert [(p.where, p.column) for p in report.errors] == [("row 7", "asset")]


def test_xlsx_with_a_doctype_is_refused(tmp_path: Path) -> None:
    good = write_xlsx(tmp_path / "good.xlsx", good_day())
    evil = tmp_path / "evil.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/workbook.xml":
                doctype = b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                data = data.replace(b"<workbook", doctype + b"<workbook", 1)
                assert doctype in data
            dst.writestr(info, data)
    with pytest.raises(ScheduleFormatError, match="DOCTYPE"):
        reader_for(evil).read(evil)


@pytest.mark.parametrize(
    ("name", "data", "fragment"),
    [
        ("x.csv", b"foo,bar\n1,2\n", "header row lacks channel, type"),
        ("x.csv", b"\xff\xfe\xfa\xfb", "neither UTF-8 nor GB18030"),
        ("x.json", b"[1, 2]", "expected"),
        ("x.json", b"{oops", "not JSON"),
        ("x.xlsx", b"not a zip", "not an .xlsx"),
        ("x.ods", b"", "unknown schedule format"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, data: bytes, fragment: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ScheduleFormatError, match=fragment):
        reader_for(path).read(path)


def test_header_aliases_are_case_insensitive() -> None:
    from epg.formats.base import header_columns

    assert header_columns(["\ufeffChannel", "TYPE", "节目编号", "notes"], "x") == [
        "channel", "type", "asset", None,
    ]  # fmt: skip


EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "schedule-example.xlsx"


def test_docs_example_xlsx_is_current_and_valid(lite: World, tmp_path: Path) -> None:
    """docs/schedule-example.xlsx is this test's workbook: regenerate it with
    `python -c "from tests.epg.test_formats import write_example; write_example()"`."""
    fresh = write_xlsx(tmp_path / "fresh.xlsx", good_day())
    assert reader_for(EXAMPLE).read(EXAMPLE).rows == reader_for(fresh).read(fresh).rows
    assert lite.services.importer.check(EXAMPLE).ok


def write_example() -> Path:
    return write_xlsx(EXAMPLE, good_day())
