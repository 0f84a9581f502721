"""Pure parsers for schedule cells: dates, Beijing clock times, durations, types, modes.

Each returns a value or raises CellError with a message that says what to write
instead; validation turns that into a Problem at the row and column.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from fractions import Fraction

from core.timecode import FPS
from epg.rundown import EventType, StartMode
from epg.schedule import CellValue

_US_PER_FRAME = 1_000_000 // FPS  # 40 000 µs at 25 fps


class CellError(ValueError):
    """A cell's value cannot be used; the message says what to write."""


_TYPE_WORDS = {
    "lesson": EventType.LESSON,
    "课程": EventType.LESSON,
    "rerun": EventType.RERUN,
    "重播": EventType.RERUN,
    "break": EventType.BREAK,
    "课间": EventType.BREAK,
    "休息": EventType.BREAK,
    "ad": EventType.AD,
    "广告": EventType.AD,
    "promo": EventType.PROMO,
    "宣传片": EventType.PROMO,
    "filler": EventType.FILLER,
    "垫片": EventType.FILLER,
}
_MODE_WORDS = {
    "fixed": StartMode.FIXED,
    "定时": StartMode.FIXED,
    "定时播出": StartMode.FIXED,
    "sequential": StartMode.SEQUENTIAL,
    "顺序": StartMode.SEQUENTIAL,
    "顺序播出": StartMode.SEQUENTIAL,
}
_DATE_RE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
_CLOCK_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:([.:])(\d{1,6}))?)?$")


def parse_type(value: CellValue) -> EventType:
    text = "" if value is None else str(value).strip()
    found = _TYPE_WORDS.get(text.lower())
    if found is None:
        raise CellError(
            f"unknown type {text!r}: use lesson, rerun, break, ad, promo or filler "
            "(课程, 重播, 课间, 广告, 宣传片, 垫片)"
        )
    return found


def parse_mode(value: CellValue) -> StartMode:
    text = "" if value is None else str(value).strip()
    found = _MODE_WORDS.get(text.lower())
    if found is None:
        raise CellError(f"unknown start_mode {text!r}: use fixed (定时) or sequential (顺序)")
    return found


def parse_date(value: CellValue) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = "" if value is None else str(value).strip()
    match = _DATE_RE.match(text)
    if match:
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            pass
    raise CellError(f"{text!r} is not a date: write YYYY-MM-DD, e.g. 2026-03-02")


def _exact_frames(microseconds: int, what: str) -> int:
    frames, rest = divmod(microseconds, _US_PER_FRAME)
    if rest:
        raise CellError(
            f"{what} is not on a frame boundary (25 fps = 40 ms per frame): "
            f"round it to a multiple of 40 ms, e.g. .{(frames * _US_PER_FRAME) % 1_000_000:06d}"
        )
    return frames


def parse_clock(value: CellValue) -> tuple[int, date | None]:
    """A Beijing wall-clock time → (frames after 00:00, the date if the cell carried one).

    Accepts HH:MM, HH:MM:SS, HH:MM:SS.ffffff, HH:MM:SS:FF (timecode frames) and
    spreadsheet time or datetime cells. Refuses a time off the 25 fps grid.
    """
    carried: date | None = None
    if isinstance(value, datetime):
        carried = value.date()
        value = value.time()
    if isinstance(value, time):
        micro = ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000
        return _exact_frames(micro + value.microsecond, f"start {value.isoformat()}"), carried
    text = "" if value is None else str(value).strip()
    match = _CLOCK_RE.match(text)
    if not match:
        raise CellError(f"{text!r} is not a time: write HH:MM:SS in Beijing time, e.g. 08:00:00")
    hours, minutes, seconds = int(match[1]), int(match[2]), int(match[3] or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise CellError(f"{text!r} is not a time of day: use 00:00:00–23:59:59")
    whole = ((hours * 60 + minutes) * 60 + seconds) * FPS
    if match[4] == ":":
        frames = int(match[5])
        if frames >= FPS:
            raise CellError(f"{text!r}: timecode frames must be 00–{FPS - 1}")
        return whole + frames, carried
    if match[5]:
        micro = int(match[5].ljust(6, "0"))
        return whole + _exact_frames(micro, f"start {text}"), carried
    return whole, carried


def _fraction_frames(seconds: Fraction, text: str) -> int:
    frames = seconds * FPS
    if frames.denominator != 1:
        raise CellError(f"duration {text} is not a whole number of frames (40 ms each)")
    return int(frames)


def parse_duration(value: CellValue) -> int:
    """A duration → frames. Seconds as a number, MM:SS, HH:MM:SS(.fff) or HH:MM:SS:FF."""
    if isinstance(value, timedelta):
        micro = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
        frames = _exact_frames(micro, f"duration {value}")
    elif isinstance(value, time):
        micro = ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000
        frames = _exact_frames(micro + value.microsecond, f"duration {value.isoformat()}")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        frames = _fraction_frames(Fraction(str(value)), str(value))
    else:
        text = "" if value is None else str(value).strip()
        parts = text.split(":")
        try:
            if len(parts) == 1:
                frames = _fraction_frames(Fraction(text.removesuffix("s")), text)
            elif len(parts) == 4:
                h, m, s, f = (int(p) for p in parts)
                if f >= FPS or m > 59 or s > 59:
                    raise ValueError
                frames = ((h * 60 + m) * 60 + s) * FPS + f
            elif len(parts) in (2, 3):
                h = int(parts[0]) if len(parts) == 3 else 0
                m = int(parts[-2])
                seconds = Fraction(parts[-1])
                if m > 59 or seconds >= 60 or seconds < 0:
                    raise ValueError
                frames = _fraction_frames(seconds, text) + (h * 60 + m) * 60 * FPS
            else:
                raise ValueError
        except CellError:
            raise
        except (ValueError, ArithmeticError):
            raise CellError(
                f"{text!r} is not a duration: write seconds (600) or MM:SS / HH:MM:SS"
            ) from None
    if frames <= 0:
        raise CellError("duration must be more than zero")
    return frames
