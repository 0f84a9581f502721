"""Console fixtures: seeded worlds (SQLite always, PostgreSQL when configured) and live servers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from web_world import WebWorld, serve

from skyclass.database import make_engine, upgrade
from skyclass.web import create_app


@dataclass
class Served:
    base: str
    world: WebWorld
    app: Any


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> WebWorld:
    """Seeded on SQLite and on PostgreSQL (the shared engine fixture)."""
    return WebWorld(engine, tmp_path).seed()


@pytest.fixture(scope="session")
def _lite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated, seeded SQLite file, copied per test (argon2 and migrations are slow)."""
    folder = tmp_path_factory.mktemp("web-template")
    path = folder / "lite.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    WebWorld(engine, folder).seed()
    engine.dispose()
    return path


@pytest.fixture
def lite(tmp_path: Path, _lite_template: Path) -> Iterator[WebWorld]:
    """A seeded world on SQLite only, for behaviour that does not depend on the database."""
    path = tmp_path / "lite.db"
    shutil.copyfile(_lite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    media = _lite_template.parent / "media"
    if media.is_dir():  # attachments were written beside the template
        shutil.copytree(media, tmp_path / "media", dirs_exist_ok=True)
    yield WebWorld(engine, tmp_path)
    engine.dispose()


@pytest.fixture
def served(world: WebWorld) -> Iterator[Served]:
    app = create_app(world)
    with serve(app) as base:
        yield Served(base=base, world=world, app=app)


@pytest.fixture
def served_lite(lite: WebWorld) -> Iterator[Served]:
    app = create_app(lite)
    with serve(app) as base:
        yield Served(base=base, world=lite, app=app)
