"""The engine end to end: joins, fallback, hard starts, lessons never cut, SI, cues, wrap."""

from __future__ import annotations

import dataclasses
import io
import itertools
from contextlib import redirect_stdout
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import threefive
from conftest import Media
from playout_media import (
    assert_clean,
    assert_continuous,
    build_rundown,
    check,
    ffprobe,
    make_clip,
    media_ref,
    render,
    sections,
)

from epg.rundown import EventType as T
from epg.si.decode import decode_eit, decode_tdt
from playout.asrun.ledger import AsRunOutcome
from playout.cues import SCTE35_PID
from playout.engine import PlayoutEngine

PTS_WRAP = 1 << 33


def outcomes(engine: PlayoutEngine) -> dict[str, tuple[AsRunOutcome, int, int, str]]:
    return {
        r.event_id: (r.outcome, r.actual_frame, r.duration_frames, r.reason) for r in engine.records
    }


def test_joins_are_seamless_and_stream_is_compliant(media: Media, tmp_path: Path) -> None:
    rundown = build_rundown(
        [
            ("L1", T.LESSON, media.lesson, 200),
            ("A1", T.AD, media.ad, 75),
            ("P1", T.FILLER, media.short, 100),
            ("L2", T.LESSON, media.lesson, 200),
        ],
        ad_break={"A1": "B1"},
    )
    engine = PlayoutEngine(rundown)
    data = render(engine, 0, 600)
    assert len(data) % 188 == 0
    probe = ffprobe(data, tmp_path)
    assert len(probe.video) == 600
    assert_continuous(probe)
    assert probe.video[0][0] == engine.wire_pts(0)  # frame 0 shows at W(0): no hidden shift
    assert_clean(check(data))
    got = outcomes(engine)
    assert [got[e][:2] for e in ("L1", "A1", "P1", "L2")] == [
        (AsRunOutcome.AIRED, 0),
        (AsRunOutcome.AIRED, 200),
        (AsRunOutcome.AIRED, 275),
        (AsRunOutcome.AIRED, 375),
    ]
    # CBR: exactly mux_rate over the run (600 frames = 24 s), within a packet or two.
    assert abs(len(data) * 8 / 24 - rundown.service.mux_rate) < rundown.service.mux_rate * 0.001


def test_two_runs_are_byte_identical(media: Media) -> None:
    rundown = build_rundown(
        [("L1", T.LESSON, media.lesson, 200), ("A1", T.AD, media.ad, 75)],
        ad_break={"A1": "B1"},
    )
    first = render(PlayoutEngine(rundown), 40, 260)
    second = render(PlayoutEngine(rundown), 40, 260)
    assert first == second


def test_bad_assets_fall_back_to_filler_then_slate(media: Media, tmp_path: Path) -> None:
    missing = dataclasses.replace(media.short, asset_id="gone", path=str(tmp_path / "gone.ts"))
    tampered = dataclasses.replace(media.short, asset_id="tampered", sha256="0" * 64)
    junk_path = tmp_path / "junk.ts"
    junk_path.write_bytes(b"not a transport stream" * 1000)
    junk = media_ref(junk_path, "junk", 100)
    rundown = build_rundown(
        [
            ("L1", T.LESSON, missing, 100),
            ("L2", T.LESSON, tampered, 100),
            ("L3", T.LESSON, junk, 100),
        ],
        filler=[media.filler],
    )
    engine = PlayoutEngine(rundown)
    data = render(engine, 0, 300)
    assert_continuous(ffprobe(data, tmp_path))
    assert_clean(check(data))
    got = outcomes(engine)
    assert {got[e][0] for e in ("L1", "L2", "L3")} == {AsRunOutcome.SUBSTITUTED}
    assert "missing" in got["L1"][3] and "sha256" in got["L2"][3]
    assert [got[e][1] for e in ("L1", "L2", "L3")] == [0, 100, 200]  # timing held

    # No filler pool at all: the slate alone keeps the channel on air.
    engine = PlayoutEngine(dataclasses.replace(rundown, filler_pool=()))
    data = render(engine, 0, 300)
    assert_continuous(ffprobe(data, tmp_path))
    assert_clean(check(data))


