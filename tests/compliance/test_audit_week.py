"""A synthetic aired week: the clean week gives no finding, each injection exactly its own.

Runs on SQLite and PostgreSQL (the ``engine`` fixture). The week is built through the
production stores (tests/compliance/week.py); the audit reads only the database.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from week import (
    AFTER,
    G03,
    INJECTIONS,
    MONDAY,
    WEEK,
    World,
    build_week,
    expected,
    found,
)

from compliance.audit import AuditContext, run_audit
from compliance.findings import Severity


def audit(world: World) -> list:  # type: ignore[type-arg]
    context = AuditContext(
        channels=list(world.registry),
        first=WEEK[0],
        last=WEEK[-1],
        zone=world.zone,
        sessions=world.sessions(),
        grading=world.grading_policy,
        now=AFTER,
        media_root=world.media_root,
        var_dir=world.var_dir,
    )
    return list(run_audit(context).findings)


def test_the_clean_week_gives_no_finding(engine: Engine, tmp_path: Path) -> None:
    world = World(engine, tmp_path)
    build_week(world)
    assert audit(world) == []


def test_each_injected_violation_gives_exactly_its_finding(engine: Engine, tmp_path: Path) -> None:
    world = World(engine, tmp_path)
    build_week(world, set(INJECTIONS))
    findings = audit(world)
    assert found(findings) == expected(set(INJECTIONS)), [f.message for f in findings]
    assert len(findings) == len(INJECTIONS)
    by_code = {f.code: f for f in findings}
    assert all(f.channel_id == G03 for f in findings)
    # Evidence names the as-run record (its hash), the event and the asset.
    ad = by_code["ad_in_lesson"]
    assert ad.severity is Severity.CRITICAL
    assert len(ad.evidence["asrun_hash"]) == 64 and ad.evidence["lesson_asset_id"] == "LA"
    assert by_code["late_start"].evidence["offset_frames"] == 50
    assert by_code["unreviewed"].evidence["asset_id"] == "LU"
    assert by_code["loudness"].evidence["integrated_lufs"] == -19.5
    minutes = by_code["ad_minutes"].evidence
    assert minutes["ad_frames"] == 13 * 60 * 25 and len(minutes["ads"]) == 26
    assert by_code["ad_category"].evidence["ad_category"] == "alcohol"
    guide = by_code["guide_mismatch"].evidence
    assert (guide["guide_kind"], guide["guide_partner"]) == ("xmltv", "湖北广电")
    assert guide["guide_title"] == "美术 第5课" and guide["aired_title"] == "英语 第3课"
    # Ids are stable: the same facts audited again give the same ids.
    assert {f.id for f in audit(world)} == {f.id for f in findings}


@pytest.mark.parametrize("injection", INJECTIONS)
def test_one_injection_alone_gives_one_finding(
    engine: Engine, tmp_path: Path, injection: str
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("one database is enough for the single injections")
    world = World(engine, tmp_path)
    build_week(world, {injection})
    findings = audit(world)
    assert found(findings) == expected({injection}), [f.message for f in findings]


def test_a_guide_published_after_air_is_not_the_guide_before_it(
    engine: Engine, tmp_path: Path
) -> None:
    """Only the last guide published *before* a lesson aired is compared with it."""
    from datetime import UTC, datetime, timedelta

    from epg.guidelog import GuideKind, publications

    if engine.dialect.name != "sqlite":
        pytest.skip("guide ordering does not depend on the database")
    world = World(engine, tmp_path)
    build_week(world, {"guide_mismatch"})
    versions = world.store.day_versions([G03], MONDAY, MONDAY)
    newest = max(day.version for _, day in versions)
    world.guides.record(
        publications(
            GuideKind.EIT,
            {(G03, MONDAY): newest},
            channel_ids=[G03],
            first_day=MONDAY,
            last_day=MONDAY + timedelta(days=6),
            document="recompiled",
            at=datetime(2026, 3, 2, 1, 0, tzinfo=UTC),  # 09:00 Beijing: not before 09:00
        )
    )
    assert [f.code for f in audit(world)] == ["guide_mismatch"]
    world.guides.record(
        publications(
            GuideKind.EIT,
            {(G03, MONDAY): newest},
            channel_ids=[G03],
            first_day=MONDAY,
            last_day=MONDAY + timedelta(days=6),
            document="recompiled",
            at=datetime(2026, 3, 2, 0, 30, tzinfo=UTC),  # 08:30 Beijing: before it aired
        )
    )
    assert audit(world) == []


def test_a_hole_in_the_journal_is_an_asrun_gap(engine: Engine, tmp_path: Path) -> None:
    """A gap entry (torn tail set aside by playout) is reported, with its record's hash."""
    from datetime import timedelta

    from week import ZONE, frame_instant

    from playout.asrun.ledger import GAP_TYPE, AsRunOutcome, AsRunRecord
    from playout.asrun.store import sync_journal

    world = World(engine, tmp_path)
    build_week(world)
    ledger = world.ledger()
    when = frame_instant(ZONE, WEEK[2], 0) + timedelta(hours=12)
    ledger.append(
        AsRunRecord(
            channel_id=G03,
            event_id="gap-1",
            event_type=GAP_TYPE,
            scheduled_frame=0,
            actual_frame=0,
            scheduled_start=when,
            actual_start=when,
            scheduled_frames=0,
            duration_frames=0,
            asset_id=None,
            sha256=None,
            outcome=AsRunOutcome.UNRECORDED,
            reason="torn tail set aside (12 bytes, sha256 ab…)",
        )
    )
    sync_journal(ledger, world.sessions())
    findings = audit(world)
    assert [f.code for f in findings] == ["asrun_gap"], [f.message for f in findings]
    assert findings[0].evidence["asrun_hash"] == list(ledger.entries())[-1].hash
    assert "torn tail" in findings[0].message
