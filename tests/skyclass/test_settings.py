from __future__ import annotations

from pathlib import Path

import pytest

from channels import SAMPLE_CHANNELS_FILE
from core.errors import BadInputError
from skyclass.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "MEDIA_ROOT", "CHANNELS_FILE", "CONFIG", "TIMEZONE"):
        monkeypatch.delenv(f"SKYCLASS_{name}", raising=False)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite:///var/skyclass.db"
    assert settings.media_root == Path("var/media")
    assert settings.channels_file == SAMPLE_CHANNELS_FILE
    assert settings.timezone == "Asia/Shanghai"
    assert settings.grading.duration_rule("g01").min_seconds == 15 * 60


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "skyclass.toml"
    config.write_text(
        'media_root = "/srv/media"\ndatabase_url = "sqlite:///from-file.db"\n'
        "[grading.durations.primary]\nmin_seconds = 60\nmax_seconds = 120\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SKYCLASS_DATABASE_URL", "postgresql+psycopg://db/skyclass")
    settings = load_settings(config)
    assert settings.database_url == "postgresql+psycopg://db/skyclass"  # env wins
    assert settings.media_root == Path("/srv/media")  # from the file
    assert settings.grading.duration_rule("g02").max_seconds == 120
    assert settings.grading.duration_rule("g10").max_seconds == 25 * 60


def test_config_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.toml"
    config.write_text('channels_file = "/etc/skyclass/channels.toml"\n', encoding="utf-8")
    monkeypatch.setenv("SKYCLASS_CONFIG", str(config))
    assert load_settings().channels_file == Path("/etc/skyclass/channels.toml")


def test_bad_settings_are_bad_input(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('timezone = "Mars/Olympus"\nbogus = 1\n', encoding="utf-8")
    with pytest.raises(BadInputError) as info:
        load_settings(config)
    assert "timezone" in str(info.value) and "bogus" in str(info.value)
    assert str(config) in str(info.value)
    with pytest.raises(BadInputError, match="no such config file"):
        load_settings(tmp_path / "missing.toml")
