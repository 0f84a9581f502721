"""How the console shows an asset's QC report: loudness figures and a timeline picture.

The timeline is an SVG drawn from the stored report (``Asset.qc``): one lane each
for black, freeze and silence, segments at their times, minute ticks below. It is
the same picture inline in the asset page and at /api/assets/{id}/qc-timeline.svg.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from ingest import Asset

GY_T_282_TARGET = -24.0  # LUFS
GY_T_282_TOLERANCE = 2.0  # LU either side (compliance uses ±2, ingest aims for ±0.5)
GY_T_282_MAX_TRUE_PEAK = -2.0  # dBTP

LANES = (
    ("black", "黑场 black", "#222222"),
    ("freeze", "静帧 freeze", "#1f6fd1"),
    ("silence", "静音 silence", "#d1781f"),
)


@dataclass(frozen=True, kw_only=True)
class LoudnessRow:
    label: str
    before: str
    after: str
    ok: bool | None  # None: no rule for this figure


def _fmt(value: Any, unit: str) -> str:
    if isinstance(value, int | float):
        return f"{value:.1f} {unit}"
    return "—"


def loudness_rows(asset: Asset) -> list[LoudnessRow]:
    """The loudness figures before and after normalization, judged against GY/T 282-2014."""
    before: Mapping[str, Any] = asset.loudness_before or {}
    after: Mapping[str, Any] = asset.loudness_after or asset.qc.get("loudness", {}) or {}
    integrated = after.get("integrated_lufs")
    peak = after.get("true_peak_dbtp")
    return [
        LoudnessRow(
            label="综合响度 Integrated",
            before=_fmt(before.get("integrated_lufs"), "LUFS"),
            after=_fmt(integrated, "LUFS"),
            ok=(
                abs(integrated - GY_T_282_TARGET) <= GY_T_282_TOLERANCE
                if isinstance(integrated, int | float)
                else None
            ),
        ),
        LoudnessRow(
            label="真峰值 True peak",
            before=_fmt(before.get("true_peak_dbtp"), "dBTP"),
            after=_fmt(peak, "dBTP"),
            ok=peak <= GY_T_282_MAX_TRUE_PEAK if isinstance(peak, int | float) else None,
        ),
        LoudnessRow(
            label="响度范围 LRA",
            before=_fmt(before.get("lra"), "LU"),
            after=_fmt(after.get("lra"), "LU"),
            ok=None,
        ),
        LoudnessRow(
            label="最大短期响度 Max short-term",
            before=_fmt(before.get("max_short_term_lufs"), "LUFS"),
            after=_fmt(after.get("max_short_term_lufs"), "LUFS"),
            ok=None,
        ),
    ]


def _segments(qc: Mapping[str, Any], lane: str) -> list[tuple[float, float]]:
    out = []
    raw = qc.get(lane, [])
    for item in raw if isinstance(raw, Sequence) else []:
        if not isinstance(item, Mapping):
            continue
        start, end = item.get("start"), item.get("end")
        if isinstance(start, int | float) and isinstance(end, int | float) and end >= start:
            out.append((float(start), float(end)))
    return out


def timeline_svg(asset: Asset, *, width: int = 720) -> str:
    """The QC timeline of an asset as a self-contained SVG document fragment."""
    duration = max(asset.duration_seconds, 0.04)
    left, lane_h, gap = 110, 18, 6
    plot = width - left - 24  # room for the last tick's label
    height = len(LANES) * (lane_h + gap) + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="qc-timeline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="QC timeline of {escape(asset.asset_id)}">'
    ]
    for index, (lane, label, colour) in enumerate(LANES):
        y = index * (lane_h + gap)
        parts.append(
            f'<text x="0" y="{y + 13}" font-size="12" fill="#333">{escape(label)}</text>'
            f'<rect x="{left}" y="{y}" width="{plot}" height="{lane_h}" fill="#eef3ee" />'
        )
        for start, end in _segments(asset.qc, lane):
            x = left + plot * min(start, duration) / duration
            w = max(1.5, plot * (min(end, duration) - min(start, duration)) / duration)
            parts.append(
                f'<rect class="seg seg-{lane}" x="{x:.1f}" y="{y}" width="{w:.1f}" '
                f'height="{lane_h}" fill="{colour}"><title>{escape(label)} '
                f"{start:.1f}–{end:.1f} s</title></rect>"
            )
    axis_y = len(LANES) * (lane_h + gap) + 12
    step = 60.0 if duration > 180 else 10.0
    tick = 0.0
    while tick <= duration + 1e-6:
        x = left + plot * tick / duration
        minutes, seconds = divmod(int(tick), 60)
        parts.append(
            f'<line x1="{x:.1f}" y1="{axis_y - 10}" x2="{x:.1f}" y2="{axis_y - 6}" '
            f'stroke="#666" /><text x="{x:.1f}" y="{axis_y + 8}" font-size="10" '
            f'text-anchor="middle" fill="#666">{minutes}:{seconds:02d}</text>'
        )
        tick += step
    parts.append("</svg>")
    return "".join(parts)
