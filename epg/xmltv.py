"""XMLTV export (the guide provincial broadcasters pull) and its checks.

Only lessons and reruns become programmes; breaks, ads and filler never do.
Output bytes depend only on the schedule and the assets (no generation time),
so the ETag of an unchanged guide stays the same. Times are Beijing time with
an explicit offset (`20260302080000 +0800`): a guide in local time without an
offset is a classic consumer bug.

Parsing XML anywhere in skyclass goes through `safe_parser()`: no entity
expansion, no network, no DTD loading. Guides are checked against the XMLTV
schema that the py-xmltv package ships (`xmltv/resources/xmltv.xsd`, found with
importlib.resources), so the check needs nothing outside the installed packages,
plus the extra rules of XMLTV's own validator (`tv_validate_file`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from lxml import etree

from channels import Channel, ChannelRegistry
from epg.compiler import AssetSource, si_text
from epg.errors import XmltvError
from epg.rundown import EventType
from epg.schedule import frame_instant
from epg.store import ScheduleStore

logger = logging.getLogger(__name__)

XMLTV_TIME = "%Y%m%d%H%M%S %z"
_TIME_RE = re.compile(r"^\d{14} [+-]\d{4}$")
LANG = "zh"
GENERATOR = "skyclass"
# The XMLTV schema: module and resource inside the py-xmltv distribution.
SCHEMA_PACKAGE = "xmltv"
SCHEMA_RESOURCE = ("resources", "xmltv.xsd")
_XS = "{http://www.w3.org/2001/XMLSchema}"


def safe_parser() -> etree.XMLParser:
    """An lxml parser that never resolves entities, loads a DTD or touches the network."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def parse_xml(data: bytes) -> etree._Element:
    try:
        return etree.fromstring(data, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise XmltvError(f"not well-formed XML: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class XmltvDocument:
    body: bytes
    channels: tuple[str, ...]
    programmes: int
    #: (channel, day) → the schedule version each listed day was rendered from (guide log)
    versions: Mapping[tuple[str, date], int] = field(default_factory=dict)

    @property
    def etag(self) -> str:
        """A strong entity tag: the SHA-256 of the bytes (quoted, as HTTP wants it)."""
        return f'"{hashlib.sha256(self.body).hexdigest()[:40]}"'


class XmltvExporter:
    def __init__(
        self,
        *,
        registry: ChannelRegistry,
        store: ScheduleStore,
        assets: AssetSource,
        zone: ZoneInfo,
    ) -> None:
        self.registry = registry
        self.store = store
        self.assets = assets
        self.zone = zone

    def export(self, channel_ids: Sequence[str], first: date, days: int) -> XmltvDocument:
        """The guide for the channels over [first, first + days)."""
        if days < 1:
            raise XmltvError(f"days must be at least 1, got {days}")
        channels = [self.registry.get(c) for c in sorted(set(channel_ids))]
        last = first + timedelta(days=days - 1)
        schedules = self.store.current_days([c.id for c in channels], first, last)
        refs = {e.asset_id for s in schedules.values() for e in s.events if e.asset_id}
        found = self.assets.many(refs)

        root = etree.Element("tv")
        root.set("source-info-name", self.registry.network.provider_zh)
        root.set("generator-info-name", GENERATOR)
        for channel in channels:
            root.append(self._channel(channel))
        count = 0
        for channel in channels:
            for offset in range(days):
                day = first + timedelta(days=offset)
                schedule = schedules.get((channel.id, day))
                if schedule is None:
                    continue
                for event in schedule.events:
                    asset = found.get(event.asset_id) if event.asset_id else None
                    if not event.type.is_lesson or asset is None:
                        continue
                    si = si_text(asset, rerun=event.type is EventType.RERUN)
                    start = frame_instant(self.zone, day, event.start_frame)
                    stop = frame_instant(self.zone, day, event.end_frame)
                    prog = etree.SubElement(root, "programme")
                    prog.set("start", start.astimezone(self.zone).strftime(XMLTV_TIME))
                    prog.set("stop", stop.astimezone(self.zone).strftime(XMLTV_TIME))
                    prog.set("channel", channel.id)
                    _text(prog, "title", si.title, lang=LANG)
                    if si.unit:
                        _text(prog, "sub-title", si.unit, lang=LANG)
                    _text(prog, "desc", si.description, lang=LANG)
                    if asset.metadata.teacher:
                        credits = etree.SubElement(prog, "credits")
                        _text(credits, "presenter", asset.metadata.teacher)
                    for category in (si.subject, si.grade, "专题教育" if si.topic else None):
                        if category:
                            _text(prog, "category", category, lang=LANG)
                    episode = " ".join(
                        p
                        for p in (
                            si.unit,
                            f"第{si.lesson_number}课" if si.lesson_number is not None else None,
                        )
                        if p
                    )
                    if episode:
                        _text(prog, "episode-num", episode, system="onscreen")
                    if event.type is EventType.RERUN:
                        etree.SubElement(prog, "previously-shown")
                    count += 1
        body = etree.tostring(
            root,
            xml_declaration=True,
            encoding="UTF-8",
            pretty_print=True,
            # The conventional XMLTV doctype; consumers expect it, and nothing here
            # loads it (safe_parser), the schema check uses the XSD.
            doctype='<!DOCTYPE tv SYSTEM "xmltv.dtd">',
        )
        logger.debug("xmltv: %d channels, %d programmes, %d bytes", len(channels), count, len(body))
        return XmltvDocument(
            body=body,
            channels=tuple(c.id for c in channels),
            programmes=count,
            versions={key: held.version for key, held in schedules.items()},
        )

    def _channel(self, channel: Channel) -> etree._Element:
        element = etree.Element("channel", id=channel.id)
        _text(element, "display-name", channel.name_zh, lang=LANG)
        _text(element, "display-name", channel.name_en, lang="en")
        return element


def _text(parent: etree._Element, tag: str, text: str, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, tag, attrib=attrs)
    element.text = text
    return element


def check_rules(data: bytes) -> list[str]:
    """The XMLTV validator's extra rules (tv_validate_file), beyond the schema.

    Channel ids contain a dot; every programme's channel is declared; no empty
    title or desc; start and stop are `YYYYMMDDhhmmss +HHMM`.
    """
    root = parse_xml(data)
    problems: list[str] = []
    declared = set()
    for channel in root.iterfind("channel"):
        channel_id = channel.get("id", "")
        declared.add(channel_id)
        if "." not in channel_id:
            problems.append(f"channel id {channel_id!r} has no dot (use e.g. g03.skyclass.cn)")
    for index, prog in enumerate(root.iterfind("programme")):
        where = f"programme #{index} ({prog.get('channel')} {prog.get('start')})"
        if prog.get("channel") not in declared:
            problems.append(f"{where}: channel is not declared")
        for attr in ("start", "stop"):
            value = prog.get(attr)
            if value is not None and not _TIME_RE.match(value):
                problems.append(f"{where}: {attr}={value!r} is not YYYYMMDDhhmmss +HHMM")
        if prog.get("start") is None:
            problems.append(f"{where}: no start")
        for tag in ("title", "desc"):
            for element in prog.iterfind(tag):
                if not (element.text or "").strip():
                    problems.append(f"{where}: empty {tag}")
    return problems


def _schema_folder() -> Path:
    """The folder of py-xmltv's xmltv.xsd inside the installed package."""
    try:
        folder = files(SCHEMA_PACKAGE).joinpath(*SCHEMA_RESOURCE[:-1])
    except ModuleNotFoundError:
        raise XmltvError(
            "the XMLTV schema comes from the py-xmltv package, which is not installed: "
            "pip install py-xmltv (a dependency of skyclass)"
        ) from None
    if not isinstance(folder, Path) or not (folder / SCHEMA_RESOURCE[-1]).is_file():
        raise XmltvError(
            f"py-xmltv has no {'/'.join(SCHEMA_RESOURCE)} at {folder}: reinstall py-xmltv"
        )
    return folder


def _schema_parts(main: Path, folder: Path) -> dict[Path, etree._Element]:
    """The schema document and every document it includes or imports, all of which must
    be files of the package: a location elsewhere (or a URL) is refused, never fetched."""
    parts: dict[Path, etree._Element] = {}
    pending = [main]
    while pending:
        path = pending.pop()
        if path in parts:
            continue
        doc = etree.fromstring(path.read_bytes(), safe_parser(), base_url=str(path))
        parts[path] = doc
        for tag in ("include", "import", "redefine", "override"):
            for element in doc.iter(f"{_XS}{tag}"):
                location = element.get("schemaLocation")
                if location is None:
                    continue  # a namespace-only import loads nothing
                target = (path.parent / location).resolve()
                if "://" in location or not target.is_relative_to(folder.resolve()):
                    raise XmltvError(
                        f"{path}: xs:{tag} of {location!r} is outside the py-xmltv package: "
                        "the schema check reads nothing else; reinstall py-xmltv"
                    )
                pending.append(target)
    return parts


@cache
def xmltv_schema() -> etree.XMLSchema:
    """The XMLTV XSD shipped by py-xmltv, parsed once (no network, no entities)."""
    folder = _schema_folder()
    main = folder / SCHEMA_RESOURCE[-1]
    return etree.XMLSchema(_schema_parts(main, folder)[main])


# A compiled schema keeps the error log of its last run: one validation at a time.
_SCHEMA_LOCK = threading.Lock()


def check_schema(data: bytes) -> list[str]:
    """Problems against the XMLTV XSD (py-xmltv's xmltv.xsd); empty when valid."""
    root = parse_xml(data)
    schema = xmltv_schema()
    with _SCHEMA_LOCK:
        if schema.validate(root):
            return []
        errors = cast("Iterable[Any]", schema.error_log)  # lxml-stubs leave the log untyped
        return [f"line {error.line}: {error.message}" for error in errors]


def check_document(data: bytes) -> None:
    """Raise XmltvError if our output breaks the XMLTV schema or the validator's rules."""
    problems = check_schema(data) + check_rules(data)
    if problems:
        raise XmltvError("XMLTV output is invalid: " + "; ".join(problems[:10]))
