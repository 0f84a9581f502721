"""A torn as-run journal never blocks a restart, and every write is complete or raises.

Issue 10, defect 3: with `{"seq": 99` appended to the journal, the next `playout run`
appended its record onto the torn line; `playout asrun` then said "the journal was
edited" and `playout run` refused to start. A short write on a full disk did the same
(os.write's return value was ignored). Now the writer sets a torn tail aside into
`ID.jsonl.torn`, journals a `gap` entry saying so, and goes on; a failed write is cut
back, so nothing is torn; the hash chain verifies afterwards.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Media
from playout_media import build_rundown
from sqlalchemy import Engine

from epg.rundown import EventType as T
from playout.asrun import journal as journal_module
from playout.asrun.journal import AsRunJournal
from playout.asrun.ledger import (
    GAP_TYPE,
    AsRunLedger,
    AsRunOutcome,
    AsRunRecord,
    journal_path,
    torn_path,
)
from playout.asrun.store import sync_journal
from playout.errors import LedgerError
from playout.stream import AsRunMark, TsChunk
from skyclass.database import session_factory

CHANNEL = "zt.skyclass.cn"


def record(n: int) -> AsRunRecord:
    at = datetime(2026, 9, 1, tzinfo=UTC) + timedelta(minutes=n)
    return AsRunRecord(
        channel_id=CHANNEL,
        event_id=f"E{n}",
        event_type="lesson",
        scheduled_frame=n * 1500,
        actual_frame=n * 1500,
        scheduled_start=at,
        actual_start=at,
        scheduled_frames=1500,
        duration_frames=1500,
        asset_id=f"a{n}",
        sha256="ab" * 32,
        outcome=AsRunOutcome.AIRED,
        reason="x" * 200,  # a line of ~900 bytes
    )


def finished(rec: AsRunRecord) -> TsChunk:
    """A sent chunk that carries an event's finished record (what the engine attaches)."""
    mark = AsRunMark(record=rec, final=True, frame=rec.actual_frame + rec.duration_frames)
    return TsChunk(data=b"", byte_offset=0, frame=mark.frame, idr=True, pcr_90k=None, asrun=(mark,))


def test_playout_run_twice_after_a_torn_line_recovers(
    cli: Any, media: Media, tmp_path: Path
) -> None:
    """The issue's repro: append `{"seq": 99`, run `playout run` twice, read the as-run."""
    rundown = build_rundown(
        [("L1", T.LESSON, media.short, 100), ("L2", T.LESSON, media.short, 100)]
    )
    path = tmp_path / "rundown.json"
    rundown.save(path)
    args = (
        *("playout", "run", "--channel", CHANNEL, "--rundown", str(path)),
        *("--start", "2026-09-01T00:00:00+08:00", "--duration", "1", "--fast"),
        *("--output", "check:"),
    )
    assert cli(*args).code == 0
    journal = journal_path(tmp_path / "var", CHANNEL)
    before = AsRunLedger(journal).verify()
    with journal.open("a", encoding="utf-8") as fh:
        fh.write('{"seq": 99')  # the process died mid-write
    for _ in range(2):
        result = cli(*args)
        assert result.code == 0, result.stderr
    shown = cli("playout", "asrun", "--channel", CHANNEL, "--json")
    assert shown.code == 0, shown.stderr
    ledger = AsRunLedger(journal)
    assert ledger.verify() == len(ledger.records()) > before
    gaps = [r for r in ledger.records() if r.event_type == GAP_TYPE]
    assert len(gaps) == 1  # set aside once, by the first run
    gap = gaps[0]
    assert gap.outcome is AsRunOutcome.UNRECORDED and "torn" in gap.reason
    assert torn_path(journal).read_bytes() == b'{"seq": 99\n'
    assert json.loads(shown.stdout)[before]["event_type"] == GAP_TYPE


