"""Sync (TR 101 290 1.1, 1.2): bytes in any chunk sizes cut into runs of aligned packets.

Sync is acquired on `SYNC_RUN` sync bytes a packet apart, as TR 101 290 1.1 suggests,
and lost on two consecutive packets without one; a single bad sync byte is a 1.2 error
and the packet stays in the stream.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from mpegts.monitor.batch import PacketBatch
from mpegts.monitor.findings import Check, FindingLog, OpenFindings
from mpegts.packet import PACKET_SIZE, SYNC_BYTE, U8

logger = logging.getLogger(__name__)

SYNC_RUN = 5  # consecutive sync bytes that (re)acquire sync


class PacketSync:
    """Buffers the stream and hands out aligned batches, logging sync loss and bad sync bytes."""

    def __init__(self, log: FindingLog) -> None:
        self._log = log
        self._buffer = bytearray()
        self.offset = 0  # byte offset of the buffer's first byte in the stream
        self.bytes_fed = 0
        self.skipped = 0  # discarded while (re)acquiring sync
        self.packets = 0  # handed out so far
        self._synced = False

    @property
    def pending(self) -> int:
        """Bytes fed but not yet handed out."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer += data
        self.bytes_fed += len(data)

    def batches(self) -> Iterator[PacketBatch]:
        """Every run of aligned packets now in the buffer; the last packet may wait.

        A packet without sync byte at the very end is held back: the next one decides
        between a sync byte error (1.2) and a sync loss (1.1).
        """
        while True:
            if not self._synced and not self._hunt():
                return
            n = len(self._buffer) // PACKET_SIZE
            if n == 0:
                return
            data = bytes(self._buffer[: n * PACKET_SIZE])
            arr = np.frombuffer(data, np.uint8).reshape(n, PACKET_SIZE)
            bad = arr[:, 0] != SYNC_BYTE
            if bad.any():
                pairs = np.flatnonzero(bad[:-1] & bad[1:])
                if len(pairs):
                    lost = int(pairs[0])
                    if lost:
                        yield self._take(data, arr, lost)
                    self._log.add(
                        Check.TS_SYNC_LOSS,
                        "two consecutive packets without sync byte 0x47: sync lost",
                        packet_index=self.packets,
                        byte_offset=self.offset,
                    )
                    logger.warning("TS sync lost at byte %d", self.offset)
                    self._synced = False
                    continue
                if bad[-1]:
                    n -= 1
                    if n == 0:
                        return
            yield self._take(data, arr, n)
            return

    def _take(self, data: bytes, arr: U8, n: int) -> PacketBatch:
        """The first ``n`` packets as a batch, logging their bad sync bytes (1.2)."""
        batch = PacketBatch.decode(data[: n * PACKET_SIZE], arr[:n], self.packets, self.offset)
        for i in np.flatnonzero(arr[:n, 0] != SYNC_BYTE).tolist():
            self._log.add(
                Check.SYNC_BYTE_ERROR,
                f"sync byte 0x{arr[i, 0]:02X} instead of 0x47",
                packet_index=batch.packet_index(i),
                byte_offset=batch.byte_offset(i),
            )
        self._consume(n * PACKET_SIZE)
        self.packets += n
        return batch

    def _hunt(self) -> bool:
        """Find SYNC_RUN sync bytes a packet apart; drop the bytes before them."""
        span = (SYNC_RUN - 1) * PACKET_SIZE
        limit = len(self._buffer) - span
        if limit <= 0:
            return False
        buf = np.frombuffer(bytes(self._buffer), np.uint8)
        candidates = np.flatnonzero(buf[:limit] == SYNC_BYTE)
        aligned = np.ones(len(candidates), np.bool_)
        for step in range(1, SYNC_RUN):
            aligned &= buf[candidates + step * PACKET_SIZE] == SYNC_BYTE
        if not aligned.any():
            self.skipped += limit
            self._consume(limit)
            return False
        start = int(candidates[int(np.argmax(aligned))])
        self.skipped += start
        self._consume(start)
        self._synced = True
        logger.debug("TS sync acquired at byte %d", self.offset)
        return True

    def _consume(self, size: int) -> None:
        del self._buffer[:size]
        self.offset += size

    def open_findings(self, found: OpenFindings) -> bool:
        """No sync at all is the one open condition here; True if the stream had none."""
        if self.packets == 0:
            found.add(
                Check.TS_SYNC_LOSS, f"no transport stream sync found in {self.bytes_fed} bytes"
            )
            return True
        return False
