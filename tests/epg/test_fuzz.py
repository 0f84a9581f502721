"""Property-based fuzzing (Hypothesis) of schedule files and EPG queries (issue 11).

The properties are the contract of every refusal: a schedule file in any of the
three formats either loads or raises a BadInputError (exit code 2) whose message
is one line when it names one problem, within 5 s, with no version stored; an
EPG request with a valid key never gets a 5xx. Examples are bounded (about
100-150 per property) so the module stays well under a minute.
"""

from __future__ import annotations

import csv
import io
import json
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils.exceptions import IllegalCharacterError

from core.errors import BadInputError
from epg.errors import ScheduleRejected
from skyclass.database import make_engine, upgrade
from skyclass.web import create_app
from tests.epg.conftest import DAY, G03, G07, HEADER, NOW, ZT, World, good_day, write_csv
from tests.epg.test_schedule_formats import write_xlsx

SECONDS = 5.0
FUZZ = settings(
    max_examples=120,
    deadline=None,  # timed by the property itself, generously, not per Hypothesis run
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

D = DAY.isoformat()
GOOD = {
    "channel": [G03, G07, ZT, "g99.skyclass.cn"],
    "date": [D, "2026-03-03", ""],
    "start": ["08:00:00", "08:40", "19:00:00", "23:59:59:24", ""],
    "type": ["lesson", "rerun", "break", "ad", "promo", "filler", "课程", "广告"],
    "asset": ["YW-3-1-1", "L2", "L3", "AD1", "PR1", "EB1", "LP", ""],
    "duration": ["", "600", "00:05:00", "00:00:10:12", "30s"],
    "start_mode": ["fixed", "sequential", "定时", ""],
}
HOSTILE = [
    "1e999999999", "1e-99999999", "00:1e99999999", "1e30000000", "NaN", "Infinity", "-Infinity",
    "1e400", "9" * 5000, "0." + "1" * 300, "0001-01-01", "9999-12-31", "1900-01-01",
    "2026-02-30", "99:99:99", "24:00:00", "-1", "0", "08:00:00.020", "=1+1", '"', ",", "\n",
    "\x00", "\x1b[31m", "\u202e", "\ufeff", " " * 300, "g03.skyclass.cn\x00",
]  # fmt: skip


def cells(column: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(GOOD[column]),
        st.sampled_from(HOSTILE),
        st.text(max_size=24),
        st.integers(min_value=-(10**30), max_value=10**30).map(str),
        st.floats().map(repr),
    )


ROW = st.tuples(*(cells(c) for c in HEADER)).map(list)
ROWS = st.one_of(
    st.lists(ROW, max_size=10),
    st.lists(st.sampled_from(good_day()), min_size=1, max_size=10),  # valid rows, reordered
)


def honour_contract(world: World, path: Path) -> None:
    """Load the file: stored, or refused with BadInputError and nothing changed, quickly."""
    before = world.services.schedules.stamp()
    started = time.monotonic()
    try:
        world.services.importer.load(path, created_by="fuzz", at=NOW)
    except BadInputError as exc:
        message = str(exc)
        assert world.services.schedules.stamp() == before
        assert message.encode("utf-8")  # printable: no lone surrogate reaches the console
        if not isinstance(exc, ScheduleRejected) or len(exc.errors) == 1:
            assert "\n" not in message, message
        else:
            assert len(message.splitlines()) <= 22
    assert time.monotonic() - started < SECONDS


def mutate(data: bytes, draw: st.DrawFn) -> bytes:
    """Truncate, insert bytes or flip a byte, as a careless transfer or an attacker would."""
    how = draw(st.sampled_from(["none", "truncate", "insert", "flip"]))
    if how == "none" or not data:
        return data
    at = draw(st.integers(min_value=0, max_value=len(data) - 1))
    if how == "truncate":
        return data[:at]
    if how == "insert":
        return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(draw(st.sampled_from([HEADER, ["channel", "type"], ["频道", "类型", "时长"]])))
    for row in draw(ROWS):
        writer.writerow(row[: draw(st.integers(min_value=1, max_value=len(row)))])
    data = buffer.getvalue().encode("utf-8", "surrogatepass")
    return mutate(data, draw)


@st.composite
def json_files(draw: st.DrawFn) -> bytes:
    tokens = ["NaN", "Infinity", "1e999999999", "1" + "0" * 5000, "[" * 2000 + "]" * 2000,
              '{"a": 1, "a": 2}', "true", "null", "[]", "{}"]  # fmt: skip
    events = []
    for row in draw(ROWS):
        event: dict[str, Any] = {k: v for k, v in zip(HEADER, row, strict=True) if v != ""}
        if draw(st.booleans()):
            event[draw(st.sampled_from(HEADER))] = "@@"
        events.append(event)
    text = json.dumps({"events": events}, ensure_ascii=draw(st.booleans()))
    text = text.replace('"@@"', draw(st.sampled_from(tokens)))
    if draw(st.booleans()):
        text = text.replace('{"events"', '{"events": [], "events"', 1)
    return mutate(text.encode("utf-8", "surrogatepass"), draw)


@settings(FUZZ, max_examples=150)
@given(data=csv_files())
def test_fuzz_csv(lite: World, tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    honour_contract(lite, path)


@settings(FUZZ, max_examples=150)
@given(data=json_files())
def test_fuzz_json(lite: World, tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.json"
    path.write_bytes(data)
    honour_contract(lite, path)


XLSX_VALUES = st.one_of(
    st.text(max_size=24),
    st.sampled_from(HOSTILE),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=False, allow_infinity=False),
    st.dates(),
    st.times(),
    st.datetimes(min_value=datetime(1900, 3, 1), max_value=datetime(9999, 12, 30)),
)


def writable(value: object) -> object:
    """What openpyxl can write: no control characters or lone surrogates in text."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        return "".join(c for c in value if not 0xD800 <= ord(c) <= 0xDFFF)
    return value


@st.composite
def typed_workbooks(draw: st.DrawFn) -> list[list[object]]:
    rows: list[list[object]] = [list(r) for r in draw(ROWS)]
    for row in rows:
        for index in range(len(row)):
            if draw(st.integers(0, 3)) == 0:
                row[index] = draw(XLSX_VALUES)
    return rows


@settings(FUZZ, max_examples=40)
@given(rows=typed_workbooks())
def test_fuzz_xlsx_cells(lite: World, tmp_path: Path, rows: list[list[object]]) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    path = tmp_path / "fuzz.xlsx"
    try:
        sheet.append(HEADER)
        for row in rows:
            sheet.append([writable(v) for v in row])
        book.save(path)
    except (ValueError, TypeError, IllegalCharacterError):  # openpyxl will not write them
        return
    honour_contract(lite, path)


SNIPPETS = [
    b'<!DOCTYPE x [<!ENTITY e "boom">]>', b"&e;", b"<!ENTITY", b"&#xD800;", b"<v>NaN</v>",
    b"<v>1e999999999</v>", b'r="XFD1048577"', b'r="A0"', b'<row r="99999">', b"<c/>" * 500,
    b'<dimension ref="A1:XFD100000"/>', b"\x00", b"\xff\xfe", b"]]>", b"<?xml", b"</sheetData>",
]  # fmt: skip


@pytest.fixture(scope="module")
def good_workbook(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    path = write_xlsx(tmp_path_factory.mktemp("xlsx") / "good.xlsx", good_day())
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


@st.composite
def mutated_workbooks(draw: st.DrawFn, parts: dict[str, bytes]) -> bytes:
    parts = dict(parts)
    name = draw(st.sampled_from(sorted(parts)))
    part = parts[name]
    how = draw(st.sampled_from(["snippet", "utf-16", "rename", "bytes"]))
    if how == "snippet":
        at = draw(st.integers(0, len(part)))
        part = part[:at] + draw(st.sampled_from(SNIPPETS)) + part[at:]
    elif how == "utf-16":
        part = (
            part.decode("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
        )
    elif how == "rename":
        parts[name + draw(st.sampled_from([".bin", "", ".txt"]))] = parts.pop(name)
        name += ".bin"
    else:
        part = mutate(part, draw)
    parts[name] = part
    buffer = io.BytesIO()
    method = draw(st.sampled_from([zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED, zipfile.ZIP_BZIP2]))
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for part_name, data in parts.items():
            archive.writestr(part_name, data)
    return mutate(buffer.getvalue(), draw)


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_fuzz_xlsx_parts_and_zip(
    lite: World, tmp_path: Path, good_workbook: dict[str, bytes], data: st.DataObject
) -> None:
    path = tmp_path / "fuzz.xlsx"
    path.write_bytes(data.draw(mutated_workbooks(good_workbook)))
    honour_contract(lite, path)


# -- the EPG pull API over real HTTP ------------------------------------------------------


class Served:
    def __init__(self, base: str, key: str) -> None:
        self.base = base
        self.key = key


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """uvicorn on a loopback port over a seeded SQLite world, as tests/epg/test_api.py does."""
    folder = tmp_path_factory.mktemp("api-fuzz")
    engine = make_engine(f"sqlite:///{folder / 'api.db'}")
    upgrade(engine)
    world = World(engine, folder).seed()
    world.load(write_csv(folder / "week.csv", good_day()))
    _partner, key = world.services.partners.add("湖北广电", [G03], at=NOW)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(create_app(world), log_level="critical", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{sock.getsockname()[1]}", key)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        engine.dispose()


@pytest.mark.parametrize(
    ("query", "encoding", "status"),
    [
        ({"from": "9999-12-31"}, "gzip", 422),
        ({"from": "0001-01-01"}, "gzip", 422),
        ({"from": "2099-12-31"}, "gzip", 422),
        ({"from": D}, "gzip;q=abc", 200),
        ({"from": D}, "gzip;q=1e999999999", 200),
        ({"from": D}, "gzip;q=NaN, *;q=", 200),
        ({"from": D, "days": "99999999999999999999"}, "gzip", 422),
        ({"from": D, "channels": ",".join([G03] * 400)}, "identity", 200),
    ],
)
def test_hostile_queries_are_4xx_or_served(
    served: Served, query: dict[str, str], encoding: str, status: int
) -> None:
    headers = {"X-API-Key": served.key, "Accept-Encoding": encoding}
    with httpx.Client(base_url=served.base, timeout=10) as client:
        answer = client.get("/epg/xmltv.xml", params=query, headers=headers)
    assert answer.status_code == status, answer.text
    if status == 200:
        assert "content-encoding" not in answer.headers  # a malformed q is not a yes
        assert answer.content.count(b"<channel ") == 1  # 400 repeats render one channel


HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(
    str.strip  # h11 refuses edge whitespace on the client side already
)
QUERY_TEXT = st.one_of(st.text(max_size=30), st.sampled_from(["9999-12-31", "0001-01-01", D, ""]))


PATHS = st.one_of(
    st.just("/epg/xmltv.xml"),
    st.sampled_from([G03, G07, "", ".", "..", "%00", "%ED%A0%80"]).map(lambda c: f"/epg/{c}.xml"),
    st.text(st.characters(min_codepoint=48, max_codepoint=122), max_size=20).map(
        lambda c: f"/epg/{c}.xml"
    ),
)
CHANNEL_LISTS = st.lists(st.sampled_from([G03, G07, "x"])).map(",".join)
ENCODINGS = st.sampled_from(["gzip;q=abc", "gzip;q=0", "*;q=1.000", "br", "gzip;q=1e999"])


@settings(FUZZ, max_examples=100)
@given(
    path=PATHS,
    start=st.one_of(st.none(), QUERY_TEXT, st.dates().map(date.isoformat)),
    days=st.one_of(st.none(), QUERY_TEXT, st.integers(-(10**20), 10**20).map(str)),
    channels=st.one_of(st.none(), QUERY_TEXT, CHANNEL_LISTS),
    encoding=st.one_of(HEADER_TEXT, ENCODINGS),
    if_none_match=st.one_of(st.none(), HEADER_TEXT),
)
def test_fuzz_epg_queries_never_500(
    served: Served,
    path: str,
    start: str | None,
    days: str | None,
    channels: str | None,
    encoding: str,
    if_none_match: str | None,
) -> None:
    params = {k: v for k, v in {"from": start, "days": days, "channels": channels}.items() if v}
    headers = {"X-API-Key": served.key, "Accept-Encoding": encoding}
    if if_none_match is not None:
        headers["If-None-Match"] = if_none_match
    with httpx.Client(base_url=served.base, timeout=10) as client:
        answer = client.get(path, params=params, headers=headers)
    assert answer.status_code < 500, (answer.status_code, answer.text[:200])
