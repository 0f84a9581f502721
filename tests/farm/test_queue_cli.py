"""`--queue` without PostgreSQL or with the farm off: one clear line, exit 2, nothing run.

No independent judge: these check our own messages and exit codes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.config import FarmConfig


def test_queue_on_sqlite_fails_with_a_clear_message(
    cli: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKYCLASS_FARM__ENABLED", "true")
    source = tmp_path / "lesson.mkv"
    source.write_bytes(b"never read")
    assert callable(cli)
    result = cli("ingest", "--queue", str(source), "--kind", "filler")
    assert result.code == 2
    assert "needs PostgreSQL" in result.stderr and "sqlite" in result.stderr
    assert not (tmp_path / "media").exists()  # nothing ran in-process instead
    assert cli("jobs", "list").code == 2
    assert cli("worker").code == 2


def test_wait_needs_queue_and_queue_needs_the_farm_on(
    cli: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "a.mkv"
    source.write_bytes(b"never read: both checks come before the file is opened")
    assert callable(cli)
    result = cli("ingest", "--wait", str(source), "--kind", "filler")
    assert result.code == 2 and "--wait goes with --queue" in result.stderr
    monkeypatch.setenv("SKYCLASS_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:9/x")
    result = cli("ingest", "--queue", str(source), "--kind", "filler")
    assert result.code == 2 and "SKYCLASS_FARM__ENABLED=true" in result.stderr


def test_a_stalled_timeout_shorter_than_two_heartbeats_is_refused() -> None:
    with pytest.raises(ValueError, match="at least twice heartbeat_seconds"):
        FarmConfig(heartbeat_seconds=10, stalled_seconds=15)
