"""`skyclass receive --merge udp://A udp://B --output …`: a SMPTE ST 2022-7 receiver.

Receives the two legs of a main/backup pair (``playout run --epoch`` twins),
merges them (compliance.merge) and sends the merged RTP stream on
(``udp://ADDR:PORT``, datagrams as received) or writes its transport stream
(``file:PATH``, RTP headers stripped).

Alarms (a leg lost or back, a changeover, the stream lost, datagrams lost on both
legs) are printed, logged and appended to ``var/merge/<name>.alarms.jsonl``; the
counters and the alarms in force go to ``var/merge/<name>.json`` every second
(atomically), where the console and metrics read them. ``<name>`` is the channel
(``--channel``) or the first leg's address. Exit 1 if a datagram was lost on both legs.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import selectors
import socket
import threading
import time
from pathlib import Path
from typing import IO, Annotated, Any, Protocol, cast

import typer

from channels.registry import ChannelRegistry, OutputKind, parse_output_url
from compliance.errors import ComplianceInputError
from compliance.merge import (
    DEFAULT_LOSS_AFTER,
    DEFAULT_WINDOW,
    AlarmKind,
    MergeAlarm,
    Merger,
    MergeStats,
)
from compliance.offair_cli import stop_on_signals
from compliance.receiver import Receiver, parse_source, unwrap_datagram
from core.clock import Clock

logger = logging.getLogger(__name__)

MERGE_DIR = "merge"
STATUS_PERIOD = 1.0  # seconds between status files
POLL = 0.005  # seconds: how long quiet sockets are waited on before timeouts are checked
READ_TIMEOUT = 0.0001  # a socket found readable is read until it is empty (this long)
DRAIN_MAX = 256  # datagrams per socket per pass, so one leg cannot starve the other

# Which alarm a later one clears (the status file lists the alarms in force).
_CLEARS = {
    AlarmKind.LEG_RESTORED: AlarmKind.LEG_LOST,
    AlarmKind.STREAM_RESTORED: AlarmKind.STREAM_LOST,
}


class ReceiveRuntime(Protocol):
    @property
    def registry(self) -> ChannelRegistry: ...

    @property
    def var_dir(self) -> Path: ...

    @property
    def clock(self) -> Clock: ...


def merge_status_path(var_dir: Path, name: str) -> Path:
    """The merge's counters and alarms in force: var/merge/<name>.json."""
    return var_dir / MERGE_DIR / f"{name}.json"


