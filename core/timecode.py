"""Integer time on the channel timeline: frames at 25 fps and 90 kHz ticks.

Positions are never floats: a float seconds value accumulates error over a
broadcast day, an integer frame count does not.
"""

from __future__ import annotations

from fractions import Fraction

FPS = 25
TICKS_PER_SECOND = 90_000
FRAME_TICKS = TICKS_PER_SECOND // FPS  # 3600 ticks per frame at 25 fps
PTS_MODULUS = 1 << 33  # MPEG-TS PTS/DTS/PCR base wrap (about 26.5 h)


def frames_to_ticks(frames: int) -> int:
    return frames * FRAME_TICKS


def frames_to_seconds(frames: int) -> Fraction:
    return Fraction(frames, FPS)


def seconds_to_frames(seconds: float | Fraction, *, exact: bool = False) -> int:
    """Whole frames in a duration; with exact=True refuse one off the frame grid."""
    value = Fraction(seconds).limit_denominator(1_000_000) * FPS
    if exact and value.denominator != 1:
        raise ValueError(f"{float(seconds)} s is not on a {FPS} fps frame boundary")
    return round(value)


def frames_to_timecode(frames: int) -> str:
    """SMPTE-style HH:MM:SS:FF (non-drop, 25 fps)."""
    sign = "-" if frames < 0 else ""
    frames = abs(frames)
    seconds, ff = divmod(frames, FPS)
    minutes, ss = divmod(seconds, 60)
    hh, mm = divmod(minutes, 60)
    return f"{sign}{hh:02d}:{mm:02d}:{ss:02d}:{ff:02d}"
