"""Reports: the HTML in a real browser, CSV formula-injection safety, BXF BasicAsRun order.

Independent judges: a real browser (Playwright driving Debian's headless chromium)
renders the HTML, decodes the loudness picture and shows the tables (screenshot kept
under var/test-artifacts/compliance/); Python's csv reader re-reads the CSV; lxml
validates the BXF against an XML Schema written here from the BasicAsRun structure the
issue lists (element order is a sequence in it, so any other order fails).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from offair_media import (
    CHANNEL,
    DAY,
    DAY_START,
    MIDHOUR,
    Clips,
    build_rundown,
    feed_recorder,
    finish,
    make_clips,
    render,
    write_asrun,
)

from compliance.findings import Finding, Severity
from compliance.offair_loudness import LoudnessReading
from compliance.receiver import parse_source
from compliance.recording import Recorder, RecorderConfig
from compliance.reports import (
    build_report,
    gather_report,
    protect,
    render_bxf,
    render_csv,
    render_html,
)
from compliance.reports.bxf import BXF_NS
from epg.rundown import EventType, rundown_path
from ingest.fonts import cjk_font_path
from playout.asrun.ledger import AsRunOutcome, AsRunRecord, JournalEntry

ZONE = ZoneInfo("Asia/Shanghai")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "compliance"


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return make_clips(tmp_path_factory.getbasetemp() / "offair-clips")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM}: `apt-get install chromium` to run this test")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def _entry(seq: int, record: AsRunRecord) -> JournalEntry:
    return JournalEntry(seq=seq, prev=f"{seq - 1:064x}", hash=f"{seq:064x}", record=record)


def _record(
    event_id: str,
    kind: str,
    at: datetime,
    frames: int,
    *,
    aired: int | None = None,
    late: int = 0,
    asset: str | None = "a1",
    outcome: AsRunOutcome = AsRunOutcome.AIRED,
    reason: str = "",
) -> AsRunRecord:
    return AsRunRecord(
        channel_id=CHANNEL,
        event_id=event_id,
        event_type=kind,
        scheduled_frame=0,
        actual_frame=late,
        scheduled_start=at,
        actual_start=at + timedelta(seconds=late / 25),
        scheduled_frames=frames,
        duration_frames=frames if aired is None else aired,
        asset_id=asset,
        sha256=None,
        outcome=outcome,
        reason=reason,
    )


def synthetic_report(**extra: Any) -> Any:
    """A day with a lesson, an ad break, a late and a truncated lesson, and hostile text."""
    t = datetime(2026, 9, 1, 0, 0, tzinfo=UTC)  # 08:00 Beijing
    records = [
        _record("L1", "lesson", t, 20 * 60 * 25, asset="lesson-001"),
        _record("AD1", "ad", t + timedelta(minutes=20), 30 * 25, asset="=HYPERLINK(\"x\")"),
        _record("L2", "lesson", t + timedelta(minutes=21), 20 * 60 * 25, late=50,
                asset="lesson-002"),
        _record("=cmd|' /C calc'!A0", "lesson", t + timedelta(minutes=41), 1000, aired=600,
                outcome=AsRunOutcome.TRUNCATED, reason="+interrupted, @once\t-tab"),
    ]  # fmt: skip
    findings = [
        Finding(
            code="offair_loudness",
            severity=Severity.MAJOR,
            channel_id=CHANNEL,
            at=t + timedelta(minutes=20),
            message="-2+3+cmd|' /C calc'!A0",
            evidence={"event_id": "AD1", "asset_id": '=HYPERLINK("x")'},
        )
    ]
    hour = LoudnessReading(
        scope="hour",
        key="20260901T08+0800.ts",
        start=t,
        end=t + timedelta(hours=1),
        integrated_lufs=-31.5,
        true_peak_dbtp=-9.0,
        lra=3.0,
        max_momentary_lufs=-20.0,
        seconds=3600.0,
    )
    args: dict[str, Any] = {
        "channel_id": CHANNEL,
        "channel_name": "空中课堂 专题教育",
        "first": DAY,
        "last": DAY,
        "zone": ZONE,
        "entries": [_entry(n + 1, r) for n, r in enumerate(records)],
        "findings": findings,
        "loudness_hours": [hour],
        "now": datetime(2026, 9, 2, tzinfo=UTC),
    }
    args.update(extra)
    return build_report(**args)


def test_csv_resists_formula_injection() -> None:
    text = render_csv(synthetic_report())
    rows = list(csv.reader(io.StringIO(text)))  # judge: Python's csv parser
    header, body = rows[0], rows[1:]
    assert header[0] == "section" and len(body) > 6
    numeric = {"offset_s", "seq", "integrated_lufs", "true_peak_dbtp"}
    for row in body:
        for name, cell in zip(header, row, strict=True):
            if cell[:1] in ("=", "+", "@", "\t", "\r"):
                pytest.fail(f"{name} cell {cell!r} would run as a formula")
            if cell.startswith("-"):  # only a number the report computed may start with -
                assert name in numeric, (name, cell)
                float(cell)
    cells = {cell for row in body for cell in row}
    assert "'=cmd|' /C calc'!A0" in cells  # the event id, defused
    assert '\'=HYPERLINK("x")' in cells  # an asset id
    assert "'+interrupted, @once\t-tab" in cells  # a reason
    assert "'-2+3+cmd|' /C calc'!A0" in cells  # a message
    loudness = next(r for r in body if r[0] == "loudness")
    assert float(loudness[header.index("integrated_lufs")]) == -31.5  # numbers stay numbers
    assert protect("\rX") == "'\rX" and protect("ok") == "ok" and protect(-3.5) == -3.5


BASIC_AS_RUN_XSD = f"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="{BXF_NS}"
           targetNamespace="{BXF_NS}" elementFormDefault="qualified">
  <xs:simpleType name="TimeCode"><xs:restriction base="xs:string">
    <xs:pattern value="\\d{{2}}:[0-5]\\d:[0-5]\\d:([01]\\d|2[0-4])"/>
  </xs:restriction></xs:simpleType>
  <xs:complexType name="SmpteDateTime"><xs:sequence>
      <xs:element name="SmpteTimeCode" type="TimeCode"/></xs:sequence>
    <xs:attribute name="broadcastDate" type="xs:date" use="required"/>
    <xs:attribute name="frameRate" type="xs:integer"/></xs:complexType>
  <xs:complexType name="SmpteDuration"><xs:sequence>
      <xs:element name="SmpteTimeCode" type="TimeCode"/></xs:sequence>
    <xs:attribute name="frameRate" type="xs:integer"/></xs:complexType>
  <xs:complexType name="BasicAsRun"><xs:sequence>
    <xs:element name="AsRunEventId"><xs:complexType><xs:sequence>
      <xs:element name="EventId" type="xs:string"/></xs:sequence></xs:complexType></xs:element>
    <xs:element name="Content"><xs:complexType><xs:sequence>
      <xs:element name="ContentId"><xs:complexType><xs:sequence>
        <xs:element name="HouseNumber" type="xs:string"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="Name" type="xs:string"/></xs:sequence></xs:complexType></xs:element>
    <xs:element name="AsRunDetail"><xs:complexType><xs:sequence>
      <xs:element name="Status" type="xs:string"/>
      <xs:element name="Type"><xs:simpleType><xs:restriction base="xs:string">
        <xs:enumeration value="ProgramHeader"/><xs:enumeration value="BreakHeader"/>
      </xs:restriction></xs:simpleType></xs:element>
      <xs:element name="StartDateTime"><xs:complexType><xs:sequence>
        <xs:element name="SmpteDateTime" type="SmpteDateTime"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="Duration"><xs:complexType><xs:sequence>
        <xs:element name="SmpteDuration" type="SmpteDuration"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="EventNotes" type="xs:string"/>
    </xs:sequence></xs:complexType></xs:element>
  </xs:sequence></xs:complexType>
  <xs:element name="BxfMessage"><xs:complexType><xs:sequence>
    <xs:element name="BxfData"><xs:complexType><xs:sequence>
      <xs:element name="Schedule"><xs:complexType><xs:sequence>
        <xs:element name="Channel"><xs:complexType><xs:anyAttribute processContents="skip"/>
        </xs:complexType></xs:element>
        <xs:element name="AsRun" maxOccurs="unbounded"><xs:complexType><xs:sequence>
          <xs:element name="BasicAsRun" type="BasicAsRun"/></xs:sequence></xs:complexType>
        </xs:element>
      </xs:sequence><xs:anyAttribute processContents="skip"/></xs:complexType></xs:element>
    </xs:sequence><xs:anyAttribute processContents="skip"/></xs:complexType></xs:element>
  </xs:sequence><xs:anyAttribute processContents="skip"/></xs:complexType></xs:element>
</xs:schema>
"""