class MergedOutput:
    """Where merged datagrams go: a UDP address (as received) or a TS file (RTP stripped)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._sock: socket.socket | None = None
        self._file: IO[bytes] | None = None
        try:
            spec = parse_output_url(url, OutputKind.FILE)
        except ValueError as exc:
            raise ComplianceInputError(
                f"--output {url!r}: {exc}; give udp://ADDR:PORT or file:PATH"
            ) from None
        if spec.scheme == "udp":
            assert spec.host is not None and spec.port is not None
            address = ipaddress.ip_address(spec.host)
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            if address.is_multicast and address.version == 4:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, spec.ttl)
            sock.connect((spec.host, spec.port))
            self._sock = sock
        elif spec.scheme == "file" and spec.path is not None:
            path = Path(spec.path)
            if not path.parent.is_dir():
                raise ComplianceInputError(
                    f"--output {url!r}: {path.parent} is not a directory; give a writable path"
                )
            self._file = path.open("wb")
        else:
            raise ComplianceInputError(f"--output {url!r}: give udp://ADDR:PORT or file:PATH")
        self.errors = 0

    def __call__(self, datagram: bytes) -> None:
        if self._sock is not None:
            try:
                self._sock.send(datagram)
            except OSError as exc:  # a full buffer or no route: the next one may go
                self.errors += 1
                if self.errors == 1 or self.errors % 1000 == 0:
                    logger.error("%s: send failed (%d so far): %s", self.url, self.errors, exc)
            return
        assert self._file is not None
        self._file.write(unwrap_datagram(memoryview(datagram)).payload)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        if self._file is not None:
            self._file.close()


class MergeLog:
    """The alarms file (one JSON line each) and the status file, with the alarms in force."""

    def __init__(self, var_dir: Path, name: str) -> None:
        self.status_path = merge_status_path(var_dir, name)
        self.alarms_path = self.status_path.with_suffix(".alarms.jsonl")
        self.status_path.parent.mkdir(parents=True, exist_ok=True)
        self.active: dict[tuple[str, int | None], MergeAlarm] = {}

    def alarm(self, alarm: MergeAlarm) -> None:
        cleared = _CLEARS.get(alarm.kind)
        if cleared is not None:
            self.active.pop((cleared.value, alarm.leg), None)
            if alarm.kind is AlarmKind.STREAM_RESTORED:
                self.active.pop((cleared.value, None), None)
        elif alarm.severity != "info":
            self.active[(alarm.kind.value, alarm.leg)] = alarm
        line = json.dumps(alarm.as_json(), ensure_ascii=False, sort_keys=True)
        with self.alarms_path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def status(self, stats: MergeStats, *, name: str, clock: Clock, final: bool = False) -> None:
        data: dict[str, Any] = {
            "name": name,
            "at": clock.now().isoformat(),
            "final": final,
            **stats.as_json(),
            "alarms": [a.as_json() for a in self.active.values()],
        }
        tmp = self.status_path.with_name(f".{self.status_path.name}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self.status_path)


def run_merge(
    receivers: list[Receiver],
    merger: Merger,
    stop: threading.Event,
    *,
    seconds: float | None = None,
    on_tick: Any = None,
) -> None:
    """Receive every leg until ``stop`` (or ``seconds``), feeding and polling the merger."""
    selector = selectors.DefaultSelector()
    for index, receiver in enumerate(receivers):
        selector.register(receiver.sock, selectors.EVENT_READ, index)
    end = None if seconds is None else time.monotonic() + seconds
    try:
        while not stop.is_set():
            now = time.monotonic()
            if end is not None and now >= end:
                break
            for key, _ in selector.select(POLL):
                index = cast(int, key.data)
                # Everything queued first: after a stall, a leg whose datagrams wait in
                # the socket is neither silent nor missing what the other leg lacks.
                for _ in range(DRAIN_MAX):
                    got = receivers[index].receive()
                    if got is None:
                        break
                    merger.feed(index, got[0], got[1])
            merger.poll(time.monotonic())
            if on_tick is not None:
                on_tick()
    finally:
        selector.close()
    merger.flush()


def receive(
    ctx: typer.Context,
    merge: Annotated[
        tuple[str, str],
        typer.Option(
            "--merge",
            metavar="udp://A udp://B",
            help="The two legs (main, backup): udp://ADDR:PORT[?iface=LOCAL] each",
        ),
    ],
    output: Annotated[
        str, typer.Option("--output", help="udp://ADDR:PORT (RTP as received) or file:PATH (TS)")
    ],
    channel_id: Annotated[
        str | None, typer.Option("--channel", help="Channel id: names the status and alarms")
    ] = None,
    window: Annotated[
        float,
        typer.Option("--window", help="Seconds a datagram missing on one leg is waited for"),
    ] = DEFAULT_WINDOW,
    loss_after: Annotated[
        float, typer.Option("--loss-after", help="Seconds without a datagram: the leg is lost")
    ] = DEFAULT_LOSS_AFTER,
    seconds: Annotated[
        float | None, typer.Option("--seconds", help="Stop after this long (default: SIGTERM)")
    ] = None,
) -> None:
    """Merge a main/backup pair into one stream (SMPTE ST 2022-7 主备无缝切换); exit 1 on loss."""
    runtime = cast(ReceiveRuntime, ctx.obj)
    if window <= 0 or loss_after <= 0 or (seconds is not None and seconds <= 0):
        raise ComplianceInputError("--window, --loss-after and --seconds must be positive")
    if merge[0] == merge[1]:
        raise ComplianceInputError(f"--merge {merge[0]} twice: give the two legs' addresses")
    sources = [parse_source(url) for url in merge]
    name = runtime.registry.get(channel_id).id if channel_id else sources[0].slug
    log = MergeLog(runtime.var_dir, name)

    def alarm(event: MergeAlarm) -> None:
        log.alarm(event)
        typer.echo(f"{event.at:%H:%M:%S} {event.severity.upper()} {event.message}")

    sink = MergedOutput(output)
    receivers: list[Receiver] = []
    try:
        for source in sources:
            receivers.append(Receiver(source, timeout=READ_TIMEOUT))
        merger = Merger(
            merge,
            output=sink,
            window=window,
            loss_after=loss_after,
            on_alarm=alarm,
            clock=runtime.clock,
        )
        next_status = time.monotonic()

        def tick() -> None:
            nonlocal next_status
            if time.monotonic() >= next_status:
                next_status += STATUS_PERIOD
                log.status(merger.stats, name=name, clock=runtime.clock)

        stop = threading.Event()
        typer.echo(f"merging {merge[0]} + {merge[1]} → {output} (status {log.status_path})")
        with stop_on_signals(stop):
            run_merge(receivers, merger, stop, seconds=seconds, on_tick=tick)
    finally:
        for receiver in receivers:
            receiver.close()
        sink.close()
    stats = merger.stats
    log.status(stats, name=name, clock=runtime.clock, final=True)
    for leg in stats.legs:
        typer.echo(
            f"{leg.source}: received {leg.received}, used {leg.used}, lost on leg {leg.lost}, "
            f"duplicates {leg.duplicates}, late {leg.late}, out of step {leg.out_of_step}"
        )
    typer.echo(
        f"output {stats.output} datagrams, merged loss {stats.merged_lost}, "
        f"changeovers {stats.changeovers}"
    )
    if stats.merged_lost:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``skyclass receive`` (a top-level command: it is the headend's side)."""
    app.command("receive")(receive)


__all__ = ["MergeLog", "MergedOutput", "merge_status_path", "receive", "register", "run_merge"]
