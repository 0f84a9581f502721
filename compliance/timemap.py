"""When was a recorded byte on air? Arrival marks plus the stream's own clock.

The recorder notes, once a second and on both sides of every gap, which byte offset
arrived at which UTC instant (``recording.read_marks``). That places any byte in
time. Presentation needs one step more: a decoder's clock (STC) equals a PCR when the
packet carrying it arrives, and a picture or audio frame is presented when the STC
reaches its PTS. So a PTS seen near byte ``b`` goes on air at

    arrival(PCR packet nearest b) + (PTS * 300 - PCR) / 27 MHz

taken modulo 2^33 (the wrap), from the PCR nearest in the file, so a discontinuity (a
playout restart) only ever affects the few packets between it and the next PCR.

One pass over a file (`RecordingTimes.scan`) collects the PCRs of the clock PID and,
for whoever asks, the complete CRC-checked sections on PIDs that the PMT declares with
given stream types (SCTE-35 cues: 0x86). It is numpy over packet batches; only
PAT/PMT and the requested PIDs (a few packets a second) go through Python.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from compliance.errors import ComplianceError
from compliance.recording import read_marks
from mpegts import (
    PACKET_SIZE,
    PAT_PID,
    PCR_HZ,
    PCR_MODULUS,
    SYNC_BYTE,
    SectionReassembler,
    crc32_mpeg2,
    packet_array,
    parse_pat,
    parse_pes_header,
    parse_pmt,
    pcr_array,
    pcr_flag_array,
    pes_header_size,
    pid_array,
    section_has_crc,
    signed_delta,
)

logger = logging.getLogger(__name__)

CHUNK_PACKETS = 1 << 15  # 6 MB per numpy pass
MAX_PTS_DISTANCE_S = 10.0  # a PTS this far from its nearest PCR is not of that stream

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, kw_only=True)
class SectionAt:
    """A complete, CRC-valid section and the byte offset of the packet that completed it."""

    pid: int
    offset: int
    section: bytes


def aligned_chunks(path: Path, chunk_packets: int = CHUNK_PACKETS) -> Iterator[tuple[int, bytes]]:
    """(file offset, bytes of whole packets) through a TS file, re-syncing on damage."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ComplianceError(
            f"cannot read recording {path}: {exc.strerror or exc}; check the recordings folder"
        ) from exc
    with handle:
        pending = b""
        at = 0  # file offset of pending[0]
        eof = False
        while True:
            if not eof:
                block = handle.read(chunk_packets * PACKET_SIZE)
                eof = not block
                pending += block
            if len(pending) < PACKET_SIZE:
                if eof:
                    return
                continue
            start = _sync_start(pending)
            if start is None:  # no packet start here: keep a packet's worth for the next read
                if eof:
                    return
                drop = len(pending) - PACKET_SIZE
                pending, at = pending[drop:], at + drop
                continue
            whole = (len(pending) - start) // PACKET_SIZE * PACKET_SIZE
            body = pending[start : start + whole]
            bad = np.flatnonzero(packet_array(body)[:, 0] != SYNC_BYTE)
            consumed = start + whole
            if len(bad):  # sync lost inside: hand over the good run, hunt again after it
                body = body[: int(bad[0]) * PACKET_SIZE]
                consumed = start + len(body) + 1
            if body:
                yield at + start, body
            pending, at = pending[consumed:], at + consumed


def _sync_start(data: bytes) -> int | None:
    """First offset where two packets in a row (or the last one) start with 0x47."""
    at = data.find(SYNC_BYTE)
    while at != -1 and at + PACKET_SIZE <= len(data):
        after = at + PACKET_SIZE
        if after >= len(data) or data[after] == SYNC_BYTE:
            return at
        at = data.find(SYNC_BYTE, at + 1)
    return None


@dataclass(frozen=True, kw_only=True)
class AudioPes:
    """One PES packet of the programme audio: where it started, its PTS, its payload."""

    offset: int  # byte offset of the packet that started it
    pts: int | None  # 90 kHz
    payload: bytes  # the elementary stream bytes (PES header removed)


#: PMT stream types of audio and the FFmpeg decoder for each.
AUDIO_CODECS = {0x03: "mp2", 0x04: "mp2", 0x0F: "aac", 0x81: "ac3", 0x87: "eac3"}


@dataclass
class _PsiState:
    pat: SectionReassembler = field(default_factory=lambda: SectionReassembler(PAT_PID))
    pmts: dict[int, SectionReassembler] = field(default_factory=dict)
    wanted: dict[int, SectionReassembler] = field(default_factory=dict)
    pcr_pid: int | None = None
    audio_pid: int | None = None
    audio_codec: str | None = None


