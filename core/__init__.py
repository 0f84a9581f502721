"""Bottom layer shared by every skyclass package: errors, ORM base, clock, timecode.

It imports nothing of ours, so every package may depend on it without an arrow
pointing upwards.
"""

from core.clock import Clock, FrozenClock, SystemClock
from core.errors import BadInputError, SkyclassError
from core.orm import Base, UtcDateTime
from core.timecode import (
    FPS,
    FRAME_TICKS,
    PTS_MODULUS,
    TICKS_PER_SECOND,
    frames_to_seconds,
    frames_to_ticks,
    frames_to_timecode,
    seconds_to_frames,
)

__all__ = [
    "FPS",
    "FRAME_TICKS",
    "PTS_MODULUS",
    "TICKS_PER_SECOND",
    "BadInputError",
    "Base",
    "Clock",
    "FrozenClock",
    "SkyclassError",
    "SystemClock",
    "UtcDateTime",
    "frames_to_seconds",
    "frames_to_ticks",
    "frames_to_timecode",
    "seconds_to_frames",
]
