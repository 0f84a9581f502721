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
        reader = csv.reader(io.StringIO(decode(data, name), newline=""))
        try:
            header = next(reader)
        except StopIteration:
            raise ScheduleFormatError(f"{name}: empty file: add a header row") from None
        except csv.Error as exc:
            raise ScheduleFormatError(f"{name}: not CSV ({exc})") from None
        try:
            body = list(reader)
        except csv.Error as exc:
            raise ScheduleFormatError(f"{name}: line {reader.line_num}: not CSV ({exc})") from None
        return list(table_rows(header, body, name))
