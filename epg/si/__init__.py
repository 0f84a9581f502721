"""DVB SI encoder (ETSI EN 300 468): EIT p/f and schedule, SDT, TDT, TOT.

The API is pure functions of their arguments: "now" is always passed in and
the same input gives the same bytes, so playout can regenerate EIT p/f every
couple of seconds and stay byte-deterministic across restarts::

    service = SiService.from_channel(channel, registry.network)
    sections = eit_present_following(service, events, now)
    packets = SectionPacketizer(EIT_PID).packetize(sections)   # keep one per PID

Text is GB2312 (selector 0x13) unless a string needs UTF-8 (0x15); see
:mod:`epg.si.text`. :mod:`epg.si.decode` reads all of it back, for tests and
for the compliance TS monitor. Packets, PIDs, CRC and section reassembly are the
transport stream's (:mod:`mpegts`); the names re-exported here keep callers of
``epg.si`` working.
"""

from epg.si.decode import (
    DecodedEvent,
    DecodedService,
    EitSection,
    LocalTimeOffset,
    SdtSection,
    Section,
    TotSection,
    decode_eit,
    decode_sdt,
    decode_tdt,
    decode_tot,
    parse_section,
)
from epg.si.descriptors import EDUCATIONAL_CONTENT
from epg.si.errors import SiDecodeError, SiError, SiInputError
from epg.si.events import SiEvent
from epg.si.sections import content_version
from epg.si.services import RunningStatus, ServiceType, SiService, service_type_for
from epg.si.tables import (
    ZoneTot,
    eit_present_following,
    eit_schedule,
    present_following,
    sdt,
    tdt,
    tot,
)
from epg.si.text import TextEncoding, decode_text, encode_text
from epg.si.time_codes import (
    decode_duration,
    decode_utc_time,
    encode_duration,
    encode_utc_time,
)
from mpegts import (
    EIT_PID,
    SDT_PID,
    TDT_PID,
    SectionPacketizer,
    SectionReassembler,
    crc32_mpeg2,
)

__all__ = [
    "EDUCATIONAL_CONTENT",
    "EIT_PID",
    "SDT_PID",
    "TDT_PID",
    "DecodedEvent",
    "DecodedService",
    "EitSection",
    "LocalTimeOffset",
    "RunningStatus",
    "SdtSection",
    "Section",
    "SectionPacketizer",
    "SectionReassembler",
    "ServiceType",
    "SiDecodeError",
    "SiError",
    "SiEvent",
    "SiInputError",
    "SiService",
    "TextEncoding",
    "TotSection",
    "ZoneTot",
    "content_version",
    "crc32_mpeg2",
    "decode_duration",
    "decode_eit",
    "decode_sdt",
    "decode_tdt",
    "decode_text",
    "decode_tot",
    "decode_utc_time",
    "eit_present_following",
    "eit_schedule",
    "encode_duration",
    "encode_text",
    "encode_utc_time",
    "parse_section",
    "present_following",
    "sdt",
    "service_type_for",
    "tdt",
    "tot",
]
