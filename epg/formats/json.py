"""JSON schedules: {"events": [{"channel": …, "start": …, …}, …]} with the same keys as CSV.

Keys may be English or Chinese like the CSV headers. Problems are reported
as events[N] with N counted from 0, the way JSON tools show array indexes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from epg.errors import ScheduleFormatError
from epg.formats.base import ScheduleReader, column_for
from epg.formats.csv import decode
from epg.schedule import CellValue, ScheduleRow


class JsonReader(ScheduleReader):
    format = "json"
    suffixes = (".json",)

    def rows(self, data: bytes, name: str) -> Iterable[ScheduleRow]:
        try:
            document = json.loads(decode(data, name))
        except json.JSONDecodeError as exc:
            raise ScheduleFormatError(
                f"{name}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
        events = document.get("events") if isinstance(document, dict) else None
        if not isinstance(events, list):
            raise ScheduleFormatError(f'{name}: expected {{"events": [...]}} at the top level')
        rows: list[ScheduleRow] = []
        for index, event in enumerate(events):
            where = f"events[{index}]"
            if not isinstance(event, dict):
                raise ScheduleFormatError(f"{name}: {where} is not an object: use {{...}}")
            cells: dict[str, CellValue] = {}
            for key in event:
                column = column_for(key)
                if column is None:
                    continue
                if column in cells:
                    raise ScheduleFormatError(
                        f"{name}: {where} names '{column}' twice: keep one of the keys"
                    )
                value = event[key]
                if isinstance(value, bool) or not isinstance(value, str | int | float | None):
                    raise ScheduleFormatError(
                        f"{name}: {where}.{key} must be a string or number, got {value!r}"
                    )
                if isinstance(value, str):
                    value = value.strip() or None
                cells[column] = value
            rows.append(ScheduleRow(where=where, row=index, cells=cells))
        return rows
