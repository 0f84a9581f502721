"""Sections into 188-byte TS packets on one PID (ISO/IEC 13818-1 2.4.4).

A packet in which a section starts has payload_unit_start_indicator set and a
pointer_field giving the offset of that first new section. Sections passed in
one call are packed back to back (a packet may end one section and start the
next); the last packet is filled with 0xFF stuffing. Only a packet header's
continuity_counter survives between calls, which is why this is a small object
and not a function: playout keeps one per PID and feeds it whenever SI is due.
"""

from __future__ import annotations

from collections.abc import Iterable

from mpegts.errors import TsInputError
from mpegts.packet import NULL_PID, PAYLOAD_SIZE, STUFFING_BYTE, SYNC_BYTE


class SectionPacketizer:
    """Turns sections into TS packets on ``pid``, carrying the continuity counter across calls."""

    def __init__(self, pid: int, continuity_counter: int = 0) -> None:
        if not 0 <= pid < NULL_PID:
            raise TsInputError(f"PID must be 0..0x1FFE, got 0x{pid:X}")
        if not 0 <= continuity_counter <= 15:
            raise TsInputError(f"continuity counter must be 0..15, got {continuity_counter}")
        self.pid = pid
        self._cc = continuity_counter

    @property
    def continuity_counter(self) -> int:
        """The counter the next packet will carry."""
        return self._cc

    def _packet(self, payload: bytes, start: bool) -> bytes:
        header = bytes(
            (
                SYNC_BYTE,
                (0x40 if start else 0) | (self.pid >> 8),
                self.pid & 0xFF,
                0x10 | self._cc,  # not scrambled, payload only
            )
        )
        self._cc = (self._cc + 1) & 0x0F
        return header + payload + bytes((STUFFING_BYTE,)) * (PAYLOAD_SIZE - len(payload))

    def packetize(self, sections: Iterable[bytes], *, pack: bool = True) -> list[bytes]:
        """TS packets for ``sections``; ``pack=False`` starts every section in a new packet."""
        if not pack:
            return [p for section in sections for p in self.packetize([section])]
        starts: list[int] = []
        data = bytearray()
        for section in sections:
            if section:
                starts.append(len(data))
                data += section
        packets: list[bytes] = []
        position = 0
        next_start = 0  # index into starts of the first section not yet begun
        while position < len(data):
            while next_start < len(starts) and starts[next_start] < position:
                next_start += 1
            offset = starts[next_start] - position if next_start < len(starts) else PAYLOAD_SIZE
            if offset < PAYLOAD_SIZE - 1:
                # A section starts here: pointer_field, then the rest of the payload.
                chunk = bytes(data[position : position + PAYLOAD_SIZE - 1])
                packets.append(self._packet(bytes((offset,)) + chunk, start=True))
                position += len(chunk)
            elif offset == PAYLOAD_SIZE - 1:
                # It would start on the last byte, where no pointer_field can reach:
                # end this packet with one stuffing byte and start it in the next.
                packets.append(self._packet(bytes(data[position : position + offset]), False))
                position += offset
            else:
                chunk = bytes(data[position : position + PAYLOAD_SIZE])
                packets.append(self._packet(chunk, start=False))
                position += len(chunk)
        return packets