def test_a_line_glued_onto_a_torn_one_is_set_aside_by_the_writer(tmp_path: Path) -> None:
    """What an older version left: the torn fragment with the next record appended to it."""
    path = tmp_path / "j.jsonl"
    ledger = AsRunLedger(path)
    ledger.append(record(0))
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"seq": 99')
    glued = path.read_bytes()
    AsRunLedger(path)._append(record(1))  # the old behaviour: straight onto the torn line
    with pytest.raises(LedgerError):
        AsRunLedger(path).verify()  # a reader sees an edited journal
    writer = AsRunLedger(path, repair=True)  # the writer sets it aside
    writer.append(record(2))
    assert writer.verify() == 3
    assert [r.event_id for r in writer.records()] == ["E0", "journal-gap-2", "E2"]
    assert torn_path(path).read_bytes().startswith(glued[len(glued) - len('{"seq": 99') :])


def test_a_journal_damaged_mid_file_is_moved_aside_and_its_chain_goes_on(tmp_path: Path) -> None:
    path = tmp_path / f"{CHANNEL}.jsonl"
    ledger = AsRunLedger(path)
    for n in range(3):
        ledger.append(record(n))
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = "not json\n"
    path.write_text("".join(lines), encoding="utf-8")
    writer = AsRunLedger.for_writer(path)  # never refuses to start a channel
    writer.append(record(3))
    assert writer.verify() == 3
    kept, gap, new = writer.records()
    assert kept.event_id == "E0"  # the entries before the damage, still chained
    assert gap.event_type == GAP_TYPE and gap.channel_id == CHANNEL
    assert "journal damaged after entry 1" in gap.reason and "moved to" in gap.reason
    assert new.event_id == "E3"
    aside = [p for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert len(aside) == 1 and "not json" in aside[0].read_text(encoding="utf-8")


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    calls: list[int] = []

    def short(fd: int, data: Any) -> int:  # the kernel may write only part of a buffer
        calls.append(len(data))
        return real_write(fd, bytes(data[: max(1, len(data) // 3)]))

    path = tmp_path / "j.jsonl"
    monkeypatch.setattr(os, "write", short)
    ledger = AsRunLedger(path)
    for n in range(3):
        ledger.append(record(n))
    monkeypatch.undo()
    assert len(calls) > 3  # short writes happened and were looped over
    assert AsRunLedger(path).verify() == 3


def test_a_failed_write_is_cut_back_and_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    path = tmp_path / "j.jsonl"
    ledger = AsRunLedger(path)
    ledger.append(record(0))
    size = path.stat().st_size
    state = {"calls": 0}

    def full(fd: int, data: Any) -> int:  # part of the line fits, then the disk is full
        state["calls"] += 1
        if state["calls"] == 1:
            return real_write(fd, bytes(data[:100]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError, match="No space"):
        ledger.append(record(1))
    monkeypatch.undo()
    assert path.stat().st_size == size  # nothing torn left behind
    ledger.append(record(1))
    assert AsRunLedger(path).verify() == 2


def test_the_journal_thread_keeps_records_until_the_disk_has_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = AsRunLedger(tmp_path / "j.jsonl")
    real_append = ledger._append
    state = {"failures": 2}

    def flaky(rec: AsRunRecord) -> Any:
        if state["failures"]:
            state["failures"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_append(rec)

    monkeypatch.setattr(ledger, "_append", flaky)
    journal = AsRunJournal(ledger, progress_file=tmp_path / "p.json")
    for n in range(4):
        journal.sent(finished(record(n)))
    journal.close()
    assert journal.failed_writes == 2
    assert [r.event_id for r in AsRunLedger(ledger.path).records()] == ["E0", "E1", "E2", "E3"]


def test_records_dropped_past_the_backlog_limit_leave_a_gap_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "BACKLOG_LIMIT", 2)
    ledger = AsRunLedger(tmp_path / "j.jsonl")
    real_append = ledger._append
    state = {"failures": 4}

    def flaky(rec: AsRunRecord) -> Any:
        if state["failures"]:
            state["failures"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_append(rec)

    monkeypatch.setattr(ledger, "_append", flaky)
    journal = AsRunJournal(ledger, progress_file=tmp_path / "p.json")
    for n in range(5):
        journal.sent(finished(record(n)))
    journal.close()
    records = AsRunLedger(ledger.path).records()
    assert AsRunLedger(ledger.path).verify() == len(records)
    gap = records[0]
    assert gap.event_type == GAP_TYPE and gap.reason.startswith("2 as-run record(s) lost")
    assert [r.event_id for r in records[1:]] == ["E2", "E3", "E4"]


@contextlib.contextmanager
def tiny_tmpfs(where: Path, size: str = "64k") -> Iterator[Path]:
    """A real, tiny filesystem (root only): a full disk without filling the machine's."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path) -> Path:
    """Take every free page of the filesystem."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with contextlib.suppress(OSError):
            while os.write(fd, b"\0" * 4096):
                pass
    finally:
        os.close(fd)
    return filler


def test_a_short_write_on_a_full_tiny_filesystem_recovers_and_records_the_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tiny_tmpfs(tmp_path / "fs") as fs:
        path = fs / "asrun" / f"{CHANNEL}.jsonl"
        ledger = AsRunLedger(path, repair=True)
        while path.stat().st_size % 4096 < 3500 if path.exists() else True:
            ledger.append(record(len(ledger.records())))  # ends mid-page: room for a part
        entries = ledger.verify()
        size = path.stat().st_size
        filler = fill(fs)
        # 1. The kernel writes what fits in the file's last page, then ENOSPC: the
        #    append raises and leaves the journal as it was.
        real_write, writes = os.write, []

        def spy(fd: int, data: Any) -> int:
            written = real_write(fd, data)
            writes.append((len(data), written))
            return written

        monkeypatch.setattr(os, "write", spy)
        with pytest.raises(OSError) as full:
            ledger.append(record(100))
        monkeypatch.undo()
        assert full.value.errno == errno.ENOSPC
        assert writes and writes[0][1] < writes[0][0]  # a real short write happened
        assert path.stat().st_size == size and AsRunLedger(path).verify() == entries
        # 2. If the process could not even cut it back (it died right then), the torn
        #    tail stays: a reader ignores it, the writer sets it aside once it has room.
        monkeypatch.setattr(os, "ftruncate", _no_truncate)
        with pytest.raises(OSError):
            ledger.append(record(101))
        monkeypatch.undo()
        assert path.stat().st_size > size  # torn
        assert AsRunLedger(path).verify() == entries  # `playout asrun` still works
        restarted = AsRunLedger.for_writer(path)  # disk still full: starts anyway
        with pytest.raises(OSError):
            restarted.append(record(102))
        filler.unlink()
        restarted.append(record(103))
        assert AsRunLedger(path).verify() == entries + 2
        gap, last = AsRunLedger(path).records()[-2:]
        assert gap.event_type == GAP_TYPE and gap.outcome is AsRunOutcome.UNRECORDED
        assert last.event_id == "E103"
        assert torn_path(path).stat().st_size > 0


def _no_truncate(fd: int, length: int) -> None:
    raise OSError(errno.EIO, "Input/output error")


def test_a_repaired_journal_that_diverges_from_the_database_is_not_synced_in_silence(
    tmp_path: Path, engine: Engine
) -> None:
    sessions = session_factory(engine)
    path = tmp_path / f"{CHANNEL}.jsonl"
    ledger = AsRunLedger(path)
    for n in range(3):
        ledger.append(record(n))
    assert sync_journal(ledger, sessions) == 3
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(lines[0] + "not json\n" + lines[2], encoding="utf-8")
    writer = AsRunLedger.for_writer(path)  # keeps entry 1, then a gap entry as number 2
    writer.append(record(3))
    with pytest.raises(LedgerError, match="differs from the database"):
        sync_journal(writer, sessions)
