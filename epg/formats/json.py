"""JSON schedules: {"events": [{"channel": …, "start": …, …}, …]} with the same keys as CSV.

Keys may be English or Chinese like the CSV headers. Problems are reported
as events[N] with N counted from 0, the way JSON tools show array indexes.

Numbers are kept as the text they were written as (validation parses them with
bounded grammars), so neither a 5 000-digit integer nor `1e400` nor `NaN` turns
into a Python number here. A key written twice in one object is refused: JSON
would silently keep the last one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from epg.cells import shown
from epg.errors import ScheduleFormatError
from epg.formats.base import ScheduleReader, cell_value, check_row_count, column_for
from epg.formats.csv import decode
from epg.schedule import CellValue, ScheduleRow


class _Object(dict[str, object]):
    """A JSON object that remembers the first key it saw twice."""

    duplicate: str | None = None


def _object(pairs: list[tuple[str, object]]) -> _Object:
    found = _Object()
    for key, value in pairs:
        if key in found and found.duplicate is None:
            found.duplicate = key
        found[key] = value
    return found


def _kind(value: object) -> str:
    """What a JSON value is, without repr (a deeply nested value would recurse)."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "true/false"
    return type(value).__name__


class JsonReader(ScheduleReader):
    format = "json"
    suffixes = (".json",)

    def rows(self, data: bytes, name: str) -> Iterable[ScheduleRow]:
        try:
            document = json.loads(
                decode(data, name),
                object_pairs_hook=_object,
                parse_int=str,
                parse_float=str,
                parse_constant=str,  # NaN, Infinity: refused by validation at row and field
            )
        except json.JSONDecodeError as exc:
            raise ScheduleFormatError(
                f"{name}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
        except RecursionError:
            raise ScheduleFormatError(
                f"{name}: nested too deeply to be a schedule: write "
                '{"events": [{"channel": …}, …]}'
            ) from None
        if isinstance(document, _Object) and document.duplicate is not None:
            raise ScheduleFormatError(
                f"{name}: the top-level key {shown(document.duplicate)} appears twice, and "
                "JSON would silently keep only the last: keep one"
            )
        events = document.get("events") if isinstance(document, dict) else None
        if not isinstance(events, list):
            raise ScheduleFormatError(f'{name}: expected {{"events": [...]}} at the top level')
        check_row_count(len(events), name, "events")
        rows: list[ScheduleRow] = []
        for index, event in enumerate(events):
            where = f"events[{index}]"
            if not isinstance(event, _Object):
                raise ScheduleFormatError(
                    f"{name}: {where} is {_kind(event)}, not an object: use {{...}}"
                )
            if event.duplicate is not None:
                raise ScheduleFormatError(
                    f"{name}: {where} has the key {shown(event.duplicate)} twice, and JSON "
                    "would silently keep only the last: keep one"
                )
            cells: dict[str, CellValue] = {}
            for key, value in event.items():
                column = column_for(key)
                if column is None:
                    continue
                if column in cells:
                    raise ScheduleFormatError(
                        f"{name}: {where} names '{column}' twice: keep one of the keys"
                    )
                if not isinstance(value, str | None):
                    raise ScheduleFormatError(
                        f"{name}: {where}.{column} must be a string or number, got {_kind(value)}"
                    )
                cells[column] = cell_value(value, name, where, column)
            rows.append(ScheduleRow(where=where, row=index, cells=cells))
        return rows
