"""Pure parsers for schedule cells: dates, Beijing clock times, durations, types, modes.

Each returns a value or raises CellError with a message that says what to write
instead; validation turns that into a Problem at the row and column.

Numbers are parsed by bounded regular grammars, never by Decimal or Fraction on
the raw text: `1e999999999` is twelve bytes, and Fraction would spend minutes
building 10**999999999 before anyone could refuse it.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, time, timedelta

from core.timecode import FPS
from epg.errors import CellError
from epg.rundown import EventType, StartMode
from epg.schedule import CellValue

_US_PER_FRAME = 1_000_000 // FPS  # 40 000 µs at 25 fps
# Broadcast days a schedule may name. 1900 is what a spreadsheet shows for an empty or
# time-only date cell; year 1 and 9999 overflow the UTC conversion of the day.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
MAX_DURATION_SECONDS = 24 * 3600  # nothing on a broadcast day runs longer than the day

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
# Durations: seconds (600, 600.04, 600s), [HH:]MM:SS[.ffffff] or HH:MM:SS:FF. Digit runs are
# bounded, so no cell can ask for a number larger than a day in any notation.
_SECONDS_RE = re.compile(r"^(\d{1,6})(?:\.(\d{1,6}))?\s*s?$")
_CLOCK_DURATION_RE = re.compile(r"^(?:(\d{1,2}):)?(\d{1,2}):(\d{1,2})(?:\.(\d{1,6}))?$")
_TIMECODE_RE = re.compile(r"^(\d{1,2}):(\d{1,2}):(\d{1,2}):(\d{1,2})$")
_SHOWN = 40  # characters of a bad cell quoted back in a message


def shown(text: str) -> str:
    """A cell quoted for a message: repr (so no control character or newline gets through),
    cut to a readable length."""
    if len(text) > _SHOWN:
        return repr(text[:_SHOWN]) + f"… ({len(text)} characters)"
    return repr(text)


def _text(value: CellValue) -> str:
    return "" if value is None else str(value).strip()


def parse_type(value: CellValue) -> EventType:
    text = _text(value)
    found = _TYPE_WORDS.get(text.lower())
    if found is None:
        raise CellError(
            f"unknown type {shown(text)}: use lesson, rerun, break, ad, promo or filler "
            "(课程, 重播, 课间, 广告, 宣传片, 垫片)"
        )
    return found


def parse_mode(value: CellValue) -> StartMode:
    text = _text(value)
    found = _MODE_WORDS.get(text.lower())
    if found is None:
        raise CellError(f"unknown start_mode {shown(text)}: use fixed (定时) or sequential (顺序)")
    return found


def check_day(day: date, text: str) -> date:
    """Refuse a broadcast day outside FIRST_DAY..LAST_DAY (see there for why)."""
    if not FIRST_DAY <= day <= LAST_DAY:
        hint = (
            " (1900 is what a spreadsheet shows for an empty or time-only date cell)"
            if day.year in (1899, 1900)
            else ""
        )
        raise CellError(
            f"{text} is outside the broadcast days a schedule may name "
            f"({FIRST_DAY.year}–{LAST_DAY.year}){hint}: write the day it airs, e.g. 2026-03-02"
        )
    return day


def parse_date(value: CellValue) -> date:
    if isinstance(value, datetime):
        return check_day(value.date(), value.date().isoformat())
    if isinstance(value, date):
        return check_day(value, value.isoformat())
    if isinstance(value, time):  # a spreadsheet's day 0 (1899-12-30) reads back as a time
        raise CellError(
            f"holds the time {value.isoformat()}, not a date (an empty or time-only date "
            "cell reads this way): write the day it airs, e.g. 2026-03-02"
        )
    text = _text(value)
    match = _DATE_RE.match(text)
    if match:
        try:
            day = date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            pass
        else:
            return check_day(day, shown(text))
    raise CellError(f"{shown(text)} is not a date: write YYYY-MM-DD, e.g. 2026-03-02")


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
        carried = check_day(value.date(), value.date().isoformat())
        value = value.time()
    if isinstance(value, time):
        micro = ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000
        return _exact_frames(micro + value.microsecond, f"start {value.isoformat()}"), carried
    text = _text(value)
    match = _CLOCK_RE.match(text)
    if not match:
        raise CellError(
            f"{shown(text)} is not a time: write HH:MM:SS in Beijing time, e.g. 08:00:00"
        )
    hours, minutes, seconds = int(match[1]), int(match[2]), int(match[3] or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise CellError(f"{shown(text)} is not a time of day: use 00:00:00–23:59:59")
    whole = ((hours * 60 + minutes) * 60 + seconds) * FPS
    if match[4] == ":":
        frames = int(match[5])
        if frames >= FPS:
            raise CellError(f"{shown(text)}: timecode frames must be 00–{FPS - 1}")
        return whole + frames, carried
    if match[5]:
        micro = int(match[5].ljust(6, "0"))
        return whole + _exact_frames(micro, f"start {text}"), carried
    return whole, carried


def _micro(seconds: str, fraction: str | None) -> int:
    return int(seconds) * 1_000_000 + int((fraction or "").ljust(6, "0"))


def _text_duration(text: str) -> int:
    """Microseconds of a duration written as text, by the bounded grammars above."""
    if match := _SECONDS_RE.match(text):
        return _micro(match[1], match[2])
    if match := _CLOCK_DURATION_RE.match(text):
        hours, minutes, seconds = int(match[1] or 0), int(match[2]), int(match[3])
        if minutes > 59 or seconds > 59:
            raise CellError(f"{shown(text)}: minutes and seconds must be 00–59")
        return (hours * 3600 + minutes * 60) * 1_000_000 + _micro(match[3], match[4])
    if match := _TIMECODE_RE.match(text):
        hours, minutes, seconds, frames = (int(g) for g in match.groups())
        if minutes > 59 or seconds > 59 or frames >= FPS:
            raise CellError(
                f"{shown(text)}: in HH:MM:SS:FF minutes and seconds are 00–59, frames 00–{FPS - 1}"
            )
        return ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + frames * _US_PER_FRAME
    raise CellError(
        f"{shown(text)} is not a duration: write seconds (600 or 600.04), MM:SS, "
        "HH:MM:SS or HH:MM:SS:FF"
    )


def _number_duration(value: int | float) -> int:
    """Microseconds of a numeric cell (seconds), refusing NaN, infinities and huge values."""
    if not math.isfinite(value) or abs(value) > MAX_DURATION_SECONDS:
        raise CellError(
            f"{shown(str(value))} seconds is not a duration of a broadcast day: "
            f"write seconds up to {MAX_DURATION_SECONDS}, e.g. 600"
        )
    if isinstance(value, int):
        return value * 1_000_000
    # The shortest decimal that round-trips the float: what the spreadsheet cell showed.
    whole, _, fraction = f"{abs(value):.6f}".rstrip("0").partition(".")
    micro = _micro(whole, fraction)
    return -micro if value < 0 else micro


def parse_duration(value: CellValue) -> int:
    """A duration → frames. Seconds as a number, MM:SS, HH:MM:SS(.fff) or HH:MM:SS:FF."""
    if isinstance(value, timedelta):
        micro = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
        what = f"duration {value}"
    elif isinstance(value, time):
        micro = ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000
        micro += value.microsecond
        what = f"duration {value.isoformat()}"
    elif isinstance(value, int | float) and not isinstance(value, bool):
        micro = _number_duration(value)
        what = f"duration {value}"
    else:
        text = _text(value)
        micro = _text_duration(text)
        what = f"duration {shown(text)}"
    if micro <= 0:
        raise CellError("duration must be more than zero")
    if micro > MAX_DURATION_SECONDS * 1_000_000:
        raise CellError(f"{what} is longer than a broadcast day: split it or shorten it")
    return _exact_frames(micro, what)
