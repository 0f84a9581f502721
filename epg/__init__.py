"""EPG: schedule import and validation, versions, rundowns, XMLTV, DVB SI, the pull API.

Data flow: schedule file ─formats─▶ validation ─▶ ScheduleStore version ─▶
RundownCompiler (rundown file for playout) and XmltvExporter / eit (guides).
`epg.si` is the DVB SI encoder; `epg.rundown` is the contract with playout.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from epg.compiler import RundownCompiler, filler_pool
    from epg.context import EpgRuntime, EpgServices
    from epg.errors import (
        EpgError,
        NoScheduleError,
        PartnerError,
        Problem,
        ScheduleFormatError,
        ScheduleRejected,
        XmltvError,
    )
    from epg.importer import LoadResult, ScheduleImporter
    from epg.partners import Partner
    from epg.rundown import (
        EpgEntry,
        EventType,
        MediaRef,
        Rundown,
        RundownError,
        RundownEvent,
        RundownService,
        SiText,
        StartMode,
        rundown_path,
    )
    from epg.schedule import DayDiff, DaySchedule, ScheduledEvent, ScheduleVersion
    from epg.store import PartnerStore, ScheduleStore
    from epg.validation import ValidationReport, validate
    from epg.xmltv import XmltvDocument, XmltvExporter, check_rules, check_schema

# Names resolve on first use (PEP 562): `import epg.rundown` (all playout needs) must not
# import the schedule importer and openpyxl (~0.2 s of a restart).
_LAZY = {
    "RundownCompiler": "epg.compiler",
    "filler_pool": "epg.compiler",
    "EpgRuntime": "epg.context",
    "EpgServices": "epg.context",
    "EpgError": "epg.errors",
    "NoScheduleError": "epg.errors",
    "PartnerError": "epg.errors",
    "Problem": "epg.errors",
    "ScheduleFormatError": "epg.errors",
    "ScheduleRejected": "epg.errors",
    "XmltvError": "epg.errors",
    "LoadResult": "epg.importer",
    "ScheduleImporter": "epg.importer",
    "Partner": "epg.partners",
    "EpgEntry": "epg.rundown",
    "EventType": "epg.rundown",
    "MediaRef": "epg.rundown",
    "Rundown": "epg.rundown",
    "RundownError": "epg.rundown",
    "RundownEvent": "epg.rundown",
    "RundownService": "epg.rundown",
    "SiText": "epg.rundown",
    "StartMode": "epg.rundown",
    "rundown_path": "epg.rundown",
    "DayDiff": "epg.schedule",
    "DaySchedule": "epg.schedule",
    "ScheduledEvent": "epg.schedule",
    "ScheduleVersion": "epg.schedule",
    "PartnerStore": "epg.store",
    "ScheduleStore": "epg.store",
    "ValidationReport": "epg.validation",
    "validate": "epg.validation",
    "XmltvDocument": "epg.xmltv",
    "XmltvExporter": "epg.xmltv",
    "check_rules": "epg.xmltv",
    "check_schema": "epg.xmltv",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DayDiff",
    "DaySchedule",
    "EpgEntry",
    "EpgError",
    "EpgRuntime",
    "EpgServices",
    "EventType",
    "LoadResult",
    "MediaRef",
    "NoScheduleError",
    "Partner",
    "PartnerError",
    "PartnerStore",
    "Problem",
    "Rundown",
    "RundownCompiler",
    "RundownError",
    "RundownEvent",
    "RundownService",
    "ScheduleFormatError",
    "ScheduleImporter",
    "ScheduleRejected",
    "ScheduleStore",
    "ScheduleVersion",
    "ScheduledEvent",
    "SiText",
    "StartMode",
    "ValidationReport",
    "XmltvDocument",
    "XmltvError",
    "XmltvExporter",
    "check_rules",
    "check_schema",
    "filler_pool",
    "rundown_path",
    "validate",
]
