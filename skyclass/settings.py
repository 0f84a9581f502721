"""One validated Settings object, built at start and passed in (never read at import).

Sources, strongest first: SKYCLASS_* environment variables, the TOML file given
by --config or SKYCLASS_CONFIG, then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from channels import SAMPLE_CHANNELS_FILE
from core.clock import DEFAULT_TIMEZONE
from core.errors import BadInputError
from farm.config import FarmConfig
from grading import GradingPolicy
from ingest.config import IngestConfig


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SKYCLASS_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    database_url: str = "sqlite:///var/skyclass.db"
    media_root: Path = Path("var/media")
    channels_file: Path = SAMPLE_CHANNELS_FILE
    timezone: str = DEFAULT_TIMEZONE
    var_dir: Path = Path("var")
    grading: GradingPolicy = Field(default_factory=GradingPolicy)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    farm: FarmConfig = Field(default_factory=FarmConfig)  # the ingest queue (PostgreSQL)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}, e.g. Asia/Shanghai") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls),
        )


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from the environment, an optional TOML file and overrides."""
    path = config_file or (
        Path(os.environ["SKYCLASS_CONFIG"]) if os.environ.get("SKYCLASS_CONFIG") else None
    )
    if path is not None and not path.is_file():
        raise BadInputError(f"{path}: no such config file (from --config or SKYCLASS_CONFIG)")

    class _Configured(Settings):
        model_config = SettingsConfigDict(toml_file=path)

    try:
        return Settings.model_validate(_Configured(**overrides).model_dump())
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        where = f"{path}" if path else "environment (SKYCLASS_*)"
        raise BadInputError(f"invalid settings in {where}: {problems}") from None
