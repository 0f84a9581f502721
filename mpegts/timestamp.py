"""The two MPEG-TS clocks and 33-bit timestamp arithmetic.

PTS, DTS and the PCR base count 90 kHz ticks modulo 2^33, so they wrap about every
26.5 h; a channel on air for days crosses the wrap, and a naive "new < old" test would
then report a backwards jump. `TimestampUnwrapper` turns raw values into a monotonic
integer timeline by taking every step as the shortest signed distance modulo 2^33.
"""

from __future__ import annotations

from core.timecode import PTS_MODULUS

PCR_HZ = 27_000_000  # the system clock; the PCR base counts it / 300 (90 kHz)
PCR_MODULUS = PTS_MODULUS * 300  # PCR = base (90 kHz, 33 bits) * 300 + extension (27 MHz)


def signed_delta(new: int, old: int, modulus: int = PTS_MODULUS) -> int:
    """The shortest signed step from `old` to `new` on a clock that wraps at `modulus`."""
    half = modulus // 2
    return (new - old + half) % modulus - half


class TimestampUnwrapper:
    """Maps wrapping 33-bit (or PCR) values onto a continuous integer timeline."""

    __slots__ = ("_last_raw", "_last_unwrapped", "modulus")

    def __init__(self, modulus: int = PTS_MODULUS) -> None:
        self.modulus = modulus
        self._last_raw: int | None = None
        self._last_unwrapped = 0

    def unwrap(self, raw: int) -> int:
        if self._last_raw is None:
            self._last_unwrapped = raw
        else:
            self._last_unwrapped += signed_delta(raw, self._last_raw, self.modulus)
        self._last_raw = raw
        return self._last_unwrapped
