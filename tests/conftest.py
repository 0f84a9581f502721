"""Shared fixtures: databases on SQLite and PostgreSQL, an in-process CLI."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from skyclass.database import make_engine, upgrade

PG_URL_ENV = "SKYCLASS_TEST_DATABASE_URL"


def _postgres_database(admin_url: str) -> Iterator[str]:
    """Create a throw-away database on the server at admin_url; drop it afterwards."""
    name = f"skyclass_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # server down or URL wrong: say why instead of failing obscurely
        admin.dispose()
        pytest.skip(f"PostgreSQL at {admin_url} is not usable: {exc}")
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL: SQLite always, PostgreSQL when configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'skyclass.db'}"
        return
    admin_url = os.environ.get(PG_URL_ENV)
    if not admin_url:
        pytest.skip(f"{PG_URL_ENV} is not set: PostgreSQL tests skipped (.ci/run sets it)")
    yield from _postgres_database(admin_url)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated engine on a fresh database."""
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> object:
    """Run `skyclass ARGS` in-process with an isolated var/ and database."""
    from skyclass.cli import main

    monkeypatch.setenv("SKYCLASS_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SKYCLASS_MEDIA_ROOT", str(tmp_path / "media"))
    monkeypatch.setenv("SKYCLASS_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("SKYCLASS_CONFIG", raising=False)

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run
