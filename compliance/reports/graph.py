"""The hourly loudness graph of a day, as a picture (SVG) that needs no script or network.

One bar per local clock hour from the floor of the scale up to the hour's integrated
loudness measured off air, the GY/T 282 band (-24 ±2 LUFS) shaded behind, a bar outside
it drawn red. Hours without a recording are left empty and marked "–". Its own text is
ASCII: a picture cannot use the page's fonts, and a machine may have no Chinese one.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import date
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from compliance.offair_loudness import LoudnessLimits, LoudnessReading

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 22, 30
FLOOR, CEILING = -50.0, -5.0  # LUFS at the bottom and top of the scale
OK_COLOUR, BAD_COLOUR, BAND_COLOUR = "#2e7d32", "#c62828", "#e3f2e5"


def _y(lufs: float) -> float:
    clamped = min(max(lufs, FLOOR), CEILING)
    return TOP + (CEILING - clamped) / (CEILING - FLOOR) * (HEIGHT - TOP - BOTTOM)


def loudness_svg(
    readings: Sequence[LoudnessReading],
    day: date,
    zone: ZoneInfo,
    limits: LoudnessLimits | None = None,
) -> str:
    """An SVG document: the day's 24 hours of off-air loudness."""
    limits = limits or LoudnessLimits()
    by_hour: dict[int, LoudnessReading] = {}
    for reading in readings:
        local = reading.start.astimezone(zone)
        if local.date() == day:
            by_hour[local.hour] = reading
    slot = (WIDTH - LEFT - RIGHT) / 24
    base = _y(FLOOR)
    low = limits.target_lufs - limits.tolerance_lu
    high = limits.target_lufs + limits.tolerance_lu
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(f'{day.isoformat()} 每小时播出响度 loudness per hour (LUFS)')}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<rect x="{LEFT}" y="{_y(high):.1f}" width="{WIDTH - LEFT - RIGHT}" '
        f'height="{_y(low) - _y(high):.1f}" fill="{BAND_COLOUR}"/>',
    ]
    for tick in (-50, -40, -30, -24, -20, -10):
        y = _y(tick)
        dash = ' stroke-dasharray="4 3"' if tick == limits.target_lufs else ""
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
            f'stroke="#9e9e9e" stroke-width="0.6"{dash}/>'
        )
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    for hour in range(24):
        x = LEFT + hour * slot
        parts.append(
            f'<text x="{x + slot / 2:.1f}" y="{HEIGHT - 12}" text-anchor="middle">{hour:02d}</text>'
        )
        found = by_hour.get(hour)
        value = found.integrated_lufs if found else None
        if found is None or value is None:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{base - 4:.1f}" text-anchor="middle" '
                'fill="#9e9e9e">–</text>'
            )
            continue
        colour = BAD_COLOUR if limits.problems(found) else OK_COLOUR
        top = _y(value)
        parts.append(
            f'<rect x="{x + 3:.1f}" y="{top:.1f}" width="{slot - 6:.1f}" height="{base - top:.1f}" '
            f'fill="{colour}"><title>{hour:02d}:00 {value:.1f} LUFS</title></rect>'
        )
    parts.append(
        f'<text x="{LEFT}" y="14">LUFS · target {limits.target_lufs:.0f} ±'
        f"{limits.tolerance_lu:.0f} LU (GY/T 282)</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts)


def svg_data_uri(svg: str) -> str:
    """The SVG as an image URL, so the report stays one self-contained file."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")