class _PesCollector:
    """Reassembles the PES packets of one PID from whole TS packets."""

    def __init__(self) -> None:
        self.done: list[AudioPes] = []
        self._parts: list[bytes] = []
        self._offset = 0
        self._last_cc: int | None = None

    def feed(self, body: bytes, rows: list[int], base: int) -> None:
        for row in rows:
            at = row * PACKET_SIZE
            head = body[at + 1 : at + 4]
            if head[0] & 0x80 or not head[2] & 0x10:  # transport error, or no payload
                continue
            cc = head[2] & 0x0F
            if cc == self._last_cc:
                continue  # an allowed duplicate
            self._last_cc = cc
            start = at + (5 + body[at + 4] if head[2] & 0x20 else 4)
            if head[0] & 0x40:  # payload_unit_start_indicator: a new PES
                self.finish()
                self._offset = base + at
            elif not self._parts:
                continue  # the tail of a PES whose start we did not see
            self._parts.append(body[start : at + PACKET_SIZE])

    def finish(self) -> None:
        if not self._parts:
            return
        data = b"".join(self._parts)
        self._parts = []
        header = parse_pes_header(data)
        size = pes_header_size(data)
        if header is None or size is None:
            return
        self.done.append(AudioPes(offset=self._offset, pts=header.pts, payload=data[size:]))


class RecordingTimes:
    """Arrival and presentation times of one recorded file; see the module docstring."""

    def __init__(
        self,
        path: Path,
        *,
        marks: F64,
        pcr_offsets: I64,
        pcr_values: I64,
        sections: list[SectionAt],
        audio: list[AudioPes] | None = None,
        audio_codec: str | None = None,
    ) -> None:
        self.path = path
        self.marks = marks
        self.pcr_offsets = pcr_offsets
        self.pcr_values = pcr_values
        self.sections = sections
        self.audio = audio  # None: not collected (then decode the file with PyAV)
        self.audio_codec = audio_codec
        self.pcr_arrivals: F64 = self.arrival_of(pcr_offsets)

    @classmethod
    def scan(
        cls, path: Path, *, section_stream_types: Iterable[int] = (), audio: bool = False
    ) -> RecordingTimes:
        """Read ``path`` once: PCRs of the clock PID, the sections asked for, and with
        ``audio`` the PES packets of the first audio stream (for the loudness audit, which
        then decodes 0.2 MB/s of audio instead of demuxing 1.25 MB/s of transport stream)."""
        wanted_types = frozenset(section_stream_types)
        state = _PsiState()
        offsets: list[I64] = []
        values: list[I64] = []
        sections: list[SectionAt] = []
        pes = _PesCollector() if audio else None
        for base, body in aligned_chunks(path):
            arr = packet_array(body)
            pids = pid_array(arr)
            # PAT, then the PMTs it names, then the PIDs they declare: each stage may
            # learn PIDs from this very chunk (each PID's packets stay in order).
            for stage in range(3):
                stage_pids = ([PAT_PID], list(state.pmts), list(state.wanted))[stage]
                if not stage_pids:
                    continue
                for row in np.flatnonzero(np.isin(pids, stage_pids)).tolist():
                    packet = body[row * PACKET_SIZE : (row + 1) * PACKET_SIZE]
                    offset = base + row * PACKET_SIZE
                    _psi_packet(state, int(pids[row]), packet, offset, wanted_types, sections)
            if pes is not None and state.audio_pid is not None:
                pes.feed(body, np.flatnonzero(pids == state.audio_pid).tolist(), base)
            flags = pcr_flag_array(arr) & ((arr[:, 1] & 0x80) == 0)
            rows = np.flatnonzero(flags)
            if not len(rows):
                continue
            if state.pcr_pid is None:
                state.pcr_pid = int(pids[rows[0]])
            rows = rows[pids[rows] == state.pcr_pid]
            offsets.append(base + rows.astype(np.int64) * PACKET_SIZE)
            values.append(pcr_array(arr[rows]))
        if pes is not None:
            pes.finish()
        marks = read_marks(path)
        return cls(
            path,
            marks=marks,
            pcr_offsets=np.concatenate(offsets) if offsets else np.zeros(0, np.int64),
            pcr_values=np.concatenate(values) if values else np.zeros(0, np.int64),
            sections=sections,
            audio=pes.done if pes is not None else None,
            audio_codec=state.audio_codec,
        )

    @classmethod
    def arrivals_only(cls, path: Path) -> RecordingTimes:
        """Arrival times alone (from the marks, without reading the file)."""
        empty = np.zeros(0, np.int64)
        return cls(path, marks=read_marks(path), pcr_offsets=empty, pcr_values=empty, sections=[])

    # ------------------------------------------------------------------ arrival

    def arrival_of(self, offsets: I64 | npt.ArrayLike) -> F64:
        """Unix arrival time of each byte offset (linear between marks; NaN with no marks)."""
        points = np.asarray(offsets, dtype=np.float64)
        if not len(self.marks):
            return np.full(points.shape, np.nan)
        return np.interp(points, self.marks[:, 0], self.marks[:, 1])

    def arrival(self, offset: int) -> datetime | None:
        t = float(self.arrival_of(np.array([offset]))[0])
        return None if np.isnan(t) else datetime.fromtimestamp(t, UTC)

    # ------------------------------------------------------------- presentation

    def on_air_unix(self, pts_90k: int, offset: int) -> float | None:
        """Unix time at which a PTS carried near byte ``offset`` is presented."""
        if not len(self.pcr_offsets):
            return None
        k = int(np.searchsorted(self.pcr_offsets, offset))
        candidates = [i for i in (k - 1, k) if 0 <= i < len(self.pcr_offsets)]
        nearest = min(candidates, key=lambda i: abs(int(self.pcr_offsets[i]) - offset))
        pcr = int(self.pcr_values[nearest])
        delta = signed_delta((pts_90k * 300) % PCR_MODULUS, pcr, PCR_MODULUS) / PCR_HZ
        arrival = float(self.pcr_arrivals[nearest])
        if abs(delta) > MAX_PTS_DISTANCE_S or np.isnan(arrival):
            return None
        return arrival + delta

    def on_air_many(self, pts_90k: I64, offsets: I64) -> F64:
        """`on_air_unix` for arrays (NaN where a PTS cannot be placed)."""
        out = np.full(len(pts_90k), np.nan)
        if not len(self.pcr_offsets) or not len(pts_90k):
            return out
        k = np.searchsorted(self.pcr_offsets, offsets)
        before = np.clip(k - 1, 0, len(self.pcr_offsets) - 1)
        after = np.clip(k, 0, len(self.pcr_offsets) - 1)
        use_after = np.abs(self.pcr_offsets[after] - offsets) < np.abs(
            self.pcr_offsets[before] - offsets
        )
        nearest = np.where(use_after, after, before)
        pcr = self.pcr_values[nearest]
        half = PCR_MODULUS // 2
        delta = ((pts_90k * 300 % PCR_MODULUS) - pcr + half) % PCR_MODULUS - half
        seconds = delta / PCR_HZ
        good = np.abs(seconds) <= MAX_PTS_DISTANCE_S
        out[good] = self.pcr_arrivals[nearest][good] + seconds[good]
        return out


