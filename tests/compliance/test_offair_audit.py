"""Audits of the off-air recording: cue_in_lesson, offair_loudness, ts_errors, offair_gap.

The recordings are real playout output fed through the recorder with real-time
arrival times (offair_media). Independent judges: threefive's own TS parser
(`threefive.Stream`) re-reads the recorded cues; pyloudnorm re-measures the loud item
from the decoded recording; the injection itself for the spliced cue.
"""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import av
import numpy as np
import pyloudnorm
import pytest
import threefive
from offair_media import (
    CHANNEL,
    DAY_START,
    MIDHOUR,
    Aired,
    Clips,
    build_rundown,
    feed_recorder,
    finish,
    make_clips,
    render,
    write_asrun,
)

from compliance.offair import OffairAudit, audit_offair, load_asrun
from compliance.receiver import parse_source
from compliance.recording import Recorder, RecorderConfig, RecordingStore
from epg.rundown import EventType
from mpegts import PACKET_SIZE, SectionPacketizer, packet_array, pid_array
from playout.cues import SCTE35_PID, splice_insert
from playout.engine import ORIGIN

ZONE = ZoneInfo("Asia/Shanghai")
LATER = datetime(2026, 9, 3, tzinfo=UTC)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return make_clips(tmp_path_factory.getbasetemp() / "offair-clips")


def record_and_audit(aired: Aired, data: bytes, root: Path) -> OffairAudit:
    """Record ``data`` (as received) and audit the recorded span against ``aired``'s as-run."""
    recorder = Recorder(CHANNEL, parse_source("udp://127.0.0.1:5999"), RecorderConfig(
        root=root / "rec", zone=ZONE
    ))  # fmt: skip
    feed_recorder(recorder, data)
    finish(recorder, data)
    write_asrun(root / "var", aired.records)
    segments = RecordingStore(root / "rec", CHANNEL).segments()
    return audit_offair(
        channel_id=CHANNEL,
        start=segments[0].first_arrival,
        end=segments[-1].last_arrival,
        recordings=root / "rec",
        entries=load_asrun(root / "var", CHANNEL),
        now=LATER,
    )


def threefive_cues(path: Path) -> list[Any]:
    """Splice cues as threefive's own TS parser finds them (heartbeats left out)."""
    found: list[Any] = []
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        threefive.Stream(str(path)).decode(func=found.append)
    return [c for c in found if c.command.command_type != 0]


def wall_of_pts(seconds: float) -> datetime:
    """When a PTS (seconds) of playout's stream is on screen: frame f shows at PTS ORIGIN+f."""
    return DAY_START + timedelta(seconds=seconds - ORIGIN / 90_000)


def splice_cue_into(data: bytes, *, at_second: float, splice_frame: int) -> bytes:
    """Replace the cue heartbeat (splice_null) nearest ``at_second`` into the stream by a
    splice_insert (cue-out) for timeline frame ``splice_frame``, keeping its CC."""
    arr = packet_array(data)
    rows = np.flatnonzero(pid_array(arr) == SCTE35_PID)
    target = int(rows[np.argmin(np.abs(rows - at_second * 5_000_000 / 8 / PACKET_SIZE))])
    section = splice_insert(
        event_id=4242, pts_90k=ORIGIN + splice_frame * 3600, out_of_network=True
    )
    (packet,) = SectionPacketizer(SCTE35_PID).packetize([section])
    cc = data[target * PACKET_SIZE + 3] & 0x0F
    patched = bytearray(packet)
    patched[3] = (patched[3] & 0xF0) | cc
    out = bytearray(data)
    out[target * PACKET_SIZE : (target + 1) * PACKET_SIZE] = patched
    return bytes(out)


