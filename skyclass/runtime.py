"""What a CLI command or web request works with: settings plus lazily built services.

Each package's CLI declares the slice it needs as a Protocol (e.g.
channels.cli.ChannelsRuntime); this class satisfies them all, so packages never
import the shell.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from channels import ChannelRegistry, load_registry
from core.clock import Clock, SystemClock
from grading import GradingPolicy
from ingest.config import IngestConfig
from skyclass.database import make_engine, session_factory, upgrade
from skyclass.settings import Settings


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
