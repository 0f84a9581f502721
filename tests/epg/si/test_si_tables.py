"""EIT, SDT, TDT and TOT: published bytes, round trips through the decoder, EN 300 468 rules."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from channels.registry import SAMPLE_CHANNELS_FILE, load_registry
from epg.si import (
    SectionPacketizer,
    SiEvent,
    SiInputError,
    SiService,
    TextEncoding,
    ZoneTot,
    decode_eit,
    decode_sdt,
    decode_tdt,
    decode_tot,
    eit_present_following,
    eit_schedule,
    parse_section,
    sdt,
    tdt,
    tot,
)
from epg.si.services import ServiceType

DAY0 = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday; 08:00 in Beijing
SERVICE = SiService(
    service_id=101,
    transport_stream_id=1,
    original_network_id=8400,
    name="空中课堂 一年级",
    provider="空中课堂播控中心",
    service_type=ServiceType.AVC_HD,
)


def lessons(days: int = 8, per_day: int = 14, description: str = "") -> list[SiEvent]:
    """A school day: 20-minute lessons every 30 min from 00:00 UTC (08:00 Beijing)."""
    out = []
    for day in range(days):
        for n in range(per_day):
            event_id = day * 100 + n
            out.append(
                SiEvent(
                    event_id=event_id,
                    start=DAY0 + timedelta(days=day, minutes=30 * n),
                    duration_seconds=20 * 60,
                    title=f"一年级 语文 第{event_id}课",
                    description=description or f"认识汉字 {event_id}",
                )
            )
    return out


# --- TDT / TOT -----------------------------------------------------------------


def test_tdt_published_example() -> None:
    # The published TDT vector from the task brief:
    # 70 70 05 D4 9B 13 25 03 = 2007-11-23 13:25:03 UTC (MJD 0xD49B = 54427).
    published = bytes.fromhex("70 70 05 d4 9b 13 25 03")
    moment = datetime(2007, 11, 23, 13, 25, 3, tzinfo=UTC)
    assert decode_tdt(published) == moment
    assert tdt(moment) == published
    assert tdt(moment.replace(microsecond=999_999)) == published  # the field has no fraction


def test_tot_china_offset() -> None:
    # independent judge: published EN 300 468 field layout (bytes below, computed by hand)
    now = datetime(2025, 3, 3, 1, 2, 3, tzinfo=UTC)
    section = ZoneTot(ZoneInfo("Asia/Shanghai"))(now)
    parse_section(section)  # CRC verified
    decoded = decode_tot(section)
    assert decoded.utc == now
    (offset,) = decoded.offsets
    assert offset.country == "CHN"
    assert offset.region_id == 0
    assert offset.offset_minutes == offset.next_offset_minutes == 480
    assert offset.time_of_change == datetime(2026, 1, 1, tzinfo=UTC)  # in the future
    # EN 300 468 6.2.20: tag 0x58, 13 bytes per country: "CHN", region 0 / reserved 1 /
    # polarity 0 (east), offset BCD 0800, time_of_change 2026-01-01 00:00 (MJD 61041 =
    # 0xEE71: 51544 for 2000-01-01 + 26 × 365 + 7 leap days), next offset BCD 0800.
    assert section[10:12] == b"\x58\x0d"
    assert section[12:25] == b"CHN\x02\x08\x00" + bytes.fromhex("EE71000000") + b"\x08\x00"
    assert section[0] == 0x73 and section[1] & 0x80 == 0  # section_syntax_indicator 0


def test_tot_for_a_zone_with_daylight_saving_announces_the_change() -> None:
    # The settings' zone drives the TOT: Berlin leaves summer time at 01:00 UTC on 25 Oct.
    berlin = ZoneTot(ZoneInfo("Europe/Berlin"), country="DEU")
    (offset,) = decode_tot(berlin(datetime(2026, 9, 1, tzinfo=UTC))).offsets
    assert offset.offset_minutes == 120 and offset.next_offset_minutes == 60
    assert offset.time_of_change == datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
    (after,) = decode_tot(berlin(datetime(2026, 10, 26, tzinfo=UTC))).offsets
    assert after.offset_minutes == 60 and after.next_offset_minutes == 120
    assert after.time_of_change == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)


def test_tot_negative_offset() -> None:
    decoded = decode_tot(tot(DAY0, -330, country="usa"))
    assert decoded.offsets[0].offset_minutes == -330
    assert decoded.offsets[0].country == "USA"


# --- EIT present/following -----------------------------------------------------


def test_present_following_round_trip() -> None:
    events = lessons(days=1)
    now = DAY0 + timedelta(minutes=35)  # inside lesson 1 (00:30..00:50)
    sections = eit_present_following(SERVICE, events, now)
    assert len(sections) == 2
    present, following = (decode_eit(s) for s in sections)
    for number, section in enumerate((present, following)):
        assert section.table_id == 0x4E
        assert section.service_id == 101
        assert (section.transport_stream_id, section.original_network_id) == (1, 8400)
        assert section.section_number == number
        assert section.last_section_number == section.segment_last_section_number == 1
        assert section.last_table_id == 0x4E
    assert present.version == following.version
    (event,) = present.events
    assert event.event_id == 1
    assert event.start == DAY0 + timedelta(minutes=30)
    assert event.duration_seconds == 1200
    assert event.running_status == 4  # running
    assert event.name == "一年级 语文 第1课"
    assert event.text == "认识汉字 1"
    assert event.language == "zho"
    assert event.content_nibbles == ((0x5, 0x4),)  # Table 28: educational/school programmes
    assert [e.event_id for e in following.events] == [2]
    assert following.events[0].running_status == 1  # not running


def test_present_following_gaps_and_end() -> None:
    events = lessons(days=1)
    in_gap = eit_present_following(SERVICE, events, DAY0 + timedelta(minutes=25))
    assert decode_eit(in_gap[0]).events == ()
    assert [e.event_id for e in decode_eit(in_gap[1]).events] == [1]
    last = events[-1]
    at_end = eit_present_following(SERVICE, events, last.start + timedelta(seconds=1))
    assert [e.event_id for e in decode_eit(at_end[0]).events] == [last.event_id]
    assert decode_eit(at_end[1]).events == ()
    nothing = eit_present_following(SERVICE, [], DAY0)
    assert [decode_eit(s).events for s in nothing] == [(), ()]


def test_present_following_is_deterministic_and_versioned() -> None:
    events = lessons(days=1)
    now = DAY0 + timedelta(minutes=35)
    first = eit_present_following(SERVICE, events, now)
    assert eit_present_following(SERVICE, list(reversed(events)), now) == first
    # Same p/f content a moment later: same version, same bytes.
    assert eit_present_following(SERVICE, events, now + timedelta(minutes=5)) == first
    # The next event comes on air: new content, new version.
    later = eit_present_following(SERVICE, events, now + timedelta(minutes=30))
    assert decode_eit(later[0]).version != decode_eit(first[0]).version
    # A retitled lesson: new version.
    changed = [e if e.event_id != 1 else replace(e, title="改") for e in events]
    retitled = eit_present_following(SERVICE, changed, now)
    assert decode_eit(retitled[0]).version != decode_eit(first[0]).version
    pinned = eit_present_following(SERVICE, events, now, version=7)
    assert {decode_eit(s).version for s in pinned} == {7}


def test_bad_events_are_refused() -> None:
    with pytest.raises(SiInputError, match="naive"):
        SiEvent(event_id=1, start=datetime(2025, 1, 1), duration_seconds=60, title="x")
    with pytest.raises(SiInputError, match="event_id"):
        SiEvent(event_id=70000, start=DAY0, duration_seconds=60, title="x")
    a = SiEvent(event_id=1, start=DAY0, duration_seconds=600, title="a")
    b = SiEvent(event_id=2, start=DAY0 + timedelta(minutes=5), duration_seconds=600, title="b")
    with pytest.raises(SiInputError, match="overlap"):
        eit_present_following(SERVICE, [a, b], DAY0)
    c = SiEvent(event_id=1, start=DAY0 + timedelta(hours=1), duration_seconds=600, title="c")
    with pytest.raises(SiInputError, match="twice"):
        eit_schedule(SERVICE, [a, c], DAY0)


# --- EIT schedule --------------------------------------------------------------


def check_schedule(sections: list[bytes], now: datetime) -> dict[int, list[int]]:
    """Check the EN 300 468 / TS 101 211 segment rules; return event ids per global segment."""
    day0 = datetime(now.year, now.month, now.day, tzinfo=UTC)
    decoded = [decode_eit(s) for s in sections]
    last_table_id = max(d.table_id for d in decoded)
    by_table: dict[int, list[int]] = {}
    per_segment: dict[int, list[int]] = {}
    for raw, section in zip(sections, decoded, strict=True):
        assert len(raw) <= 4096
        assert section.last_table_id == last_table_id
        local_segment = section.section_number // 8
        assert section.segment_last_section_number // 8 == local_segment
        assert section.section_number <= section.segment_last_section_number
        segment = (section.table_id - 0x50) * 32 + local_segment
        by_table.setdefault(section.table_id, []).append(section.section_number)
        for event in section.events:
            assert event.start is not None
            assert (event.start - day0) // timedelta(hours=3) == segment  # its start's segment
            assert event.running_status == 0  # undefined in schedule (TS 101 211)
        per_segment.setdefault(segment, []).extend(e.event_id for e in section.events)
    for table_id, numbers in by_table.items():
        group = [d for d in decoded if d.table_id == table_id]
        assert numbers == sorted(numbers)
        assert {d.last_section_number for d in group} == {max(numbers)}
        assert len({d.version for d in group}) == 1
        for segment in {n // 8 for n in numbers}:
            in_segment = [d for d in group if d.section_number // 8 == segment]
            expected = list(range(segment * 8, segment * 8 + len(in_segment)))
            assert [d.section_number for d in in_segment] == expected
            assert {d.segment_last_section_number for d in in_segment} == {expected[-1]}
    # Every segment from 00:00 today to the last one is present (an empty section if idle).
    assert sorted(per_segment) == list(range(max(per_segment) + 1))
    return per_segment


def test_schedule_covers_seven_days() -> None:
    now = DAY0 + timedelta(hours=4, minutes=10)
    events = lessons(days=10)
    sections = eit_schedule(SERVICE, events, now)
    per_segment = check_schedule(sections, now)
    # 0x50 = days 0..3, 0x51 = days 4..7: 7 days from 04:10 end in day 7's second segment.
    assert {decode_eit(s).table_id for s in sections} == {0x50, 0x51}
    assert max(per_segment) == 7 * 8 + 1
    sent = [i for ids in per_segment.values() for i in ids]
    expected = [e.event_id for e in events if e.start < now + timedelta(days=7)]
    assert sent == expected  # each once, chronological, this morning's included
    # Lessons start 00:00..06:30 UTC: segments 0-2 of each day; 09:00..24:00 are empty.
    assert per_segment[2] == [12, 13] and per_segment[3] == []
    assert eit_schedule(SERVICE, events, now) == sections


def test_schedule_many_long_events_respect_the_section_limit() -> None:
    # ~1 KiB descriptions: a 3-hour segment of six lessons needs two sections.
    events = lessons(days=2, per_day=14, description="本课学习生字、词语和课文朗读。" * 35)
    now = DAY0 + timedelta(hours=1)
    sections = eit_schedule(SERVICE, events, now, days=1)
    per_segment = check_schedule(sections, now)
    assert any(decode_eit(s).section_number % 8 == 1 for s in sections)
    # Day 0's 14 lessons and day 1's two that start before now + 1 day (01:00 UTC).
    assert sum(len(v) for v in per_segment.values()) == 16
    event = decode_eit(sections[0]).events[0]
    assert event.text.endswith("…") and len(event.text) < 125
    assert event.extended_text == "本课学习生字、词语和课文朗读。" * 35


def test_schedule_overflowing_segment_drops_extended_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    long_text = "详" * 1500  # ~3.3 KiB of extended_event descriptors per event
    events = [
        SiEvent(
            event_id=n,
            start=DAY0 + timedelta(minutes=15 * n),
            duration_seconds=600,
            title=f"第{n}课",
            description=long_text,
        )
        for n in range(12)
    ]
    with caplog.at_level(logging.WARNING, logger="epg.si.tables"):
        sections = eit_schedule(SERVICE, events, DAY0, days=1)
    assert "without extended_event" in caplog.text
    check_schedule(sections, DAY0)
    first = decode_eit(sections[0]).events[0]
    assert first.extended_text == "" and first.text.endswith("…")
    # In p/f one event per section: the full text is there.
    present = decode_eit(eit_present_following(SERVICE, events, DAY0)[0]).events[0]
    assert present.extended_text == long_text


def test_schedule_versions_follow_content() -> None:
    now = DAY0 + timedelta(hours=1)
    events = lessons(days=8)

    def versions(evts: list[SiEvent]) -> dict[int, int]:
        return {d.table_id: d.version for d in map(decode_eit, eit_schedule(SERVICE, evts, now))}

    base = versions(events)
    assert versions(events) == base  # stable
    # Change a lesson on day 5 (table 0x51): only 0x51's version moves.
    changed = [replace(e, title="调课") if e.event_id == 502 else e for e in events]
    after = versions(changed)
    assert after[0x50] == base[0x50]
    assert after[0x51] != base[0x51]


def test_utf8_throughout_and_fallback_in_eit() -> None:
    events = [
        SiEvent(event_id=1, start=DAY0, duration_seconds=900, title="数学 📚", description="𠀀"),
        SiEvent(event_id=2, start=DAY0 + timedelta(minutes=20), duration_seconds=900, title="语文"),
    ]
    for encoding in TextEncoding:
        sections = eit_present_following(SERVICE, events, DAY0, encoding=encoding)
        present, following = (decode_eit(s).events[0] for s in sections)
        assert (present.name, present.text) == ("数学 📚", "𠀀")
        assert following.name == "语文"
    (short,) = [
        p
        for t, p in decode_eit(eit_present_following(SERVICE, events, DAY0)[1])
        .events[0]
        .descriptors
        if t == 0x4D
    ]
    assert short[4] == 0x13  # the plain title stayed GB2312


# --- SDT -----------------------------------------------------------------------


def registry_services() -> Iterator[SiService]:
    registry = load_registry(SAMPLE_CHANNELS_FILE)
    for channel in registry.channels:
        yield SiService.from_channel(channel, registry.network)


def test_sdt_from_the_sample_registry() -> None:
    services = [s for s in registry_services() if s.transport_stream_id == 1]
    (section,) = sdt(services, 1, 8400)
    decoded = decode_sdt(section)
    assert section[0] == 0x42 and len(section) <= 1024
    assert decoded.transport_stream_id == 1 and decoded.original_network_id == 8400
    names = {s.service_id: (s.name, s.provider, s.service_type) for s in decoded.services}
    for service in services:
        assert names[service.service_id] == (service.name, "空中课堂播控中心", 0x19)
    assert all(s.eit_schedule and s.eit_present_following for s in decoded.services)
    assert all(s.running_status == 4 for s in decoded.services)
    assert sdt(list(reversed(services)), 1, 8400) == [section]


def test_sdt_splits_at_1024_bytes() -> None:
    services = [
        SiService(
            service_id=1000 + n,
            transport_stream_id=7,
            original_network_id=8400,
            name=f"空中课堂 专题教育 {n}号频道",
            provider="空中课堂播控中心",
        )
        for n in range(40)
    ]
    sections = sdt(services, 7, 8400, version=3)
    assert len(sections) > 1
    decoded = [decode_sdt(s) for s in sections]
    assert all(len(s) <= 1024 for s in sections)
    assert [d.section_number for d in decoded] == list(range(len(sections)))
    assert {d.last_section_number for d in decoded} == {len(sections) - 1}
    assert {d.version for d in decoded} == {3}
    ids = [s.service_id for d in decoded for s in d.services]
    assert ids == [1000 + n for n in range(40)]
    with pytest.raises(SiInputError, match="belongs to TS"):
        sdt(services, 8, 8400)


# --- speed ---------------------------------------------------------------------


def test_playout_rate_is_cheap() -> None:
    """13 channels' EIT p/f + packets every ~2 s must cost a small fraction of that."""
    events = lessons(days=1, description="本课学习生字、词语和课文朗读。" * 10)
    services = list(registry_services())
    packetizers = {s.service_id: SectionPacketizer(0x12) for s in services}
    began = time.perf_counter()
    for _ in range(10):
        for service in services:
            sections = eit_present_following(service, events, DAY0 + timedelta(minutes=35))
            packetizers[service.service_id].packetize(sections)
    per_round = (time.perf_counter() - began) / 10
    assert per_round < 0.2  # measured ~3 ms; generous for slow CI machines
