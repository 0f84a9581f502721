"""SCTE-35 cues as they were actually broadcast, read back from the off-air recording.

The cue audit must not trust playout's word, so cues come from the recorded bytes:
the TS layer (`compliance.timemap`, on `mpegts`) finds the PIDs the PMT declares as
SCTE-35 (stream_type 0x86) and reassembles their CRC-checked sections, and threefive,
a maintained SCTE-35 library independent of our encoder, decodes each one. A cue's
splice time is its ``pts_time`` (plus ``pts_adjustment``) placed on the wall clock by
the stream's PCR and the arrival marks, or its arrival for a splice_immediate.
splice_null (playout's heartbeat) and bandwidth_reservation carry no splice and are
skipped.
"""

from __future__ import annotations

import io
import logging
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import threefive

from compliance.timemap import RecordingTimes, SectionAt
from core.timecode import PTS_MODULUS
from mpegts import SCTE35_STREAM_TYPE

logger = logging.getLogger(__name__)

SPLICE_NULL = 0x00
BANDWIDTH_RESERVATION = 0x07
_NO_SPLICE = frozenset({SPLICE_NULL, BANDWIDTH_RESERVATION})


@dataclass(frozen=True, kw_only=True)
class RecordedCue:
    """One splice cue found in a recording, and when it took effect on air."""

    path: Path
    byte_offset: int
    pid: int
    arrival: datetime | None  # aware UTC: when the cue's packet was received
    splice_at: datetime | None  # aware UTC: when the splice takes effect (None: unplaceable)
    command: str  # threefive's name, e.g. "Splice Insert", "Time Signal"
    command_type: int
    splice_event_id: int | None
    out_of_network: bool | None
    immediate: bool
    cancel: bool
    pts_ticks: int | None  # 90 kHz splice time after pts_adjustment, modulo 2^33
    section_hex: str

    def as_json(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "byte_offset": self.byte_offset,
            "pid": self.pid,
            "arrival": self.arrival.isoformat() if self.arrival else None,
            "splice_at": self.splice_at.isoformat() if self.splice_at else None,
            "command": self.command,
            "command_type": self.command_type,
            "splice_event_id": self.splice_event_id,
            "out_of_network": self.out_of_network,
            "immediate": self.immediate,
            "cancel": self.cancel,
            "pts_ticks": self.pts_ticks,
            "section_hex": self.section_hex,
        }


def decode_cue(section: bytes) -> Any | None:
    """threefive's decoding of a splice_info_section (None if it is not one)."""
    try:
        cue = threefive.Cue(section)
        with redirect_stdout(io.StringIO()):  # threefive reports on stdout
            cue.decode()
    except Exception as exc:  # threefive raises bare exceptions on garbage
        logger.warning("undecodable SCTE-35 section (%s): %s", exc, section.hex())
        return None
    return cue


def recorded_cues(times: RecordingTimes) -> list[RecordedCue]:
    """Every splice cue in a scanned recording (scan it with SCTE-35 sections asked for)."""
    cues: list[RecordedCue] = []
    for found in times.sections:
        cue = _placed(times, found)
        if cue is not None:
            cues.append(cue)
    return cues


def scan_cues(path: Path) -> tuple[RecordingTimes, list[RecordedCue]]:
    """Scan a recording for its clock and its cues in one pass."""
    times = RecordingTimes.scan(path, section_stream_types=(SCTE35_STREAM_TYPE,))
    return times, recorded_cues(times)


def _placed(times: RecordingTimes, found: SectionAt) -> RecordedCue | None:
    if not found.section or found.section[0] != 0xFC:
        return None
    cue = decode_cue(found.section)
    if cue is None or cue.command is None:
        return None
    command = cue.command
    command_type = int(getattr(command, "command_type", -1))
    if command_type in _NO_SPLICE:
        return None
    cancel = bool(getattr(command, "splice_event_cancel_indicator", False))
    immediate = bool(getattr(command, "splice_immediate_flag", False))
    pts_time = getattr(command, "pts_time", None)
    adjustment = float(getattr(cue.info_section, "pts_adjustment", 0.0) or 0.0)
    ticks = None
    if pts_time is not None and not immediate:
        ticks = round((float(pts_time) + adjustment) * 90_000) % PTS_MODULUS
    arrival = times.arrival(found.offset)
    splice_at = arrival if immediate else None
    if ticks is not None:
        unix = times.on_air_unix(ticks, found.offset)
        splice_at = datetime.fromtimestamp(unix, UTC) if unix is not None else None
    event_id = getattr(command, "splice_event_id", None)
    out = getattr(command, "out_of_network_indicator", None)
    return RecordedCue(
        path=times.path,
        byte_offset=found.offset,
        pid=found.pid,
        arrival=arrival,
        splice_at=splice_at,
        command=str(getattr(command, "name", "")),
        command_type=command_type,
        splice_event_id=int(event_id) if event_id is not None else None,
        out_of_network=bool(out) if out is not None else None,
        immediate=immediate,
        cancel=cancel,
        pts_ticks=ticks,
        section_hex=found.section.hex(),
    )