def test_cue_inside_a_lesson_is_found_in_the_recording(clips: Clips, tmp_path: Path) -> None:
    # L1 (8 s) | ad break B1: A1 (3 s) | L2 (4 s): playout cues the break at its edges.
    specs = [
        ("L1", EventType.LESSON, clips.lesson, 200),
        ("A1", EventType.AD, clips.ad, 75),
        ("L2", EventType.LESSON, clips.short, 100),
    ]
    aired = render(build_rundown(specs, start=MIDHOUR, ad_break={"A1": "B1"}))
    clean = record_and_audit(aired, aired.data, tmp_path / "clean")
    # The clean recording: two cues, both at the break's edges, no finding at all.
    assert [f.code for f in clean.findings] == [], [f.message for f in clean.findings]
    assert [c.out_of_network for c in clean.cues] == [True, False]
    a1 = next(r for r in aired.records if r.event_id == "A1")
    assert clean.cues[0].splice_at is not None
    assert abs((clean.cues[0].splice_at - a1.actual_start).total_seconds()) < 0.04
    # Judge: threefive's own parser finds the same two cues in the recorded file.
    (recorded,) = RecordingStore(tmp_path / "clean" / "rec", CHANNEL).files()
    judged = threefive_cues(recorded)
    assert [c.command.name for c in judged] == ["Splice Insert"] * 2
    for ours, theirs in zip(clean.cues, judged, strict=True):
        assert ours.splice_at is not None
        expected = wall_of_pts(float(theirs.command.pts_time))
        assert abs((ours.splice_at - expected).total_seconds()) < 0.04

    # The same stream with a cue-out spliced in for 4 s into L1.
    inside = MIDHOUR + 100
    dirty_data = splice_cue_into(aired.data, at_second=1.5, splice_frame=inside)
    dirty = record_and_audit(aired, dirty_data, tmp_path / "dirty")
    found = [f for f in dirty.findings if f.code == "cue_in_lesson"]
    assert len(found) == 1, [f.message for f in dirty.findings]
    finding = found[0]
    assert finding.evidence["event_id"] == "L1" and finding.severity.value == "critical"
    assert finding.evidence["seconds_into_lesson"] == pytest.approx(4.0, abs=0.04)
    l1_hash = load_asrun(tmp_path / "dirty" / "var", CHANNEL)[0].hash
    assert finding.evidence["asrun_hash"] == l1_hash
    assert {f.code for f in dirty.findings} == {"cue_in_lesson"}
    # Judge: threefive sees the spliced cue too, with the splice time we placed.
    (dirty_file,) = RecordingStore(tmp_path / "dirty" / "rec", CHANNEL).files()
    judged = threefive_cues(dirty_file)
    assert len(judged) == 3
    spliced = next(c for c in judged if c.command.splice_event_id == 4242)
    placed = wall_of_pts(float(spliced.command.pts_time))
    assert abs((finding.at - placed).total_seconds()) < 0.04


def decoded_between(path: Path, first_pts: int, last_pts: int) -> np.ndarray:
    """The recording's audio with PTS in [first, last), as float (n, 2)."""
    blocks = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            if frame.pts is not None and first_pts <= frame.pts < last_pts:
                data = frame.to_ndarray()
                blocks.append((data.T if frame.format.is_planar else data).astype(np.float64))
    samples = np.concatenate(blocks)
    scale = 32768.0 if np.abs(samples).max() > 2 else 1.0
    return samples / scale


def test_a_loud_item_is_measured_off_air(clips: Clips, tmp_path: Path) -> None:
    specs = [
        ("L1", EventType.LESSON, clips.lesson, 200),
        ("LOUD", EventType.LESSON, clips.loud, 100),
        ("L3", EventType.LESSON, clips.short, 100),
    ]
    aired = render(build_rundown(specs, start=MIDHOUR))
    audit = record_and_audit(aired, aired.data, tmp_path)
    items = {r.event_id: r for r in audit.loudness.items}
    assert set(items) == {"L1", "LOUD", "L3"}
    loud = [f for f in audit.findings if f.code == "offair_loudness"]
    # The loud item, and the hour it made loud; nothing for the items around it.
    assert {(f.evidence["scope"], f.evidence.get("event_id")) for f in loud} == {
        ("item", "LOUD"),
        ("hour", None),
    }
    item = next(f for f in loud if f.evidence["scope"] == "item")
    assert item.evidence["asset_id"] == "loud4"
    assert item.evidence["integrated_lufs"] > -12
    assert items["L1"].integrated_lufs == pytest.approx(-24, abs=1)
    assert items["L3"].integrated_lufs == pytest.approx(-24, abs=1)
    # Judge: pyloudnorm, a second BS.1770 meter, on the same recorded item (cut by the
    # PTS that playout gives its frames, 0.1 s inside each edge as the audit does).
    (recorded,) = RecordingStore(tmp_path / "rec", CHANNEL).files()
    first = ORIGIN + (MIDHOUR + 200) * 3600 + 9000
    samples = decoded_between(recorded, first, first + 100 * 3600 - 18000)
    second = pyloudnorm.Meter(48_000).integrated_loudness(samples)
    assert item.evidence["integrated_lufs"] == pytest.approx(second, abs=0.5)