def test_hard_start_cuts_filler_at_an_idr_and_pads_to_the_frame(
    media: Media, tmp_path: Path
) -> None:
    # The filler item is 8 s but the hard-start lesson is due 3.4 s after it starts.
    rundown = build_rundown(
        [("F1", T.FILLER, media.lesson, 85), ("L1", T.LESSON, media.short, 100)],
        fixed={"L1": True},
    )
    engine = PlayoutEngine(rundown)
    data = render(engine, 0, 185)
    assert_continuous(ffprobe(data, tmp_path))
    assert_clean(check(data))
    got = outcomes(engine)
    assert got["F1"][0] is AsRunOutcome.TRUNCATED and got["F1"][2] == 85  # 75 + 10 slate
    assert got["L1"][:2] == (AsRunOutcome.AIRED, 85)  # frame-exact


def test_soft_start_waits_and_early_arrival_is_filled(media: Media, tmp_path: Path) -> None:
    # L1 media is 100 frames but 150 are scheduled: the fixed L2 must not start early.
    rundown = build_rundown(
        [("L1", T.LESSON, media.short, 150), ("L2", T.LESSON, media.short, 100)],
        fixed={"L2": False},
        filler=[media.filler],
    )
    engine = PlayoutEngine(rundown)
    data = render(engine, 0, 250)
    assert_continuous(ffprobe(data, tmp_path))
    assert outcomes(engine)["L2"][:2] == (AsRunOutcome.AIRED, 150)


def test_no_ad_cuts_a_lesson(media: Media, tmp_path: Path) -> None:
    """L1 overruns (200 frames of media in a 100-frame slot) into a hard-start break."""
    rundown = build_rundown(
        [
            ("L1", T.LESSON, media.lesson, 100),
            ("A1", T.AD, media.ad, 75),
            ("A2", T.AD, media.ad, 75),
            ("L2", T.LESSON, media.short, 100),
        ],
        fixed={"A1": True, "L2": True},
        ad_break={"A1": "B1", "A2": "B1"},
    )
    engine = PlayoutEngine(rundown)
    data = render(engine, 0, 350)
    assert_continuous(ffprobe(data, tmp_path))
    assert_clean(check(data))
    got = outcomes(engine)
    assert got["L1"][:3] == (AsRunOutcome.AIRED, 0, 200)  # the lesson aired whole
    assert got["A1"][0] is AsRunOutcome.TRUNCATED and got["A1"][1] == 200
    assert "lesson L1 overran by 100 frames" in got["A1"][3]
    assert got["A2"][0] is AsRunOutcome.SKIPPED
    assert got["L2"][:2] == (AsRunOutcome.AIRED, 250)
    # Cue-out where the break actually began (after the lesson), cue-in at L2.
    cues = splice_inserts(data)
    assert [(out, pts) for out, pts in cues] == [
        (True, engine.wire_pts(200) % PTS_WRAP),
        (False, engine.wire_pts(250) % PTS_WRAP),
    ]


def splice_inserts(data: bytes) -> list[tuple[bool, int]]:
    return [(out, pts) for out, pts, _index in timed_splice_inserts(data)]


def timed_splice_inserts(data: bytes) -> list[tuple[bool, int, int]]:
    """(out_of_network, splice pts_time in 90 kHz, packet index) of every splice_insert."""
    found = []
    for index, section in sections(data, SCTE35_PID):
        cue = threefive.Cue(section)
        with redirect_stdout(io.StringIO()):
            cue.decode()
        if cue.command.command_type == 5:
            found.append(
                (
                    bool(cue.command.out_of_network_indicator),
                    round(cue.command.pts_time * 90000),
                    index,
                )
            )
    return found


