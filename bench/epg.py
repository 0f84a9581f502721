"""EPG benchmark: one week for 13 channels (~3400 events), then XMLTV, EIT and HTTP pull.

    .venv/bin/python bench/epg.py [--requests N] [--seconds S]

1. load + validate a week's CSV (all 13 channels), compile all 91 rundowns,
   export XMLTV (13 channels × 7 days) and the DVB SI of every channel;
   prints seconds and events per second for each stage.
2. EPG pull over loopback: `skyclass serve` in a subprocess (uvicorn), httpx
   as the partner; uncached (--guide-cache 0: render every request, the
   baseline), cached (rendered guide from memory) and conditional (304).
   Prints req/s and p99 and the cached/uncached ratio. Bounded by count and time.
Everything runs in a temporary directory; nothing outside it is touched.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from channels import SAMPLE_CHANNELS_FILE, load_registry
from core.clock import FrozenClock
from core.timecode import FPS
from epg.context import EpgServices
from epg.eit import si_events, si_transport_stream
from grading import GradingPolicy
from ingest import AssetKind, LessonMetadata, NewAsset
from skyclass.database import make_engine, session_factory, upgrade

ZONE = ZoneInfo("Asia/Shanghai")
MONDAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=ZONE)


class BenchRuntime:
    def __init__(self, url: str, tmp: Path) -> None:
        self.registry = load_registry(SAMPLE_CHANNELS_FILE)
        self.grading_policy = GradingPolicy()
        self.zone = ZONE
        self.media_root = tmp / "media"
        self.var_dir = tmp / "var"
        self.clock = FrozenClock(NOW)
        self._sessions = session_factory(make_engine(url))

    def sessions(self):  # type: ignore[no-untyped-def]
        return self._sessions


def register(services: EpgServices, asset_id: str, kind: AssetKind, frames: int, profile: str,
             grade: str | None = None, subject: str | None = None) -> None:  # fmt: skip
    digest = hashlib.sha256(asset_id.encode()).hexdigest()
    services.assets.register(
        NewAsset(
            asset_id=asset_id, lesson_id=None, kind=kind,
            metadata=LessonMetadata(title=f"{subject or kind.value} {asset_id}", grade=grade,
                                    subject=subject, textbook_edition="人教版", unit="第一单元",
                                    lesson_number=1, teacher="王老师"),
            profile=profile, path=Path(f"/media/{digest}.ts"), sha256=digest, size_bytes=1,
            duration_frames=frames, source_name=asset_id, source_sha256=digest,
            stream_copied=True, loudness_before={}, loudness_after={}, qc={},
        ),
        at=NOW,
    )  # fmt: skip
    services.assets.review(asset_id, approve=True, reviewer="bench", at=NOW)


def week_csv(services: EpgServices, path: Path) -> int:
    """Seed assets and write a valid week: lessons up to the daily cap, 4-event breaks."""
    runtime = services.runtime
    for profile in ("hd", "sd"):
        register(services, f"EB-{profile}", AssetKind.EYE_BREAK, 300 * FPS, profile)
        register(services, f"ID-{profile}", AssetKind.IDENT, 10 * FPS, profile)
        register(services, f"AD-{profile}", AssetKind.AD, 30 * FPS, profile)
        register(services, f"PR-{profile}", AssetKind.PROMO, 15 * FPS, profile)
    rows: list[list[str]] = []
    for channel in runtime.registry:
        profile = channel.profile.name
        grade = channel.grades[0] if channel.grades else None
        band_grade = grade or "g01"
        rule = runtime.grading_policy.duration_rule(band_grade)
        cap = runtime.grading_policy.screen_time_for(band_grade).max_lesson_minutes_per_day
        minutes = rule.max_seconds // 60 - 1 if grade else 18
        per_day = cap // minutes
        subject = "语文" if grade else "爱国主义教育"
        for n in range(per_day * 7):
            other = "数学" if grade else "心理健康教育"
            lesson_id = f"{channel.id[:3]}-{n:03d}"
            frames = minutes * 60 * FPS
            register(services, lesson_id, AssetKind.LESSON, frames, profile, grade,
                     subject if n % 2 else other)  # fmt: skip
        for day_index in range(7):
            day = (MONDAY + timedelta(days=day_index)).isoformat()
            for n in range(per_day):
                lesson = f"{channel.id[:3]}-{day_index * per_day + n:03d}"
                if n == 0:
                    rows.append([channel.id, day, "08:00:00", "lesson", lesson, "", "fixed"])
                    continue
                for kind, asset, duration in (("ad", f"AD-{profile}", ""),
                                              ("promo", f"PR-{profile}", ""),
                                              ("filler", f"EB-{profile}", ""),
                                              ("break", "", "300")):  # fmt: skip
                    rows.append([channel.id, "", "", kind, asset, duration, "sequential"])
                rows.append([channel.id, "", "", "lesson", lesson, "", "sequential"])
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["channel", "date", "start", "type", "asset", "duration", "start_mode"])
        writer.writerows(rows)
    return len(rows)


def stage(name: str, seconds: float, events: int | None = None) -> None:
    rate = f"  {events / seconds:,.0f} events/s" if events else ""
    print(f"  {name:<34} {seconds * 1000:9.1f} ms{rate}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(tmp: Path, url: str, cache: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = os.environ | {
        "SKYCLASS_DATABASE_URL": url,
        "SKYCLASS_VAR_DIR": str(tmp / "var"),
        "SKYCLASS_MEDIA_ROOT": str(tmp / "media"),
    }
    env.pop("SKYCLASS_CONFIG", None)
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("skyclass")), "serve", "--port", str(port),
         "--guide-cache", str(cache)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("skyclass serve did not start")


def pull(base: str, key: str, path: str, *, requests: int, seconds: float,
         conditional: bool) -> tuple[float, float, int]:  # fmt: skip
    headers = {"X-API-Key": key, "Accept-Encoding": "gzip"}
    latencies: list[float] = []
    with httpx.Client(base_url=base, timeout=30, headers=headers) as client:
        first = client.get(path)
        first.raise_for_status()
        if conditional:
            client.headers["If-None-Match"] = first.headers["etag"]
        expected = 304 if conditional else 200
        start = time.perf_counter()
        while len(latencies) < requests and time.perf_counter() - start < seconds:
            t0 = time.perf_counter()
            response = client.get(path)
            latencies.append(time.perf_counter() - t0)
            assert response.status_code == expected, response.status_code
        elapsed = time.perf_counter() - start
    p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else latencies[0]
    return len(latencies) / elapsed, p99 * 1000, len(first.content)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300, help="per HTTP mode (default 300)")
    parser.add_argument("--seconds", type=float, default=15.0, help="per HTTP mode (default 15)")
    args = parser.parse_args()
    print(f"EPG benchmark: {platform.node()} {platform.machine()}, {os.cpu_count()} cpu, "
          f"Python {platform.python_version()}")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="skyclass-bench-epg-") as folder:
        tmp = Path(folder)
        url = f"sqlite:///{tmp / 'bench.db'}"
        upgrade(make_engine(url))
        runtime = BenchRuntime(url, tmp)
        services = EpgServices(runtime)
        source = tmp / "week.csv"
        rows = week_csv(services, source)
        channels = [c.id for c in runtime.registry]
        print(f"week: {rows} schedule rows, {len(channels)} channels × 7 days")

        t0 = time.perf_counter()
        report = services.importer.check(source)
        t1 = time.perf_counter()
        assert report.ok, report.errors[:5]
        result = services.importer.load(source, created_by="bench", at=NOW)
        t2 = time.perf_counter()
        stage("validate (read + all rules)", t1 - t0, rows)
        stage("load (validate + store version)", t2 - t1, rows)

        t0 = time.perf_counter()
        compiled = 0
        for offset in range(7):
            written = services.compiler.compile_all(
                MONDAY + timedelta(days=offset), services.rundown_dir
            )
            compiled += sum(1 for p in written.values() if p)
        t1 = time.perf_counter()
        stage(f"compile {compiled} rundowns", t1 - t0, rows)

        t0 = time.perf_counter()
        document = services.xmltv.export(channels, MONDAY, 7)
        t1 = time.perf_counter()
        stage(
            f"XMLTV ({document.programmes} programmes, {len(document.body) // 1024} KiB)",
            t1 - t0,
            document.programmes,
        )

        at = datetime(2026, 3, 2, 8, 10, tzinfo=ZONE).astimezone(UTC)
        t0 = time.perf_counter()
        packets = 0
        eit_events = 0
        for channel in runtime.registry:
            events = si_events(services.compiler.epg_horizon(channel.id, MONDAY))
            eit_events += len(events)
            data = si_transport_stream(channel, runtime.registry, events, at, zone=ZONE)
            packets += len(data) // 188
        t1 = time.perf_counter()
        stage(f"EIT p/f+schedule, SDT, TDT/TOT ({packets} pkts)", t1 - t0, eit_events)
        assert result.version is not None

        _partner, key = services.partners.add("bench", channels, at=NOW)
        print(
            "EPG pull over loopback (httpx, sequential, "
            f"≤{args.requests} req or ≤{args.seconds:g} s per mode):"
        )
        one = f"/epg/g03.skyclass.cn.xml?from={MONDAY}"
        every = f"/epg/xmltv.xml?from={MONDAY}&days=7"
        results: dict[str, float] = {}
        for cache, label, path, conditional in (
            (0, "uncached g03 (render each)", one, False),
            (64, "cached g03 (200)", one, False),
            (64, "cached g03 (304 If-None-Match)", one, True),
            (0, "uncached all 13 channels", every, False),
            (64, "cached all 13 channels (200)", every, False),
        ):
            process, base = serve(tmp, url, cache)
            try:
                rate, p99, size = pull(base, key, path, requests=args.requests,
                                       seconds=args.seconds, conditional=conditional)  # fmt: skip
            finally:
                process.terminate()
                process.wait(timeout=10)
            results[label] = rate
            print(f"  {label:<34} {rate:8.1f} req/s  p99 {p99:7.2f} ms  ({size:,} B XML)")
        one_ratio = results["cached g03 (200)"] / results["uncached g03 (render each)"]
        all_ratio = results["cached all 13 channels (200)"] / results["uncached all 13 channels"]
        print(f"  cached/uncached g03: {one_ratio:.1f}×; all channels: {all_ratio:.1f}×")


if __name__ == "__main__":
    main()
