"""XLSX schedules (openpyxl): the first sheet, first row the header.

An .xlsx is a zip of XML parts, and a hostile one can be a bomb or carry
entities. Before openpyxl sees the file, `inspect_workbook` inflates every part
once, whatever its name, and refuses:
- more than MAX_PARTS parts, or more than MAX_INFLATED bytes actually inflated
  (counted while streaming: a zip header that understates a size is not believed);
- a DOCTYPE or ENTITY declaration in any part in UTF-8, UTF-16, UTF-32 or EBCDIC,
  and any XML-looking part that expat cannot read cleanly, with DTDs forbidden;
- more than MAX_ELEMENTS elements, MAX_CELLS cells or MAX_ROWS rows, or a malformed
  row number or cell reference in a worksheet;
- taking longer than READ_SECONDS.
openpyxl then reads the first sheet with its claimed dimension ignored and at most
MAX_COLUMNS columns. defusedxml being installed makes openpyxl's own sheet parser
refuse entities too.
"""

from __future__ import annotations

import io
import logging
import re
import time as clock
import warnings
import zipfile
import zlib
from collections.abc import Iterable
from datetime import datetime, time, timedelta
from typing import IO
from xml.parsers import expat

from openpyxl import load_workbook

from epg.cells import shown
from epg.errors import ScheduleFormatError
from epg.formats.base import MAX_COLUMNS, ScheduleReader, check_row_count, table_rows
from epg.schedule import CellValue, ScheduleRow

logger = logging.getLogger(__name__)

MAX_PARTS = 200
MAX_INFLATED = 32 * 1024 * 1024  # all parts together; a 10 000-row week is about 4 MB
MAX_ELEMENTS = 600_000
# Styles, workbook, theme, rels: openpyxl builds an object per element (50 000 styles take
# 3 s); Excel writes a few hundred. Worksheets and shared strings have their own bounds.
MAX_OTHER_ELEMENTS = 20_000
MAX_CELLS = 100_000  # openpyxl reads about 50 000 cells a second
READ_SECONDS = 10.0
_CHUNK = 256 * 1024

# Markup no workbook needs, as it looks in every encoding an XML parser may detect.
_CODECS = ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "cp037", "cp500",
           "cp273", "cp1026", "cp1140", "cp875", "cp424")  # fmt: skip
_FORBIDDEN = tuple({word.encode(codec) for codec in _CODECS for word in ("<!DOCTYPE", "<!ENTITY")})
_OVERLAP = max(len(p) for p in _FORBIDDEN)
# First bytes of XML in encodings no workbook uses (XML 1.0 appendix F).
_ODD_ENCODINGS = {
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\x00<": "UTF-32",
    b"<\x00\x00\x00": "UTF-32",
    b"\x00\x00<\x00": "UCS-4",
    b"\x00<\x00\x00": "UCS-4",
    b"\x4c\x6f\xa7\x94": "EBCDIC",
}
_CELL_REF = re.compile(r"^\$?([A-Za-z]{1,3})\$?(\d{1,7})$")
_ROW_NUMBER = re.compile(r"^\d{1,7}$")


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


def _local(tag: str) -> str:
    return tag.rpartition(":")[2]


