"""SI text fields (EN 300 468 Annex A): a character-table selector byte, then the text.

Chinese receivers expect GB2312 (selector 0x13), so it is the default. A string
with any character outside GB2312 (an emoji, a rare 汉字 such as 𠀀 from CJK
Extension B, a character only GBK/GB18030 has) is coded as UTF-8 (selector 0x15)
instead, string by string, so one odd title never garbles the rest of the guide.
Callers may also ask for UTF-8 throughout.

A line break is the DVB CR/LF control code, which Annex A places at 0xE08A for
two-byte tables (GB2312) and at U+E08A for UTF-8. Other C0/C1 controls are
dropped. Length limits count the selector and never cut a character in half.
"""

from __future__ import annotations

import re
from enum import StrEnum

from epg.si.errors import SiInputError


class TextEncoding(StrEnum):
    """Which character table to prefer for SI strings."""

    GB2312 = "gb2312"  # selector 0x13, Chinese Character Table GB-2312-1980
    UTF8 = "utf-8"  # selector 0x15, UTF-8 encoding of ISO/IEC 10646


SELECTOR: dict[TextEncoding, bytes] = {TextEncoding.GB2312: b"\x13", TextEncoding.UTF8: b"\x15"}
_LINE_BREAK: dict[TextEncoding, bytes] = {
    TextEncoding.GB2312: b"\xe0\x8a",
    TextEncoding.UTF8: "\ue08a".encode(),
}
# Python's gb2312 codec maps 0xA1A4 and 0xA1AA to U+30FB and U+2015, where GB18030
# (and every Chinese text editor) uses U+00B7 "·" and U+2014 "—": translate first, so
# 人物·传记 or 第一课——复习 stay in GB2312. Decoding uses GB18030, which maps back.
_GB2312_FIXUPS = str.maketrans({"\u00b7": "\u30fb", "\u2014": "\u2015"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PRIVATE_CONTROL = re.compile("[\ue080-\ue09f]")


def resolve_encoding(text: str, preferred: TextEncoding = TextEncoding.GB2312) -> TextEncoding:
    """The table ``text`` will actually use: ``preferred`` unless GB2312 cannot hold it."""
    if preferred is TextEncoding.UTF8:
        return preferred
    try:
        _CONTROL.sub("", text).translate(_GB2312_FIXUPS).encode("gb2312")
    except UnicodeEncodeError:
        return TextEncoding.UTF8
    return preferred


def _units(text: str, encoding: TextEncoding) -> list[bytes]:
    """Encoded bytes of each character: the indivisible pieces for length limits."""
    codec = encoding.value
    if encoding is TextEncoding.GB2312:
        text = text.translate(_GB2312_FIXUPS)
    units = []
    for char in text.replace("\r\n", "\n"):
        if char == "\n":
            units.append(_LINE_BREAK[encoding])
        elif not _CONTROL.match(char):
            units.append(char.encode(codec))
    return units


def encode_text(
    text: str, *, encoding: TextEncoding = TextEncoding.GB2312, max_bytes: int = 255
) -> bytes:
    """Selector + coded text, at most ``max_bytes`` long in total; "" codes as no bytes."""
    if max_bytes < 0:
        raise SiInputError(f"max_bytes must not be negative, got {max_bytes}")
    if not text or max_bytes < 2:
        return b""
    resolved = resolve_encoding(text, encoding)
    if not _CONTROL.search(text):
        if resolved is TextEncoding.GB2312:
            text = text.translate(_GB2312_FIXUPS)
        body = text.encode(resolved.value)
        if len(body) < max_bytes:
            return SELECTOR[resolved] + body
    chunks = _pack(_units(text, resolved), max_bytes - 1, max_chunks=1)
    return SELECTOR[resolved] + chunks[0] if chunks and chunks[0] else b""


def split_text(
    text: str,
    *,
    encoding: TextEncoding = TextEncoding.GB2312,
    chunk_bytes: int,
    max_chunks: int,
) -> list[bytes]:
    """``text`` cut into at most ``max_chunks`` coded strings of ``chunk_bytes`` each.

    Every chunk carries its own selector (decoders read each text field on its
    own) and all chunks use the same table. Text beyond the last chunk is dropped.
    """
    if not text or chunk_bytes < 2 or max_chunks < 1:
        return []
    resolved = resolve_encoding(text, encoding)
    selector = SELECTOR[resolved]
    return [selector + c for c in _pack(_units(text, resolved), chunk_bytes - 1, max_chunks)]


def _pack(units: list[bytes], limit: int, max_chunks: int) -> list[bytes]:
    chunks: list[bytes] = []
    current = bytearray()
    for unit in units:
        if len(current) + len(unit) > limit:
            chunks.append(bytes(current))
            if len(chunks) == max_chunks:
                return chunks
            current = bytearray()
        current += unit
    if current:
        chunks.append(bytes(current))
    return chunks


def _decode_gb2312(body: bytes) -> str:
    """GB2312 with 0xE080..0xE09F control codes; GB18030 decodes, as receivers tolerate GBK."""
    if b"\xe0" not in body:
        return body.decode("gb18030", errors="replace")
    parts: list[str] = []
    start = index = 0
    while index < len(body):
        byte = body[index]
        if byte < 0x80:
            index += 1
            continue
        if byte == 0xE0 and index + 1 < len(body) and 0x80 <= body[index + 1] <= 0x9F:
            parts.append(body[start:index].decode("gb18030", errors="replace"))
            if body[index + 1] == 0x8A:
                parts.append("\n")
            index += 2
            start = index
            continue
        index += 2
    parts.append(body[start:].decode("gb18030", errors="replace"))
    return "".join(parts)


def _decode_single_byte(body: bytes, codec: str) -> str:
    body = body.replace(b"\x8a", b"\n")
    try:
        text = body.decode(codec, errors="replace")
    except LookupError:  # a reserved table number (e.g. ISO/IEC 8859-12 does not exist)
        text = body.decode("latin-1")
    return _CONTROL.sub(lambda m: m.group() if m.group() == "\n" else "", text)


def decode_text(data: bytes) -> str:
    """Decode an SI text field by its selector byte (Annex A, Table A.3).

    Handles the tables seen in Chinese and European streams: GB2312, UTF-8,
    UCS-2, Big5, KS X 1001, ISO/IEC 8859-n. The default table (no selector) is
    read as Latin-1, which agrees with ISO/IEC 6937 on ASCII.
    """
    if not data:
        return ""
    first = data[0]
    if first >= 0x20:
        return _decode_single_byte(data, "latin-1")
    body = data[1:]
    if first == 0x13:
        return _decode_gb2312(body)
    if first == 0x15:
        text = body.decode("utf-8", errors="replace").replace("\ue08a", "\n")
        return _PRIVATE_CONTROL.sub("", text)
    if first == 0x11:
        text = body.decode("utf-16-be", errors="replace").replace("\ue08a", "\n")
        return _PRIVATE_CONTROL.sub("", text)
    if first == 0x14:
        return body.decode("big5", errors="replace")
    if first == 0x12:
        return body.decode("euc-kr", errors="replace")
    if 0x01 <= first <= 0x0B:
        return _decode_single_byte(body, f"iso8859-{first + 4}")
    if first == 0x10 and len(data) >= 3:
        return _decode_single_byte(data[3:], f"iso8859-{data[2]}")
    return body.decode("utf-8", errors="replace")
