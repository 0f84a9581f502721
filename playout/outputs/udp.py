"""UDP unicast/multicast output: 1316-byte datagrams (7×188), optional RTP (SMPTE 2022-2).

The socket is non-blocking, so the pacer can call ``write`` inline and still never
wait on the network: a full socket buffer drops the datagram (counted and logged)
instead of stalling the channel. It is connected to the destination, and the
pacer's fast path (``paced``/``send_datagram``) hands over memoryview slices of
the engine's chunk: one ``send`` per datagram, no copy, no allocation. Any other
send error closes the socket and reopens it after a backoff (1 s doubling to 30 s);
datagrams due meanwhile are dropped, because a late datagram is worth nothing to a
headend.

RTP (RFC 3550, payload type 33 MP2T per RFC 3551/2250, as SMPTE 2022-2 carries it):
the 90 kHz timestamp is the nominal send time of the datagram's first byte,
derived from the timeline frame of the first chunk plus the byte position at the
mux rate, and the sequence number starts at the nominal datagram index of that
frame. Both are therefore a pure function of the timeline and the bytes, so a
main and a backup machine started at the same ``--start`` send identical RTP
headers (what SMPTE 2022-7 seamless protection needs), and the SSRC is derived
from the channel id for the same reason.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from core.timecode import FPS
from mpegts import NULL_PACKET, PACKET_SIZE, UDP_PAYLOAD
from playout.outputs.base import OutputError, OutputSink, RateLimitedLog
from playout.stream import DatagramSend, TsChunk

logger = logging.getLogger(__name__)

RTP_VERSION = 2
RTP_PAYLOAD_MP2T = 33
RTP_CLOCK = 90_000
RTP_HEADER = struct.Struct("!BBHII")
SNDBUF = 1 << 20  # ~0.8 s at 10 Mb/s: absorbs a scheduler hiccup without drops
RETRY_FIRST = 1.0
RETRY_MAX = 30.0
_TRANSIENT = {errno.EAGAIN, errno.ENOBUFS, errno.ECONNREFUSED}


@dataclass(frozen=True, kw_only=True)
class UdpStats:
    datagrams: int
    dropped: int
    errors: int
    reopens: int


class UdpOutput(OutputSink):
    """Send the stream to one UDP address; multicast honours TTL and the source interface."""

    nonblocking: ClassVar[bool] = True

    def __init__(
        self,
        host: str,
        port: int,
        *,
        mux_rate: int,
        ttl: int = 16,
        interface: str | None = None,
        rtp: bool = False,
        ssrc_key: str = "",
        name: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name or f"udp://{host}:{port}")
        self.address = ipaddress.ip_address(host)
        self.port = port
        self.mux_rate = mux_rate
        self.ttl = ttl
        self.interface = interface
        self.rtp = rtp
        self.ssrc = zlib.crc32(ssrc_key.encode()) if ssrc_key else 0
        self._monotonic = monotonic
        self._log = RateLimitedLog(logger)
        self._dest = (host, port)
        self._buf = bytearray()
        self._buf_offset = 0  # engine byte offset of _buf[0]
        self._anchor: tuple[int, int] | None = None  # (byte offset, timeline frame)
        self._seq0 = 0
        self._datagrams = 0
        self._dropped = 0
        self._errors = 0
        self._reopens = 0
        self._retry_at = 0.0
        self._retry_delay = RETRY_FIRST
        self._sock: socket.socket | None = None
        self._fast: socket.socket | None = None  # the socket while plain sends are possible
        self._closed = False
        self._set_socket(self._open())

    # -- socket ------------------------------------------------------------------

    def _open(self) -> socket.socket:
        """A non-blocking socket with TTL and multicast interface set; raises OutputError."""
        v6 = self.address.version == 6
        sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
            if v6:
                level, hops = socket.IPPROTO_IPV6, self.ttl
                if self.address.is_multicast:
                    sock.setsockopt(level, socket.IPV6_MULTICAST_HOPS, hops)
                    sock.setsockopt(level, socket.IPV6_MULTICAST_LOOP, 1)
                    if self.interface:
                        index = socket.if_nametoindex(self.interface)
                        sock.setsockopt(level, socket.IPV6_MULTICAST_IF, index)
                else:
                    sock.setsockopt(level, socket.IPV6_UNICAST_HOPS, hops)
            elif self.address.is_multicast:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, self.ttl)
                # Loop on: a monitor on this machine (and the tests) can join the group.
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
                if self.interface:
                    sock.setsockopt(
                        socket.IPPROTO_IP,
                        socket.IP_MULTICAST_IF,
                        socket.inet_aton(self.interface),
                    )
            else:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, self.ttl)
                if self.interface:
                    sock.bind((self.interface, 0))
        except OSError as exc:
            sock.close()
            raise OutputError(
                f"{self.name}: cannot set up the socket (ttl={self.ttl}, "
                f"iface={self.interface}): {exc}: check the interface address"
            ) from exc
        try:
            sock.connect(self._dest)  # the kernel resolves the route once, not per datagram
        except OSError as exc:  # no route yet: unconnected sends fail and reopen later
            self._log(logging.ERROR, "connect", "%s: cannot connect: %s", self.name, exc)
        return sock

    def _set_socket(self, sock: socket.socket | None) -> None:
        self._sock = sock
        connected = False
        if sock is not None:
            try:
                connected = bool(sock.getpeername())
            except OSError:
                connected = False
        self._fast = sock if connected and not self.rtp else None

    def _reopen_if_due(self) -> None:
        now = self._monotonic()
        if now < self._retry_at:
            return
        try:
            self._set_socket(self._open())
        except OutputError as exc:
            self._retry_at = now + self._retry_delay
            self._retry_delay = min(self._retry_delay * 2, RETRY_MAX)
            self._log(logging.ERROR, "reopen", "%s: still failing: %s", self.name, exc)
            return
        self._reopens += 1
        self._retry_delay = RETRY_FIRST
        logger.warning("%s: socket reopened", self.name)

    # -- sending -----------------------------------------------------------------

    def _rtp_header(self, byte_offset: int) -> bytes:
        assert self._anchor is not None
        anchor_offset, anchor_frame = self._anchor
        delta_bits = (byte_offset - anchor_offset) * 8
        timestamp = anchor_frame * (RTP_CLOCK // FPS) + delta_bits * RTP_CLOCK // self.mux_rate
        seq = (self._seq0 + (byte_offset - anchor_offset) // UDP_PAYLOAD) & 0xFFFF
        return RTP_HEADER.pack(
            RTP_VERSION << 6, RTP_PAYLOAD_MP2T, seq, timestamp & 0xFFFFFFFF, self.ssrc
        )

    def _send(self, payload: bytes | bytearray | memoryview, byte_offset: int) -> None:
        sock = self._sock
        if sock is None:
            self._reopen_if_due()
            sock = self._sock
            if sock is None:
                self._dropped += 1
                return
        try:
            if self.rtp:
                sock.sendmsg((self._rtp_header(byte_offset), payload))  # gathered: no copy
            elif sock is self._fast:
                sock.send(payload)
            else:
                sock.sendto(payload, self._dest)
        except OSError as exc:
            self._failed(exc)
            return
        self._datagrams += 1

    def _failed(self, exc: OSError) -> None:
        if exc.errno in _TRANSIENT:
            self._dropped += 1
            self._log(logging.WARNING, "drop", "%s: datagram dropped: %s", self.name, exc)
            return
        self._errors += 1
        self._dropped += 1
        self._log(
            logging.ERROR, "error", "%s: send failed, reopening the socket: %s", self.name, exc
        )
        if self._sock is not None:
            self._sock.close()
        self._set_socket(None)
        self._retry_at = self._monotonic() + self._retry_delay

    def paced(self, chunk: TsChunk) -> DatagramSend:
        """The pacer's fast path (playout.stream.PacedSink): returns ``send_datagram``."""
        if self._anchor is None:
            self._start(chunk)
        return self.send_datagram

    def send_datagram(self, piece: memoryview, byte_offset: int) -> None:
        """One piece at its deadline: a whole datagram goes straight out, no copy."""
        sock = self._fast
        if sock is None or self._buf or len(piece) != UDP_PAYLOAD:
            self._write_piece(piece, byte_offset)
            return
        try:
            sock.send(piece)
        except OSError as exc:
            self._failed(exc)
            return
        self._datagrams += 1

    def _start(self, chunk: TsChunk) -> None:
        self._anchor = (chunk.byte_offset, chunk.frame)
        # The nominal datagram index of the anchor frame: deterministic from the timeline.
        self._seq0 = chunk.frame * self.mux_rate // (8 * FPS * UDP_PAYLOAD)
        self._buf_offset = chunk.byte_offset

    def write(self, chunk: TsChunk) -> None:
        if self._anchor is None:
            self._start(chunk)
        self._write_piece(memoryview(chunk.data), chunk.byte_offset)

    def _write_piece(self, data: memoryview, byte_offset: int) -> None:
        """Any run of packets: whole datagrams go out, a remainder waits for the next piece."""
        if not self._buf:
            self._buf_offset = byte_offset
            whole = len(data) - len(data) % UDP_PAYLOAD
            for start in range(0, whole, UDP_PAYLOAD):
                self._send(data[start : start + UDP_PAYLOAD], byte_offset + start)
            if whole < len(data):
                self._buf += data[whole:]
            self._buf_offset = byte_offset + whole
            return
        self._buf += data
        sent = 0
        while len(self._buf) - sent >= UDP_PAYLOAD:
            self._send(bytes(self._buf[sent : sent + UDP_PAYLOAD]), self._buf_offset + sent)
            sent += UDP_PAYLOAD
        if sent:
            del self._buf[:sent]
            self._buf_offset += sent

    def close(self) -> None:
        """Send what is left, padded with null packets: every datagram is 1316 bytes."""
        if self._closed:
            return
        self._closed = True
        if self._buf:
            missing = (UDP_PAYLOAD - len(self._buf)) // PACKET_SIZE
            self._send(bytes(self._buf) + NULL_PACKET * missing, self._buf_offset)
            self._buf.clear()
        if self._sock is not None:
            self._sock.close()
            self._set_socket(None)
        logger.info(
            "%s: closed after %d datagrams (%d dropped)", self.name, self._datagrams, self._dropped
        )

    @property
    def stats(self) -> UdpStats:
        return UdpStats(
            datagrams=self._datagrams,
            dropped=self._dropped,
            errors=self._errors,
            reopens=self._reopens,
        )
