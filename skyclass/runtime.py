"""What a CLI command or web request works with: settings plus lazily built services.

Each package's CLI declares the slice it needs as a Protocol (e.g.
channels.cli.ChannelsRuntime); this class satisfies them all, so packages never
import the shell.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from channels import ChannelRegistry, load_registry
from core.clock import Clock, SystemClock
from farm.config import FarmConfig
from grading import GradingPolicy
from ingest.config import IngestConfig
from skyclass.database import make_engine, session_factory, upgrade
from skyclass.settings import Settings

if TYPE_CHECKING:
    from farm.queue import IngestFarm


class Runtime:
    def __init__(self, settings: Settings, *, clock: Clock | None = None, debug: bool = False):
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.debug = debug

    @cached_property
    def registry(self) -> ChannelRegistry:
        return load_registry(self.settings.channels_file)

    @property
    def grading_policy(self) -> GradingPolicy:
        return self.settings.grading

    @property
    def ingest_config(self) -> IngestConfig:
        return self.settings.ingest

    @property
    def zone(self) -> ZoneInfo:
        return self.settings.zone

    @property
    def media_root(self) -> Path:
        return self.settings.media_root

    @property
    def var_dir(self) -> Path:
        return self.settings.var_dir

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def _sessions(self) -> sessionmaker[Session]:
        # Commands always run against an up-to-date schema.
        upgrade(self.engine)
        return session_factory(self.engine)

    def sessions(self) -> sessionmaker[Session]:
        return self._sessions

    @property
    def database_url(self) -> str:
        return self.settings.database_url

    @property
    def farm_config(self) -> FarmConfig:
        return self.settings.farm

    def ingest_farm(self) -> IngestFarm:
        """The ingest queue; QueueUnavailableError (exit 2) when off or not on PostgreSQL."""
        from farm.queue import check_queue_database

        check_queue_database(self.settings.database_url, self.settings.farm)
        return self._farm

    def configured_farm(self) -> IngestFarm | None:
        """The ingest queue if it is configured, else None (ingest runs in-process)."""
        from farm.errors import QueueUnavailableError

        try:
            return self.ingest_farm()
        except QueueUnavailableError:
            return None

    @cached_property
    def _farm(self) -> IngestFarm:
        from farm.queue import IngestFarm

        return IngestFarm(self.engine, self.sessions(), self.settings.farm, clock=self.clock)
