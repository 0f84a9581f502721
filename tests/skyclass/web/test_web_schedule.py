"""Schedule upload over real HTTP: dry run, publish, errors by row and column, history, diff,
rollback; malformed, oversized and mistyped uploads get a clear error and change nothing.

Independent judges: lxml parses the pages' HTML (the highlighted row), openpyxl writes
the XLSX, and "nothing changed" is read back from the schedule store and audit log.
"""

from __future__ import annotations

import io
import json

import openpyxl
from conftest import Served
from lxml import html as lxml_html
from web_world import DAY, G03, HEADER, bad_day, good_day, login, serve

from skyclass.web import create_app
from skyclass.web.uploads import UploadLimits


def _csv(served: Served, rows: list[list[object]], name: str = "week.csv") -> bytes:
    return served.world.csv(rows, name).read_bytes()


def _state(served: Served) -> tuple[int, int]:
    """What a refused upload must leave alone: the schedule stamp and the audited changes."""
    changes = [e for e in _audit(served) if not e.action.startswith("session.")]
    return served.world.epg.schedules.stamp(), len(changes)


def test_dry_run_then_publish_history_diff_and_rollback(served: Served) -> None:
    world = served.world
    with login(served.base, "op") as op:
        files = {"file": ("week.csv", _csv(served, good_day()), "text/csv")}
        dry = op.post("/api/schedule/check", files=files)
        assert dry.status_code == 200, dry.text
        assert dry.json()["ok"] is True and dry.json()["events"] == 7
        assert world.epg.schedules.stamp() == 0  # a dry run stores nothing

        first = op.post("/api/schedule/publish", files=files)
        assert first.status_code == 201, first.text
        v1 = first.json()["version"]
        assert first.json()["created_by"] == "op"

        rows = good_day()
        rows[6][2] = "09:20:00"  # move the third lesson
        second = op.post(
            "/api/schedule/publish", files={"file": ("week-v2.csv", _csv(served, rows), "text/csv")}
        )
        assert second.status_code == 201
        v2 = second.json()["version"]
        diff = op.get(f"/api/schedule/versions/{v2}").json()["days"][0]
        assert diff["previous_version"] == v1
        assert any("09:20:00" in line for line in diff["added"])
        assert any("09:10:00" in line for line in diff["removed"])

        history = op.get("/api/schedule/history", params={"channel": G03, "date": DAY.isoformat()})
        assert [v["version"] for v in history.json()] == [v2, v1]

        back = op.post(
            "/api/schedule/rollback", json={"channel": G03, "date": DAY.isoformat(), "to": v1}
        )
        assert back.status_code == 201, back.text
        assert f"to v{v1}" in back.json()["note"]
        week = op.get(f"/api/grid/{G03}", params={"week": DAY.isoformat()}).json()
        starts = [e["start"] for d in week["days"] for e in d["events"] if e["type"] == "lesson"]
        assert starts[-1].startswith("2026-03-02T01:10:00")  # 09:10 Beijing, restored

        # The version list page and the diff page render what the API says.
        page = op.get(f"/console/schedule/versions/{v2}")
        assert page.status_code == 200 and "09:20:00" in page.text and "added" in page.text
    actions = [(e.action, e.actor) for e in _audit(served)]
    assert actions.count(("schedule.publish", "op")) == 2
    assert ("schedule.rollback", "op") in actions


def test_an_error_names_row_and_column_and_changes_nothing(served: Served) -> None:
    before = _state(served)
    with login(served.base, "op") as op:
        files = {"file": ("week.csv", _csv(served, bad_day()), "text/csv")}
        refused = op.post("/api/schedule/publish", files=files)
        assert refused.status_code == 422
        errors = refused.json()["errors"]
        assert errors and errors[0]["row"] == 4 and errors[0]["column"] == "asset"
        assert "NO-SUCH-AD" in errors[0]["message"]
        check = op.post("/api/schedule/check", files=files)
        assert check.status_code == 200 and check.json()["ok"] is False

        # The page: an error table naming row and column, and the row highlighted.
        page = op.get("/console/schedule")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        shown = op.post(
            "/console/schedule",
            data={"csrf_token": token, "action": "publish"},
            files={"file": ("week.csv", _csv(served, bad_day()), "text/csv")},
        )
        assert shown.status_code == 422
        tree = lxml_html.fromstring(shown.text)
        cells = [
            td.text_content().strip()
            for td in tree.xpath("//table[@data-testid='errors']/tbody//td")
        ]
        assert cells[:2] == ["row 4", "asset"]
        highlighted = tree.xpath("//table[@data-testid='preview']//tr[@class='row-error']")
        assert [tr.get("id") for tr in highlighted] == ["row-4"]
        assert highlighted[0].xpath("td[@class='cell-error']")[0].text_content() == "NO-SUCH-AD"
    assert _state(served) == before


