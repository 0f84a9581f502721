"""The as-run rides on the chunks that prove it, and a restart records what a kill cut."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from conftest import Media
from playout_media import build_rundown

from epg.rundown import EventType as T
from playout.asrun.journal import RESTART_NOTE, AsRunJournal, progress_path, recover
from playout.asrun.ledger import AsRunLedger, AsRunOutcome
from playout.engine import PlayoutEngine
from playout.stream import TsChunk


def test_records_ride_on_the_chunk_of_their_frame(media: Media) -> None:
    rundown = build_rundown(
        [
            ("L1", T.LESSON, media.short, 100),
            ("A1", T.AD, media.ad, 75),
            ("L2", T.LESSON, media.lesson, 200),
        ]
    )
    engine = PlayoutEngine(rundown, hot_reload=False)
    chunks = list(engine.chunks(0, duration_frames=300))
    finals = [(c, m) for c in chunks for m in c.asrun if m.final]
    opens = [(c, m) for c in chunks for m in c.asrun if not m.final]
    assert [m.record for _, m in finals] == engine.records  # each once, in order
    assert [m.record.event_id for _, m in opens] == ["L1", "A1", "L2"]
    for chunk, mark in opens:  # the chunk starts with the event's first frame (an IDR)
        assert chunk.idr and chunk.frame == mark.record.actual_frame == mark.frame
        assert mark.record.duration_frames == 0
    for chunk, mark in finals[:-1]:  # ... and a record with the first frame after the event
        end = mark.record.actual_frame + mark.record.duration_frames
        assert chunk.idr and chunk.frame == end
    last_chunk, last = finals[-1]
    assert last.record.event_id == "L2" and last.record.outcome is AsRunOutcome.TRUNCATED
    assert last_chunk is chunks[-1]
    # Nothing rides before its bytes: the record of L1 is not on any chunk before frame 100.
    position = chunks.index(finals[0][0])
    assert all(c.frame < 100 for c in chunks[:position])


def _sent(journal: AsRunJournal, chunks: list[TsChunk]) -> None:
    for chunk in chunks:
        journal.sent(chunk)


def test_a_kill_mid_event_is_recorded_truncated_at_the_last_progress_mark(
    media: Media, tmp_path: Path
) -> None:
    rundown = build_rundown(
        [("L1", T.LESSON, media.short, 100), ("L2", T.LESSON, media.lesson, 200)]
    )
    chunks = list(PlayoutEngine(rundown, hot_reload=False).chunks(0, duration_frames=300))
    # "Killed" when the chunk of frame 150 has gone: L1 finished, L2 on air for 50 frames.
    cut = next(n for n, c in enumerate(chunks) if c.frame >= 150)
    ledger = AsRunLedger(tmp_path / "asrun" / "ch.jsonl")
    journal = AsRunJournal(ledger, period=0.0)
    _sent(journal, chunks[: cut + 1])
    journal.close()  # what the journal thread had written before the kill
    assert [r.event_id for r in ledger.records()] == ["L1"]
    assert progress_path(ledger.path).exists()

    restarted = AsRunLedger(ledger.path)
    interruption = recover(restarted)
    assert interruption is not None
    record = interruption.record
    assert (record.event_id, record.outcome, record.actual_frame) == (
        "L2",
        AsRunOutcome.TRUNCATED,
        100,
    )
    assert record.duration_frames == chunks[cut].frame - 100 == 50
    assert "interrupted" in record.reason
    assert RESTART_NOTE in interruption.join_note and "L2" in interruption.join_note
    assert [r.event_id for r in restarted.records()] == ["L1", "L2"]
    assert restarted.verify() == 2
    assert recover(AsRunLedger(ledger.path)) is None  # recorded once

    # The restart joins L2 mid-event and says why.
    engine = PlayoutEngine(rundown, hot_reload=False)
    list(engine.chunks(180, duration_frames=120, join_note=interruption.join_note))
    joined = engine.records[0]
    assert joined.event_id == "L2" and joined.reason.startswith(RESTART_NOTE)
    assert joined.actual_frame == 180 and joined.duration_frames < joined.scheduled_frames


def test_a_finished_event_needs_no_recovery(media: Media, tmp_path: Path) -> None:
    rundown = build_rundown([("L1", T.LESSON, media.short, 100)])
    chunks = list(PlayoutEngine(rundown, hot_reload=False).chunks(0, duration_frames=100))
    ledger = AsRunLedger(tmp_path / "ch.jsonl")
    journal = AsRunJournal(ledger, period=0.0)
    _sent(journal, chunks)
    journal.close()
    assert recover(AsRunLedger(ledger.path)) is None
    assert [r.outcome for r in ledger.records()] == [AsRunOutcome.AIRED]


def test_a_substituted_event_stays_substituted_when_interrupted(
    media: Media, tmp_path: Path
) -> None:
    missing = dataclasses.replace(media.short, path=str(tmp_path / "gone.ts"))
    rundown = build_rundown([("L1", T.LESSON, missing, 100)])
    chunks = list(PlayoutEngine(rundown, hot_reload=False).chunks(0, duration_frames=100))
    ledger = AsRunLedger(tmp_path / "ch.jsonl")
    journal = AsRunJournal(ledger, period=0.0)
    _sent(journal, chunks[: len(chunks) // 2])
    journal.close()
    interruption = recover(AsRunLedger(ledger.path))
    assert interruption is not None
    assert interruption.record.outcome is AsRunOutcome.SUBSTITUTED
    assert 0 < interruption.record.duration_frames < 100
