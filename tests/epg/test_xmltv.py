"""XMLTV: valid against the XMLTV schema and the validator's extra rules, deterministic, safe.

The schema is py-xmltv's xmltv.xsd (an installed package, never a file beside the checkout).
"""

from __future__ import annotations

import importlib.util
import sysconfig
from pathlib import Path

import pytest
from lxml import etree

from epg import xmltv
from epg.errors import XmltvError
from epg.xmltv import check_document, check_rules, check_schema, parse_xml
from tests.epg.conftest import DAY, G03, G07, World, good_day


@pytest.fixture
def guide(lite: World) -> bytes:
    lite.load(lite.csv([*good_day(), [G07, DAY.isoformat(), "08:00", "lesson", "L7", "", ""]]))
    return lite.services.xmltv.export([G03, G07], DAY, 7).body


def test_schema_comes_from_the_installed_package() -> None:
    folder = xmltv._schema_folder()
    spec = importlib.util.find_spec("xmltv")  # the py-xmltv distribution's module
    assert spec is not None and spec.origin is not None
    assert folder == Path(spec.origin).parent / "resources" and (folder / "xmltv.xsd").is_file()
    assert Path(sysconfig.get_paths()["purelib"]) in folder.parents  # an installed package
    # The XSD is one document: it includes and imports nothing that could be fetched.
    assert list(xmltv._schema_parts(folder / "xmltv.xsd", folder)) == [folder / "xmltv.xsd"]


def test_guide_passes_the_schema_and_validator_rules(guide: bytes) -> None:
    # independent judge: XMLTV schema (py-xmltv xmltv.xsd)
    assert check_schema(guide) == []
    assert check_rules(guide) == []
    check_document(guide)


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


def test_validator_rules_catch_what_the_schema_does_not() -> None:
    data = BAD.encode()
    # independent judge: XMLTV schema (py-xmltv xmltv.xsd)
    assert check_schema(data) == []  # the schema is happy …
    problems = check_rules(data)  # … the extra rules are not
    assert any("no dot" in p for p in problems)
    assert any("not declared" in p for p in problems)
    assert any("empty title" in p for p in problems)
    assert any("empty desc" in p for p in problems)
    assert any("YYYYMMDDhhmmss" in p for p in problems)
    with pytest.raises(XmltvError):
        check_document(data)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ('<programme channel="a.b"><title>x</title></programme>', "'start' is required"),
        (
            '<programme start="20260302080000 +0800" channel="a.b"><desc>d</desc><title>x</title>'
            "</programme>",
            "title",
        ),  # title must come first
        ('<channel id="a.b"><display-name>x</display-name><colour/></channel>', "colour"),
    ],
)
def test_schema_catches_structure_errors(body: str, complaint: str) -> None:
    # independent judge: XMLTV schema (py-xmltv xmltv.xsd)
    problems = check_schema(f"<tv>{body}</tv>".encode())
    assert problems and complaint in " ".join(problems)
    with pytest.raises(XmltvError, match="invalid"):
        check_document(f"<tv>{body}</tv>".encode())


def test_schema_parts_outside_the_package_are_refused(tmp_path: Path) -> None:
    """A schema that includes a file elsewhere (or a URL) is refused, never fetched."""
    for location in ("../elsewhere.xsd", "http://127.0.0.1:9/x.xsd"):
        main = tmp_path / "pkg" / "main.xsd"
        main.parent.mkdir(exist_ok=True)
        main.write_text(
            '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
            f'<xs:include schemaLocation="{location}"/></xs:schema>'
        )
        with pytest.raises(XmltvError, match="outside the py-xmltv package"):
            xmltv._schema_parts(main, main.parent)


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