def arrival_90k(data: bytes, index: int, mux_rate: int) -> int:
    """The PCR (90 kHz) at which packet ``index`` arrives, from the first PCR and the CBR rate."""
    arr = np.frombuffer(data, np.uint8).reshape(-1, 188)
    has_pcr = ((arr[:, 3] & 0x20) != 0) & (arr[:, 4] > 0) & ((arr[:, 5] & 0x10) != 0)
    first = int(np.flatnonzero(has_pcr)[0])
    b = arr[first, 6:11].astype(np.int64)
    pcr = (b[0] << 25) | (b[1] << 17) | (b[2] << 9) | (b[3] << 1) | (b[4] >> 7)
    return int(pcr) + (index - first) * 188 * 8 * 90_000 // mux_rate


@pytest.mark.parametrize("preroll", [4.0, 6.0])
def test_scte35_cues_arrive_their_preroll_before_the_splice(media: Media, preroll: float) -> None:
    """Cue-out and cue-in come ahead of the splice, whose pts_time is the edge frame's PTS."""
    rundown = build_rundown(
        [
            ("L1", T.LESSON, media.lesson, 100),  # overruns by 100 frames: the break moves
            ("A1", T.AD, media.ad, 75),
            ("A2", T.PROMO, media.ad, 75),
            ("L2", T.LESSON, media.short, 100),
            ("F1", T.FILLER, media.filler, 50),  # short items right before a break
            ("A3", T.AD, media.ad, 75),
            ("L3", T.LESSON, media.short, 100),
        ],
        ad_break={"A1": "B1", "A2": "B1", "A3": "B2"},
        fixed={"L2": True},
    )
    engine = PlayoutEngine(rundown, cue_preroll=preroll)
    data = render(engine, 0, 625)
    assert_clean(check(data))
    cues = timed_splice_inserts(data)
    starts = {r.event_id: r.actual_frame for r in engine.records}
    edges = [
        (True, starts["A1"]),  # 200: after the overrunning lesson, not at the scheduled 100
        (False, starts["L2"]),
        (True, starts["A3"]),
        (False, starts["L3"]),
    ]
    assert [(out, pts) for out, pts, _i in cues] == [
        (out, engine.wire_pts(frame) % PTS_WRAP) for out, frame in edges
    ]
    lessons = [
        (r.actual_frame, r.actual_frame + r.duration_frames)
        for r in engine.records
        if r.event_type == "lesson"
    ]
    for (_out, pts, index), (_o, frame) in zip(cues, edges, strict=True):
        lead = (pts - arrival_90k(data, index, rundown.service.mux_rate)) % PTS_WRAP
        assert preroll - 0.1 <= lead / 90_000 <= preroll + 0.2, (frame, lead / 90_000)
        assert not any(a < frame < b for a, b in lessons)  # never a splice inside a lesson


def test_scte35_only_at_break_edges(media: Media) -> None:
    rundown = build_rundown(
        [
            ("L1", T.LESSON, media.short, 100),
            ("A1", T.AD, media.ad, 75),
            ("A2", T.PROMO, media.ad, 75),
            ("L2", T.LESSON, media.short, 100),
            ("A3", T.AD, media.ad, 75),
            ("L3", T.LESSON, media.short, 100),
        ],
        ad_break={"A1": "B1", "A2": "B1", "A3": "B2"},
    )
    engine = PlayoutEngine(rundown)
    data = render(engine, 0, 525)
    edges = [
        (True, engine.wire_pts(100)),
        (False, engine.wire_pts(250)),
        (True, engine.wire_pts(350)),
        (False, engine.wire_pts(425)),
    ]
    assert splice_inserts(data) == edges
    lessons = [
        (r.actual_frame, r.actual_frame + r.duration_frames)
        for r in engine.records
        if r.event_type == "lesson"
    ]
    for _out, pts in edges:
        frame = (pts - engine.wire_pts(0)) // 3600
        assert not any(a < frame < b for a, b in lessons)  # never inside a lesson
    # The PMT declares the cue PID (stream_type 0x86) and the checker sees it.
    assert SCTE35_PID in check(data).pids_with_stream_type(0x86)


