"""PSI/SI sections out of TS packets (ISO/IEC 13818-1 2.4.4): framing and reassembly.

A packet in which a section starts has payload_unit_start_indicator set and a
pointer_field giving the offset of that first new section; sections may follow each
other inside a packet and span many packets; 0xFF after a section is stuffing.

Two readers share one reassembly: `SectionAssembler` takes payloads whose packet
headers the caller has already judged (the monitor does that for a whole batch at
once with numpy), `SectionReassembler` takes whole packets of one PID and judges
them itself (continuity, transport errors), for tests and tools.
"""

from __future__ import annotations

from mpegts.errors import TsDecodeError
from mpegts.packet import PACKET_SIZE, STUFFING_BYTE, SYNC_BYTE, payload_offset

MAX_SECTION_SIZE = 4096  # 3 + section_length of at most 4093 (private sections, EIT)
HEADER_SIZE = 3  # table_id, flags and section_length
CRC_SIZE = 4
TOT_TABLE_ID = 0x73
SCTE35_TABLE_ID = 0xFC


def section_size(header: bytes | bytearray) -> int:
    """Bytes of the whole section whose first 3 bytes are ``header``."""
    return HEADER_SIZE + (((header[1] & 0x0F) << 8) | header[2])


def section_has_crc(section: bytes) -> bool:
    """Long-form sections end in CRC_32, and so do TOT and SCTE-35 despite short form."""
    return bool(section[1] & 0x80) or section[0] in (TOT_TABLE_ID, SCTE35_TABLE_ID)


class SectionAssembler:
    """Reassembles the sections of one PID from its packet payloads, in order.

    ``max_size`` drops a section that announces more bytes (it can only be garbage);
    the monitor raises it to the 12-bit field's limit so such a section still reaches
    its CRC check and is reported.
    """

    __slots__ = ("_buffer", "max_size")

    def __init__(self, max_size: int = MAX_SECTION_SIZE) -> None:
        self.max_size = max_size
        self._buffer: bytearray | None = None  # a section in progress

    def reset(self) -> None:
        """Drop a section in progress (after a lost packet it cannot be completed)."""
        self._buffer = None

    def push(self, payload: bytes, pusi: bool) -> list[bytes]:
        """The sections completed by this payload, in order."""
        out: list[bytes] = []
        if pusi:
            if not payload:
                self._buffer = None
                return out
            pointer = payload[0]
            if self._buffer is not None:
                self._buffer += payload[1 : 1 + pointer]
                self._drain(out, final=True)
            self._buffer = bytearray(payload[1 + pointer :])
            self._drain(out, final=False)
        elif self._buffer is not None:
            self._buffer += payload
            self._drain(out, final=False)
        return out

    def _drain(self, out: list[bytes], *, final: bool) -> None:
        """Move every complete section at the front of the buffer to ``out``."""
        buffer = self._buffer
        while buffer is not None:
            if not buffer or buffer[0] == STUFFING_BYTE:  # the rest of the packet is empty
                self._buffer = None
                return
            if len(buffer) < HEADER_SIZE:
                break
            size = section_size(buffer)
            if size > self.max_size:
                self._buffer = None
                return
            if len(buffer) < size:
                break
            out.append(bytes(buffer[:size]))
            del buffer[:size]
        if final:
            self._buffer = None


class SectionReassembler:
    """Collects the sections of one PID from whole TS packets.

    Packets of other PIDs are ignored. A continuity error or a transport error
    drops the section being collected; collection resumes at the next packet
    with payload_unit_start_indicator. Sections come out raw, CRC unchecked.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._assembler = SectionAssembler()
        self._last_cc: int | None = None
        self.continuity_errors = 0

    def feed(self, packet: bytes) -> list[bytes]:
        """The sections completed by this packet, in order."""
        if len(packet) != PACKET_SIZE or packet[0] != SYNC_BYTE:
            raise TsDecodeError("not a 188-byte TS packet starting with 0x47")
        pid = ((packet[1] & 0x1F) << 8) | packet[2]
        if pid != self.pid:
            return []
        if packet[1] & 0x80:  # transport_error_indicator
            self._assembler.reset()
            return []
        control = (packet[3] >> 4) & 0x03
        if not control & 0x01:  # no payload
            return []
        cc = packet[3] & 0x0F
        if self._last_cc is not None:
            if cc == self._last_cc:
                return []  # a duplicate packet, allowed once
            if cc != (self._last_cc + 1) & 0x0F:
                self.continuity_errors += 1
                self._assembler.reset()
        self._last_cc = cc
        payload = packet[payload_offset(packet) :]
        return self._assembler.push(payload, bool(packet[1] & 0x40))
