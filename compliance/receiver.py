"""Receiving a channel the way a headend does: UDP, unicast or multicast, RTP or plain TS.

The off-air recorder and the live monitor both take the channel's real output off the
network (not from playout's memory), so what they keep is what left the building. A
source is a ``udp://ADDR:PORT[?iface=LOCAL]`` URL, as in the channel registry. A
multicast address is joined (IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP) on ``iface`` (a local
address, or an interface name for IPv6), and the socket is shared (SO_REUSEADDR) so a
recorder and a monitor can listen to the same group on one machine.

Each datagram says what it is: a plain TS datagram starts with the sync byte 0x47; an
RTP one (RFC 3550 version 2, SMPTE 2022-2) starts with 0x80-0xBF. The RTP header
(CSRCs, extension and padding included) is stripped and its sequence number counted,
so lost datagrams are known even when the TS continuity counters happen to line up.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
import time
from dataclasses import dataclass

from channels.registry import Channel, OutputKind, parse_output_url
from compliance.errors import ComplianceInputError
from mpegts import SYNC_BYTE

logger = logging.getLogger(__name__)

RCVBUF = 8 << 20  # ~6 s at 10 Mb/s: a busy disk or a GC pause never drops datagrams
MAX_DATAGRAM = 65_536
RTP_HEADER_SIZE = 12


@dataclass(frozen=True, kw_only=True)
class Source:
    """Where a channel's output is received from."""

    url: str
    host: str
    port: int
    interface: str | None  # local address (or IPv6 interface name) to join multicast on

    @property
    def multicast(self) -> bool:
        return ipaddress.ip_address(self.host).is_multicast

    @property
    def slug(self) -> str:
        """A file-name-safe name for the source (when no channel names it)."""
        return f"udp-{self.host.replace(':', '_')}-{self.port}"


def parse_source(url: str) -> Source:
    """A ``udp://ADDR:PORT[?iface=…]`` URL (registry syntax; ``rtp`` and ``ttl`` are ignored:
    RTP is detected per datagram). Raises ComplianceInputError naming the URL."""
    try:
        spec = parse_output_url(url, OutputKind.CABLE)
    except ValueError as exc:
        raise ComplianceInputError(
            f"source {url!r}: {exc}; give udp://ADDR:PORT, e.g. udp://239.10.0.3:1234"
        ) from None
    if spec.scheme != "udp" or spec.host is None or spec.port is None:
        raise ComplianceInputError(
            f"source {url!r} is not a UDP address: give udp://ADDR:PORT (a TS file is read "
            "with `skyclass compliance monitor FILE.ts`)"
        )
    return Source(url=url, host=spec.host, port=spec.port, interface=spec.interface)


def default_source(channel: Channel) -> Source:
    """The channel's own UDP output from the registry: cable (multicast) first."""
    udp = [o for o in channel.outputs if o.scheme == "udp"]
    udp.sort(key=lambda o: o.kind is not OutputKind.CABLE)
    if not udp:
        raise ComplianceInputError(
            f"channel {channel.id} has no udp:// output in the channel registry: "
            "pass --source udp://ADDR:PORT"
        )
    return parse_source(udp[0].url)


def open_socket(source: Source, *, timeout: float = 0.2) -> socket.socket:
    """A bound socket that receives ``source`` (multicast joined); raises ComplianceInputError."""
    address = ipaddress.ip_address(source.host)
    v6 = address.version == 6
    sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        if address.is_multicast:
            # Several listeners on one group (recorder + monitor); bound to the group so
            # other groups sent to the same port are not mixed in.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((source.host, source.port))
            _join(sock, source, v6)
        else:
            sock.bind((source.host, source.port))
        sock.settimeout(timeout)
    except OSError as exc:
        sock.close()
        raise ComplianceInputError(
            f"cannot receive {source.url}: {exc.strerror or exc}; check that the address is "
            "local (unicast) or that the interface can join the group (multicast), and that "
            "no other program holds the port"
        ) from None
    logger.info("receiving %s%s", source.url, " (multicast joined)" if address.is_multicast else "")
    return sock


