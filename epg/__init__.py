"""EPG: schedule import and validation, versions, rundowns, XMLTV, DVB SI, the pull API.

Data flow: schedule file ─formats─▶ validation ─▶ ScheduleStore version ─▶
RundownCompiler (rundown file for playout) and XmltvExporter / eit (guides).
`epg.si` is the DVB SI encoder; `epg.rundown` is the contract with playout.
"""

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
from epg.xmltv import XmltvDocument, XmltvExporter, check_dtd, check_rules

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
    "check_dtd",
    "check_rules",
    "filler_pool",
    "rundown_path",
    "validate",
]
