"""A farm on real PostgreSQL for tests: a throw-away database, `skyclass worker`
subprocesses, the CLI in-process with the farm's environment, and SQL to look.

Heartbeats, the stalled timeout and polling are shortened so failures are found in
seconds. A `lane` is a second queue (with its own media store and settings) on the
same database, for tests that need workers configured differently.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ingest.runner import ffmpeg_path
from skyclass.cli import main
from skyclass.database import make_engine, upgrade

PG_URL_ENV = "SKYCLASS_TEST_DATABASE_URL"
MAX_ATTEMPTS = 2

# Fast failure detection: a heartbeat every second, dead after 6 s of silence (a loaded
# 2-core CI box can hold a live worker's heartbeat thread off the CPU for 2 s).
FARM_ENV = {
    "SKYCLASS_FARM__ENABLED": "true",
    "SKYCLASS_FARM__MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    "SKYCLASS_FARM__RETRY_DELAY_SECONDS": "0",
    "SKYCLASS_FARM__HEARTBEAT_SECONDS": "1",
    "SKYCLASS_FARM__STALLED_SECONDS": "6",
    "SKYCLASS_FARM__RECOVERY_INTERVAL_SECONDS": "0.5",
    "SKYCLASS_FARM__POLL_SECONDS": "0.5",
    "SKYCLASS_FARM__PROGRESS_INTERVAL_SECONDS": "0.2",
    # Four seconds of silence is a QC error here (the default only warns), so the
    # permanent-failure case is real media rejected by the real QC.
    "SKYCLASS_INGEST__QC__SILENCE_ERROR_SECONDS": "3",
}


def lavfi_source(path: Path, seconds: float, *, silent: tuple[float, float] | None = None) -> Path:
    """A moving test picture with a tone, 720x576 progressive H.264 + AAC: not house
    format (MPEG-2 576i), so ingest re-encodes the video. ``silent`` mutes a span."""
    tone = "sine=frequency=440:sample_rate=48000,volume=0.3"
    if silent is not None:
        tone += f",volume=enable='between(t,{silent[0]},{silent[1]})':volume=0"
    subprocess.run(
        [ffmpeg_path(), "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=720x576:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", f"{tone},aformat=channel_layouts=stereo",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
         "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    return path


def wait_for(condition: Callable[[], Any], timeout: float, what: str, *, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def thread_children(pid: int) -> list[int]:
    """Every child of process ``pid``, from the kernel's per-thread lists."""
    found: list[int] = []
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in listing.read_text().split()]
        except OSError:
            continue  # the thread ended while we looked
    return found


@dataclass
class Farm:
    root: Path
    url: str
    env: dict[str, str]
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    lanes: list[Farm] = field(default_factory=list)

    @property
    def media(self) -> Path:
        return Path(self.env["SKYCLASS_MEDIA_ROOT"])

    def lane(self, queue: str, **settings: str) -> Farm:
        """Another queue on the same database, with its own media store and settings
        (``SKYCLASS_…`` variables); its workers take only its jobs."""
        env = {
            **self.env,
            "SKYCLASS_FARM__QUEUE": queue,
            "SKYCLASS_MEDIA_ROOT": str(self.root / f"media-{queue}"),
            **settings,
        }
        lane = Farm(root=self.root, url=self.url, env=env)
        self.lanes.append(lane)  # stopped with this farm
        return lane

    def start_worker(self, name: str) -> None:
        log = (self.root / f"{name}.log").open("wb")
        command = [sys.executable, "-c", "from skyclass.cli import run; run()", "worker"]
        self.workers[name] = subprocess.Popen(
            [*command, "--name", name], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def wait_alive(self, count: int) -> None:
        """Until ``count`` workers (of any lane) heartbeat into procrastinate's table."""
        wait_for(
            lambda: (
                self.sql(
                    "SELECT count(*) FROM farm.procrastinate_workers "
                    "WHERE last_heartbeat > now() - interval '3 seconds'"
                )[0][0]
                >= count
            ),
            60,
            f"{count} live worker(s)",
        )

    def kill(self, name: str) -> None:
        process = self.workers.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self) -> None:
        for lane in self.lanes:
            lane.stop()
        for process in self.workers.values():
            process.terminate()
        for process in self.workers.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.workers.clear()

    def cli(self, *args: str) -> int:
        """`skyclass ARGS` in this process, with the farm's environment; the exit code."""
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            return main(list(args))
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def sql(self, query: str, **params: Any) -> list[Any]:
        engine = create_engine(self.url)
        try:
            with engine.connect() as connection:
                return list(connection.execute(text(query), params))
        finally:
            engine.dispose()

    def job(self, job_id: int) -> Any:
        return self.sql("SELECT * FROM farm.ingest_job WHERE id = :id", id=job_id)[0]

    def queue_job(self, job_id: int) -> Any:
        """procrastinate's own row for our job."""
        return self.sql(
            "SELECT status, attempts FROM farm.procrastinate_jobs "
            "WHERE id = (SELECT queue_job_id FROM farm.ingest_job WHERE id = :id)",
            id=job_id,
        )[0]

    def enqueue(self, source: Path, *extra: str) -> int:
        before = {row.id for row in self.sql("SELECT id FROM farm.ingest_job")}
        code = self.cli(
            "ingest", "--queue", str(source), "--kind", "filler", "--channel-profile", "sd",
            *extra,
        )  # fmt: skip
        assert code == 0
        (new,) = {row.id for row in self.sql("SELECT id FROM farm.ingest_job")} - before
        return int(new)

    def finished(self, job_id: int, timeout: float) -> Any:
        return wait_for(
            lambda: (row := self.job(job_id)).state in ("succeeded", "failed") and row,
            timeout,
            f"job {job_id} to finish",
        )

    def stored_files(self) -> list[Path]:
        found = self.media.rglob("*.mkv")
        return sorted(p for p in found if ".staging" not in p.relative_to(self.media).parts)

    def staging_files(self) -> list[Path]:
        staging = self.media / ".staging"
        return sorted(staging.iterdir()) if staging.is_dir() else []


@contextmanager
def farm_database(root: Path) -> Iterator[Farm]:
    """A migrated throw-away database (skips without PostgreSQL); workers stopped and
    the database dropped afterwards."""
    admin_url = os.environ.get(PG_URL_ENV)
    if not admin_url:
        pytest.skip(f"{PG_URL_ENV} is not set: the farm needs PostgreSQL (.ci/run sets it)")
    name = f"skyclass_farm_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL at {admin_url} is not usable: {exc}")
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    env = {
        **os.environ,
        **FARM_ENV,
        "SKYCLASS_DATABASE_URL": url,
        "SKYCLASS_MEDIA_ROOT": str(root / "media"),
        "SKYCLASS_VAR_DIR": str(root / "var"),
    }
    env.pop("SKYCLASS_CONFIG", None)
    farm = Farm(root=root, url=url, env=env)
    try:
        yield farm
    finally:
        farm.stop()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
