"""One persistent CBR mpegts muxer per channel (PyAV), and what happens to its bytes.

FFmpeg's mpegts muxer writes into an in-memory sink at the channel's mux rate,
padding with null packets. Its output is then post-processed with numpy, packet
by packet but without a Python loop per packet:

* FFmpeg's SDT (no EIT flags, no GB2312 name) is turned into null packets and
  ours (epg.si) is sent instead;
* each PMT gets the SCTE-35 PID and CUEI registration (playout.cues);
* null packets are replaced by due SI and cue packets (playout.si_inject);
* the bytes are cut into TsChunks at IDR starts for the pacer and HLS;
* as-run marks (``mark``) ride on the first chunk at or after their frame.

Output is held back by ``hold_bytes`` (a few seconds of stream) before the null
slots are filled and the bytes leave: an SCTE-35 cue for a splice the engine
only reaches now can still go into the stream its pre-roll (4 s) ahead of the
splice. Holding costs memory, not latency: the pacer sends by byte offset.

Timing: FFmpeg, given ``max_delay`` D (and no copyts), adds 2·D to every
timestamp and starts the PCR at the first DTS + D, so DTS leads PCR by D: the
T-STD buffer is filled D ahead. Callers pass wire timestamps ("W"), this
module subtracts the shift. Timestamps are unbounded ints; FFmpeg writes them
modulo 2^33, so the 26.5 h wrap needs nothing special.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from collections import deque
from fractions import Fraction
from itertools import pairwise
from typing import Any

import av
import av.error
import numpy as np
import numpy.typing as npt

from epg.rundown import RundownService
from mpegts import (
    NULL_PACKET,
    NULL_PID,
    PACKET_SIZE,
    SDT_PID,
    SYNC_BYTE,
    packet_array,
    pcr_base,
    pcr_flag_array,
    pid_array,
    random_access_array,
)
from playout.cues import patch_pmt
from playout.si_inject import SiScheduler
from playout.slate import Slate
from playout.stream import AsRunMark, PlayoutError, TsChunk

logger = logging.getLogger(__name__)

MUX_DELAY_TICKS = 45_000  # D = 0.5 s of T-STD lead (the SD house VBV is 0.46 s)
MUX_SHIFT_TICKS = 2 * MUX_DELAY_TICKS  # what FFmpeg adds to every timestamp
PMT_PID = 0x1000
VIDEO_PID = 0x0100
AUDIO_PID = 0x0101
TB_90K = Fraction(1, 90_000)


class _Sink(io.RawIOBase):
    """Where FFmpeg's avio writes: an append-only byte buffer the muxer drains."""

    def __init__(self) -> None:
        super().__init__()
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.buffer += data
        return len(data)