def _psi_packet(
    state: _PsiState,
    pid: int,
    packet: bytes,
    offset: int,
    wanted_types: frozenset[int],
    sections: list[SectionAt],
) -> None:
    """Follow the PAT and PMTs (to learn the wanted PIDs) and keep the wanted sections."""
    if pid in state.wanted:
        for section in state.wanted[pid].feed(packet):
            if _crc_ok(section):
                sections.append(SectionAt(pid=pid, offset=offset, section=section))
        return
    if pid == PAT_PID:
        for section in state.pat.feed(packet):
            if section[0] == 0x00 and _crc_ok(section):
                for number, pmt_pid in parse_pat(section).items():
                    if number != 0:
                        state.pmts.setdefault(pmt_pid, SectionReassembler(pmt_pid))
        return
    reassembler = state.pmts.get(pid)
    if reassembler is None:
        return
    for section in reassembler.feed(packet):
        if section[0] != 0x02 or not _crc_ok(section):
            continue
        program = parse_pmt(section, pid)
        if program is None:
            continue
        if state.pcr_pid is None and program.pcr_pid is not None:
            state.pcr_pid = program.pcr_pid
        for stream in program.streams:
            if stream.stream_type in wanted_types and stream.pid not in state.wanted:
                state.wanted[stream.pid] = SectionReassembler(stream.pid)
            if state.audio_pid is None and stream.stream_type in AUDIO_CODECS:
                state.audio_pid = stream.pid
                state.audio_codec = AUDIO_CODECS[stream.stream_type]


def _crc_ok(section: bytes) -> bool:
    return not section_has_crc(section) or crc32_mpeg2(section) == 0
