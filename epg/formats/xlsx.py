"""XLSX schedules (openpyxl): the first sheet, first row the header.

An .xlsx is a zip of XML parts. openpyxl parses them with the standard
library's expat, which does not fetch external entities; we refuse any part
with a DOCTYPE before openpyxl sees it, so no entity of any kind is expanded.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from datetime import datetime, time, timedelta

from openpyxl import load_workbook

from epg.errors import ScheduleFormatError
from epg.formats.base import ScheduleReader, table_rows
from epg.schedule import CellValue, ScheduleRow

_MAX_PART_BYTES = 64 * 1024 * 1024


def _round_ms(value: time) -> time:
    """Excel stores times as day fractions: round to the millisecond it can represent."""
    micro = round(value.microsecond / 1000) * 1000
    whole = datetime.combine(datetime.min, value.replace(microsecond=0))
    return (whole + timedelta(microseconds=micro)).time()


def _cell(value: object) -> CellValue:
    if isinstance(value, datetime):
        return value.replace(microsecond=round(value.microsecond / 1000) * 1000 % 1_000_000)
    if isinstance(value, time):
        return _round_ms(value)
    if value is None or isinstance(value, str | int | float | timedelta):
        return value
    return str(value)


class XlsxReader(ScheduleReader):
    format = "xlsx"
    suffixes = (".xlsx", ".xlsm")

    def rows(self, data: bytes, name: str) -> Iterable[ScheduleRow]:
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile:
            raise ScheduleFormatError(f"{name}: not an .xlsx workbook: save it as .xlsx") from None
        with archive:
            for info in archive.infolist():
                if not info.filename.endswith((".xml", ".rels")):
                    continue
                if info.file_size > _MAX_PART_BYTES:
                    raise ScheduleFormatError(f"{name}: part {info.filename} is too large")
                if b"<!DOCTYPE" in archive.read(info).upper():
                    raise ScheduleFormatError(
                        f"{name}: part {info.filename} declares a DOCTYPE, which a workbook "
                        "never needs: re-save the file from Excel or WPS"
                    )
        try:
            workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a damaged workbook
            raise ScheduleFormatError(f"{name}: cannot read the workbook ({exc})") from None
        try:
            sheet = workbook.worksheets[0]
            values = sheet.iter_rows(values_only=True)
            try:
                header = next(values)
            except StopIteration:
                raise ScheduleFormatError(f"{name}: the first sheet is empty") from None
            body = [[_cell(v) for v in row] for row in values]
        finally:
            workbook.close()
        return list(table_rows(list(header), body, name))
