"""The contract between the playout engine and the real-time side (pacer, outputs).

The engine yields TsChunks: whole 188-byte packets of one continuous CBR
transport stream, each tagged with its byte offset (the pacer's deadline is
``byte_offset * 8 / mux_rate`` seconds after the engine started) and its channel
timeline frame. Outputs implement TsSink; ``open_output(url)`` builds one.

As-run facts ride on the chunk whose bytes make them true (``TsChunk.asrun``), so
whoever sends the bytes journals them when they have left, not when they were muxed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mpegts import PACKET_SIZE

# Re-exported while importers move to playout.errors.
from playout.errors import PlayoutError as PlayoutError
from playout.errors import PlayoutInputError as PlayoutInputError

if TYPE_CHECKING:
    from playout.asrun.ledger import AsRunRecord


@dataclass(frozen=True, kw_only=True)
class AsRunMark:
    """An as-run fact that holds once the chunk carrying it has been sent.

    ``final``: the event's finished record (the chunk starts the first frame after
    it). Otherwise the event started airing in this chunk (``record`` has no
    duration yet): what a restart needs to record an event a kill interrupted.
    """

    record: AsRunRecord
    final: bool
    frame: int  # channel timeline frame the fact is about (the chunk's IDR frame)


@dataclass(frozen=True, kw_only=True)
class TsChunk:
    """A run of TS packets as the engine produced them, in air order."""

    data: bytes  # whole 188-byte packets, CBR at the channel mux rate
    byte_offset: int  # bytes since the engine started (for pacing deadlines)
    frame: int  # channel timeline frame (25 fps, from the broadcast day start) at the chunk's start
    idr: bool  # chunk begins with a video packet that starts an IDR access unit (HLS boundary)
    pcr_90k: int | None  # PCR base of the first PCR in the chunk, if any
    asrun: tuple[AsRunMark, ...] = ()  # true once these bytes are sent (journal them then)

    @property
    def packets(self) -> int:
        return len(self.data) // PACKET_SIZE


class TsSink(Protocol):
    """What every output implements (udp, hls, file, check)."""

    def write(self, chunk: TsChunk) -> None: ...

    def close(self) -> None: ...


#: Sends one piece of a chunk (a 1316-byte datagram, or a chunk's shorter head or tail)
#: at engine byte offset ``int``. Must not block or raise: it runs on the pacing thread.
DatagramSend = Callable[[memoryview, int], None]


class PacedSink(TsSink, Protocol):
    """A sink with the pacer's fast path: per chunk one call, then one call per datagram.

    ``paced(chunk)`` is called when the pacer starts a chunk; outputs that do not
    need pacing take the whole chunk then, and the returned function gets each
    piece at its deadline (memoryview slices of ``chunk.data``: no copies).
    """

    def paced(self, chunk: TsChunk) -> DatagramSend: ...