def test_bxf_as_run_is_valid_xml_in_basic_as_run_order() -> None:
    report = synthetic_report()
    body = render_bxf(report)
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    document = etree.fromstring(body, parser)  # well-formed, or this raises
    schema = etree.XMLSchema(etree.fromstring(BASIC_AS_RUN_XSD.encode(), parser))
    assert schema.validate(document), schema.error_log
    ns = {"b": BXF_NS}
    runs = document.findall(".//b:BasicAsRun", ns)
    assert len(runs) == 4
    first = runs[0]
    assert [etree.QName(c).localname for c in first] == ["AsRunEventId", "Content", "AsRunDetail"]
    assert first.findtext("b:Content/b:ContentId/b:HouseNumber", namespaces=ns) == "lesson-001"
    assert first.findtext("b:AsRunDetail/b:Type", namespaces=ns) == "ProgramHeader"
    start = first.find("b:AsRunDetail/b:StartDateTime/b:SmpteDateTime", ns)
    assert start is not None and start.get("broadcastDate") == "2026-09-01"
    assert start.findtext("b:SmpteTimeCode", namespaces=ns) == "08:00:00:00"  # Beijing
    assert (
        first.findtext("b:AsRunDetail/b:Duration/b:SmpteDuration/b:SmpteTimeCode", namespaces=ns)
        == "00:20:00:00"
    )
    statuses = [r.findtext("b:AsRunDetail/b:Status", namespaces=ns) for r in runs]
    assert statuses == [
        "Aired Without Discrepancy",
        "Aired Without Discrepancy",
        "Aired with Time Discrepancy",  # 2 s late
        "Aired with Duration Discrepancy",  # truncated
    ]
    types = [r.findtext("b:AsRunDetail/b:Type", namespaces=ns) for r in runs]
    assert types == ["ProgramHeader", "BreakHeader", "ProgramHeader", "ProgramHeader"]
    late = runs[2].find("b:AsRunDetail/b:StartDateTime/b:SmpteDateTime", ns)
    assert late is not None and late.findtext("b:SmpteTimeCode", namespaces=ns) == "08:21:02:00"
    notes = runs[3].findtext("b:AsRunDetail/b:EventNotes", namespaces=ns) or ""
    assert "truncated" in notes and "000000000004" in notes
    # Any other order is invalid under the same schema (the check can fail).
    detail = runs[0].find("b:AsRunDetail", ns)
    assert detail is not None
    detail.insert(0, detail[1])  # Type before Status
    assert not schema.validate(document)


