"""House formats (ARCHITECTURE.md "Normalize at ingest"): what every stored asset looks like.

Playout only remuxes, so these parameters are the contract between ingest (which
encodes to them) and playout (which relies on them: closed GOPs of a fixed
length, IDR first, MP2 audio at 48 kHz).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from core.errors import BadInputError

# Transport overhead: 4-byte TS headers (188/184), PES headers, PCR adaptation
# fields, PSI/SI tables. 10 % headroom over the elementary rates keeps the muxer
# from starving under CBR.
MUX_OVERHEAD = Fraction(11, 10)


@dataclass(frozen=True, kw_only=True)
class HouseProfile:
    name: str  # "hd" | "sd"
    width: int
    height: int
    display_aspect: Fraction
    fps: int
    field_order: str  # "tff": top field first
    video_codec: str  # FFmpeg codec name
    video_profile: str
    video_level: str
    pix_fmt: str
    color_matrix: str  # FFmpeg colorspace name: bt709 | bt470bg (BT.601 625)
    color_primaries: str
    color_transfer: str
    video_bitrate: int  # bit/s, CBR
    gop_frames: int  # fixed keyframe interval; every GOP is closed
    audio_codec: str
    audio_bitrate: int
    audio_sample_rate: int
    audio_channels: int

    @property
    def sample_aspect(self) -> Fraction:
        return self.display_aspect * Fraction(self.height, self.width)

    @property
    def min_mux_rate(self) -> int:
        """The lowest CBR mux rate (bit/s) that carries this profile without underflow."""
        elementary = self.video_bitrate + self.audio_bitrate
        return math.ceil(elementary * MUX_OVERHEAD / 1000) * 1000

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "display_aspect": f"{self.display_aspect.numerator}:{self.display_aspect.denominator}",
            "fps": self.fps,
            "field_order": self.field_order,
            "video_codec": self.video_codec,
            "video_bitrate": self.video_bitrate,
            "gop_frames": self.gop_frames,
            "color_matrix": self.color_matrix,
            "audio_codec": self.audio_codec,
            "audio_bitrate": self.audio_bitrate,
            "audio_sample_rate": self.audio_sample_rate,
            "audio_channels": self.audio_channels,
            "min_mux_rate": self.min_mux_rate,
        }


HD = HouseProfile(
    name="hd",
    width=1920,
    height=1080,
    display_aspect=Fraction(16, 9),
    fps=25,
    field_order="tff",
    video_codec="h264",
    video_profile="high",
    video_level="4.0",
    pix_fmt="yuv420p",
    color_matrix="bt709",
    color_primaries="bt709",
    color_transfer="bt709",
    video_bitrate=8_000_000,
    gop_frames=25,
    audio_codec="mp2",
    audio_bitrate=192_000,
    audio_sample_rate=48_000,
    audio_channels=2,
)

SD = HouseProfile(
    name="sd",
    width=720,
    height=576,
    display_aspect=Fraction(4, 3),
    fps=25,
    field_order="tff",
    video_codec="mpeg2video",
    video_profile="main",
    video_level="main",
    pix_fmt="yuv420p",
    color_matrix="bt470bg",
    color_primaries="bt470bg",
    color_transfer="bt470bg",
    video_bitrate=4_000_000,
    gop_frames=25,
    audio_codec="mp2",
    audio_bitrate=192_000,
    audio_sample_rate=48_000,
    audio_channels=2,
)

PROFILES: dict[str, HouseProfile] = {"hd": HD, "sd": SD}


def profile_by_name(name: str) -> HouseProfile:
    try:
        return PROFILES[name.strip().lower()]
    except KeyError:
        raise BadInputError(f"unknown house profile {name!r}: use 'hd' or 'sd'") from None
