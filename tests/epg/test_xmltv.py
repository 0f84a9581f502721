"""XMLTV: valid against the shared DTD and the validator's extra rules, deterministic, safe."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from epg.errors import XmltvError
from epg.xmltv import check_document, check_dtd, check_rules, parse_xml
from tests.epg.conftest import DAY, DTD, G03, G07, World, good_day


@pytest.fixture
def guide(lite: World) -> bytes:
    lite.load(lite.csv([*good_day(), [G07, DAY.isoformat(), "08:00", "lesson", "L7", "", ""]]))
    return lite.services.xmltv.export([G03, G07], DAY, 7).body


def test_guide_passes_the_dtd_and_validator_rules(guide: bytes) -> None:
    assert DTD.is_file(), "CI clones the repo with shared/ beside it"
    assert check_dtd(guide, DTD) == []
    assert check_rules(guide) == []
    check_document(guide, DTD)


def test_guide_content(guide: bytes) -> None:
    root = parse_xml(guide)
    assert [c.get("id") for c in root.iterfind("channel")] == [G03, G07]
    programmes = root.findall("programme")
    # 3 lessons + 1 rerun on g03 and 1 lesson on g07; breaks, ads and filler are not listed.
    assert len(programmes) == 5
    first = programmes[0]
    assert first.get("start") == "20260302080000 +0800"
    assert first.get("stop") == "20260302081930 +0800"  # 19:30 and 12 frames, floored
    assert first.findtext("title") == "语文 L1"
    assert first.find("title").get("lang") == "zh"  # type: ignore[union-attr]
    assert all(e.get("lang") == "zh" for e in first.iterfind("desc"))
    assert [c.text for c in first.iterfind("category")] == ["语文", "三年级"]
    assert first.findtext("episode-num") == "第一单元 第2课"
    assert first.find("episode-num").get("system") == "onscreen"  # type: ignore[union-attr]
    assert first.findtext("credits/presenter") == "王老师"
    rerun = programmes[3]
    assert (
        rerun.get("start") == "20260302190000 +0800" and rerun.find("previously-shown") is not None
    )
    titles = {p.findtext("title") for p in programmes}
    assert not titles & {"ad AD1", "promo PR1", "eye_break EB1"}


def test_topic_category(lite: World) -> None:
    lite.load(lite.csv([[G03, DAY.isoformat(), "08:00", "lesson", "LT", "", ""]]))
    root = parse_xml(lite.services.xmltv.export([G03], DAY, 1).body)
    assert [c.text for c in root.iterfind("programme/category")] == ["爱国主义教育", "专题教育"]


def test_bytes_are_deterministic(lite: World) -> None:
    lite.load(lite.csv(good_day()))
    first = lite.services.xmltv.export([G03], DAY, 7)
    lite.clock.advance(86_400)
    second = lite.services.xmltv.export([G03], DAY, 7)
    assert first.body == second.body and first.etag == second.etag
    assert first.body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<!DOCTYPE tv")


BAD = """<?xml version="1.0" encoding="UTF-8"?>
<tv><channel id="nodot"><display-name>x</display-name></channel>
<programme start="2026-03-02 08:00" channel="ghost.skyclass.cn"><title> </title><desc/></programme>
</tv>"""


def test_validator_rules_catch_what_the_dtd_does_not() -> None:
    data = BAD.encode()
    assert check_dtd(data, DTD) == []  # the DTD is happy …
    problems = check_rules(data)  # … the extra rules are not
    assert any("no dot" in p for p in problems)
    assert any("not declared" in p for p in problems)
    assert any("empty title" in p for p in problems)
    assert any("empty desc" in p for p in problems)
    assert any("YYYYMMDDhhmmss" in p for p in problems)
    with pytest.raises(XmltvError):
        check_document(data)


def test_dtd_catches_missing_start() -> None:
    data = b'<tv><programme channel="a.b"><title>x</title></programme></tv>'
    assert check_dtd(data, DTD)


def test_parser_never_resolves_entities(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xxe = (
        f'<?xml version="1.0"?><!DOCTYPE tv [<!ENTITY x SYSTEM "file://{secret}">'
        '<!ENTITY net SYSTEM "http://127.0.0.1:9/x">]><tv><channel id="a.b">'
        "<display-name>&x;&net;</display-name></channel></tv>"
    ).encode()
    root = parse_xml(xxe)
    assert b"TOP-SECRET" not in etree.tostring(root)
