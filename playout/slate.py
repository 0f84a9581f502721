"""The emergency slate (应急垫片): encoded once per profile at startup, looped by timestamp.

Playout never encodes at air time. At startup this renders the slate picture,
encodes two intra-only frames in the channel's house codec (two, because
consecutive H.264 IDR pictures must differ in idr_pic_id) and one MP2 frame of
silence, and keeps the bytes. A slate segment of any length is then just these
packets with rebased timestamps. Intra-only frames need no reordering, so any
frame count works and a slate can pad to the exact frame after a cut.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Any, cast

import av
import numpy as np
from av.audio.stream import AudioStream
from av.video.stream import VideoStream
from PIL import Image, ImageDraw, ImageFont

from channels.profiles import HouseProfile
from ingest.fonts import cjk_font
from playout.stream import PlayoutError

logger = logging.getLogger(__name__)

MP2_FRAME_SAMPLES = 1152
MP2_FRAME_TICKS = MP2_FRAME_SAMPLES * 90_000 // 48_000  # 2160 ticks = 24 ms
SLATE_FRAMES = 2


def house_decode_delay(profile: HouseProfile) -> int:
    """Frames between DTS and PTS of a house IDR: MPEG-2 with 2 B-frames 1, x264 B-pyramid 2.

    Slate frames (no reordering) carry the delay of the item before them, so DTS
    runs on without a step at either join; this is the delay before any item aired.
    """
    return 2 if profile.video_codec == "h264" else 1


@dataclass(frozen=True, kw_only=True)
class Slate:
    """Encoded slate packets for one profile, plus a tiny TS carrying stream templates."""

    profile: str
    video_frames: tuple[bytes, ...]  # intra-only access units, played in rotation
    silence: bytes  # one MP2 frame (1152 samples) of digital silence
    template_ts: bytes  # a short mpegts of the two streams: codec parameters for the muxer

    @property
    def max_frame_bytes(self) -> int:
        return max(len(f) for f in self.video_frames)


SLATE_BACKGROUND = (16, 40, 96)
SLATE_INK = (235, 235, 235)


def slate_font_size(profile: HouseProfile) -> int:
    return max(18, profile.height // 18)


def _picture(profile: HouseProfile, text: str) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """A dark blue card with the slate text in Noto Sans CJK (from its wheel, see
    ingest.fonts), so the Chinese renders on any machine."""
    image = Image.new("RGB", (profile.width, profile.height), SLATE_BACKGROUND)
    draw = ImageDraw.Draw(image)
    size = slate_font_size(profile)
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont | None = cjk_font(size)
    if font is None:  # the font wheel is missing (logged): only ASCII can be drawn
        font = ImageFont.load_default(size)
        text = "".join(ch for ch in text if ord(ch) < 128).strip(" ·") or "Sky Classroom"
    box = draw.textbbox((0, 0), text, font=font)
    x = max(0, (profile.width - (box[2] - box[0])) // 2)
    y = (profile.height - (box[3] - box[1])) // 2
    draw.text((x, y), text, fill=SLATE_INK, font=font)
    return np.asarray(image)


def _encoder_name(profile: HouseProfile) -> str:
    return "libx264" if profile.video_codec == "h264" else profile.video_codec


@cache
def build_slate(profile: HouseProfile, text: str) -> Slate:
    """Encode the slate for a profile (cached: once per process and text)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mpegts") as out:
        video = cast(VideoStream, out.add_stream(_encoder_name(profile), rate=profile.fps))
        video.width = profile.width
        video.height = profile.height
        video.pix_fmt = profile.pix_fmt
        video.gop_size = 1
        video.max_b_frames = 0
        video.time_base = Fraction(1, profile.fps)
        # Budget: a slate frame must not exceed the house per-frame rate, or CBR starves.
        video.bit_rate = profile.video_bitrate // 4
        if video.name == "libx264":
            video.options = {
                "preset": "veryfast",
                "tune": "stillimage",
                "x264-params": "keyint=1:min-keyint=1:scenecut=0:bframes=0",
                "profile": profile.video_profile,
                "level": profile.video_level,
            }
        audio = cast(
            AudioStream, out.add_stream(profile.audio_codec, rate=profile.audio_sample_rate)
        )
        audio.layout = "stereo" if profile.audio_channels == 2 else "mono"
        audio.bit_rate = profile.audio_bitrate
        picture = av.VideoFrame.from_ndarray(_picture(profile, text), format="rgb24")
        video_packets: list[bytes] = []
        for index in range(SLATE_FRAMES + 2):
            frame = picture.reformat(format=profile.pix_fmt)
            frame.pts = index
            frame.time_base = Fraction(1, profile.fps)
            for packet in video.encode(frame):
                video_packets.append(bytes(packet))
                out.mux(packet)
        for packet in video.encode(None):
            video_packets.append(bytes(packet))
            out.mux(packet)
        audio_packets: list[bytes] = []
        zeros = np.zeros((1, MP2_FRAME_SAMPLES * profile.audio_channels), dtype=np.int16)
        for index in range(6):
            silence = av.AudioFrame.from_ndarray(zeros, format="s16", layout=audio.layout)
            silence.sample_rate = profile.audio_sample_rate
            silence.pts = index * MP2_FRAME_SAMPLES
            for packet in audio.encode(silence):
                audio_packets.append(bytes(packet))
                out.mux(packet)
    if len(video_packets) < SLATE_FRAMES or len(audio_packets) < 3:
        raise PlayoutError(
            f"slate for profile {profile.name}: the encoder gave {len(video_packets)} video and "
            f"{len(audio_packets)} audio packets: check the PyAV build has {_encoder_name(profile)}"
        )
    frames = tuple(video_packets[-SLATE_FRAMES:])
    budget = profile.video_bitrate // 8 // profile.fps
    if max(len(f) for f in frames) > budget:
        raise PlayoutError(
            f"slate for profile {profile.name}: an intra frame is "
            f"{max(len(f) for f in frames)} bytes, over the {budget}-byte house frame budget"
        )
    logger.info(
        "slate for %s: %d intra frames of %s bytes, MP2 silence %d bytes",
        profile.name,
        len(frames),
        [len(f) for f in frames],
        len(audio_packets[-1]),
    )
    return Slate(
        profile=profile.name,
        video_frames=frames,
        silence=audio_packets[-2],
        template_ts=buffer.getvalue(),
    )