@pytest.mark.slow
def test_html_report_renders_in_a_real_browser(
    browser: Any, clips: Clips, tmp_path: Path, record_property: Any
) -> None:
    # A recorded half minute: a lesson, a loud lesson, a gap in reception.
    specs = [
        ("L1", EventType.LESSON, clips.lesson, 200),
        ("LOUD", EventType.LESSON, clips.loud, 100),
        ("L3", EventType.LESSON, clips.lesson, 200),
    ]
    rundown = build_rundown(specs, start=MIDHOUR)
    rundown.save(rundown_path(tmp_path / "var" / "rundowns", CHANNEL, DAY))
    aired = render(rundown)
    recorder = Recorder(
        CHANNEL,
        parse_source("udp://127.0.0.1:5999"),
        RecorderConfig(root=tmp_path / "var" / "recordings", zone=ZONE),
    )
    feed_recorder(recorder, aired.data, drop=(14.0, 16.0))
    finish(recorder, aired.data)
    write_asrun(tmp_path / "var", aired.records)
    report = gather_report(
        channel_id=CHANNEL,
        channel_name="空中课堂 专题教育 <Thematic>",
        first=DAY,
        last=DAY,
        zone=ZONE,
        var_dir=tmp_path / "var",
        now=datetime(2026, 9, 2, tzinfo=UTC),
    )
    codes = {f.code for f in report.findings}
    assert {"offair_loudness", "offair_gap"} <= codes
    html_file = tmp_path / "report.html"
    font = cjk_font_path()  # the project's CJK font, so the screenshot shows the Chinese
    html = render_html(report, font_url=font.as_uri() if font else None)
    html_file.write_text(html, encoding="utf-8")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(html_file.as_uri())
    page.evaluate("document.fonts.ready.then(() => true)")
    assert "安全播出" in page.inner_text("#title") and "<Thematic>" in page.inner_text("#title")
    assert page.inner_text("#finding-count") == str(len(report.findings))
    day = report.days[0]
    section = page.locator(f"#day-{DAY.isoformat()}")
    assert section.locator("table.findings tr").count() == len(day.findings) + 1
    assert section.locator("table.asrun tr").count() == len(day.rows) + 1 == 4
    # The loudness graph is a picture the browser decoded, at its drawn size.
    size = section.locator("img.graph").evaluate("img => [img.complete, img.naturalWidth]")
    assert size == [True, 760]
    assert section.locator("table.loudness td.bad").count() == 1  # the hour the loud item spoilt
    assert section.locator(".head code").inner_text() == aired_head(tmp_path)
    assert not errors, errors
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    record_property("screenshot", str(shot))
    print(f"\nscreenshot: {shot}")
    assert shot.stat().st_size > 10_000
    page.close()


