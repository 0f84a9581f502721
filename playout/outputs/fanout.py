"""One stream to many outputs, where no output can hold up another (or the pacer).

Outputs marked ``nonblocking`` (UDP) are written inline on the pacing thread:
their sockets never block, so they keep exact timing without a thread hop.
Every other output sits behind a ``QueuedOutput``: a bounded queue and its own
thread. ``write`` only appends to a local batch and does ``put_nowait``; when the
queue is full (the disk stalled for seconds) the batch is dropped, counted and
logged, and the rest of the channel carries on. A failing output is logged and
kept: the next write may succeed (a full disk freed, an NFS mount back).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from playout.outputs.base import OutputSink, RateLimitedLog
from playout.stream import DatagramSend, TsChunk

logger = logging.getLogger(__name__)

BATCH_BYTES = 48 * 1316  # ~50 ms at 10 Mb/s: fewer thread wake-ups for file and HLS
QUEUE_BATCHES = 160  # ~8 s at 10 Mb/s before a stalled output starts losing data
CLOSE_TIMEOUT = 5.0
_STOP = object()


@dataclass(frozen=True, kw_only=True)
class QueueStats:
    delivered: int
    dropped: int
    failed: int


class QueuedOutput(OutputSink):
    """Runs another output on its own thread behind a bounded queue."""

    def __init__(
        self,
        inner: OutputSink,
        *,
        batch_bytes: int = BATCH_BYTES,
        max_batches: int = QUEUE_BATCHES,
    ) -> None:
        super().__init__(inner.name)
        self.inner = inner
        self._batch: list[TsChunk] = []
        self._batch_size = 0
        self._batch_bytes = batch_bytes
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_batches)
        self._log = RateLimitedLog(logger)
        self._delivered = 0
        self._dropped = 0
        self._failed = 0
        self._thread = threading.Thread(
            target=self._drain, name=f"output {inner.name}", daemon=True
        )
        self._thread.start()

    def write(self, chunk: TsChunk) -> None:
        # An IDR starts a new batch, so the inner output still sees it at a chunk start.
        if chunk.idr and self._batch:
            self._flush()
        self._batch.append(chunk)
        self._batch_size += len(chunk.data)
        if self._batch_size >= self._batch_bytes:
            self._flush()

    def _flush(self) -> None:
        batch = self._batch
        self._batch, self._batch_size = [], 0
        if not batch:
            return
        first = batch[0]
        merged = (
            first
            if len(batch) == 1
            else TsChunk(
                data=b"".join(c.data for c in batch),
                byte_offset=first.byte_offset,
                frame=first.frame,
                idr=first.idr,
                pcr_90k=next((c.pcr_90k for c in batch if c.pcr_90k is not None), None),
            )
        )
        try:
            self._queue.put_nowait(merged)
        except queue.Full:
            self._dropped += len(merged.data)
            self._log(
                logging.ERROR,
                "full",
                "%s: output is too slow, dropped %d bytes (queue full)",
                self.name,
                len(merged.data),
            )

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, TsChunk)
            try:
                self.inner.write(item)
            except Exception as exc:  # one output's failure must not end the others
                self._failed += 1
                self._log(logging.ERROR, "write", "%s: write failed: %s", self.name, exc)
                continue
            self._delivered += len(item.data)

    def close(self) -> None:
        self._flush()
        try:
            self._queue.put(_STOP, timeout=CLOSE_TIMEOUT)
        except queue.Full:
            logger.error("%s: still stalled at close, abandoning its queue", self.name)
            return
        self._thread.join(CLOSE_TIMEOUT)
        if self._thread.is_alive():
            logger.error("%s: did not finish within %.0f s at close", self.name, CLOSE_TIMEOUT)
            return
        try:
            self.inner.close()
        except Exception as exc:
            logger.error("%s: close failed: %s", self.name, exc)

    @property
    def stats(self) -> QueueStats:
        return QueueStats(delivered=self._delivered, dropped=self._dropped, failed=self._failed)


class FanOut(OutputSink):
    """Writes each chunk to every output; implements TsSink and the pacer's PacedSink."""

    nonblocking = True

    def __init__(self, outputs: Sequence[OutputSink]) -> None:
        super().__init__(", ".join(o.name for o in outputs) or "no outputs")
        self.outputs: tuple[OutputSink, ...] = tuple(
            o if o.nonblocking else QueuedOutput(o) for o in outputs
        )
        self._log = RateLimitedLog(logger)
        self._bulk = tuple(o for o in self.outputs if isinstance(o, QueuedOutput))
        self._inline = tuple(o for o in self.outputs if not isinstance(o, QueuedOutput))

    def write(self, chunk: TsChunk) -> None:
        for output in self.outputs:
            try:
                output.write(chunk)
            except Exception as exc:  # isolate: the other outputs stay on air
                self._log(logging.ERROR, output.name, "%s: write failed: %s", output.name, exc)

    def paced(self, chunk: TsChunk) -> DatagramSend:
        """Queued outputs get the whole chunk now; inline ones each datagram on time.

        With one UDP output (the usual case) the pacer calls its send directly.
        """
        for output in self._bulk:
            output.write(chunk)  # never raises: it only batches and put_nowait()s
        senders = [self._sender(output, chunk) for output in self._inline]
        if len(senders) == 1:
            return senders[0]

        def each(piece: memoryview, byte_offset: int) -> None:
            for send in senders:
                send(piece, byte_offset)

        return each

    def _sender(self, output: OutputSink, chunk: TsChunk) -> DatagramSend:
        paced = getattr(output, "paced", None)
        if paced is not None:
            send: DatagramSend = paced(chunk)
            return send
        start = chunk.byte_offset

        def write(piece: memoryview, byte_offset: int) -> None:
            first = byte_offset == start
            try:
                output.write(
                    TsChunk(
                        data=bytes(piece),
                        byte_offset=byte_offset,
                        frame=chunk.frame,
                        idr=chunk.idr and first,
                        pcr_90k=chunk.pcr_90k if first else None,
                    )
                )
            except Exception as exc:  # isolate: the other outputs stay on air
                self._log(logging.ERROR, output.name, "%s: write failed: %s", output.name, exc)

        return write

    def close(self) -> None:
        for output in self.outputs:
            try:
                output.close()
            except Exception as exc:
                logger.error("%s: close failed: %s", output.name, exc)