def test_eit_present_following_and_tdt_follow_the_timeline(media: Media) -> None:
    rundown = build_rundown(
        [
            ("F0", T.FILLER, media.filler, 50),
            ("L1", T.LESSON, media.lesson, 200),
            ("L2", T.LESSON, media.short, 100),
        ]
    )
    engine = PlayoutEngine(rundown)
    data = render(engine, 0, 350)
    mux_rate = rundown.service.mux_rate
    shown = []
    for index, section in sections(data, 0x12):
        eit = decode_eit(section)
        if eit.table_id == 0x4E and eit.section_number == 0:
            seconds = index * 188 * 8 / mux_rate
            shown.append((seconds, eit.events[0].name if eit.events else None))
    assert shown, "no EIT p/f"
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(shown)]
    assert max(gaps) <= 2.0
    # Between 3 s and 9 s of the timeline lesson L1 is on air (stream leads by < 1 s).
    assert {name for t, name in shown if 3.5 < t < 8.0} == {"第1课 L1"}
    assert {name for t, name in shown if 10.5 < t < 12.0} == {"第2课 L2"}
    tdts = [decode_tdt(s) for _i, s in sections(data, 0x14) if s[0] == 0x70]
    assert tdts and all(t is not None for t in tdts)
    assert tdts[0] is not None and abs((tdts[0] - rundown.day_start).total_seconds()) < 2


def test_pts_wrap_is_seamless(media: Media, tmp_path: Path) -> None:
    rundown = build_rundown(
        [("L1", T.LESSON, media.lesson, 200), ("L2", T.LESSON, media.lesson, 200)]
    )
    # Put the 2^33 wrap 6 s into the run, in the middle of L1.
    engine = PlayoutEngine(rundown, pts_offset=PTS_WRAP - 150 * 3600 - 180_000)
    data = render(engine, 0, 400)
    probe = ffprobe(data, tmp_path)
    assert probe.video[0][0] < PTS_WRAP < probe.video[-1][0]  # it really wrapped
    assert_continuous(probe)
    assert_clean(check(data))


def test_join_mid_event_starts_on_the_next_idr(media: Media, tmp_path: Path) -> None:
    rundown = build_rundown(
        [("L1", T.LESSON, media.lesson, 200), ("L2", T.LESSON, media.short, 100)]
    )
    engine = PlayoutEngine(rundown)
    data = render(engine, 60, 240)
    assert_continuous(ffprobe(data, tmp_path))
    got = outcomes(engine)
    assert got["L1"][1] == 60 and "joined mid-event" in got["L1"][3]
    assert got["L2"][:2] == (AsRunOutcome.AIRED, 200)