def aired_head(tmp_path: Path) -> str:
    from compliance.offair import load_asrun

    return load_asrun(tmp_path / "var", CHANNEL)[-1].hash


def test_report_period_is_checked() -> None:
    from compliance.errors import ComplianceInputError

    with pytest.raises(ComplianceInputError, match="before"):
        synthetic_report(first=date(2026, 9, 2), last=date(2026, 9, 1))
    with pytest.raises(ComplianceInputError, match="31"):
        synthetic_report(first=date(2026, 9, 1), last=date(2026, 12, 1))
    weekly = synthetic_report(first=date(2026, 8, 31), last=date(2026, 9, 6))
    assert weekly.kind == "weekly" and len(weekly.days) == 7
    assert [len(d.rows) for d in weekly.days] == [0, 4, 0, 0, 0, 0, 0]
    assert weekly.days[1].head is not None and weekly.days[1].head.seq == 4
    assert weekly.days[0].head is None and weekly.days[6].head is not None  # carried forward
    assert DAY_START.astimezone(ZONE).date() == DAY


def test_report_and_audit_commands(cli: Any, clips: Clips, tmp_path: Path) -> None:
    """`compliance report` writes the three formats; `compliance audit` includes the
    off-air findings; bad input exits 2 with one line."""
    var = tmp_path / "var"  # the cli fixture's SKYCLASS_VAR_DIR
    specs = [
        ("L1", EventType.LESSON, clips.short, 100),
        ("LOUD", EventType.LESSON, clips.loud, 100),
    ]
    aired = render(build_rundown(specs, start=MIDHOUR))
    config = RecorderConfig(root=var / "recordings", zone=ZONE)
    recorder = Recorder(CHANNEL, parse_source("udp://127.0.0.1:5999"), config)
    feed_recorder(recorder, aired.data, drop=(2.0, 3.5))  # a gap while the channel is on air
    finish(recorder, aired.data)
    write_asrun(var, aired.records)
    day = ("--from", "2026-09-01", "--to", "2026-09-01")
    for fmt in ("html", "csv", "bxf"):
        out = tmp_path / f"report.{fmt}"
        result = cli("compliance", "report", "--channel", CHANNEL, *day, "--format", fmt,
                     "-o", str(out))  # fmt: skip
        assert result.code == 0, result.stderr
        assert "daily report" in result.stdout and out.stat().st_size > 500
    assert "offair_loudness" in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert (tmp_path / "report.csv").read_bytes().startswith(b"\xef\xbb\xbfsection,")
    etree.fromstring((tmp_path / "report.bxf").read_bytes())

    audit = cli("compliance", "audit", "--channel", CHANNEL, *day, "--json")
    assert audit.code == 0, audit.stderr
    codes = {f["code"] for f in json.loads(audit.stdout)["findings"]}
    assert {"offair_loudness", "offair_gap"} <= codes, codes

    inverted = cli("compliance", "report", "--channel", CHANNEL, "--from", "2026-09-02",
                   "--to", "2026-09-01")  # fmt: skip
    assert inverted.code == 2 and "before" in inverted.stderr
    unknown = cli("compliance", "report", "--channel", "nope.skyclass.cn", *day)
    assert unknown.code == 2 and "nope.skyclass.cn" in unknown.stderr
    not_a_date = cli("compliance", "report", "--channel", CHANNEL, "--from", "1.9.", "--to", "x")
    assert not_a_date.code == 2 and "YYYY-MM-DD" in not_a_date.stderr