def _join(sock: socket.socket, source: Source, v6: bool) -> None:
    if v6:
        index = socket.if_nametoindex(source.interface) if source.interface else 0
        mreq6 = socket.inet_pton(socket.AF_INET6, source.host) + struct.pack("@I", index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq6)
        return
    local = socket.inet_aton(source.interface) if source.interface else bytes(4)
    mreq = socket.inet_aton(source.host) + local
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)


@dataclass(frozen=True, kw_only=True)
class Datagram:
    """One received datagram's transport stream bytes."""

    payload: memoryview  # whole TS packets (RTP header stripped)
    rtp_seq: int | None  # RTP sequence number, None for plain TS
    foreign: bool  # neither TS nor RTP: dropped


def unwrap_datagram(data: memoryview) -> Datagram:
    """Strip an RTP header if there is one (first byte 0x80-0xBF rather than 0x47)."""
    if not data:
        return Datagram(payload=data, rtp_seq=None, foreign=True)
    first = data[0]
    if first == SYNC_BYTE:
        return Datagram(payload=data, rtp_seq=None, foreign=False)
    if first >> 6 != 2 or len(data) < RTP_HEADER_SIZE:
        return Datagram(payload=data[:0], rtp_seq=None, foreign=True)
    start = RTP_HEADER_SIZE + 4 * (first & 0x0F)
    if first & 0x10 and len(data) >= start + 4:  # header extension: 4 bytes + its words
        start += 4 + 4 * int.from_bytes(data[start + 2 : start + 4], "big")
    end = len(data) - (data[-1] if first & 0x20 else 0)  # padding: count in the last byte
    payload = data[start:end] if start < end else data[:0]
    if not payload or payload[0] != SYNC_BYTE:
        return Datagram(payload=data[:0], rtp_seq=None, foreign=True)
    return Datagram(payload=payload, rtp_seq=int.from_bytes(data[2:4], "big"), foreign=False)


class RtpSequence:
    """Counts datagrams lost (or reordered) from RTP sequence numbers (16-bit, wrapping)."""

    def __init__(self) -> None:
        self.last: int | None = None
        self.lost = 0

    def see(self, seq: int) -> None:
        if self.last is not None:
            step = (seq - self.last) & 0xFFFF
            if 1 < step < 0x8000:
                self.lost += step - 1
            elif step >= 0x8000 or step == 0:  # late or duplicate: keep the newest
                return
        self.last = seq

    def restart(self) -> None:
        """A sender restart begins a new sequence: no loss is counted across it."""
        self.last = None


#: Linux's SO_TIMESTAMPNS (asm-generic and x86; Python does not export it): the kernel
#: stamps each datagram as it arrives, so a recorder that was busy for a moment still
#: sees when each datagram really came, and reports no gap that was not on the wire.
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")


class Receiver:
    """A socket plus one reusable buffer: ``receive()`` is one datagram or None on timeout."""

    def __init__(self, source: Source, *, timeout: float = 0.2) -> None:
        self.source = source
        self.sock = open_socket(source, timeout=timeout)
        self._buffer = bytearray(MAX_DATAGRAM)
        self._view = memoryview(self._buffer)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self.kernel_time = True
        except OSError:  # not Linux: arrival is when we read it
            self.kernel_time = False
        self._ancillary = socket.CMSG_SPACE(_TIMESPEC.size)

    def receive(self) -> tuple[memoryview, float] | None:
        """The next datagram (valid until the next call) and its monotonic arrival time."""
        try:
            if not self.kernel_time:
                size = self.sock.recv_into(self._buffer)
                return self._view[:size], time.monotonic()
            size, ancillary, _flags, _addr = self.sock.recvmsg_into([self._buffer], self._ancillary)
        except TimeoutError:
            return None
        except InterruptedError:  # a signal arrived: let the caller look at its stop flag
            return None
        now_mono, now_wall = time.monotonic(), time.time()
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanos = _TIMESPEC.unpack_from(data)
                waited = max(0.0, now_wall - (seconds + nanos / 1e9))
                return self._view[:size], now_mono - waited
        return self._view[:size], now_mono

    def close(self) -> None:
        self.sock.close()