class TsMuxer:
    """Mux rebased house packets; drain CBR TsChunks with SI in the null slots."""

    def __init__(
        self,
        *,
        service: RundownService,
        slate: Slate,
        scheduler: SiScheduler,
        hold_bytes: int = 0,
    ) -> None:
        self.mux_rate = service.mux_rate
        self.hold_bytes = hold_bytes - hold_bytes % PACKET_SIZE
        # Processed packets not yet handed out (SI slots still null), in drain-sized pieces
        # so releasing the front never moves the rest of the hold.
        self._held: deque[bytearray] = deque()
        self._held_size = 0
        self._scheduler = scheduler
        self._sink = _Sink()
        self._out = av.open(
            self._sink,
            mode="w",
            format="mpegts",
            options={
                "muxrate": str(service.mux_rate),
                "pcr_period": "20",
                "pat_period": "0.08",
                "sdt_period": "10",
                "max_delay": str(MUX_DELAY_TICKS * 100 // 9),  # microseconds
                "mpegts_copyts": "0",
                "avoid_negative_ts": "disabled",
                "mpegts_service_id": str(service.service_id),
                "mpegts_original_network_id": str(service.original_network_id),
                "mpegts_transport_stream_id": str(service.transport_stream_id),
                "mpegts_pmt_start_pid": str(PMT_PID),
                "mpegts_start_pid": str(VIDEO_PID),
                "mpegts_flags": "system_b",
                "tables_version": "0",
                "flush_packets": "1",
            },
        )
        self._out.metadata["service_name"] = service.name_zh
        self._out.metadata["service_provider"] = service.provider_zh
        with av.open(io.BytesIO(slate.template_ts)) as template:
            self.video = self._out.add_stream_from_template(template.streams.video[0])
            self.audio = self._out.add_stream_from_template(template.streams.audio[0])
        self.video.time_base = TB_90K
        self.audio.time_base = TB_90K
        self._tail = b""
        self.byte_offset = 0  # bytes handed out so far
        self._pcr_anchor: tuple[int, int] | None = None  # (byte offset, PCR base 90 kHz)
        self._idr_frames: deque[int] = deque()
        self._marks: deque[AsRunMark] = deque()  # waiting for the chunk of their frame
        self._last_frame = 0
        self._pmt_cache: dict[bytes, bytes] = {}
        self._last_dts = {"video": -(1 << 62), "audio": -(1 << 62)}
        self._closed = False

    # ---------------------------------------------------------------- input

    def mux(
        self, packet: av.Packet[Any], *, pts: int, dts: int, video: bool, frame: int = 0
    ) -> None:
        """Mux one packet at wire timestamps (90 kHz, unwrapped)."""
        kind = "video" if video else "audio"
        if dts <= self._last_dts[kind]:
            raise PlayoutError(
                f"{kind} DTS {dts} does not advance past {self._last_dts[kind]}: a timeline bug"
            )
        self._last_dts[kind] = dts
        packet.stream = self.video if video else self.audio
        packet.time_base = TB_90K
        packet.pts = pts - MUX_SHIFT_TICKS
        packet.dts = dts - MUX_SHIFT_TICKS
        if video and packet.is_keyframe:
            self._idr_frames.append(frame)
        self._out.mux(packet)

    def mark(self, mark: AsRunMark) -> None:
        """Attach an as-run fact to the first chunk starting at or after ``mark.frame``.

        Every event starts on an IDR (clips open on one, slate is all intra), so
        that chunk begins with the frame itself: the fact holds once it is sent.
        """
        self._marks.append(mark)

    def close(self) -> list[TsChunk]:
        """Flush FFmpeg's interleaving queue and hand out the last bytes, held ones included.

        Marks for frames never muxed (the end of the run) go on the last chunk.
        """
        self._closed = True
        self._out.close()
        self._take()
        chunks = self._release(self._held_size)
        if self._marks:
            rest = tuple(self._marks)
            self._marks.clear()
            if chunks:
                chunks[-1] = dataclasses.replace(chunks[-1], asrun=chunks[-1].asrun + rest)
            else:
                chunks.append(
                    TsChunk(
                        data=b"",
                        byte_offset=self.byte_offset,
                        frame=self._last_frame,
                        idr=False,
                        pcr_90k=None,
                        asrun=rest,
                    )
                )
        return chunks

    def discard(self) -> None:
        """Free FFmpeg's muxer and drop what is held (a start thrown away); once only."""
        if self._closed:
            return
        self._closed = True
        try:
            self._out.close()
        except av.error.FFmpegError as exc:  # nothing of it airs: say so and move on
            logger.debug("discarded muxer did not close cleanly: %s", exc)
        self._held.clear()
        self._held_size = 0

    # --------------------------------------------------------------- output

    def drain(self) -> list[TsChunk]:
        """What FFmpeg wrote, processed and cut at IDRs, except the last ``hold_bytes``."""
        self._take()
        return self._release(self._held_size - self.hold_bytes)

    def _take(self) -> None:
        """Move FFmpeg's new whole packets into the hold, with our SDT/PMT fixes applied."""
        buffer = self._sink.buffer
        if self._tail:
            buffer[0:0] = self._tail
        whole = len(buffer) - len(buffer) % PACKET_SIZE
        self._tail = bytes(buffer[whole:])
        data = buffer[:whole]
        buffer.clear()
        if whole == 0:
            return
        packets = packet_array(data)
        if not (packets[:, 0] == SYNC_BYTE).all():
            raise PlayoutError("the muxer wrote a packet without a sync byte: FFmpeg bug")
        pid = pid_array(packets)
        # FFmpeg's SDT lacks the EIT flags: blank it; ours goes in with the SI.
        for index in np.flatnonzero(pid == SDT_PID):
            data[index * PACKET_SIZE : (index + 1) * PACKET_SIZE] = NULL_PACKET
        for index in np.flatnonzero(pid == PMT_PID):
            self._patch_pmt(data, int(index))
        self._held.append(data)
        self._held_size += whole

    def _release(self, size: int) -> list[TsChunk]:
        """Hand out the first ``size`` held bytes: SI into null slots, cut at IDRs."""
        whole = max(0, size - size % PACKET_SIZE)
        if whole == 0:
            return []
        pieces: list[bytearray] = []
        need = whole
        while need:
            piece = self._held[0]
            if len(piece) <= need:
                pieces.append(self._held.popleft())
                need -= len(piece)
            else:  # pieces hold whole packets and ``need`` is whole packets: a clean split
                pieces.append(piece[:need])
                self._held[0] = piece[need:]
                need = 0
        self._held_size -= whole
        data = pieces[0] if len(pieces) == 1 else bytearray().join(pieces)
        packets = packet_array(data)
        pid = pid_array(packets)
        base = self.byte_offset
        pcr_mask = (pid == VIDEO_PID) & pcr_flag_array(packets)
        if self._pcr_anchor is None:
            first = np.flatnonzero(pcr_mask)
            if first.size:
                at = int(first[0]) * PACKET_SIZE
                anchor = pcr_base(data, at)
                if anchor is not None:  # always: pcr_mask found a PCR there
                    self._pcr_anchor = (base + at, anchor)
        if self._pcr_anchor is not None:
            self._fill_slots(data, np.flatnonzero(pid == NULL_PID), base)
        idr = np.flatnonzero((pid == VIDEO_PID) & random_access_array(packets))
        cuts = [0, *(int(i) for i in idr if i > 0), len(pid)]
        chunks: list[TsChunk] = []
        pcr_indices = np.flatnonzero(pcr_mask)
        idr_set = set(idr.tolist())
        for start, stop in pairwise(cuts):
            if stop <= start:
                continue
            is_idr = start in idr_set
            frame = self._last_frame
            if is_idr and self._idr_frames:
                frame = self._idr_frames.popleft()
            self._last_frame = frame
            inside = pcr_indices[(pcr_indices >= start) & (pcr_indices < stop)]
            marks: tuple[AsRunMark, ...] = ()
            if self._marks and is_idr and self._marks[0].frame <= frame:
                taken = []
                while self._marks and self._marks[0].frame <= frame:
                    taken.append(self._marks.popleft())
                marks = tuple(taken)
            chunks.append(
                TsChunk(
                    data=bytes(data[start * PACKET_SIZE : stop * PACKET_SIZE]),
                    byte_offset=base + start * PACKET_SIZE,
                    frame=frame,
                    idr=is_idr,
                    pcr_90k=pcr_base(data, int(inside[0]) * PACKET_SIZE) if inside.size else None,
                    asrun=marks,
                )
            )
        self.byte_offset = base + whole
        return chunks

    def stream_time(self, byte_offset: int) -> int:
        """The PCR (90 kHz, unwrapped) at a byte offset of the output."""
        if self._pcr_anchor is None:
            raise PlayoutError("no PCR written yet")
        anchor_bytes, anchor_pcr = self._pcr_anchor
        return anchor_pcr + (byte_offset - anchor_bytes) * 8 * 90_000 // self.mux_rate

    def _patch_pmt(self, data: bytearray, index: int) -> None:
        start = index * PACKET_SIZE
        packet = bytes(data[start : start + PACKET_SIZE])
        if not packet[1] & 0x40 or packet[3] & 0x20:
            return  # not a section start in a plain payload: FFmpeg never does this
        pointer = packet[4]
        section_start = 5 + pointer
        length = ((packet[section_start + 1] & 0x0F) << 8) | packet[section_start + 2]
        section = packet[section_start : section_start + 3 + length]
        patched = self._pmt_cache.get(section)
        if patched is None:
            patched = patch_pmt(section)
            if len(patched) > PACKET_SIZE - 5:
                raise PlayoutError("the PMT with the SCTE-35 PID no longer fits one packet")
            self._pmt_cache[section] = patched
        payload = bytes((0,)) + patched
        data[start + 4 : start + PACKET_SIZE] = payload + b"\xff" * (PACKET_SIZE - 4 - len(payload))

    def _fill_slots(self, data: bytearray, slots: npt.NDArray[np.intp], base: int) -> None:
        """Put due SI/cue packets into null slots, in order, never before they are due."""
        if slots.size == 0:
            return
        anchor_bytes, anchor_pcr = self._pcr_anchor or (0, 0)
        t0 = anchor_pcr + (base - anchor_bytes) * 8 * 90_000 // self.mux_rate
        times = t0 + (slots.astype(np.int64) * (PACKET_SIZE * 8 * 90_000)) // self.mux_rate
        scheduler = self._scheduler
        position = 0
        count = len(slots)
        while position < count:
            if not scheduler.pending:
                due = scheduler.next_due()
                position = int(np.searchsorted(times, due, side="left"))
                if position >= count:
                    break
            scheduler.advance(int(times[position]))
            packet = scheduler.pop()
            if packet is None:
                position += 1
                continue
            start = int(slots[position]) * PACKET_SIZE
            data[start : start + PACKET_SIZE] = packet
            position += 1
