"""The HTML report: one self-contained page (inline CSS, the graph as an image), Jinja2.

No script or stylesheet from a network: a compliance office files it as it is.
Autoescaping is on, so titles and reasons from schedules cannot inject markup.
"""

from __future__ import annotations

from datetime import datetime

import jinja2

from compliance.offair_loudness import LoudnessLimits
from compliance.reports.graph import loudness_svg, svg_data_uri
from compliance.reports.model import STATUS_OK, ComplianceReport
from core.timecode import frames_to_timecode

SEVERITY_NAMES = {"critical": "严重", "major": "重要", "minor": "一般"}
WEEKDAY_NAMES = (
    "星期一 Mon",
    "星期二 Tue",
    "星期三 Wed",
    "星期四 Thu",
    "星期五 Fri",
    "星期六 Sat",
    "星期日 Sun",
)


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("compliance", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(
    report: ComplianceReport,
    limits: LoudnessLimits | None = None,
    *,
    font_url: str | None = None,
) -> str:
    """The report as one HTML document.

    The page names the usual Chinese system fonts; ``font_url`` adds one more to load
    (the console serves the project's CJK font and passes its URL, so a machine
    without Chinese fonts still shows the text; a filed report stays one small file).
    """
    limits = limits or LoudnessLimits()
    env = _environment()

    def local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
        if value is None:
            return "—"
        text = value.astimezone(report.zone).strftime(fmt)
        return text[:-3] if fmt.endswith("%f") else text  # milliseconds

    env.filters["local"] = local
    env.filters["timecode"] = frames_to_timecode
    graphs = {
        day.day: svg_data_uri(loudness_svg(day.loudness, day.day, report.zone, limits))
        for day in report.days
    }
    bad_hours = {
        reading.key for day in report.days for reading in day.loudness if limits.problems(reading)
    }
    template = env.get_template("report.html.j2")
    return template.render(
        report=report,
        graphs=graphs,
        bad_hours=bad_hours,
        severity_names=SEVERITY_NAMES,
        weekday_names=WEEKDAY_NAMES,
        ok_status=STATUS_OK,
        font_url=font_url,
    )
