"""Every event on its rundown frame: breaks cut to fit, sender lateness absorbed in the slack.

Engine level (no real time): lateness is reported with ``absorb_late`` as the pacer
reports it, while the chunks are consumed, so the engine is a few seconds ahead of
the "sender" as it is in ``playout run``. What the journal would record is taken
from ``as_aired`` (the as-run as the bytes leave). Independent judges: ffprobe
(frames and timestamps of the stream) and mpegts.monitor (TR 101 290).
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import Media
from playout_media import (
    DAY,
    DAY_START,
    SERVICE,
    assert_clean,
    assert_continuous,
    check,
    ffprobe,
    make_clip,
    media_ref,
)

import playout.clip
import playout.timeline
from epg.compiler import _Filler
from epg.rundown import EventType, MediaRef, Rundown, RundownEvent, SiText, StartMode
from playout.asrun.ledger import AsRunOutcome, AsRunRecord
from playout.clip import Clip, known_sha256
from playout.engine import ORIGIN, PlayoutEngine
from playout.errors import UnplayableMedia


def event(
    event_id: str,
    kind: EventType,
    media: MediaRef | None,
    start: int,
    frames: int,
    *,
    fixed: bool = False,
) -> RundownEvent:
    return RundownEvent(
        event_id=event_id,
        eit_event_id=abs(hash(event_id)) % 60000 + 1 if kind.is_lesson else 0,
        type=kind,
        start_mode=StartMode.FIXED if fixed else StartMode.SEQUENTIAL,
        hard=fixed,
        start_frame=start,
        duration_frames=frames,
        media=media,
        si=SiText(title=event_id, description="测试") if kind.is_lesson else None,
    )


def rundown_of(events: list[RundownEvent], filler: tuple[MediaRef, ...] = ()) -> Rundown:
    return Rundown(
        service=SERVICE,
        broadcast_date=DAY,
        day_start=DAY_START,
        schedule_version=1,
        compiled_at=DAY_START - timedelta(days=1),
        events=tuple(events),
        filler_pool=filler,
    )


def break_from_pool(pool: MediaRef, start: int, frames: int) -> list[RundownEvent]:
    """A break the way the rundown compiler fills it: whole clips, the last one cut short."""
    return list(_Filler(pool=(pool,), day=DAY).fill(start, frames, source_row=None))


def play(
    engine: PlayoutEngine, start: int, frames: int, late: dict[int, float] | None = None
) -> tuple[bytes, dict[str, AsRunRecord]]:
    """The stream, and the as-run as journaled when each chunk leaves.

    ``late`` maps a chunk frame to seconds of sender lateness reported when that
    chunk is sent (as the pacer's ``on_late`` does).
    """
    pending = sorted((late or {}).items())
    data = bytearray()
    journaled: dict[str, AsRunRecord] = {}
    for chunk in engine.chunks(start, duration_frames=frames):
        while pending and chunk.frame >= pending[0][0]:
            engine.absorb_late(pending.pop(0)[1])
        data += chunk.data
        for mark in engine.as_aired(chunk).asrun:
            if mark.final:
                journaled[mark.record.event_id] = mark.record
    return bytes(data), journaled


def test_a_break_from_the_pool_is_cut_so_the_next_lesson_starts_on_its_frame(
    media: Media, tmp_path: Path
) -> None:
    """Issue 10, defect 1: lesson fixed, a break from the filler pool, lesson sequential.

    The compiler gives the break's last clip fewer frames than its media has; the
    engine used to play all of it, and the next lesson aired late against the guide.
    """
    pool = dataclasses.replace(media.lesson, kind="filler")  # 200 frames a clip
    fill = break_from_pool(pool, 100, 450)  # 200 + 200 + 50 of a 200-frame clip
    assert [e.duration_frames for e in fill] == [200, 200, 50]
    rundown = rundown_of(
        [
            event("L1", EventType.LESSON, media.short, 0, 100, fixed=True),
            *fill,
            event("L2", EventType.LESSON, media.short, 550, 100),
            event("L3", EventType.LESSON, media.short, 650, 100),
        ]
    )
    engine = PlayoutEngine(rundown)
    data, _ = play(engine, 0, 750)
    probe = ffprobe(data, tmp_path)
    assert len(probe.video) == 750
    assert_continuous(probe)
    assert_clean(check(data))
    got = {r.event_id: r for r in engine.records}
    # The guide lists each lesson at its rundown frame: the as-run says it aired there.
    for record in got.values():
        assert record.actual_frame == record.scheduled_frame, record
    last = got[fill[-1].event_id]
    assert (last.outcome, last.duration_frames) == (AsRunOutcome.TRUNCATED, 50)
    assert "to start L2 on its frame" in last.reason


@pytest.mark.parametrize("late_at", [150, 420], ids=["before-the-last-filler", "during-it"])
def test_sender_lateness_is_cut_from_the_filler_before_the_next_fixed_start(
    media: Media, tmp_path: Path, late_at: int
) -> None:
    """A 200 ms stall: 5 frames fewer of the break, and the fixed lesson on its frame."""
    pool = dataclasses.replace(media.lesson, kind="filler")
    fill = break_from_pool(pool, 100, 500)  # 200 + 200 + 100
    rundown = rundown_of(
        [
            event("L1", EventType.LESSON, media.short, 0, 100, fixed=True),
            *fill,
            event("L2", EventType.LESSON, media.short, 600, 100, fixed=True),
        ]
    )
    engine = PlayoutEngine(rundown)
    data, journaled = play(engine, 0, 700, late={late_at: 0.2})
    probe = ffprobe(data, tmp_path)
    assert len(probe.video) == 700  # frames aired: the 5 skipped ones are not among them
    assert_continuous(probe)  # no PTS gap: the skip is in the schedule, not the stream
    assert_clean(check(data))
    assert journaled["L2"].actual_frame == journaled["L2"].scheduled_frame == 600
    assert journaled["L2"].outcome is AsRunOutcome.AIRED
    cut = journaled[fill[-1].event_id]
    assert cut.outcome is AsRunOutcome.TRUNCATED
    assert cut.duration_frames == 95  # 75 frames of media (an IDR) + 20 of slate
    assert "pacing delay absorbed" in cut.reason
    # Events that started while the 5 frames were still owed say they started late.
    for record in journaled.values():
        if record.event_id in ("L1", "L2", cut.event_id) or record.actual_frame < late_at:
            continue
        assert record.actual_frame == record.scheduled_frame + 5, record
        assert "started 5 frames late" in record.reason


def test_lateness_with_no_slack_before_a_lesson_is_recorded_then_absorbed_later(
    media: Media,
) -> None:
    """Two lessons back to back cannot absorb it: the second says how late it started;
    the filler after it absorbs the delay and the next fixed lesson is on its frame."""
    pool = dataclasses.replace(media.lesson, kind="filler")
    rundown = rundown_of(
        [
            event("L1", EventType.LESSON, media.lesson, 0, 200, fixed=True),
            event("L2", EventType.LESSON, media.short, 200, 100),
            *break_from_pool(pool, 300, 200),
            event("L3", EventType.LESSON, media.short, 500, 100, fixed=True),
        ]
    )
    engine = PlayoutEngine(rundown)
    _, journaled = play(engine, 0, 600, late={25: 0.3})  # 7.5 → 8 frames, while L1 muxes
    assert journaled["L2"].actual_frame == 208
    assert "started 8 frames late" in journaled["L2"].reason
    assert journaled["L3"].actual_frame == journaled["L3"].scheduled_frame == 500
    assert "started" not in journaled["L3"].reason


def test_lateness_after_the_last_rundown_is_skipped_in_the_end_slate(media: Media) -> None:
    rundown = rundown_of([event("L1", EventType.LESSON, media.short, 0, 100)])
    engine = PlayoutEngine(rundown)
    data, _ = play(engine, 0, 400, late={50: 0.2})
    # Timeline frame 405 aired as the 400th frame: 5 frames of end slate skipped.
    assert engine.wire_pts(405) == ORIGIN + 400 * 3600
    assert_clean(check(data))


def test_a_warm_up_leaves_nothing_behind_and_the_start_after_it_is_identical(
    media: Media,
) -> None:
    """warm_up is a start thrown away: no as-run, and the real start is byte-identical."""
    pool = dataclasses.replace(media.lesson, kind="filler")
    rundown = rundown_of(
        [
            event("L1", EventType.LESSON, media.short, 0, 100, fixed=True),
            *break_from_pool(pool, 100, 250),
            event("L2", EventType.LESSON, media.short, 350, 100),
        ]
    )
    recorded: list[AsRunRecord] = []
    engine = PlayoutEngine(rundown, on_record=recorded.append)
    warm = engine.warm_up(30)
    assert warm.seconds > 0 and engine.records == [] and recorded == []
    # The first byte leads its frame by the T-STD delay: ~0.5 s plus the decode delay.
    assert timedelta(seconds=0.5) < warm.lead < timedelta(seconds=0.7)
    join = engine.join_frame(rundown.wall_clock(20), ready_in=0.4, lead=warm.lead)
    earliest = rundown.wall_clock(20) + timedelta(seconds=0.4) + warm.lead
    assert rundown.wall_clock(join - 1) <= earliest < rundown.wall_clock(join)
    warmed = b"".join(c.data for c in engine.chunks(join, duration_frames=300))
    fresh = b"".join(c.data for c in PlayoutEngine(rundown).chunks(join, duration_frames=300))
    assert warmed == fresh


@pytest.mark.parametrize("kind", ["ts", "mkv"])
def test_a_join_deep_into_an_asset_seeks_to_the_same_gops(
    media: Media, tmp_path_factory: pytest.TempPathFactory, kind: str
) -> None:
    """Seeking (not reading from the start) gives exactly the GOPs, audio included."""
    if kind == "ts":
        ref = media.lesson
        profile = "sd"
    else:
        from ingest.synth import SynthFormat, synthesize

        made = synthesize(
            tmp_path_factory.mktemp("seek") / "hd.mkv", seconds=8, fmt=SynthFormat.HOUSE_HD
        )
        ref = media_ref(made.path, "hd8", made.duration_frames)
        profile = "hd"
    from channels.profiles import profile_by_name

    clip = Clip(ref, profile_by_name(profile))

    def gops(first: int, seek: bool) -> list[tuple[object, ...]]:
        return [
            (
                g.index,
                g.first_frame,
                [bytes(p) for p in g.video],
                [(t, bytes(p)) for t, p in g.audio],
            )
            for g in clip._gops(first, seek=seek)
        ]

    for first in (3, 5, 7):
        sought = gops(first, True)
        assert [g[0] for g in sought] == list(range(first, 8))
        assert sought == gops(first, False)


def test_lazy_verification_never_hashes_on_the_air_path(
    media: Media, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "lesson-copy.ts"
    shutil.copyfile(media.lesson.path, copy)
    ref = media_ref(copy, "copy", 200)
    hashed_on: list[str] = []
    real = playout.clip.file_sha256

    def spy(path: Path) -> str:
        hashed_on.append(threading.current_thread().name)
        return real(path)

    monkeypatch.setattr(playout.clip, "file_sha256", spy)
    from channels.profiles import profile_by_name

    clip = Clip(ref, profile_by_name("sd"), verify=False)  # opens without reading it all
    for _ in range(200):
        if known_sha256(copy) is not None:
            break
        threading.Event().wait(0.01)
    assert clip.mismatch() is None  # hashed meanwhile, and it matches
    assert hashed_on and "MainThread" not in hashed_on


def test_a_file_changed_after_ingest_is_cut_while_airing_when_verified_lazily(
    media: Media, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash arrives while the item airs (as it does for the item a start joins)."""
    for module in (playout.clip, playout.timeline):  # the test says when the hash is known
        monkeypatch.setattr(module, "verify_later", lambda media: None)
    copy = tmp_path / "tampered.ts"
    shutil.copyfile(media.lesson.path, copy)
    tampered = dataclasses.replace(media_ref(copy, "tampered", 200), sha256="0" * 64)
    rundown = rundown_of(
        [
            event("L1", EventType.LESSON, media.short, 0, 100, fixed=True),
            event("L2", EventType.LESSON, tampered, 100, 200),
            event("L3", EventType.LESSON, media.short, 300, 100),
        ],
        filler=(media.filler,),
    )
    engine = PlayoutEngine(rundown, verify=False)
    data = bytearray()
    for chunk in engine.chunks(0, duration_frames=400):
        data += chunk.data
        if chunk.frame >= 100:  # L2 is on air: its hash comes in (as the hasher's would)
            playout.clip.file_sha256(copy)
    assert_clean(check(bytes(data)))
    got = {r.event_id: r for r in engine.records}
    assert got["L2"].outcome is AsRunOutcome.TRUNCATED
    assert "found while airing" in got["L2"].reason and "sha256" in got["L2"].reason
    assert 0 < got["L2"].duration_frames < 200
    assert got["L3"].actual_frame == 300  # the rest of its slot filled: L3 on its frame
    with pytest.raises(UnplayableMedia, match="sha256"):  # and it never airs again
        from channels.profiles import profile_by_name

        Clip(tampered, profile_by_name("sd"), verify=False)


def test_make_clip_helper_is_cached(tmp_path: Path) -> None:
    """(Sanity for this file's fixtures: the session clips exist once.)"""
    path = make_clip(tmp_path / "x.ts", 1)
    assert make_clip(path, 1) == path