def test_malformed_uploads_get_a_clear_error_and_change_nothing(served: Served) -> None:
    before = _state(served)
    with login(served.base, "op") as op:
        cases = [
            # (file name, bytes, content type) → (status, words in the message)
            (("week.pdf", b"%PDF-1.4", "application/pdf"), (415, ".xlsx, .csv")),
            (("week.xlsx", b"not a zip at all", "application/octet-stream"), (415, "XLSX")),
            (("week.csv", b"channel,type\n\x00\x01\x02", "text/csv"), (415, "binary")),
            (("week.csv", b"", "text/csv"), (400, "empty")),
            (("week.json", b'{"events": [', "application/json"), (422, "JSON")),
            (("week.csv", b"a,b,c\n1,2,3\n", "text/csv"), (422, "header")),
            (("week.csv", b"channel,type\n", "image/png"), (415, "image/png")),
        ]
        for (name, data, media), (status, words) in cases:
            for path in ("/api/schedule/check", "/api/schedule/publish"):
                answer = op.post(path, files={"file": (name, data, media)})
                assert answer.status_code == status, (name, path, answer.text)
                assert words in answer.json()["detail"], (name, answer.text)
        missing = op.post("/api/schedule/publish", data={"x": "1"})
        assert missing.status_code == 422  # no file part at all
    assert _state(served) == before


def test_oversized_uploads_are_refused_before_they_are_read(served: Served) -> None:
    limits = UploadLimits(schedule_bytes=64 * 1024)
    before = _state(served)
    app = create_app(served.world, limits=limits)
    with serve(app) as base, login(base, "op") as op:
        rows = good_day() * 220
        big = served.world.csv(rows, "big.csv").read_bytes()
        assert (
            64 * 1024 < len(big) < 64 * 1024 + 60 * 1024
        )  # passes the body gate, not the file check
        answer = op.post("/api/schedule/publish", files={"file": ("big.csv", big, "text/csv")})
        assert answer.status_code == 413 and "limit" in answer.json()["detail"]
        huge = b"channel,type\n" + b"x" * (200 * 1024)
        gate = op.post("/api/schedule/publish", files={"file": ("huge.csv", huge, "text/csv")})
        assert gate.status_code == 413 and "nothing was changed" in gate.json()["detail"]
        page = op.get("/console/schedule")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        form = op.post(
            "/console/schedule",
            data={"csrf_token": token, "action": "publish"},
            files={"file": ("big.csv", big, "text/csv")},
        )
        assert form.status_code == 413 and "文件过大" in form.text
    assert _state(served) == before
    assert not any((served.world.var_dir / "web" / "uploads").glob("*/*"))  # nothing staged


def test_xlsx_and_json_schedules_and_a_staged_publish(served_lite: Served) -> None:
    served = served_lite
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    for row in good_day():
        sheet.append(["" if v is None else v for v in row])
    buffer = io.BytesIO()
    book.save(buffer)
    events = [
        {k: v for k, v in zip(HEADER, row, strict=True) if v not in ("", None)}
        for row in good_day(day=DAY.replace(day=3))
    ]
    with login(served.base, "op") as op:
        xlsx = op.post(
            "/api/schedule/check",
            files={"file": ("周播表.xlsx", buffer.getvalue(), "application/octet-stream")},
        )
        assert xlsx.status_code == 200 and xlsx.json()["ok"], xlsx.text
        as_json = op.post(
            "/api/schedule/check",
            files={"file": ("week.json", json.dumps({"events": events}), "application/json")},
        )
        assert as_json.status_code == 200 and as_json.json()["ok"], as_json.text

        # Console: a dry run stages the file; "publish this file" stores it without re-upload.
        page = op.get("/console/schedule")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        dry = op.post(
            "/console/schedule",
            data={"csrf_token": token, "action": "dry_run"},
            files={"file": ("周播表.xlsx", buffer.getvalue(), "application/octet-stream")},
        )
        assert dry.status_code == 200 and "校验通过" in dry.text
        assert served.world.epg.schedules.stamp() == 0
        upload_id = dry.text.split('name="upload_id" value="')[1].split('"')[0]
        done = op.post(
            "/console/schedule/publish", data={"csrf_token": token, "upload_id": upload_id}
        )
        assert done.status_code == 200 and "已发布版本" in done.text
        assert served.world.epg.schedules.version(1).source_name == "周播表.xlsx"
        again = op.post(
            "/console/schedule/publish", data={"csrf_token": token, "upload_id": upload_id}
        )
        assert again.status_code == 404  # published files are not kept around
        assert served.world.epg.schedules.stamp() == 1


def _audit(served: Served) -> list:  # type: ignore[type-arg]
    from skyclass.web.audit import AuditLog

    return AuditLog(served.world.sessions()).list()
