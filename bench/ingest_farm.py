"""Benchmark: the ingest farm with 1, 2 and 3 `skyclass worker` processes on one machine.

    SKYCLASS_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/ingest_farm.py [--files 6] [--seconds 20] [--workers 1,2,3]

1. makes N sources that are not house format (720x576 25p H.264 + AAC, so every job
   re-encodes to SD MPEG-2 576i), once;
2. per worker count W, in a fresh PostgreSQL database and media store: queues the N
   files (`IngestFarm.enqueue`, as `skyclass ingest --queue`), starts W
   `skyclass worker --until-empty` processes and waits until every job has ended;
3. prints throughput from the first job's start to the last job's end (files/min,
   real-time factor = media seconds / wall seconds), the wall time including worker
   start-up, and each run's ratio against 1 worker.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from channels.profiles import profile_by_name
from core.clock import SystemClock
from farm.config import FarmConfig
from farm.queue import IngestFarm, QueuedFile
from ingest.asset import AssetKind, LessonMetadata
from ingest.pipeline import IngestRequest
from ingest.runner import ffmpeg_path
from skyclass.database import make_engine, session_factory, upgrade

FARM_ENV = {
    "SKYCLASS_FARM__ENABLED": "true",
    "SKYCLASS_FARM__POLL_SECONDS": "0.5",
    "SKYCLASS_FARM__HEARTBEAT_SECONDS": "2",
    "SKYCLASS_FARM__STALLED_SECONDS": "10",
}


def make_source(path: Path, seconds: float) -> Path:
    subprocess.run(
        [ffmpeg_path(), "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=720x576:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000,volume=0.3,"
         "aformat=channel_layouts=stereo",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
         "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    return path


def run(admin_url: str, sources: list[Path], workers: int, work: Path) -> dict[str, float]:
    name = f"skyclass_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        upgrade(engine)
        farm = IngestFarm(
            engine, session_factory(engine), FarmConfig(enabled=True), clock=SystemClock()
        )
        ids = [
            job.id
            for job in farm.enqueue(
                [
                    QueuedFile(
                        label=source.name,
                        request=IngestRequest(
                            source=source,
                            metadata=LessonMetadata(title=source.stem),
                            profile=profile_by_name("sd"),
                            kind=AssetKind.FILLER,
                        ),
                    )
                    for source in sources
                ]
            )
        ]
        env = {
            **os.environ,
            **FARM_ENV,
            "SKYCLASS_DATABASE_URL": url,
            "SKYCLASS_MEDIA_ROOT": str(work / f"media-{workers}"),
            "SKYCLASS_VAR_DIR": str(work / f"var-{workers}"),
        }
        env.pop("SKYCLASS_CONFIG", None)
        began = time.monotonic()
        command = [sys.executable, "-c", "from skyclass.cli import run; run()", "worker"]
        for number in range(workers):
            worker = subprocess.Popen(
                [*command, "--name", f"bench-{number}", "--until-empty"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            processes.append(worker)
        while True:
            jobs = farm.poll(ids)
            if all(job.state.finished for job in jobs):
                break
            time.sleep(0.5)
        wall = time.monotonic() - began
        failed = [job for job in jobs if job.state.value != "succeeded"]
        if failed:
            raise SystemExit(f"{len(failed)} job(s) failed: {failed[0].error}")
        first = min(job.started_at for job in jobs if job.started_at)
        last = max(job.finished_at for job in jobs if job.finished_at)
        return {"span": (last - first).total_seconds(), "wall": wall}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", default="1,2,3")
    args = parser.parse_args()
    admin_url = os.environ.get("SKYCLASS_TEST_DATABASE_URL")
    if not admin_url:
        raise SystemExit("set SKYCLASS_TEST_DATABASE_URL to a PostgreSQL server (see .ci/run)")
    counts = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="farm-bench-") as tmp:
        work = Path(tmp)
        sources = [make_source(work / f"source-{n}.mkv", args.seconds) for n in range(args.files)]
        media_seconds = args.files * args.seconds
        print(
            f"{platform.node()}: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
            f"{args.files} files x {args.seconds:g} s 720x576 H.264 -> SD MPEG-2 576i"
        )
        print("workers  span s  wall s  files/min  x real time  vs 1 worker")
        base: float | None = None
        for workers in counts:
            result = run(admin_url, sources, workers, work)
            span = result["span"]
            base = base or span
            print(
                f"{workers:>7}  {span:6.1f}  {result['wall']:6.1f}  "
                f"{args.files / span * 60:9.1f}  {media_seconds / span:11.1f}  "
                f"{base / span:10.2f}x"
            )
        print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
