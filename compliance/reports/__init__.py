"""Compliance reports a compliance office can file: HTML (daily, weekly), CSV, BXF as-run.

``gather_report`` collects the facts of a channel and period into a ``ComplianceReport``;
``render_html``, ``render_csv`` and ``render_bxf`` write it out.
"""

from compliance.reports.bxf import render_bxf
from compliance.reports.csv import protect, render_csv
from compliance.reports.gather import gather_report
from compliance.reports.html import render_html
from compliance.reports.model import AiredRow, ComplianceReport, DayReport, build_report, period

__all__ = [
    "AiredRow",
    "ComplianceReport",
    "DayReport",
    "build_report",
    "gather_report",
    "period",
    "protect",
    "render_bxf",
    "render_csv",
    "render_html",
]
