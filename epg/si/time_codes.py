"""MJD + BCD time fields of EN 300 468 Annex C.

A UTC time is 5 bytes: 16-bit Modified Julian Date, then hh mm ss as six BCD
digits. A duration is 3 bytes hh mm ss in BCD. All-ones means "undefined"
(NVOD reference events); decoders return None for it.

MJD is computed from the proleptic Gregorian ordinal, which is exactly what the
Annex C formulae approximate; 16 bits reach MJD 65535 = 2038-04-22, so later
dates are refused rather than silently wrapped.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from epg.si.errors import SiDecodeError, SiInputError

MJD_EPOCH = date(1858, 11, 17)
_MJD_EPOCH_ORDINAL = MJD_EPOCH.toordinal()
MAX_MJD = 0xFFFF
MAX_DURATION_SECONDS = 99 * 3600 + 59 * 60 + 59
UNDEFINED_TIME = b"\xff" * 5
UNDEFINED_DURATION = b"\xff" * 3


def mjd_from_date(day: date) -> int:
    """Modified Julian Date of ``day`` (1993-10-13 -> 49273 = 0xC079)."""
    mjd = day.toordinal() - _MJD_EPOCH_ORDINAL
    if not 0 <= mjd <= MAX_MJD:
        raise SiInputError(f"date {day.isoformat()} is outside the 16-bit MJD range 1858..2038")
    return mjd


def date_from_mjd(mjd: int) -> date:
    """The calendar date of a Modified Julian Date."""
    return MJD_EPOCH + timedelta(days=mjd)


def _bcd(value: int) -> int:
    return ((value // 10) << 4) | (value % 10)


def _from_bcd(byte: int, field: str) -> int:
    high, low = byte >> 4, byte & 0x0F
    if high > 9 or low > 9:
        raise SiDecodeError(f"{field}: 0x{byte:02X} is not a BCD byte")
    return high * 10 + low


def utc_datetime(moment: datetime, field: str = "time") -> datetime:
    """``moment`` in UTC; naive datetimes are refused because SI time is always UTC."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise SiInputError(f"{field}: naive datetime {moment.isoformat()}; pass an aware datetime")
    return moment.astimezone(UTC)


def encode_utc_time(moment: datetime) -> bytes:
    """5-byte MJD + BCD UTC time; sub-second parts are dropped (the field has none)."""
    utc = utc_datetime(moment)
    mjd = mjd_from_date(utc.date())
    return bytes((mjd >> 8, mjd & 0xFF, _bcd(utc.hour), _bcd(utc.minute), _bcd(utc.second)))


def decode_utc_time(data: bytes) -> datetime | None:
    """Inverse of :func:`encode_utc_time`; None for the all-ones "undefined" value."""
    if len(data) != 5:
        raise SiDecodeError(f"UTC time needs 5 bytes, got {len(data)}")
    if data == UNDEFINED_TIME:
        return None
    day = date_from_mjd((data[0] << 8) | data[1])
    hour = _from_bcd(data[2], "hour")
    minute = _from_bcd(data[3], "minute")
    second = _from_bcd(data[4], "second")
    if hour > 23 or minute > 59 or second > 59:
        raise SiDecodeError(f"UTC time {data.hex()} has an impossible hh:mm:ss")
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


def encode_duration(seconds: int) -> bytes:
    """3-byte BCD hhmmss; EIT durations stop at 99:59:59."""
    if not 0 <= seconds <= MAX_DURATION_SECONDS:
        raise SiInputError(f"duration {seconds} s is outside 0..{MAX_DURATION_SECONDS} s")
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return bytes((_bcd(hours), _bcd(minutes), _bcd(secs)))


def decode_duration(data: bytes) -> int | None:
    """Seconds from a 3-byte BCD duration; None for the all-ones "undefined" value."""
    if len(data) != 3:
        raise SiDecodeError(f"duration needs 3 bytes, got {len(data)}")
    if data == UNDEFINED_DURATION:
        return None
    hours = _from_bcd(data[0], "duration hours")
    minutes = _from_bcd(data[1], "duration minutes")
    seconds = _from_bcd(data[2], "duration seconds")
    return hours * 3600 + minutes * 60 + seconds


def encode_offset(minutes: int) -> bytes:
    """16-bit BCD hhmm of a local time offset's magnitude (local_time_offset_descriptor)."""
    if not 0 <= minutes <= 99 * 60 + 59:
        raise SiInputError(f"time offset {minutes} min does not fit BCD hhmm")
    hours, mins = divmod(minutes, 60)
    return bytes((_bcd(hours), _bcd(mins)))


def decode_offset(data: bytes) -> int:
    """Minutes from a 2-byte BCD hhmm offset."""
    return _from_bcd(data[0], "offset hours") * 60 + _from_bcd(data[1], "offset minutes")


def zone_offsets(zone: ZoneInfo, now: datetime) -> tuple[int, datetime, int]:
    """The TOT's local time offset for ``zone`` at ``now``, from the zone database.

    Returns (offset now in minutes, UTC instant of the next change, offset after it).
    A zone with no change in the coming year (China keeps +08:00) gives 00:00 UTC on
    1 January of the next year and the same offset: a future date that changes once
    a year, not with every section.
    """
    moment = utc_datetime(now, "now")

    def minutes_at(instant: datetime) -> int:
        offset = instant.astimezone(zone).utcoffset() or timedelta(0)
        return int(offset.total_seconds()) // 60

    current = minutes_at(moment)
    day = moment
    for _ in range(366):  # daily steps, then bisect to the second
        following = day + timedelta(days=1)
        if minutes_at(following) != current:
            low, high = day, following
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if minutes_at(middle) == current:
                    low = middle
                else:
                    high = middle
            change = high.replace(microsecond=0)
            return current, change, minutes_at(change)
        day = following
    return current, datetime(moment.year + 1, 1, 1, tzinfo=UTC), current
