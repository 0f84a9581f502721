"""The station's jobs: daily rundown compile, as-run sync, and `skyclass playout up`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine, select

from core.clock import FrozenClock
from epg.rundown import rundown_path
from playout.asrun.ledger import AsRunLedger, AsRunOutcome, AsRunRecord, journal_path
from playout.asrun.store import AsRunRow, sync_asrun
from playout.reload import alarm_path
from skyclass.database import session_factory
from skyclass.station import (
    ASRUN_SYNC_JOB_ID,
    compile_tomorrow,
    missing_days,
    schedule_asrun_sync,
    schedule_compile,
)

CHANNEL = "zt.skyclass.cn"
BEIJING = ZoneInfo("Asia/Shanghai")


def wait_for(condition: object, timeout: float = 5.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(step)
    return False


def record(n: int) -> AsRunRecord:
    at = datetime(2026, 9, 1, 0, n, tzinfo=UTC)
    return AsRunRecord(
        channel_id="g03.skyclass.cn",
        event_id=f"E{n}",
        event_type="lesson",
        scheduled_frame=n * 1500,
        actual_frame=n * 1500,
        scheduled_start=at,
        actual_start=at,
        scheduled_frames=1500,
        duration_frames=1500,
        asset_id="A1",
        sha256=None,
        outcome=AsRunOutcome.AIRED,
    )


# -- daily compile -----------------------------------------------------------------------


def test_daily_compile_job_runs_at_20_beijing_for_tomorrow(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FrozenClock(datetime(2026, 9, 1, 12, 0, tzinfo=BEIJING))
    scheduler = BackgroundScheduler(timezone=BEIJING)
    compiled: list[date] = []
    job = schedule_compile(scheduler, compiled.append, clock=clock, zone=BEIJING)
    fire = job.trigger.get_next_fire_time(None, clock.now())
    assert fire == datetime(2026, 9, 1, 20, 0, tzinfo=BEIJING)
    job.func(*job.args)
    assert compiled == [date(2026, 9, 2)]
    # Just after midnight Beijing (still the previous day in UTC) tomorrow is the day after.
    late = FrozenClock(datetime(2026, 9, 1, 16, 30, tzinfo=UTC))
    compile_tomorrow(compiled.append, late, BEIJING)
    assert compiled[-1] == date(2026, 9, 3)

    def broken(day: date) -> None:
        raise RuntimeError("database down")

    compile_tomorrow(broken, clock, BEIJING)  # logged, not raised: the scheduler thread survives
    assert "database down" in caplog.text


def test_missing_days_lists_today_and_tomorrow_without_rundowns(tmp_path: Path) -> None:
    clock = FrozenClock(datetime(2026, 9, 1, 8, 0, tzinfo=BEIJING))
    today = rundown_path(tmp_path, CHANNEL, date(2026, 9, 1))
    today.parent.mkdir(parents=True, exist_ok=True)
    today.write_text("{}")  # only its existence counts here
    assert missing_days(tmp_path, [CHANNEL], clock, BEIJING) == [date(2026, 9, 2)]


def test_asrun_sync_job_keeps_the_table_behind_the_journals(tmp_path: Path, engine: Engine) -> None:
    """`playout up` syncs journals on an interval; channels never touch the database."""
    sessions = session_factory(engine)
    ledger = AsRunLedger(journal_path(tmp_path, "g03.skyclass.cn"))
    ledger.append(record(0))
    ledger.append(record(1))
    ids = ["g03.skyclass.cn", "g04.skyclass.cn"]  # g04 has no journal yet: skipped
    assert sync_asrun(tmp_path, ids, sessions) == 2
    ledger.append(record(2))
    assert sync_asrun(tmp_path, ids, sessions) == 1
    assert sync_asrun(tmp_path, ids, sessions) == 0  # repeatable
    with sessions() as session:
        assert session.scalars(select(AsRunRow.event_id).order_by(AsRunRow.seq)).all() == [
            "E0",
            "E1",
            "E2",
        ]
    scheduler = BackgroundScheduler()
    job = schedule_asrun_sync(scheduler, tmp_path, ids, sessions, seconds=30)
    assert job.id == ASRUN_SYNC_JOB_ID and job.trigger.interval.total_seconds() == 30


def test_playout_up_keeps_a_channel_without_a_rundown_on_the_slate(tmp_path: Path) -> None:
    """The real command: no readable rundown is an alarm and the slate, never off air."""
    env = {
        **os.environ,
        "SKYCLASS_VAR_DIR": str(tmp_path / "var"),
        "SKYCLASS_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
    }
    env.pop("SKYCLASS_CONFIG", None)
    up = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from skyclass.cli import run; run()",
            *("playout", "up", "--channel", CHANNEL, "--no-compile"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    log = tmp_path / "var" / "log" / "playout" / f"{CHANNEL}.log"
    today = datetime.now(BEIJING).date()
    alarm = alarm_path(rundown_path(tmp_path / "var" / "rundowns", CHANNEL, today))
    try:
        # `playout run` finds no rundown for today: it plays the slate, raises an alarm
        # and keeps watching (tests/playout/test_hostile_rundowns.py receives that slate).
        assert wait_for(lambda: alarm.exists(), 30, 0.2)
        assert "ALARM no readable rundown" in log.read_text()
        assert json.loads(alarm.read_text(encoding="utf-8"))["keeping"] == "the slate"
        time.sleep(3.0)  # it stays up: nothing to restart
    finally:
        up.send_signal(signal.SIGTERM)
        out, _ = up.communicate(timeout=15)
    assert up.returncode == 0, out.decode()
    assert "playout died" not in out.decode()
    assert not (tmp_path / "var" / "run" / f"playout-{CHANNEL}.pid").exists()