def test_damaged_gop_is_skipped(media: Media, tmp_path: Path) -> None:
    source = Path(media.lesson.path).read_bytes()
    damaged = bytearray(source)
    # Drop 400 packets from the middle (about GOP 3): frames go missing there.
    middle = (len(source) // 188 // 2) * 188
    del damaged[middle : middle + 400 * 188]
    path = tmp_path / "damaged.ts"
    path.write_bytes(bytes(damaged))
    rundown = build_rundown(
        [
            ("L1", T.LESSON, media_ref(path, "damaged", 200), 200),
            ("L2", T.LESSON, media.short, 100),
        ],
        fixed={"L2": True},
        filler=[media.filler],
    )
    engine = PlayoutEngine(rundown)
    data = render(engine, 0, 300)
    assert_continuous(ffprobe(data, tmp_path))
    assert_clean(check(data))
    got = outcomes(engine)
    assert got["L1"][0] is AsRunOutcome.TRUNCATED and "damaged" in got["L1"][3]
    assert got["L2"][:2] == (AsRunOutcome.AIRED, 200)  # the fixed start still held


def test_end_of_rundown_plays_slate_and_next_day_is_picked_up(media: Media, tmp_path: Path) -> None:
    from epg.rundown import DAY_FRAMES, rundown_path

    today = build_rundown([("L1", T.LESSON, media.short, 100)], start=DAY_FRAMES - 150)
    tomorrow = dataclasses.replace(
        build_rundown([("N1", T.LESSON, media.short, 100)], fixed={"N1": True}),
        broadcast_date=today.broadcast_date + timedelta(days=1),
        day_start=today.day_start + timedelta(days=1),
    )
    tomorrow.save(rundown_path(tmp_path, today.channel_id, tomorrow.broadcast_date))
    engine = PlayoutEngine(today, rundown_dir=tmp_path)
    data = render(engine, DAY_FRAMES - 150, 250)
    assert_continuous(ffprobe(data, tmp_path))
    got = outcomes(engine)
    assert got["N1"][:2] == (AsRunOutcome.AIRED, 0)  # frame 0 of the next day, on time


def test_make_clip_is_house_format(tmp_path: Path) -> None:
    probe = ffprobe(make_clip(tmp_path / "c.ts", 2).read_bytes(), tmp_path)
    keys = [k for _p, _d, k in probe.video]
    assert keys.count(True) == 2 and keys[0]


@pytest.mark.parametrize("frames", [1, 24])
def test_short_runs_end_cleanly(media: Media, frames: int) -> None:
    rundown = build_rundown([("L1", T.LESSON, media.short, 100)])
    data = render(PlayoutEngine(rundown), 0, frames)
    assert len(data) % 188 == 0 and data[0] == 0x47


def pf_timeline(
    data: bytes, engine: PlayoutEngine
) -> list[tuple[float, tuple[str, float, int] | None, tuple[str, float] | None]]:
    """(arrival second on the timeline, present (name, start s, duration s), following)."""
    mux_rate = engine.rundown.service.mux_rate
    day_start = engine.rundown.day_start
    present: dict[int, tuple[str, float, int] | None] = {}
    out = []
    for index, section in sections(data, 0x12):
        eit = decode_eit(section)
        if eit.table_id != 0x4E:
            continue
        t = (arrival_90k(data, index, mux_rate) - engine.wire_pts(0)) / 90_000
        event = eit.events[0] if eit.events else None
        info = None
        if event is not None and event.start is not None:
            info = (
                event.name,
                (event.start - day_start).total_seconds(),
                event.duration_seconds or 0,
            )
        if eit.section_number == 0:
            present[index] = info
        elif present:
            now = present[max(present)]
            out.append((t, now, None if info is None else info[:2]))
    return out


def test_eit_present_following_follow_what_actually_airs(media: Media) -> None:
    """L1 overruns its 4 s slot by 4 s: EIT shows it on air 8 s and L2 following at 8 s."""
    rundown = build_rundown(
        [
            ("L1", T.LESSON, media.lesson, 100),
            ("L2", T.LESSON, media.short, 100),
            ("A1", T.AD, media.ad, 75),
            ("L3", T.LESSON, media.short, 100),
        ],
        ad_break={"A1": "B1"},
        fixed={"L3": True},
    )
    engine = PlayoutEngine(rundown)
    data = render(engine, 0, 375)
    starts = {r.event_id: r.actual_frame for r in engine.records}
    assert (starts["L2"], starts["L3"]) == (200, 300)  # L2 shifted; hard L3 held, A1 cut
    shown = pf_timeline(data, engine)
    assert shown
    # While L1 runs (to 8 s): L1 present for 8 s, L2 following from 8 s, not 4 s.
    during_l1 = {(now, nxt) for t, now, nxt in shown if 0.5 < t < 7.5}
    assert during_l1 == {(("第0课 L1", 0.0, 8), ("第1课 L2", 8.0))}
    during_l2 = {(now, nxt) for t, now, nxt in shown if 8.5 < t < 11.5}
    assert during_l2 == {(("第1课 L2", 8.0, 4), ("第3课 L3", 12.0))}
    # Deterministic: the same rundown gives the same bytes.
    assert render(PlayoutEngine(rundown), 0, 375) == data