class _Part:
    """Checks one part's bytes as they are inflated, chunk by chunk."""

    def __init__(self, inspector: _Inspector, part: str) -> None:
        self.inspector = inspector
        self.part = part
        self.tail = b""
        self.parser: expat.XMLParserType | None = None
        self.sniffed = False
        self.head = b""
        self.worksheet: bool | None = None  # decided by the root element
        self.bounded = False  # a worksheet or the shared strings: bounded by rows and cells
        self.row = 0

    def refuse(self, why: str) -> ScheduleFormatError:
        return ScheduleFormatError(f"{self.inspector.name}: part {shown(self.part)} {why}")

    def feed(self, chunk: bytes, final: bool = False) -> None:
        window = self.tail + chunk
        for pattern in _FORBIDDEN:
            if pattern in window:
                raise self.refuse(
                    "declares a DOCTYPE or ENTITY, which a workbook never needs (it is how XML "
                    "entity attacks start): re-save the file from Excel or WPS"
                )
        self.tail = window[-_OVERLAP:]
        if not self.sniffed:
            self.head += chunk
            if len(self.head) < 4 and not final:
                return
            self.sniffed = True
            self._sniff(self.head)
            chunk, self.head = self.head, b""
        if self.parser is not None:
            try:
                self.parser.Parse(chunk, final)
            except expat.ExpatError as exc:
                raise self.refuse(
                    f"is not well-formed XML ({expat.errors.messages[exc.code]}, line "
                    f"{exc.lineno}): the workbook is damaged; re-save it from Excel or WPS"
                ) from None

    def _sniff(self, head: bytes) -> None:
        """Parse the part as XML if it starts like XML in any encoding; refuse odd encodings."""
        odd = _ODD_ENCODINGS.get(head[:4])
        if odd:
            raise self.refuse(f"is encoded as {odd}, which no workbook uses: re-save it")
        text = head
        for bom in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"):
            if text.startswith(bom):
                text = b"<"  # UTF-8 or UTF-16 with a byte-order mark: XML to expat
                break
        looks_xml = text.lstrip(b" \t\r\n").startswith(b"<") or text[:2] in (b"<\x00", b"\x00<")
        if not looks_xml:
            return  # a binary part (an image, a printer setting): only the byte scan applies
        parser = expat.ParserCreate()
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = self._doctype
        parser.EntityDeclHandler = self._entity
        parser.StartElementHandler = self._element
        self.parser = parser

    def _doctype(self, *_: object) -> None:
        raise self.refuse("declares a DOCTYPE, which a workbook never needs: re-save it")

    def _entity(self, *_: object) -> None:
        raise self.refuse("declares an ENTITY, which a workbook never needs: re-save it")

    def _element(self, tag: str, attrs: dict[str, str]) -> None:
        inspector = self.inspector
        inspector.elements += 1
        if inspector.elements > MAX_ELEMENTS:
            raise self.refuse(
                f"brings the workbook past {MAX_ELEMENTS} XML elements, far more than a week's "
                "schedule: delete unused sheets, rows and formatting, or split the file"
            )
        name = _local(tag)
        if self.worksheet is None:
            self.worksheet = name == "worksheet"
            self.bounded = name in ("worksheet", "sst")
        if not self.bounded:
            inspector.other_elements += 1
            if inspector.other_elements > MAX_OTHER_ELEMENTS:
                raise self.refuse(
                    f"brings the workbook's styles and settings past {MAX_OTHER_ELEMENTS} XML "
                    "elements, far more than Excel writes: re-save only the schedule sheet"
                )
        if not self.worksheet:
            return
        if name == "row":
            number = attrs.get("r")
            if number is None:
                self.row += 1
            elif _ROW_NUMBER.match(number):
                self.row = int(number)
            else:
                raise self.refuse(f"has a malformed row number {shown(number)}: re-save it")
            check_row_count(self.row - 1, inspector.name, f"row {self.row}")
        elif name == "c":
            inspector.cells += 1
            if inspector.cells > MAX_CELLS:
                raise self.refuse(
                    f"has more than {MAX_CELLS} cells, far more than a week's schedule: delete "
                    "unused rows and columns, or split the file"
                )
            ref = attrs.get("r")
            if ref is not None:
                match = _CELL_REF.match(ref)
                if match is None:
                    raise self.refuse(f"has a malformed cell reference {shown(ref)}: re-save it")
                check_row_count(int(match[2]) - 1, inspector.name, f"row {match[2]}")
        if inspector.elements % 4096 == 0:
            inspector.tick()


class _Inspector:
    def __init__(self, name: str) -> None:
        self.name = name
        self.inflated = 0
        self.elements = 0
        self.other_elements = 0
        self.cells = 0
        self.deadline = clock.monotonic() + READ_SECONDS

    def tick(self) -> None:
        if clock.monotonic() > self.deadline:
            raise ScheduleFormatError(
                f"{self.name}: reading the workbook took over {READ_SECONDS:.0f} s: it is far "
                "larger or more complex than a schedule; re-save only the schedule sheet"
            )

    def inspect(self, archive: zipfile.ZipFile) -> None:
        infos = archive.infolist()
        if len(infos) > MAX_PARTS:
            raise ScheduleFormatError(
                f"{self.name}: {len(infos)} parts in the workbook, and a schedule needs far "
                f"fewer than {MAX_PARTS}: re-save only the schedule sheet"
            )
        for info in infos:
            if info.is_dir():
                continue
            if info.file_size > MAX_INFLATED:
                self._too_large(info.filename)
            part = _Part(self, info.filename)
            with archive.open(info) as stream:
                self._pump(stream, part)

    def _pump(self, stream: IO[bytes], part: _Part) -> None:
        while True:
            chunk = stream.read(_CHUNK)
            self.inflated += len(chunk)
            if self.inflated > MAX_INFLATED:
                self._too_large(part.part)
            part.feed(chunk, final=not chunk)
            self.tick()
            if not chunk:
                return

    def _too_large(self, part: str) -> None:
        raise ScheduleFormatError(
            f"{self.name}: part {shown(part)} inflates the workbook past "
            f"{MAX_INFLATED // (1024 * 1024)} MB, far more than a week's schedule (a zip bomb?): "
            "re-save only the schedule sheet"
        )


