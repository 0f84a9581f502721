"""Assets, review sign-off, attachments, weekly grid, as-run and compliance pages over HTTP."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from urllib.parse import unquote

from conftest import Served
from lxml import etree
from lxml import html as lxml_html
from web_world import DAY, G03, ZONE, good_day, login

from compliance.findings import Finding, Severity
from epg.schedule import frame_instant
from playout.asrun import AsRunLedger, AsRunOutcome, AsRunRecord, journal_path
from playout.asrun.store import sync_journal


def test_search_filters_and_qc_report(served_lite: Served) -> None:
    with login(served_lite.base, "op") as op:
        ids = lambda **q: [a["asset_id"] for a in op.get("/api/assets", params=q).json()]  # noqa: E731
        assert ids(q="数学") == ["L2"]
        assert ids(q="yw-3-1") == ["L1"]  # lesson ids, case-insensitive
        assert ids(kind="ad") == ["AD1"]
        assert ids(state="pending") == ["LP"]
        assert sorted(ids(grade="g03", kind="lesson")) == ["L1", "L2", "L3", "LP"]
        assert op.get("/api/assets", params={"kind": "nonsense"}).status_code == 422

        page = op.get("/console/assets", params={"q": "语文"})
        assert page.status_code == 200 and "YW-3-1-1" in page.text and "数学 L2" not in page.text

        detail = op.get("/console/assets/L1")
        assert detail.status_code == 200
        tree = lxml_html.fromstring(detail.text)
        loudness = tree.xpath("//table[@data-testid='loudness']//td[@class='good']")
        assert [td.text_content() for td in loudness] == ["-24.1 LUFS", "-3.2 dBTP"]
        assert "-17.9 LUFS" in detail.text  # before normalization
        # The timeline picture: one black, one freeze and two silence segments.
        svg = op.get("/api/assets/L1/qc-timeline.svg")
        assert svg.headers["content-type"].startswith("image/svg+xml")
        # independent judge: lxml parses the SVG as XML
        root = etree.fromstring(svg.content)
        ns = {"s": "http://www.w3.org/2000/svg"}
        for lane, count in (("black", 1), ("freeze", 1), ("silence", 2)):
            assert len(root.xpath(f"//s:rect[@class='seg seg-{lane}']", namespaces=ns)) == count
        inline = tree.xpath("//figure[@data-testid='qc-timeline']//*[local-name()='rect']")
        assert len(inline) > 4


def test_reviewer_signs_off_on_all_three_with_a_comment(served_lite: Served) -> None:
    world = served_lite.world
    with login(served_lite.base, "rev") as rev:
        page = rev.get("/console/assets/LP")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        partial = rev.post(
            "/console/assets/LP/review",
            data={
                "csrf_token": token,
                "decision": "approve",
                "political": "true",
                "scientific": "true",
                "comment": "少了规范性",
            },
        )
        assert partial.status_code == 400 and "规范性" in partial.text
        assert world.epg.assets.get("LP").review_state.value == "pending"
        no_comment = rev.post("/api/assets/LP/review", json=_checks(False, comment=""))
        assert no_comment.status_code == 400 and "comment" in no_comment.json()["detail"]

        done = rev.post(
            "/console/assets/LP/review",
            data={
                "csrf_token": token,
                "decision": "approve",
                "political": "true",
                "scientific": "true",
                "normative": "true",
                "comment": "三审通过",
            },
            follow_redirects=False,
        )
        assert done.status_code == 303 and done.headers["location"].endswith("?done=approved")
    asset = world.epg.assets.get("LP")
    assert asset.review_state.value == "approved"
    last = asset.reviews[-1]
    assert last.reviewer == "rev" and last.notes == "三审通过"
    assert dict(last.checks) == {"political": True, "scientific": True, "normative": True}
    from skyclass.web.audit import AuditLog

    entry = AuditLog(world.sessions()).list(action="asset.review")[0]
    assert entry.actor == "rev" and entry.target == "LP" and entry.detail["state"] == "approved"


def _checks(approve: bool, comment: str = "ok") -> dict[str, object]:
    return {
        "approve": approve,
        "political": approve,
        "scientific": approve,
        "normative": approve,
        "comment": comment,
    }


def test_attachments_download(served_lite: Served) -> None:
    world = served_lite.world
    attachments = world.epg.assets.get("L1").attachments
    with login(served_lite.base, "rev") as rev:
        first = rev.get("/api/assets/L1/attachments/0")
        assert first.status_code == 200
        assert first.content == attachments[0].path.read_bytes()
        assert first.headers["content-type"] == "application/pdf"
        assert "学习任务单.pdf" in unquote(first.headers["content-disposition"])
        second = rev.get("/api/assets/YW-3-1-1/attachments/1")  # by lesson id too
        assert second.content.decode() == "1. 读课文。\n2. 写生字。\n"
        assert rev.get("/api/assets/L1/attachments/7").status_code == 404
        assert rev.get("/api/assets/NOPE/attachments/0").status_code == 404
        page = rev.get("/console/assets/L1")
        assert "学习任务单" in page.text and "课后练习" in page.text


def test_weekly_grid_colours_and_a_click_opens_the_event(served_lite: Served) -> None:
    world = served_lite.world
    world.epg.importer.load(world.csv(good_day()), created_by="op", at=world.clock.now())
    with login(served_lite.base, "op") as op:
        page = op.get("/console/grid", params={"channel": G03, "week": DAY.isoformat()})
        assert page.status_code == 200
        tree = lxml_html.fromstring(page.text)
        events = tree.xpath("//div[@data-testid='grid']//a[contains(@class,'ev ')]")
        kinds = [e.get("class").split()[1] for e in events]
        assert kinds == ["lesson", "break", "ad", "ad", "filler", "lesson", "lesson"]
        assert events[0].text_content().strip().startswith("08:00")  # Beijing time
        opened = op.get(events[0].get("href"))
        assert opened.status_code == 200 and "语文 L1" in opened.text and "08:00:00" in opened.text
        assert op.get(f"/console/grid/{G03}/{DAY.isoformat()}/99").status_code == 404
        week = op.get(f"/api/grid/{G03}", params={"week": (DAY + timedelta(days=3)).isoformat()})
        days = week.json()["days"]
        assert days[0]["date"] == DAY.isoformat() and len(days[0]["events"]) == 7


def test_asrun_per_channel_and_day(served_lite: Served) -> None:
    world = served_lite.world
    ledger = AsRunLedger(journal_path(world.var_dir, G03))
    for n, (event, outcome) in enumerate(
        [("E1", AsRunOutcome.AIRED), ("E2", AsRunOutcome.SUBSTITUTED), ("E3", AsRunOutcome.AIRED)]
    ):
        start = frame_instant(ZONE, DAY, (8 * 3600 + n * 600) * 25)
        ledger.append(
            AsRunRecord(
                channel_id=G03,
                event_id=event,
                event_type="lesson",
                scheduled_frame=(8 * 3600 + n * 600) * 25,
                actual_frame=(8 * 3600 + n * 600) * 25,
                scheduled_start=start,
                actual_start=start,
                scheduled_frames=15000,
                duration_frames=15000,
                asset_id="L1",
                sha256=None,
                outcome=outcome,
                reason="media missing" if outcome is AsRunOutcome.SUBSTITUTED else "",
            )
        )
        if n == 1:
            sync_journal(ledger, world.sessions())  # the database holds the first two
    with login(served_lite.base, "comp") as comp:
        lines = comp.get("/api/asrun", params={"channel": G03, "date": DAY.isoformat()}).json()
        assert [(x["event_id"], x["synced"]) for x in lines] == [
            ("E1", True),
            ("E2", True),
            ("E3", False),
        ]
        assert lines[1]["outcome"] == "substituted" and lines[0]["hash"]
        other = comp.get("/api/asrun", params={"channel": G03, "date": "2026-03-03"}).json()
        assert other == []
        page = comp.get("/console/asrun", params={"channel": G03, "date": DAY.isoformat()})
        assert page.text.count("outcome-substituted") == 1 and "unsynced" in page.text
        assert "08:10:00" in page.text  # Beijing time
        assert comp.get("/api/asrun", params={"channel": "nope"}).status_code == 404


def test_compliance_findings_evidence_and_reports(served_lite: Served) -> None:
    world = served_lite.world
    with login(served_lite.base, "comp") as comp:
        empty = comp.get("/console/compliance")
        assert empty.status_code == 200 and "no-compliance" in empty.text
        root = world.var_dir / "compliance"
        (root / "findings").mkdir(parents=True)
        (root / "reports").mkdir()
        # The files an audit writes: compliance's own Finding records, as JSON.
        found = [
            Finding(
                code="ad_in_lesson",
                severity=Severity.CRITICAL,
                channel_id=G03,
                at=datetime(2026, 3, 2, 8, 12, tzinfo=ZONE),
                message="广告插入课程中",
                evidence={"event": "A1", "asrun_hash": "ab" * 32},
            ),
            Finding(
                code="late_start",
                severity=Severity.MAJOR,
                channel_id=G03,
                at=datetime(2026, 3, 3, 8, 0, 2, tzinfo=ZONE),
                message="晚播 2 s",
                evidence={"event": "L2"},
            ),
        ]
        findings = [f.as_json() for f in found]
        first_id = found[0].id
        (root / "findings" / "audit.json").write_text(json.dumps(findings), encoding="utf-8")
        (root / "reports" / "g03-2026-03-02.csv").write_text("code,count\nad_in_lesson,1\n")
        got = comp.get("/api/compliance/findings", params={"code": "ad_in_lesson"}).json()
        assert [f["id"] for f in got] == [first_id]
        by_day = comp.get("/api/compliance/findings", params={"from": "2026-03-03"}).json()
        assert [f["id"] for f in by_day] == [found[1].id]
        page = comp.get("/console/compliance", params={"severity": "critical"})
        assert "广告插入课程中" in page.text and "晚播" not in page.text
        evidence = comp.get(f"/console/compliance/findings/{first_id}")
        assert evidence.status_code == 200 and "ab" * 32 in evidence.text
        report = comp.get("/api/compliance/reports/g03-2026-03-02.csv")
        assert report.status_code == 200 and report.text == "code,count\nad_in_lesson,1\n"
        assert comp.get("/api/compliance/reports/..%2Fchannels.toml").status_code == 404
