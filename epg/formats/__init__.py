"""Schedule file formats: one reader per format behind ScheduleReader."""

from __future__ import annotations

from pathlib import Path

from epg.errors import ScheduleFormatError
from epg.formats.base import ScheduleReader, header_columns
from epg.formats.csv import CsvReader
from epg.formats.json import JsonReader
from epg.formats.xlsx import XlsxReader

READERS: tuple[ScheduleReader, ...] = (XlsxReader(), CsvReader(), JsonReader())


def reader_for(path: Path) -> ScheduleReader:
    """Pick the reader by file suffix."""
    suffix = path.suffix.lower()
    for reader in READERS:
        if suffix in reader.suffixes:
            return reader
    known = ", ".join(s for r in READERS for s in r.suffixes)
    raise ScheduleFormatError(f"{path}: unknown schedule format {suffix!r}: use {known}")


__all__ = [
    "READERS",
    "CsvReader",
    "JsonReader",
    "ScheduleReader",
    "XlsxReader",
    "header_columns",
    "reader_for",
]