def _claimed_parts(data: bytes) -> int | None:
    """The entry count in the zip's end-of-central-directory record, read before zipfile
    builds an object per entry (200 000 of them fit in 16 MB)."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
    if end < 0 or end + 22 > len(data):
        return None
    return int.from_bytes(data[end + 10 : end + 12], "little")


def inspect_workbook(data: bytes, name: str) -> None:
    """Refuse a workbook that is damaged, unsafe or too large; see the module docstring."""
    claimed = _claimed_parts(data)
    if claimed is not None and claimed > MAX_PARTS:  # 0xFFFF (zip64) included
        count = f"{claimed}" if claimed < 0xFFFF else "65535 or more"
        raise ScheduleFormatError(
            f"{name}: {count} parts in the workbook, and a schedule needs far fewer than "
            f"{MAX_PARTS}: re-save only the schedule sheet"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise ScheduleFormatError(f"{name}: not an .xlsx workbook: save it as .xlsx") from None
    with archive:
        try:
            _Inspector(name).inspect(archive)
        except ScheduleFormatError:
            raise
        except NotImplementedError as exc:  # a compression method zipfile cannot inflate
            raise ScheduleFormatError(
                f"{name}: uses a zip feature Excel never writes ({exc}): re-save it as .xlsx"
            ) from None
        except RuntimeError as exc:  # an encrypted part
            raise ScheduleFormatError(
                f"{name}: cannot read it ({exc}): save it without a password"
            ) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise ScheduleFormatError(
                f"{name}: the workbook is damaged ({exc}): re-save it from Excel or WPS"
            ) from None


class XlsxReader(ScheduleReader):
    format = "xlsx"
    suffixes = (".xlsx", ".xlsm")

    def rows(self, data: bytes, name: str) -> Iterable[ScheduleRow]:
        inspect_workbook(data, name)
        deadline = clock.monotonic() + READ_SECONDS
        reading = 1  # the row openpyxl is parsing when it raises
        # openpyxl raises many types for a damaged workbook and warns about odd ones: a
        # workbook it cannot read is the operator's file to re-save, never our crash.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            except Exception as exc:
                raise ScheduleFormatError(
                    f"{name}: cannot read the workbook ({_brief(exc)}): re-save it from Excel "
                    "or WPS"
                ) from None
            try:
                if not workbook.worksheets:
                    raise ScheduleFormatError(f"{name}: the workbook has no sheet")
                sheet = workbook.worksheets[0]
                sheet.reset_dimensions()  # the claimed dimension may say A1:XFD1048576
                values = sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True)
                header = next(values, None)
                if header is None:
                    raise ScheduleFormatError(f"{name}: the first sheet is empty")
                body: list[list[CellValue]] = []
                reading = 2
                for number, row in enumerate(values, start=2):
                    check_row_count(number - 1, name, f"row {number}")
                    if number % 512 == 0 and clock.monotonic() > deadline:
                        raise ScheduleFormatError(
                            f"{name}: reading the sheet took over {READ_SECONDS:.0f} s at row "
                            f"{number}: re-save only the schedule sheet"
                        )
                    body.append([_cell(v) for v in row])
                    reading = number + 1
            except ScheduleFormatError:
                raise
            except Exception as exc:
                raise ScheduleFormatError(
                    f"{name}: cannot read the first sheet near row {reading} ({_brief(exc)}): "
                    "fix that cell or re-save the workbook from Excel or WPS"
                ) from None
            finally:
                workbook.close()
        return list(table_rows(list(header), body, name))


def _brief(exc: BaseException) -> str:
    """An exception as a short phrase for a one-line message."""
    text = " ".join(str(exc).split())[:120]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
