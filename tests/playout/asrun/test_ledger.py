"""The as-run ledger: durable, hash-chained journal; append-only DB copy."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from playout.asrun.ledger import AsRunLedger, AsRunOutcome, AsRunRecord
from playout.asrun.store import AsRunRow, sync_journal
from playout.errors import LedgerError
from skyclass.database import session_factory


def record(n: int, outcome: AsRunOutcome = AsRunOutcome.AIRED) -> AsRunRecord:
    at = datetime(2026, 9, 1, 0, n, tzinfo=UTC)
    return AsRunRecord(
        channel_id="g03.skyclass.cn",
        event_id=f"E{n}",
        event_type="lesson",
        scheduled_frame=n * 1500,
        actual_frame=n * 1500 + 1,
        scheduled_start=at,
        actual_start=at,
        scheduled_frames=1500,
        duration_frames=1500,
        asset_id=f"a{n}",
        sha256="ab" * 32,
        outcome=outcome,
        reason="" if outcome is AsRunOutcome.AIRED else "lesson L1 overran by 40 frames",
    )


def test_append_survives_reopen_and_verifies(tmp_path: Path) -> None:
    path = tmp_path / "asrun" / "g03.jsonl"
    ledger = AsRunLedger(path)
    for n in range(3):
        ledger.append(record(n))
    reopened = AsRunLedger(path)
    reopened.append(record(3, AsRunOutcome.TRUNCATED))
    assert reopened.verify() == 4
    assert [r.event_id for r in reopened.records()] == ["E0", "E1", "E2", "E3"]
    assert reopened.records()[3].outcome is AsRunOutcome.TRUNCATED


def test_tampering_breaks_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    ledger = AsRunLedger(path)
    for n in range(3):
        ledger.append(record(n))
    lines = path.read_text().splitlines()
    entry = json.loads(lines[1])
    entry["record"]["outcome"] = "skipped"
    lines[1] = json.dumps(entry, ensure_ascii=False, sort_keys=True)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LedgerError, match="entry 2"):
        AsRunLedger(path).verify()
    path.write_text("\n".join(lines[:1] + lines[2:]) + "\n")  # a deleted line
    with pytest.raises(LedgerError):
        AsRunLedger(path).verify()


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    ledger = AsRunLedger(path)
    ledger.append(record(0))
    with path.open("a") as fh:
        fh.write('{"seq": 2, "prev"')  # the process died mid-write
    assert AsRunLedger(path).verify() == 1


def test_sync_journal_is_idempotent(tmp_path: Path, engine: Engine) -> None:
    ledger = AsRunLedger(tmp_path / "j.jsonl")
    for n in range(2):
        ledger.append(record(n))
    sessions = session_factory(engine)
    assert sync_journal(ledger, sessions) == 2
    ledger.append(record(2, AsRunOutcome.SKIPPED))
    assert sync_journal(ledger, sessions) == 1
    assert sync_journal(ledger, sessions) == 0
    with sessions() as session:
        rows = session.scalars(select(AsRunRow).order_by(AsRunRow.seq)).all()
    assert [(r.seq, r.event_id, r.outcome) for r in rows] == [
        (1, "E0", "aired"),
        (2, "E1", "aired"),
        (3, "E2", "skipped"),
    ]
    assert rows[0].scheduled_start == datetime(2026, 9, 1, 0, 0, tzinfo=UTC)
    assert rows[1].prev_hash == rows[0].hash
