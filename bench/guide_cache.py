"""The guide behind caches: 31 partners × 13 channels pulling every minute, skyclass vs nginx.

    .venv/bin/python bench/guide_cache.py [--seconds S] [--replay-seconds R]

A week for all 13 channels is loaded (as bench/epg.py does) and 31 partner keys,
each allowed every channel, are created. Then, on loopback, side by side:

  (a) `skyclass serve` (uvicorn, one process, as production runs it) answering
      GET /epg/{channel}.xml with each partner's X-API-Key: key check, guide log
      row per pull, rendered guide from memory;
  (b) Debian's nginx serving the same XML (rendered once into a temp dir, with the
      same gzip bytes as .xml.gz for gzip_static) as static files, no key check.

Each is driven closed-loop by 31 keep-alive connections (one per partner, each
cycling over the 13 channels, Accept-Encoding: gzip), once unconditionally (200)
and once with the ETag each partner already holds (304). Reported: req/s, p99,
and the server's own CPU time per request (from /proc, so it does not depend on
how fast this Python client can push). Then the real load, 403 pulls a minute
(6.7 req/s, all 304 once partners hold the guide), is replayed at its own pace
against skyclass and its CPU use measured.

nginx is installed with apt-get when missing (needs root on Debian); if it cannot
be, the bench says why and exits 1. nginx runs in the foreground (`daemon off`)
on a free 127.0.0.1 port with its own config and prefix in the temp dir, and is
stopped at the end, as is skyclass. Nothing outside the temp dir is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import importlib.util
import itertools
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

# bench/epg.py already builds the week and starts `skyclass serve`; it cannot be
# imported by name (it would shadow the `epg` package), so it is loaded from its file.
_spec = importlib.util.spec_from_file_location("bench_epg", Path(__file__).with_name("epg.py"))
assert _spec is not None and _spec.loader is not None
bench_epg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_epg)

from epg.context import EpgServices  # noqa: E402  (bench_epg put the checkout on sys.path)
from skyclass.database import make_engine, upgrade  # noqa: E402

PARTNERS = 31
PULLS_PER_MINUTE = PARTNERS * 13
NGINX = "/usr/sbin/nginx"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Result:
    label: str
    requests: int
    seconds: float
    p99_ms: float
    server_cpu_s: float
    statuses: Counter[int]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_s / self.requests * 1e6

    def line(self) -> str:
        codes = ", ".join(f"{n}× {code}" for code, n in sorted(self.statuses.items()))
        return (
            f"  {self.label:<30} {self.rate:9,.0f} req/s  p99 {self.p99_ms:7.2f} ms  "
            f"server CPU {self.cpu_us_per_request:7.0f} µs/req  ({codes})"
        )


def cpu_seconds(pids: Sequence[int]) -> float:
    """utime + stime of these processes (/proc/PID/stat fields 14 and 15)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def with_children(pid: int) -> list[int]:
    """The process and its direct children (nginx: master and worker)."""
    found = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def request_bytes(port: int, path: str, key: str | None, etag: str | None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept-Encoding: gzip"]
    if key:
        lines.append(f"X-API-Key: {key}")
    if etag:
        lines.append(f"If-None-Match: {etag}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """One keep-alive HTTP/1.1 request; returns the status (the body is read and dropped)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding":
            raise RuntimeError("chunked response: the bench expects Content-Length")
    if length:
        await reader.readexactly(length)
    return status


async def closed_loop(
    port: int, per_connection: Sequence[Sequence[bytes]], seconds: float
) -> tuple[list[float], Counter[int], float]:
    """Each connection sends its requests in turn, as fast as answers come back."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    start = time.perf_counter()
    deadline = start + seconds

    async def connection(requests: Sequence[bytes]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in itertools.cycle(requests):
                if time.perf_counter() >= deadline:
                    return
                t0 = time.perf_counter()
                statuses[await exchange(reader, writer, request)] += 1
                latencies.append(time.perf_counter() - t0)
        finally:
            writer.close()

    await asyncio.gather(*(connection(r) for r in per_connection))
    return latencies, statuses, time.perf_counter() - start


async def paced(
    port: int, per_connection: Sequence[Sequence[bytes]], rate: float, seconds: float
) -> tuple[list[float], Counter[int], float]:
    """The real load: pulls spread evenly at `rate` per second, round-robin over partners."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in per_connection]
    cycles = [itertools.cycle(r) for r in per_connection]
    start = time.perf_counter()
    try:
        for n in itertools.count():
            due = start + n / rate
            if due - start >= seconds:
                break
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            reader, writer = streams[n % len(streams)]
            t0 = time.perf_counter()
            statuses[await exchange(reader, writer, next(cycles[n % len(cycles)]))] += 1
            latencies.append(time.perf_counter() - t0)
    finally:
        for _reader, writer in streams:
            writer.close()
    return latencies, statuses, time.perf_counter() - start


Load = Coroutine[Any, Any, tuple[list[float], Counter[int], float]]


def measure(label: str, pids: Sequence[int], load: Load) -> Result:
    """Run one load; the servers' CPU time is read around it."""
    before = cpu_seconds(pids)
    latencies, statuses, elapsed = asyncio.run(load)
    used = cpu_seconds(pids) - before
    p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else latencies[0]
    return Result(label, len(latencies), elapsed, p99 * 1000, used, statuses)


def ensure_nginx() -> str:
    """Debian's nginx, installed with apt-get when missing; exits 1 saying why if it cannot be."""
    if Path(NGINX).exists():
        return NGINX
    if os.geteuid() != 0:
        raise SystemExit(f"{NGINX} is missing and installing it needs root: apt-get install nginx")
    if shutil.which("apt-get") is None:
        raise SystemExit(f"{NGINX} is missing and there is no apt-get (not Debian?)")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "nginx"]
    print("installing nginx: " + " ".join(install))
    done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0:  # stale package lists are the usual cause: refresh once
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not Path(NGINX).exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise SystemExit("could not install nginx with apt-get:\n  " + "\n  ".join(tail))
    return NGINX


NGINX_CONF = """\
# One worker, like the one uvicorn process of `skyclass serve`.
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    types {{ application/xml xml; }}
    default_type application/xml;
    charset utf-8;
    charset_types application/xml;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {prefix}/www;
        gzip_static on;
        add_header Cache-Control "{cache_control}";
        add_header Vary "Accept-Encoding, X-API-Key";
    }}
}}
"""


@contextmanager
def nginx(
    binary: str, prefix: Path, cache_control: str
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = bench_epg.free_port()
    (prefix / "tmp").mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=port, cache_control=cache_control))
    # -e: the error log from the start, not Debian's /var/log/nginx
    command = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                raise SystemExit(
                    f"nginx exited: {process.stderr.read().decode() if process.stderr else ''}"
                )
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit("nginx did not answer in 10 s") from None
                time.sleep(0.05)
        yield process, port
    finally:
        process.terminate()  # SIGTERM: fast shutdown of master and worker
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="per closed-loop mode (default 10)"
    )
    parser.add_argument(
        "--replay-seconds", type=float, default=15.0, help="of the real-rate replay (default 15)"
    )
    args = parser.parse_args()
    binary = ensure_nginx()
    version = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr.strip()
    print(
        f"guide-cache benchmark: {platform.node()} {platform.machine()}, {os.cpu_count()} cpu, "
        f"Python {platform.python_version()}, {version}; "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    began = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="skyclass-bench-guide-") as folder:
        tmp = Path(folder)
        url = f"sqlite:///{tmp / 'bench.db'}"
        upgrade(make_engine(url))
        runtime = bench_epg.BenchRuntime(url, tmp)
        services = EpgServices(runtime)
        source = tmp / "week.csv"
        bench_epg.week_csv(services, source)
        assert services.importer.load(source, created_by="bench", at=bench_epg.NOW).version
        channels = [c.id for c in runtime.registry]
        keys = [
            services.partners.add(f"省台{n:02d}", channels, at=bench_epg.NOW)[1]
            for n in range(PARTNERS)
        ]
        paths = {c: f"/epg/{c}.xml?from={bench_epg.MONDAY}" for c in channels}

        # The same bytes nginx will serve: each channel's week, and its gzip (as skyclass makes it).
        www = tmp / "nginx"
        (www / "www" / "epg").mkdir(parents=True)
        sizes = []
        for channel in channels:
            body = services.xmltv.export([channel], bench_epg.MONDAY, 7).body
            target = www / "www" / "epg" / f"{channel}.xml"
            target.write_bytes(body)
            target.with_name(target.name + ".gz").write_bytes(gzip.compress(body, 6, mtime=0))
            sizes.append(len(body))
        for entry in (tmp, www, *www.rglob("*")):  # nginx's worker runs as nobody
            entry.chmod(0o755 if entry.is_dir() else 0o644)
        print(
            f"{PARTNERS} partners × {len(channels)} channels, one week each "
            f"({min(sizes) // 1024}–{max(sizes) // 1024} KiB XML); "
            f"{PULLS_PER_MINUTE} pulls/min = {PULLS_PER_MINUTE / 60:.1f} req/s"
        )
        print(f"closed loop: {PARTNERS} keep-alive connections, {args.seconds:g} s per mode")

        results: dict[str, Result] = {}
        process, base = bench_epg.serve(tmp, url, 64)
        try:
            port = int(base.rsplit(":", 1)[1])
            # Each partner pulls each channel once: the ETags it will then hold.
            held: dict[tuple[str, str], str] = {}
            gz_bodies: dict[str, bytes] = {}
            with httpx.Client(base_url=base, timeout=30) as client:
                for key in keys:
                    for channel, path in paths.items():
                        with client.stream(
                            "GET", path, headers={"X-API-Key": key, "Accept-Encoding": "gzip"}
                        ) as answer:
                            gz_bodies[channel] = b"".join(answer.iter_raw())
                        assert answer.status_code == 200, answer.status_code
                        held[key, channel] = answer.headers["etag"]
            unconditional = [
                [request_bytes(port, paths[c], key, None) for c in channels] for key in keys
            ]
            conditional = [
                [request_bytes(port, paths[c], key, held[key, c]) for c in channels] for key in keys
            ]
            pids = [process.pid]
            results["skyclass 200"] = measure(
                "skyclass serve, 200 (gzip)", pids,
                closed_loop(port, unconditional, args.seconds),
            )  # fmt: skip
            results["skyclass 304"] = measure(
                "skyclass serve, 304", pids,
                closed_loop(port, conditional, args.seconds),
            )  # fmt: skip
            results["replay"] = measure(
                "skyclass, real load replay", pids,
                paced(port, conditional, PULLS_PER_MINUTE / 60, args.replay_seconds),
            )  # fmt: skip
            cache_control = httpx.get(
                f"{base}{paths[channels[0]]}", headers={"X-API-Key": keys[0]}
            ).headers["cache-control"]
        finally:
            process.terminate()
            process.wait(timeout=10)

        with nginx(binary, www, cache_control) as (server, port):
            held_static: dict[str, str] = {}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                for channel, path in paths.items():
                    with client.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as answer:
                        raw = b"".join(answer.iter_raw())
                    assert answer.status_code == 200, answer.status_code
                    assert raw == gz_bodies[channel], f"nginx and skyclass differ on {channel}"
                    held_static[channel] = answer.headers["etag"]
            unconditional = [
                [request_bytes(port, paths[c], key, None) for c in channels] for key in keys
            ]
            conditional = [
                [request_bytes(port, paths[c], key, held_static[c]) for c in channels]
                for key in keys
            ]
            pids = with_children(server.pid)
            results["nginx 200"] = measure(
                "nginx static, 200 (gzip)", pids,
                closed_loop(port, unconditional, args.seconds),
            )  # fmt: skip
            results["nginx 304"] = measure(
                "nginx static, 304", pids,
                closed_loop(port, conditional, args.seconds),
            )  # fmt: skip

        for result in results.values():
            print(result.line())
        for kind in ("200", "304"):
            ours, theirs = results[f"skyclass {kind}"], results[f"nginx {kind}"]
            print(
                f"  skyclass/nginx, {kind}: throughput {ours.rate / theirs.rate:.3f}×, "
                f"server CPU per request {ours.cpu_us_per_request / theirs.cpu_us_per_request:.1f}×"
            )
        print(
            f"  ({time.monotonic() - began:.0f} s in all; "
            f"load average {os.getloadavg()[0]:.1f} at the end: other work on the machine "
            "lowers req/s more than CPU per request)"
        )
        replay = results["replay"]
        real_rate = PULLS_PER_MINUTE / 60
        capacity = results["skyclass 304"].rate
        print(
            f"  real load {real_rate:.1f} req/s (all 304 once held) uses "
            f"{real_rate / capacity:.2%} of skyclass's 304 capacity; measured in the replay: "
            f"{replay.server_cpu_s / replay.seconds:.2%} of one core, p99 {replay.p99_ms:.2f} ms"
        )


if __name__ == "__main__":
    main()
