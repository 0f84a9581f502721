"""MJD/BCD time and text coding against published vectors (CRC: tests/mpegts)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from epg.si.errors import SiDecodeError, SiInputError
from epg.si.text import TextEncoding, decode_text, encode_text, resolve_encoding, split_text
from epg.si.time_codes import (
    date_from_mjd,
    decode_duration,
    decode_utc_time,
    encode_duration,
    encode_utc_time,
    mjd_from_date,
)

# --- MJD / BCD (EN 300 468 Annex C) ------------------------------------------


def test_annex_c_utc_example() -> None:
    # EN 300 468 Annex C: "93/10/13 12:45:00 is coded as 0xC079124500".
    moment = datetime(1993, 10, 13, 12, 45, 0, tzinfo=UTC)
    assert encode_utc_time(moment) == bytes.fromhex("C079124500")
    assert decode_utc_time(bytes.fromhex("C079124500")) == moment


def test_annex_c_mjd_examples() -> None:
    # EN 300 468 Annex C worked example: MJD 45 218 is 1982-09-06.
    assert date_from_mjd(45218) == date(1982, 9, 6)
    assert mjd_from_date(date(1982, 9, 6)) == 45218
    # MJD 0xD928 = 55 592 is 2011-01-31 (the published vector from the task brief).
    assert date_from_mjd(0xD928) == date(2011, 1, 31)
    assert mjd_from_date(date(2011, 1, 31)) == 0xD928


def annex_c_mjd(day: date) -> int:
    """EN 300 468 Annex C's own formula, written out independently of our implementation."""
    leap = 1 if day.month in (1, 2) else 0
    year = day.year - 1900
    return (
        14956 + day.day + int((year - leap) * 365.25) + int((day.month + 1 + leap * 12) * 30.6001)
    )


def test_mjd_agrees_with_the_annex_c_formula() -> None:
    # Annex C states its formulae for 1900-03-01 .. 2100-02-28; check every day from 1990.
    day = date(1990, 1, 1)
    while day < date(2038, 4, 23):
        assert mjd_from_date(day) == annex_c_mjd(day), day
        day += timedelta(days=1)


def test_annex_c_duration_example() -> None:
    # EN 300 468 Annex C: "01:45:30 is coded as 0x014530".
    assert encode_duration(1 * 3600 + 45 * 60 + 30) == bytes.fromhex("014530")
    assert decode_duration(bytes.fromhex("014530")) == 6330
    assert encode_duration(99 * 3600 + 59 * 60 + 59) == bytes.fromhex("995959")
    with pytest.raises(SiInputError):
        encode_duration(100 * 3600)


def test_local_times_are_coded_in_utc() -> None:
    shanghai = timezone(timedelta(hours=8))
    local = datetime(2025, 3, 3, 8, 0, 0, 500_000, tzinfo=shanghai)
    assert decode_utc_time(encode_utc_time(local)) == datetime(2025, 3, 3, 0, 0, tzinfo=UTC)


def test_bad_times() -> None:
    with pytest.raises(SiInputError, match="naive"):
        encode_utc_time(datetime(2025, 1, 1))
    with pytest.raises(SiInputError, match="MJD"):
        encode_utc_time(datetime(2039, 1, 1, tzinfo=UTC))
    assert decode_utc_time(b"\xff" * 5) is None  # "undefined" (NVOD reference events)
    assert decode_duration(b"\xff" * 3) is None
    with pytest.raises(SiDecodeError, match="BCD"):
        decode_utc_time(bytes.fromhex("C0791A4500"))


# --- text (EN 300 468 Annex A) -----------------------------------------------


def test_gb2312_is_the_default() -> None:
    # GB 2312-80 code chart: 语 = 0xD3EF, 文 = 0xCEC4 (EUC-CN row/cell + 0xA0);
    # Annex A Table A.3: selector 0x13 is "Chinese Character Table GB-2312-1980".
    assert encode_text("语文") == bytes.fromhex("13 D3EF CEC4")
    assert decode_text(bytes.fromhex("13 D3EF CEC4")) == "语文"


def test_utf8_fallback_for_characters_outside_gb2312() -> None:
    # U+20000 𠀀 (CJK Extension B) and U+1F4DA 📚 are not in GB2312: the string
    # goes out as UTF-8, Annex A selector 0x15.
    for title in ("第一课 𠀀", "数学 📚"):
        coded = encode_text(title)
        assert coded[0] == 0x15
        assert coded[1:] == title.encode("utf-8")
        assert decode_text(coded) == title
    assert resolve_encoding("语文") is TextEncoding.GB2312


def test_utf8_when_configured() -> None:
    assert encode_text("语文", encoding=TextEncoding.UTF8) == b"\x15" + "语文".encode()


def test_gb18030_punctuation_stays_in_gb2312() -> None:
    # GB2312 0xA1A4 "·" and 0xA1AA "—" (Python's gb2312 codec names them U+30FB/U+2015).
    coded = encode_text("人物·传记——复习")
    assert coded[0] == 0x13
    assert bytes.fromhex("A1A4") in coded and bytes.fromhex("A1AAA1AA") in coded
    assert decode_text(coded) == "人物·传记——复习"


def test_line_breaks_use_the_dvb_control_code() -> None:
    # Annex A.1: CR/LF is 0xE08A in two-byte tables and U+E08A in UTF-8.
    assert encode_text("甲\n乙") == b"\x13" + "甲".encode("gb2312") + b"\xe0\x8a" + "乙".encode(
        "gb2312"
    )
    assert decode_text(encode_text("甲\r\n乙")) == "甲\n乙"
    assert decode_text(encode_text("📚\n乙")) == "📚\n乙"
    assert decode_text(encode_text("a\tb\x00c")) == "abc"


@pytest.mark.parametrize("text", ["语文A第一课：认识汉字", "ab😀cd📚e𠀀f", "mixed 中文 text"])
def test_length_limits_never_cut_a_character(text: str) -> None:
    for limit in range(0, 40):
        coded = encode_text(text, max_bytes=limit)
        assert len(coded) <= limit
        decoded = decode_text(coded)
        assert "\ufffd" not in decoded
        assert text.startswith(decoded)


def test_split_text_chunks_decode_back_to_the_whole() -> None:
    text = "空中课堂" * 100 + "𠀀"
    chunks = split_text(text, chunk_bytes=249, max_chunks=16)
    assert all(len(c) <= 249 and c[0] == 0x15 for c in chunks)
    assert "".join(decode_text(c) for c in chunks) == text
    assert len(split_text("语" * 1000, chunk_bytes=249, max_chunks=2)) == 2


def test_decoding_other_tables() -> None:
    assert decode_text(b"Hello\x8aWorld") == "Hello\nWorld"  # default table, CR/LF 0x8A
    assert decode_text(b"\x01\xb0\xd0") == "Аа"  # ISO/IEC 8859-5 Cyrillic
    assert decode_text(b"\x10\x00\x02\xa1") == "Ą"  # 0x10 0x00 0x02: ISO/IEC 8859-2
    assert decode_text(b"\x11\x8b\xed\x65\x87") == "语文"  # UCS-2 big endian
    assert decode_text(b"") == ""
