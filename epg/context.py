"""What the EPG needs from the shell, as a Protocol, and the services built from it.

The shell's Runtime satisfies EpgRuntime; epg never imports the shell.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from channels import ChannelRegistry
from core.clock import Clock
from epg.compiler import RundownCompiler
from epg.guidelog import GuideLog
from epg.importer import ScheduleImporter
from epg.store import PartnerStore, ScheduleStore
from epg.xmltv import XmltvExporter
from grading import GradingPolicy
from ingest import AssetLibrary


class EpgRuntime(Protocol):
    @property
    def registry(self) -> ChannelRegistry: ...

    @property
    def grading_policy(self) -> GradingPolicy: ...

    @property
    def zone(self) -> ZoneInfo: ...

    @property
    def media_root(self) -> Path: ...

    @property
    def var_dir(self) -> Path: ...

    @property
    def clock(self) -> Clock: ...

    def sessions(self) -> sessionmaker[Session]: ...


class EpgServices:
    """The EPG's repositories and services over one runtime, built on first use."""

    def __init__(self, runtime: EpgRuntime) -> None:
        self.runtime = runtime

    @property
    def rundown_dir(self) -> Path:
        """Where compiled rundowns live for the playout supervisor (var/rundowns)."""
        return self.runtime.var_dir / "rundowns"

    @cached_property
    def assets(self) -> AssetLibrary:
        return AssetLibrary(self.runtime.sessions(), self.runtime.media_root)

    @cached_property
    def schedules(self) -> ScheduleStore:
        return ScheduleStore(self.runtime.sessions(), self.runtime.zone)

    @cached_property
    def guides(self) -> GuideLog:
        """The log of published guides (XMLTV served, EIT compiled) for compliance."""
        return GuideLog(self.runtime.sessions())

    @cached_property
    def partners(self) -> PartnerStore:
        return PartnerStore(self.runtime.sessions())

    @cached_property
    def importer(self) -> ScheduleImporter:
        return ScheduleImporter(
            registry=self.runtime.registry,
            assets=self.assets,
            policy=self.runtime.grading_policy,
            zone=self.runtime.zone,
            store=self.schedules,
        )

    @cached_property
    def compiler(self) -> RundownCompiler:
        return RundownCompiler(
            registry=self.runtime.registry,
            store=self.schedules,
            assets=self.assets,
            zone=self.runtime.zone,
            clock=self.runtime.clock,
            guides=self.guides,
        )

    @cached_property
    def xmltv(self) -> XmltvExporter:
        return XmltvExporter(
            registry=self.runtime.registry,
            store=self.schedules,
            assets=self.assets,
            zone=self.runtime.zone,
        )
