"""Probe a media file with PyAV: streams, codecs, size, aspect, rate, fields, GOP.

Opening the container runs FFmpeg's stream-info probe (a few decoded frames), which
fills in field order and colour tags. A second, decode-free walk over the video
packets gives what the headers cannot: the real frame count, whether the rate is
variable, the keyframe positions and whether every GOP is closed. All of that is
cheap (demux only) even for a 25-minute HD file.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from ingest.errors import ProbeError

__all__ = [
    "AudioInfo",
    "MediaProbe",
    "ProbeError",
    "VideoInfo",
    "probe",
]

logger = logging.getLogger(__name__)

# A rate counts as variable when frame intervals spread by more than this share.
_VFR_TOLERANCE = 0.02


@dataclass(frozen=True, kw_only=True)
class VideoInfo:
    index: int
    codec: str
    profile: str | None
    level: int | None
    width: int
    height: int
    sample_aspect: Fraction
    pix_fmt: str | None
    field_order: str  # progressive | tff | bff | unknown
    color_matrix: str | None  # FFmpeg colorspace name, None when untagged
    color_primaries: str | None
    color_transfer: str | None
    frame_rate: Fraction | None  # average rate
    variable_rate: bool
    frames: int  # packets counted in the walk
    keyframes: tuple[int, ...]  # decode-order indices of key packets
    closed_gops: bool | None  # None when the codec's GOP headers were not checked
    duration_seconds: float
    bit_rate: int | None

    @property
    def display_aspect(self) -> Fraction:
        return Fraction(self.width, self.height) * self.sample_aspect

    @property
    def interlaced(self) -> bool:
        return self.field_order in ("tff", "bff")

    def as_json(self) -> dict[str, Any]:
        return {
            "codec": self.codec,
            "profile": self.profile,
            "level": self.level,
            "width": self.width,
            "height": self.height,
            "sample_aspect": str(self.sample_aspect),
            "display_aspect": str(self.display_aspect),
            "pix_fmt": self.pix_fmt,
            "field_order": self.field_order,
            "color_matrix": self.color_matrix,
            "frame_rate": str(self.frame_rate) if self.frame_rate else None,
            "variable_rate": self.variable_rate,
            "frames": self.frames,
            "duration_seconds": round(self.duration_seconds, 3),
            "bit_rate": self.bit_rate,
        }


@dataclass(frozen=True, kw_only=True)
class AudioInfo:
    index: int
    codec: str
    sample_rate: int
    channels: int
    layout: str
    duration_seconds: float
    bit_rate: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "codec": self.codec,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "layout": self.layout,
            "duration_seconds": round(self.duration_seconds, 3),
            "bit_rate": self.bit_rate,
        }


@dataclass(frozen=True, kw_only=True)
class MediaProbe:
    path: Path
    format_name: str
    size_bytes: int
    duration_seconds: float
    video: VideoInfo | None
    audio: AudioInfo | None
    video_streams: int = 0
    audio_streams: int = 0
    notes: tuple[str, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format_name,
            "size_bytes": self.size_bytes,
            "duration_seconds": round(self.duration_seconds, 3),
            "video": self.video.as_json() if self.video else None,
            "audio": self.audio.as_json() if self.audio else None,
        }


# FFmpeg's AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic / AVFieldOrder
# numbers, as PyAV hands them out.
_MATRICES = {0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
             8: "ycgco", 9: "bt2020nc", 10: "bt2020c"}  # fmt: skip
_PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
              8: "film", 9: "bt2020"}  # fmt: skip
_TRANSFERS = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
              8: "linear", 13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12",
              16: "smpte2084", 18: "arib-std-b67"}  # fmt: skip
_FIELD_ORDERS = {1: "progressive", 2: "tff", 3: "bff", 4: "tff", 5: "bff"}


def _tag(value: object, names: dict[int, str]) -> str | None:
    """A colour tag as its FFmpeg name; None when unspecified."""
    if value is None:
        return None
    if isinstance(value, int):
        return names.get(value)
    text = (getattr(value, "name", None) or str(value)).lower()
    return None if text in ("unspecified", "unknown", "reserved", "") else text


def _field_order(value: object) -> str:
    if isinstance(value, int):
        return _FIELD_ORDERS.get(value, "unknown")
    text = (getattr(value, "name", None) or str(value or "")).lower()
    return {"progressive": "progressive", "tt": "tff", "tb": "tff", "bb": "bff", "bt": "bff"}.get(
        text, "unknown"
    )


_H264_IDR = 5
_H264_SLICE = 1


def _h264_idr(data: bytes, length_size: int | None) -> bool | None:
    """Whether a key packet of H.264 starts an IDR picture (closed GOP); None if unknown."""
    types: list[int] = []
    if length_size is None:  # Annex B start codes
        start = 0
        while True:
            pos = data.find(b"\x00\x00\x01", start)
            if pos < 0 or pos + 3 >= len(data):
                break
            types.append(data[pos + 3] & 0x1F)
            start = pos + 3
    else:
        pos = 0
        while pos + length_size < len(data):
            size = int.from_bytes(data[pos : pos + length_size], "big")
            types.append(data[pos + length_size] & 0x1F)
            pos += length_size + size
    if _H264_IDR in types:
        return True
    if _H264_SLICE in types:
        return False
    return None


def _mpeg2_closed(data: bytes) -> bool | None:
    """The closed_gop flag of the GOP header in an MPEG-2 key packet; None without one."""
    pos = data.find(b"\x00\x00\x01\xb8")
    if pos < 0 or pos + 8 > len(data):
        return None
    return bool(data[pos + 7] & 0x40)


def probe(path: Path, *, walk_packets: bool = True) -> MediaProbe:
    """Describe a media file; raise ProbeError if it cannot be read as media."""
    if not path.is_file():
        raise ProbeError(f"{path}: no such file: check the path")
    size = path.stat().st_size
    if size == 0:
        raise ProbeError(f"{path}: the file is empty: re-export or re-copy it")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise ProbeError(
            f"{path}: unreadable as media ({exc}): re-export the lesson as MP4/MOV/TS/MXF"
        ) from None
    with container:
        videos = [s for s in container.streams.video if not _attached_pic(s)]
        audios = list(container.streams.audio)
        duration = float(container.duration / av.time_base) if container.duration else 0.0
        video = _video_info(path, container, videos[0], walk_packets) if videos else None
        audio = _audio_info(audios[0], duration) if audios else None
        format_name = str(container.format.name)
    if video is not None and duration <= 0:
        duration = video.duration_seconds
    return MediaProbe(
        path=path,
        format_name=format_name,
        size_bytes=size,
        duration_seconds=duration,
        video=video,
        audio=audio,
        video_streams=len(videos),
        audio_streams=len(audios),
    )


def _attached_pic(stream: Any) -> bool:
    disposition = getattr(stream, "disposition", None)
    return bool(disposition is not None and "attached_pic" in str(disposition).lower())


def _video_info(path: Path, container: Any, stream: Any, walk: bool) -> VideoInfo:
    ctx = stream.codec_context
    codec = str(ctx.name)
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    frame_rate = Fraction(rate) if rate else None
    frames = 0
    keyframes: list[int] = []
    closed: list[bool | None] = []
    deltas: list[int] = []
    last_pts: int | None = None
    first_pts: int | None = None
    end_pts: int | None = None
    length_size: int | None = None
    extradata = bytes(ctx.extradata or b"")
    if codec == "h264" and extradata[:1] == b"\x01" and len(extradata) > 4:
        length_size = (extradata[4] & 0x03) + 1
    if walk:
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packet.is_corrupt:
                    raise ProbeError(
                        f"{path}: corrupt video packet at frame {frames}: "
                        "the file is damaged, re-export it"
                    )
                if packet.is_keyframe:
                    keyframes.append(frames)
                    data = bytes(packet)
                    if codec == "h264":
                        closed.append(_h264_idr(data, length_size))
                    elif codec == "mpeg2video":
                        closed.append(_mpeg2_closed(data))
                if packet.pts is not None:
                    if first_pts is None or packet.pts < first_pts:
                        first_pts = packet.pts
                    stop = packet.pts + (packet.duration or 0)
                    end_pts = stop if end_pts is None else max(end_pts, stop)
                if packet.dts is not None and last_pts is not None:
                    deltas.append(packet.dts - last_pts)
                if packet.dts is not None:
                    last_pts = packet.dts
                frames += 1
        except av.error.FFmpegError as exc:
            raise ProbeError(
                f"{path}: the video cannot be read past frame {frames} ({exc}): "
                "the file is truncated or corrupt, re-export it"
            ) from None
    tb = stream.time_base
    if first_pts is not None and end_pts is not None and tb:
        duration = float((end_pts - first_pts) * tb)
    elif stream.duration and tb:
        duration = float(stream.duration * tb)
    else:
        duration = float(container.duration / av.time_base) if container.duration else 0.0
    variable = _variable(deltas)
    if walk and frames and duration > 0 and (frame_rate is None or variable):
        frame_rate = Fraction(frames / duration).limit_denominator(1001)
    closed_gops: bool | None = None
    known = [c for c in closed if c is not None]
    if known:
        closed_gops = all(known)
    sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
    sample_aspect = Fraction(sar) if sar and Fraction(sar) > 0 else Fraction(1)
    level = ctx.level if isinstance(ctx.level, int) and ctx.level > 0 else None
    return VideoInfo(
        index=stream.index,
        codec=codec,
        profile=str(stream.profile) if stream.profile else None,
        level=level,
        width=int(ctx.width),
        height=int(ctx.height),
        sample_aspect=sample_aspect,
        pix_fmt=str(ctx.pix_fmt) if ctx.pix_fmt else None,
        field_order=_field_order(getattr(ctx, "field_order", None)),
        color_matrix=_tag(ctx.colorspace, _MATRICES),
        color_primaries=_tag(ctx.color_primaries, _PRIMARIES),
        color_transfer=_tag(ctx.color_trc, _TRANSFERS),
        frame_rate=frame_rate,
        variable_rate=variable,
        frames=frames,
        keyframes=tuple(keyframes),
        closed_gops=closed_gops,
        duration_seconds=duration,
        bit_rate=int(ctx.bit_rate) if ctx.bit_rate else None,
    )


def _variable(deltas: list[int]) -> bool:
    """Frame intervals (in decode order) that spread by more than 2 % mean a VFR stream."""
    positive = sorted(d for d in deltas if d > 0)
    if len(positive) < 4:
        return False
    low = positive[len(positive) // 100]
    high = positive[-1 - len(positive) // 100]
    return bool(high - low > max(1.0, _VFR_TOLERANCE * math.fabs(positive[len(positive) // 2])))


def _audio_info(stream: Any, container_duration: float) -> AudioInfo:
    ctx = stream.codec_context
    duration = (
        float(stream.duration * stream.time_base)
        if stream.duration and stream.time_base
        else container_duration
    )
    layout = getattr(ctx, "layout", None)
    return AudioInfo(
        index=stream.index,
        codec=str(ctx.name),
        sample_rate=int(ctx.sample_rate or 0),
        channels=int(ctx.channels or 0),
        layout=str(layout.name) if layout is not None else "",
        duration_seconds=duration,
        bit_rate=int(ctx.bit_rate) if ctx.bit_rate else None,
    )
