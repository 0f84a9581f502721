"""Channel outputs (UDP/RTP, HLS, TS file) and the fan-out that feeds them.

``open_output(url, channel=..., epoch=...)`` builds one output from a registry
URL (``udp://…``, ``hls:DIR``, ``file:PATH``); ``open_outputs`` builds the
fan-out the pacer writes to.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from channels.registry import Channel, OutputKind, parse_output_url
from playout.outputs.base import OutputError, OutputSink, OutputUrlError, RateLimitedLog
from playout.outputs.fanout import FanOut, QueuedOutput
from playout.outputs.file import FileOutput
from playout.outputs.hls import HlsOutput
from playout.outputs.udp import UdpOutput

__all__ = [
    "FanOut",
    "FileOutput",
    "HlsOutput",
    "OutputError",
    "OutputSink",
    "OutputUrlError",
    "QueuedOutput",
    "RateLimitedLog",
    "UdpOutput",
    "open_output",
    "open_outputs",
]


def open_output(
    url: str,
    *,
    channel: Channel,
    epoch: datetime,
    zone: ZoneInfo,
    kind: OutputKind = OutputKind.FILE,
) -> OutputSink:
    """Open one output for a channel.

    ``epoch`` is the UTC instant of timeline frame 0 (the rundown's ``day_start``):
    HLS derives EXT-X-PROGRAM-DATE-TIME from it instead of the host clock, written in
    ``zone`` (the rundown's, i.e. the settings' time zone).
    """
    try:
        spec = parse_output_url(url, kind)
    except ValueError as exc:
        raise OutputUrlError(f"output {url!r} for {channel.id}: {exc}") from None
    if spec.scheme == "udp":
        assert spec.host is not None and spec.port is not None
        return UdpOutput(
            spec.host,
            spec.port,
            mux_rate=channel.mux_rate,
            ttl=spec.ttl,
            interface=spec.interface,
            rtp=spec.rtp,
            ssrc_key=channel.id,
            name=url,
        )
    assert spec.path is not None
    if spec.scheme == "hls":
        return HlsOutput(
            Path(spec.path), epoch=epoch, mux_rate=channel.mux_rate, zone=zone, name=url
        )
    return FileOutput(Path(spec.path), name=url)


def open_outputs(
    urls: Iterable[str], *, channel: Channel, epoch: datetime, zone: ZoneInfo
) -> FanOut:
    """Open every output (closing those already open if one fails) behind one fan-out."""
    opened: list[OutputSink] = []
    try:
        for url in urls:
            opened.append(open_output(url, channel=channel, epoch=epoch, zone=zone))
    except Exception:
        for output in opened:
            output.close()
        raise
    return FanOut(opened)
