from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core import FrozenClock, frames_to_ticks, frames_to_timecode, seconds_to_frames
from core.timecode import FRAME_TICKS, PTS_MODULUS


def test_frame_and_tick_arithmetic_is_integer() -> None:
    assert FRAME_TICKS == 3600
    assert frames_to_ticks(25) == 90_000
    assert seconds_to_frames(16 * 60) == 24_000
    assert frames_to_timecode(25 * 3600 + 25 * 61 + 3) == "01:01:01:03"
    assert PTS_MODULUS == 8_589_934_592


def test_exact_frames_refuses_off_grid_times() -> None:
    assert seconds_to_frames(1.2, exact=True) == 30
    with pytest.raises(ValueError, match="frame boundary"):
        seconds_to_frames(1.21, exact=True)


def test_frozen_clock_moves_only_when_told() -> None:
    beijing = timezone(timedelta(hours=8))
    clock = FrozenClock(datetime(2026, 9, 1, 8, 0, tzinfo=beijing))
    assert clock.now() == datetime(2026, 9, 1, 0, 0, tzinfo=UTC)
    clock.advance(1.5)
    assert clock.now() == datetime(2026, 9, 1, 0, 0, 1, 500_000, tzinfo=UTC)
    assert clock.monotonic() == 1.5
    with pytest.raises(ValueError):
        FrozenClock(datetime(2026, 9, 1))
