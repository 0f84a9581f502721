"""Tampering with the as-run is refused by the database and found by `verify`.

Edit, delete, reorder, truncate and a consistent rewrite (every hash recomputed), in the
table (with the append-only triggers: refused; with them dropped: found) and in the
journal, on SQLite and PostgreSQL (the ``engine`` fixture). The chain hash is
recomputed here independently of playout's code (hashlib over the documented body).
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from week import AFTER, G03, MONDAY, World

from compliance.asrun import AsRunTable
from compliance.verify import ChainHead, Verifier, VerifyReport, heads_json, load_heads
from epg.schedule import frame_instant
from playout.asrun.ledger import GENESIS, AsRunOutcome, AsRunRecord, JournalEntry
from playout.asrun.store import AsRunRow, sync_journal
from playout.errors import LedgerError

RECORDS = 12
KINDS = ("edit", "delete", "reorder", "truncate")


def chain_hash(prev: str, seq: int, record: dict[str, Any]) -> str:
    """The documented chain: SHA-256 of "prev|seq|canonical JSON of the record"."""
    body = json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{prev}|{seq}|{body}".encode()).hexdigest()


def aired(world: World, count: int = RECORDS) -> None:
    """``count`` one-minute lessons on Monday from 08:00, journaled and synced."""
    ledger = world.ledger()
    for n in range(count):
        frame = (8 * 3600 + 60 * n) * 25
        ledger.append(
            AsRunRecord(
                channel_id=G03,
                event_id=f"{MONDAY}-{n:04d}",
                event_type="lesson",
                scheduled_frame=frame,
                actual_frame=frame,
                scheduled_start=frame_instant(world.zone, MONDAY, frame),
                actual_start=frame_instant(world.zone, MONDAY, frame),
                scheduled_frames=1500,
                duration_frames=1500,
                asset_id=f"A{n}",
                sha256="0" * 64,
                outcome=AsRunOutcome.AIRED,
                reason="",
            )
        )
    assert sync_journal(ledger, world.sessions()) == count


def verify(world: World, heads: dict[str, ChainHead] | None = None) -> VerifyReport:
    verifier = Verifier(
        var_dir=world.var_dir,
        table=AsRunTable(world.sessions()),
        engine=world.engine,
        heads=heads or {},
    )
    return verifier.run([G03], now=AFTER)


def first_problem(report: VerifyReport) -> str:
    assert not report.ok, "tampering went unnoticed"
    return str(report.all_problems[0])


def drop_triggers(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER asrun_no_update ON asrun"))
            conn.execute(text("DROP TRIGGER asrun_no_truncate ON asrun"))
        else:
            conn.execute(text("DROP TRIGGER asrun_no_update"))
            conn.execute(text("DROP TRIGGER asrun_no_delete"))


def tamper_table(engine: Engine, kind: str) -> None:
    statements = {
        "edit": ["UPDATE asrun SET reason = 'nothing to see' WHERE seq = 5"],
        "delete": ["DELETE FROM asrun WHERE seq = 5"],
        "reorder": [
            "UPDATE asrun SET seq = -3 WHERE seq = 3",
            "UPDATE asrun SET seq = 3 WHERE seq = 4",
            "UPDATE asrun SET seq = 4 WHERE seq = -3",
        ],
        "truncate": ["DELETE FROM asrun WHERE seq > 8"],
    }[kind]
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def journal_lines(world: World) -> list[str]:
    return world.ledger().path.read_text(encoding="utf-8").splitlines(keepends=True)


def tamper_journal(world: World, kind: str) -> None:
    lines = journal_lines(world)
    if kind == "edit":
        entry = json.loads(lines[4])
        entry["record"]["reason"] = "nothing to see"
        lines[4] = json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n"
    elif kind == "delete":
        del lines[4]
    elif kind == "reorder":
        lines[2], lines[3] = lines[3], lines[2]
    elif kind == "truncate":
        lines = lines[:8]
    world.ledger().path.write_text("".join(lines), encoding="utf-8")


WHERE = {"edit": "seq 5", "delete": "record 5", "reorder": "seq 3", "truncate": "seq 9"}
IN_JOURNAL = WHERE | {"reorder": "record 3", "truncate": "ends at seq 8"}


def test_an_untouched_as_run_verifies(engine: Engine, tmp_path: Path) -> None:
    world = World(engine, tmp_path)
    aired(world)
    report = verify(world)
    assert report.ok, report.all_problems
    (verdict,) = report.channels
    assert (verdict.journal_records, verdict.table_records) == (RECORDS, RECORDS)
    # The head is the last record's hash, recomputed independently from the journal.
    prev = GENESIS
    for line in journal_lines(world):
        entry = json.loads(line)
        assert chain_hash(prev, entry["seq"], entry["record"]) == entry["hash"]
        prev = entry["hash"]
    assert verdict.head == ChainHead(channel_id=G03, seq=RECORDS, hash=prev)


@pytest.mark.parametrize("kind", KINDS)
def test_the_triggers_refuse_changes_to_the_table(
    engine: Engine, tmp_path: Path, kind: str
) -> None:
    world = World(engine, tmp_path)
    aired(world)
    with pytest.raises(DBAPIError, match="append-only"):
        tamper_table(engine, kind)
    assert verify(world).ok  # nothing changed


def test_postgresql_refuses_truncate_too(engine: Engine, tmp_path: Path) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's (it skips row triggers: a statement trigger)")
    world = World(engine, tmp_path)
    aired(world)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("TRUNCATE asrun"))


def test_the_orm_refuses_to_change_a_record(engine: Engine, tmp_path: Path) -> None:
    from sqlalchemy import delete, select, update

    world = World(engine, tmp_path)
    aired(world)
    sessions = world.sessions()
    with pytest.raises(LedgerError, match="append-only"), sessions() as session:
        row = session.scalars(select(AsRunRow).where(AsRunRow.seq == 5)).one()
        row.reason = "edited"
        session.commit()
    with pytest.raises(LedgerError, match="append-only"), sessions() as session:
        session.execute(update(AsRunRow).values(reason="x"))
    with pytest.raises(LedgerError, match="append-only"), sessions() as session:
        session.execute(delete(AsRunRow))
    assert verify(world).ok


@pytest.mark.parametrize("kind", KINDS)
def test_table_tampering_with_the_triggers_dropped_is_found(
    engine: Engine, tmp_path: Path, kind: str
) -> None:
    world = World(engine, tmp_path)
    aired(world)
    drop_triggers(engine)
    assert any("trigger" in str(p) for p in verify(world).all_problems)  # the guard is gone
    tamper_table(engine, kind)
    report = verify(world)
    problem = first_problem(report)
    assert "table" in problem and WHERE[kind] in problem, problem
    if kind == "truncate":
        assert "truncated" in problem


@pytest.mark.parametrize("kind", KINDS)
def test_journal_tampering_is_found(engine: Engine, tmp_path: Path, kind: str) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the journal is a file: one database is enough")
    world = World(engine, tmp_path)
    aired(world)
    tamper_journal(world, kind)
    problem = first_problem(verify(world))
    assert "journal" in problem and IN_JOURNAL[kind] in problem, problem


def rewrite(entries: list[JournalEntry], seq: int) -> list[JournalEntry]:
    """The chain with record ``seq`` changed and every hash from it recomputed."""
    out: list[JournalEntry] = []
    prev = GENESIS
    for entry in entries:
        record = entry.record
        if entry.seq == seq:
            record = AsRunRecord(
                **{**record.__dict__, "duration_frames": record.duration_frames + 250}
            )
        digest = chain_hash(prev, entry.seq, record.as_json())
        out.append(JournalEntry(seq=entry.seq, prev=prev, hash=digest, record=record))
        prev = digest
    return out


def write_journal(world: World, entries: list[JournalEntry]) -> None:
    world.ledger().path.write_text(
        "".join(
            json.dumps(
                {"seq": e.seq, "prev": e.prev, "hash": e.hash, "record": e.record.as_json()},
                ensure_ascii=False,
                sort_keys=True,
            )
            + "\n"
            for e in entries
        ),
        encoding="utf-8",
    )


def replace_table(world: World, entries: list[JournalEntry]) -> None:
    with world.engine.begin() as conn:
        conn.execute(text("DELETE FROM asrun"))
    with world.sessions()() as session, session.begin():
        session.add_all(AsRunRow.from_entry(e) for e in entries)


def test_a_rewritten_journal_differs_from_the_table(engine: Engine, tmp_path: Path) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the journal is a file: one database is enough")
    world = World(engine, tmp_path)
    aired(world)
    write_journal(world, rewrite(list(world.ledger().entries()), 5))
    problem = first_problem(verify(world))
    assert "seq 5" in problem and "rewritten" in problem, problem


@pytest.mark.parametrize("kind", ["rewrite", "truncate"])
def test_consistent_changes_to_both_copies_are_found_against_exported_heads(
    engine: Engine, tmp_path: Path, kind: str
) -> None:
    world = World(engine, tmp_path)
    aired(world)
    report = verify(world)
    path = tmp_path / "heads.json"
    exported = [v.head for v in report.channels if v.head is not None]
    path.write_text(json.dumps(heads_json(exported, AFTER)), encoding="utf-8")
    heads = load_heads(path)
    assert heads[G03].seq == RECORDS

    entries = list(world.ledger().entries())
    changed = rewrite(entries, 5) if kind == "rewrite" else entries[:8]
    drop_triggers(engine)
    write_journal(world, changed)
    replace_table(world, changed)
    # The two copies agree with each other: only the guard's absence shows …
    alone = verify(world)
    assert [p.source for p in alone.all_problems] == ["database"]
    # … but not with the heads exported before.
    problem = first_problem(verify(world, heads))
    assert "heads" in problem, problem
    assert (f"seq {RECORDS}" if kind == "rewrite" else "truncated") in problem


def test_a_table_lagging_its_journal_briefly_is_not_tampering(
    engine: Engine, tmp_path: Path
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("sync lag does not depend on the database")
    world = World(engine, tmp_path)
    aired(world)
    ledger = world.ledger()
    last = ledger.last
    assert last is not None
    fresh = AFTER - timedelta(minutes=2)
    ledger.append(AsRunRecord(**{**last.__dict__, "event_id": "fresh", "actual_start": fresh}))
    report = verify(world)
    assert report.ok, report.all_problems
    assert "not in the table yet" in report.channels[0].notes[0]
