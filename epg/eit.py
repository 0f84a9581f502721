"""The DVB SI a channel carries at an instant, built on epg.si from the schedule.

`si_events` turns a rundown's 7-day EPG horizon into EIT events (what playout
uses on air, without the database); `si_transport_stream` writes SDT (PID
0x11), EIT p/f + schedule (0x12) and TDT/TOT (0x14) as TS packets, for
`skyclass epg si` and for inspecting the SI with standard tools.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from channels import Channel, ChannelRegistry
from epg.compiler import EPG_HORIZON_DAYS
from epg.rundown import EpgEntry
from epg.si import (
    EIT_PID,
    SDT_PID,
    TDT_PID,
    SectionPacketizer,
    SiEvent,
    SiService,
    TextEncoding,
    ZoneTot,
    eit_present_following,
    eit_schedule,
    sdt,
    tdt,
)


def si_events(horizon: Iterable[EpgEntry]) -> list[SiEvent]:
    """EIT events for the lessons and reruns of a rundown's EPG horizon."""
    return [
        SiEvent(
            event_id=entry.eit_event_id,
            start=entry.start,
            duration_seconds=max(1, entry.duration_seconds),
            title=entry.si.title,
            description=entry.si.description,
            content_nibbles=entry.si.content_nibbles,
        )
        for entry in horizon
    ]


def si_transport_stream(
    channel: Channel,
    registry: ChannelRegistry,
    events: Iterable[SiEvent],
    at: datetime,
    *,
    zone: ZoneInfo,
    encoding: TextEncoding = TextEncoding.GB2312,
) -> bytes:
    """The SI valid at `at` for one channel, as 188-byte TS packets (TOT in ``zone``)."""
    service = SiService.from_channel(channel, registry.network)
    neighbours = [
        SiService.from_channel(c, registry.network)
        for c in registry
        if (c.transport_stream_id, c.original_network_id)
        == (channel.transport_stream_id, channel.original_network_id)
    ]
    listed = list(events)
    sdt_sections = sdt(
        neighbours,
        channel.transport_stream_id,
        channel.original_network_id,
        encoding=encoding,
    )
    eit_sections = eit_present_following(service, listed, at, encoding=encoding)
    eit_sections += eit_schedule(service, listed, at, days=EPG_HORIZON_DAYS, encoding=encoding)
    time_sections = [tdt(at), ZoneTot(zone)(at)]
    packets = SectionPacketizer(SDT_PID).packetize(sdt_sections)
    packets += SectionPacketizer(EIT_PID).packetize(eit_sections)
    packets += SectionPacketizer(TDT_PID).packetize(time_sections, pack=False)
    return b"".join(packets)
