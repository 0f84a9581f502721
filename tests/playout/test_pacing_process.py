"""The pacing process (playout.pacing_process): the same bytes, the same as-run, its lifetime.

Real sockets on loopback and real processes. Independent judge: ffmpeg, which wrote the
stream that is paced: what arrives is compared byte for byte with its file; ffprobe
reads what arrived as video and audio.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playout_media import ffprobe
from test_outputs import drain, make_ts

from mpegts import UDP_PAYLOAD
from playout.outputs import FanOut, UdpOutput
from playout.pacer import Pacer, replay_chunks
from playout.pacing_process import PacingProcess
from playout.stream import PlayoutError, TsChunk
from playout.supervisor import StopRequested

MUX_RATE = 2_000_000
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ts3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_ts(tmp_path_factory.mktemp("media") / "3s.ts", 3, MUX_RATE)


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def pacing(port: int) -> PacingProcess:
    udp = UdpOutput("127.0.0.1", port, mux_rate=MUX_RATE)
    return PacingProcess(Pacer(FanOut([udp]), mux_rate=MUX_RATE, burst=3))


def test_the_stream_leaves_whole_at_the_mux_rate_and_every_chunk_is_reported_in_order(
    ts3: Path, receiver: socket.socket, tmp_path: Path
) -> None:
    # Judges: ffmpeg's own file, byte for byte; ffprobe on what arrived.
    source = ts3.read_bytes()
    chunks = list(replay_chunks(source, mux_rate=MUX_RATE))
    reported: list[TsChunk] = []
    began = time.monotonic()
    pacing(receiver.getsockname()[1]).run(
        iter(chunks), first_due=None, on_sent=reported.append, on_late=lambda s: None
    )
    elapsed = time.monotonic() - began
    got = drain(receiver)
    assert all(len(d) == UDP_PAYLOAD for d in got)
    joined = b"".join(got)
    # every byte ffmpeg wrote, in order; the last partial datagram padded (null packets)
    assert joined[: len(source)] == source
    assert len(joined) - len(source) < UDP_PAYLOAD
    assert reported == chunks  # each chunk once, in air order
    # paced, not dumped: the bytes take their time at the mux rate (minus one chunk)
    assert elapsed > len(source) * 8 / MUX_RATE - 1.2
    probe = ffprobe(joined, tmp_path)
    assert len(probe.video) == 75 and probe.audio  # 3 s at 25 fps, and its sound
    dts = [v[1] for v in probe.video]
    assert dts == sorted(dts)


def test_a_stop_ends_after_the_chunk_on_the_wire_and_nothing_unjournaled_leaves(
    ts3: Path, receiver: socket.socket
) -> None:
    # Judge: ffmpeg's file; what arrived is exactly the chunks reported sent.
    source = ts3.read_bytes()
    chunks = list(replay_chunks(source, mux_rate=MUX_RATE))
    assert len(chunks) > 4
    reported: list[TsChunk] = []

    def sent(chunk: TsChunk) -> None:
        reported.append(chunk)
        if len(reported) == 2:
            raise StopRequested("signal 15")

    with pytest.raises(StopRequested):
        pacing(receiver.getsockname()[1]).run(
            iter(chunks), first_due=None, on_sent=sent, on_late=lambda s: None
        )
    assert 2 <= len(reported) < len(chunks)
    assert reported == chunks[: len(reported)]
    got = b"".join(drain(receiver))
    sent_bytes = b"".join(c.data for c in reported)
    # the last partial datagram is padded with null packets when the sender closes
    assert got[: len(sent_bytes)] == sent_bytes
    assert len(got) - len(sent_bytes) < UDP_PAYLOAD


def test_an_engine_failure_comes_out_after_what_was_made_is_sent(
    ts3: Path, receiver: socket.socket
) -> None:
    source = ts3.read_bytes()
    chunks = list(replay_chunks(source, mux_rate=MUX_RATE))[:5]

    def engine() -> Iterator[TsChunk]:
        yield from chunks
        raise ValueError("clip unreadable")

    reported: list[TsChunk] = []
    with pytest.raises(ValueError, match="clip unreadable"):
        pacing(receiver.getsockname()[1]).run(
            engine(), first_due=None, on_sent=reported.append, on_late=lambda s: None
        )
    assert reported == chunks


def test_a_pacing_process_that_dies_stops_playout_with_an_error(
    ts3: Path, receiver: socket.socket
) -> None:
    source = ts3.read_bytes()
    chunks = list(replay_chunks(source, mux_rate=MUX_RATE))
    process = pacing(receiver.getsockname()[1])

    def sent(chunk: TsChunk) -> None:
        if process.pid is not None and chunk is chunks[1]:
            os.kill(process.pid, signal.SIGKILL)

    with pytest.raises(PlayoutError, match="pacing process ended with status -9"):
        process.run(iter(chunks), first_due=None, on_sent=sent, on_late=lambda s: None)


PARENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from playout.outputs import FanOut, UdpOutput
    from playout.pacer import Pacer, replay_chunks
    from playout.pacing_process import PacingProcess

    rate = 2_000_000
    data = Path(sys.argv[1]).read_bytes()
    udp = UdpOutput("127.0.0.1", int(sys.argv[2]), mux_rate=rate)
    process = PacingProcess(Pacer(FanOut([udp]), mux_rate=rate))

    told = []

    def sent(chunk):
        if not told:
            told.append(print(process.pid, flush=True))

    chunks = replay_chunks(data, mux_rate=rate, packets_per_chunk=70, loops=1000)
    process.run(chunks, first_due=None, on_sent=sent, on_late=lambda s: None)
    """
)


def test_the_pacing_process_dies_with_playout(ts3: Path, receiver: socket.socket) -> None:
    """After a SIGKILL of playout nothing more is sent (a restarted playout is alone)."""
    port = receiver.getsockname()[1]
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(ts3), str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        receiver.settimeout(10)
        assert receiver.recv(2048)  # on air
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        else:
            pytest.fail(f"pacing process {child} outlived its parent")
        drain(receiver, idle=0.1)  # what was in flight
        assert drain(receiver, idle=0.5) == []
    finally:
        parent.kill()
        parent.wait(10)
