"""One numpy pass of the monitor: a run of aligned packets and their decoded header fields.

Every check reads the same arrays, so the header is decoded once per batch; the checks
that run first also fill in what later ones need (`cc_error` and `repeat` from the
continuity check, `times` from the stream clock).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mpegts.packet import I64, PACKET_SIZE, U8, Bools, Ints, pcr_flag_array, pid_array

F64 = npt.NDArray[np.float64]


@dataclass
class PacketBatch:
    """The packets of one pass and the header fields decoded from them."""

    data: bytes
    arr: U8
    base: int  # global index of the first packet
    offset: int  # byte offset of the first packet
    pid: I64
    good: Bools  # transport_error_indicator clear
    pusi: Bools
    scrambled: Bools
    has_payload: Bools
    payload_start: I64
    continuity_counter: Ints
    discontinuity: Bools  # discontinuity_indicator of the adaptation field
    pcr: Bools  # a PCR in an adaptation field, in a packet without transport error
    cc_error: Bools  # filled in by the continuity check
    repeat: Bools  # an allowed duplicate packet: counted, but its payload is not used again
    times: F64  # 27 MHz stream time of every packet (NaN until the clock runs)

    @classmethod
    def decode(cls, data: bytes, arr: U8, base: int, offset: int) -> PacketBatch:
        n = len(arr)
        b1 = arr[:, 1]
        b3 = arr[:, 3]
        good = (b1 & 0x80) == 0
        afc = (b3 >> 4) & 3
        has_af = (afc & 2) != 0
        af_len = np.where(has_af, arr[:, 4], 0).astype(np.int64)
        af_flags = np.where(has_af & (af_len > 0), arr[:, 5], 0)
        payload_start = np.where(has_af, 5 + af_len, 4)
        return cls(
            data=data,
            arr=arr,
            base=base,
            offset=offset,
            pid=pid_array(arr),
            good=good,
            pusi=(b1 & 0x40) != 0,
            scrambled=(b3 >> 6) != 0,
            has_payload=((afc & 1) != 0) & (payload_start < PACKET_SIZE),
            payload_start=payload_start,
            continuity_counter=b3 & 0x0F,
            discontinuity=(af_flags & 0x80) != 0,
            pcr=good & pcr_flag_array(arr),
            cc_error=np.zeros(n, np.bool_),
            repeat=np.zeros(n, np.bool_),
            times=np.full(n, np.nan),
        )

    def __len__(self) -> int:
        return len(self.arr)

    def packet_index(self, row: int) -> int:
        return self.base + row

    def byte_offset(self, row: int) -> int:
        return self.offset + row * PACKET_SIZE

    def payload(self, row: int) -> bytes:
        """The bytes after the header and adaptation field of packet ``row``."""
        start = row * PACKET_SIZE
        return self.data[start + int(self.payload_start[row]) : start + PACKET_SIZE]