def test_gaps_are_clipped_to_the_air_window_and_edge_slivers_are_not_findings(
    tmp_path: Path,
) -> None:
    """A stopped channel's last datagram lands a few ms before its as-run end.

    The "stop" gap the recorder journals then overlaps the air window by that sliver;
    it is arrival timing, not an outage. A real outage inside the window still counts.
    No outside judge: the journaled gaps are written directly.
    """
    from compliance.offair import OffairConfig, gap_findings
    from compliance.recording import GAPS_FILE, Gap

    store = RecordingStore(tmp_path, CHANNEL)
    store.channel_dir.mkdir(parents=True)
    t0 = datetime(2026, 9, 1, 1, tzinfo=UTC)
    air = (t0, t0 + timedelta(minutes=10))

    def gap(start: datetime, seconds: float, kind: str) -> Gap:
        return Gap(
            channel_id=CHANNEL, start=start, end=start + timedelta(seconds=seconds), kind=kind
        )

    gaps = [
        gap(t0 + timedelta(minutes=3), 4, "reception"),
        gap(air[1] - timedelta(milliseconds=6), 2, "stop"),
        gap(t0 - timedelta(seconds=5), 8, "start"),
    ]
    (store.channel_dir / GAPS_FILE).write_text(
        "".join(json.dumps(g.as_json()) + "\n" for g in gaps), encoding="utf-8"
    )
    _, findings = gap_findings(CHANNEL, store, *air, OffairConfig(), [air])
    # no segments were written, so the rest of the window is "not_recorded": not asked here
    kinds = sorted(
        (f.evidence["kind"], f.evidence["seconds"])
        for f in findings
        if f.evidence["kind"] != "not_recorded"
    )
    assert kinds == [("reception", 4.0), ("start", 3.0)]


@pytest.mark.parametrize("how", ["stopped", "crashed"])
def test_a_station_stopped_and_started_again_within_the_hour(
    clips: Clips, tmp_path: Path, how: str
) -> None:
    """Two runs of the channel, 60 s apart, recorded into one hour file by two recorder
    sessions (the station was stopped, then started again: ``make demo`` twice).

    The second run's continuity counters and clock start afresh: a stream error only if
    the file is read as one stream; the audit checks each recorded segment on its own.
    The minute between the runs is air only if the first run crashed: after an
    operator's stop (as-run ``stopped (SIGTERM)``) the channel owed no air.
    Independent judge: the recorded hour file itself, read whole by the TR 101 290
    monitor, does show the continuity break the audit must not report.
    """
    from compliance.offair import OffairConfig, ts_summary
    from mpegts.monitor import check_file
    from playout.asrun.journal import STOPPED, cut_short

    first = render(build_rundown([("L1", EventType.LESSON, clips.lesson, 200)], start=MIDHOUR))
    later = MIDHOUR + 200 + 60 * 25
    second = render(build_rundown([("L2", EventType.LESSON, clips.short, 100)], start=later))
    root = tmp_path / "rec"
    for aired in (first, second):
        recorder = Recorder(
            CHANNEL, parse_source("udp://127.0.0.1:5999"), RecorderConfig(root=root, zone=ZONE)
        )
        feed_recorder(recorder, aired.data)
        finish(recorder, aired.data)
    why = (
        f"{STOPPED} (SIGTERM) after frame {MIDHOUR + 200}"
        if how == "stopped"
        else (f"interrupted: playout stopped after frame {MIDHOUR + 200} (last progress mark)")
    )
    (l1,) = first.records
    write_asrun(tmp_path / "var", [cut_short(l1, l1.duration_frames, why), *second.records])
    store = RecordingStore(root, CHANNEL)
    (hour_file,) = store.files()
    segments = store.segments()
    assert [s.path for s in segments] == [hour_file, hour_file]
    whole = check_file(hour_file)
    assert whole.count("Continuity_count_error") > 0  # the join, read as one stream

    audit = audit_offair(
        channel_id=CHANNEL,
        start=segments[0].first_arrival,
        end=segments[-1].last_arrival,
        recordings=root,
        entries=load_asrun(tmp_path / "var", CHANNEL),
        now=LATER,
    )
    assert [f.code for f in audit.findings if f.code == "ts_errors"] == []
    assert all(not s.checks for s in audit.ts_errors)
    # While the second run is still being recorded only the first segment is indexed:
    # where it ends is where the next one begins.
    live = ts_summary(
        hour_file,
        OffairConfig(),
        final=False,
        segment_offsets=[segments[0].offset, segments[0].end_offset],
    )
    assert live.checks == ()
    gaps = [f for f in audit.findings if f.code == "offair_gap"]
    if how == "stopped":
        assert gaps == [], [f.message for f in gaps]
    else:
        (gap,) = gaps
        assert gap.evidence["kind"] == "not_recorded"
        assert gap.evidence["seconds"] == pytest.approx(60.0, abs=0.1)
    assert {f.code for f in audit.findings} <= {"offair_gap"}


