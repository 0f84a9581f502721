"""CSV schedules: UTF-8 with or without a BOM, or GB18030 (what Chinese Excel saves)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from epg.errors import ScheduleFormatError
from epg.formats.base import ScheduleReader, table_rows
from epg.schedule import ScheduleRow


def decode(data: bytes, name: str) -> str:
    """UTF-8 (BOM optional) first; GB18030 when the bytes are not UTF-8."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ScheduleFormatError(
            f"{name}: neither UTF-8 nor GB18030 (byte {exc.start}): save the CSV as UTF-8"
        ) from None


class CsvReader(ScheduleReader):
    format = "csv"
    suffixes = (".csv", ".txt")

    def rows(self, data: bytes, name: str) -> Iterable[ScheduleRow]:
        # strict: a quote left open at the end of the file is a file cut short, not a cell.
        reader = csv.reader(io.StringIO(decode(data, name), newline=""), strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise ScheduleFormatError(f"{name}: empty file: add a header row") from None
        except csv.Error as exc:
            raise ScheduleFormatError(f"{name}: line 1: not CSV ({exc})") from None
        try:
            # table_rows stops at MAX_ROWS, so a huge file is not split into lists first.
            return list(table_rows(header, reader, name))
        except csv.Error as exc:
            raise ScheduleFormatError(
                f"{name}: line {reader.line_num}: not CSV ({exc}): the file may be cut short; "
                "save it again from the spreadsheet"
            ) from None