def test_ts_errors_inside_a_later_segment_keep_their_place_in_the_file(
    clips: Clips, tmp_path: Path
) -> None:
    """A continuity break inside the second recorded segment is still found, and its
    byte offset is the file's (the arrival time it maps to is that of the broken packet).
    Independent judge: the packet we broke, found by its byte position in the file."""
    from compliance.offair import OffairConfig, ts_summary

    first = render(build_rundown([("L1", EventType.LESSON, clips.short, 100)], start=MIDHOUR))
    second = render(
        build_rundown([("L2", EventType.LESSON, clips.short, 100)], start=MIDHOUR + 1600)
    )
    # Break one video packet's continuity counter a second into the second run.
    packets = packet_array(second.data)
    pids = pid_array(packets)
    video = int(np.bincount(pids).argmax())  # the busiest PID is the video
    row = int(np.flatnonzero(pids == video)[300])
    broken = bytearray(second.data)
    broken[row * PACKET_SIZE + 3] = (broken[row * PACKET_SIZE + 3] & 0xF0) | (
        ((broken[row * PACKET_SIZE + 3] & 0x0F) + 5) & 0x0F
    )
    root = tmp_path / "rec"
    for data in (first.data, bytes(broken)):
        recorder = Recorder(
            CHANNEL, parse_source("udp://127.0.0.1:5999"), RecorderConfig(root=root, zone=ZONE)
        )
        feed_recorder(recorder, data)
        finish(recorder, data)
    store = RecordingStore(root, CHANNEL)
    (hour_file,) = store.files()
    offsets = [s.offset for s in store.segments()]
    assert offsets == [0, len(first.data)]
    summary = ts_summary(hour_file, OffairConfig(), final=False, segment_offsets=offsets)
    cc = next(c for c in summary.checks if c["check_id"] == "1.4")
    # the broken packet, and the one after it (its counter follows the original)
    assert cc["count"] == 2
    assert cc["examples"][0]["byte_offset"] == len(first.data) + row * PACKET_SIZE


def test_a_sliver_of_an_item_is_not_judged_for_loudness() -> None:
    """A join a second before an item ends airs a sliver of it: no programme loudness.

    The same quiet tone (-30 LUFS, 6 LU under target) over 1.5 s is not judged; over 4 s
    it is. Independent judge: pyloudnorm measures the tone the meter is fed.
    """
    from compliance.offair import OffairConfig, loudness_findings
    from compliance.offair_loudness import AiredSpan, LoudnessAudit

    rate = 48_000
    t0 = datetime(2026, 9, 1, 1, tzinfo=UTC)
    sliver = AiredSpan(event_id="F1", event_type="filler", asset_id="a", start=t0,
                       end=t0 + timedelta(seconds=1.5))  # fmt: skip
    whole = AiredSpan(event_id="F2", event_type="filler", asset_id="a", start=sliver.end,
                      end=sliver.end + timedelta(seconds=4))  # fmt: skip
    tone = np.sin(2 * np.pi * 997 * np.arange(4 * rate) / rate)[:, None].repeat(2, axis=1)
    tone *= 10 ** ((-30 - pyloudnorm.Meter(rate).integrated_loudness(tone)) / 20)
    assert pyloudnorm.Meter(rate).integrated_loudness(tone) == pytest.approx(-30, abs=0.1)
    audit = LoudnessAudit([sliver, whole])
    audit._items.feed(sliver.key, tone[: int(1.5 * rate)], rate)  # what measure_file feeds
    audit._items.feed(whole.key, tone, rate)
    findings = loudness_findings(CHANNEL, audit.result(), OffairConfig())
    assert [f.evidence["event_id"] for f in findings] == ["F2"]
