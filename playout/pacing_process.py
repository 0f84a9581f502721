"""The pacing process: the pacer in a process of its own, so that no thread shares its GIL.

In one process the pacing thread needs the interpreter lock at each wake-up, and the
thread holding it (the engine muxing a GOP, the journal writing) may itself be waiting
for a CPU on a busy machine: the datagram then leaves 10-70 ms late. On the 2-core VM
that happened from 8 HD channels up (docs/benchmarks.md, "Channel capacity").

``PacingProcess.run`` forks once the engine is warmed up. The child holds the paced
outputs (UDP) and two pipes, nothing else: the engine's chunks come in cut to at most
PIECE_BYTES (a piece is never waited for whole), and for every chunk sent a report goes
back, on which the parent journals the as-run and writes the other outputs (HLS, files,
checks), as the pacing thread did. Late sends come back too (``on_late``: the engine
absorbs the slip). The child runs at real-time priority where the process may
(SCHED_FIFO: it sleeps nearly all the time and preempts any ordinary thread when it
wakes), else at the pacer's own nice value.

Stopping keeps its meaning. When ``on_sent`` raises (SIGTERM's checkpoint), the child is
asked (SIGUSR1) to stop after the chunk on the wire; every chunk it reports sent is
journaled, then the exception goes on: the as-run ends at the last chunk that left. The
child ignores SIGTERM, SIGINT and SIGHUP (a signal to the process group is the parent's
to act on) and dies with its parent (PR_SET_PDEATHSIG): after a SIGKILL of ``playout
run``, nothing more is sent.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import logging
import os
import signal
import struct
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from mpegts import PACKET_SIZE
from playout.asrun.ledger import write_all
from playout.pacer import Pacer
from playout.stream import PlayoutError, TsChunk

logger = logging.getLogger(__name__)

PIECE_BYTES = 64 * 1024 // PACKET_SIZE * PACKET_SIZE  # whole packets
PIPE_BYTES = 1 << 20  # ~0.8 s at 10 Mb/s: the read-ahead the pacing thread had, and more
REALTIME_PRIORITY = 20  # SCHED_FIFO, where allowed (root or CAP_SYS_NICE)
_F_SETPIPE_SZ = 1031  # Linux
_PR_SET_PDEATHSIG = 1  # Linux
_PIECE = struct.Struct("<qqI??")  # byte offset, frame, length, IDR, last piece of its chunk
_REPORT = struct.Struct("<Bd")  # kind, value
_SENT = 1  # a chunk has been sent (value unused)
_LATE = 2  # a send was late by value seconds, past the catch-up window


class PacingProcess:
    """Runs ``pacer`` (whose sink holds the paced outputs) in a forked child."""

    def __init__(self, pacer: Pacer, *, realtime_priority: int | None = REALTIME_PRIORITY) -> None:
        self.pacer = pacer
        self.realtime_priority = realtime_priority
        self.pid: int | None = None

    def run(
        self,
        chunks: Iterable[TsChunk],
        *,
        first_due: float | None,
        on_sent: Callable[[TsChunk], None],
        on_late: Callable[[float], None],
    ) -> None:
        """Pace ``chunks`` from the child until they end; ``on_sent`` and ``on_late`` run
        here, on the calling thread, in order. The chunks are iterated on a thread of this
        process (the engine's), which the child's pipe holds back to ~PIPE_BYTES ahead."""
        data_r, data_w = os.pipe()
        report_r, report_w = os.pipe()
        with contextlib.suppress(OSError):  # a smaller pipe only means less read-ahead
            fcntl.fcntl(data_w, _F_SETPIPE_SZ, PIPE_BYTES)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(data_w)
            os.close(report_r)
            code = 1
            try:
                self._child(data_r, report_w, parent, first_due)
                code = 0
            except BaseException:  # said on stderr, then the exit status
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(code)
        self.pid = pid
        os.close(data_r)
        os.close(report_w)
        pending: deque[TsChunk] = deque()
        lock = threading.Lock()
        failed: list[BaseException] = []
        closing = threading.Event()
        feeder = threading.Thread(
            target=_feed,
            args=(chunks, data_w, pending, lock, failed, closing),
            name="playout engine",
            daemon=True,
        )
        feeder.start()
        stopping: BaseException | None = None
        finished = False
        try:
            with os.fdopen(report_r, "rb", buffering=_REPORT.size * 256) as reports:
                for kind, value in _reports(reports):
                    if kind == _LATE:
                        on_late(value)
                        continue
                    with lock:
                        chunk = pending.popleft()
                    try:
                        on_sent(chunk)
                    except BaseException as exc:  # re-raised once drained
                        if stopping is None:
                            stopping = exc
                            closing.set()
                            with contextlib.suppress(ProcessLookupError):
                                os.kill(pid, signal.SIGUSR1)  # stop after the chunk on the wire
            finished = True
        finally:
            closing.set()
            if not finished:  # interrupted here (a second SIGTERM): stop sending at once
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            status = _reap(pid)
            feeder.join(5.0)
        if stopping is not None:
            raise stopping
        if failed:
            raise failed[0]
        if status != 0:
            raise PlayoutError(
                f"the pacing process ended with status {status} (its traceback is above): "
                "playout stops so that its supervisor starts it again"
            )

    def _child(self, data_r: int, report_w: int, parent: int, first_due: float | None) -> None:
        _die_with(parent)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        stop = threading.Event()
        signal.signal(signal.SIGUSR1, lambda signum, frame: stop.set())
        _realtime(self.realtime_priority)
        lasts: deque[bool] = deque()
        with (
            os.fdopen(data_r, "rb", buffering=PIPE_BYTES) as pieces,
            os.fdopen(report_w, "wb", buffering=0) as reports,
        ):

            def sent(piece: TsChunk) -> None:
                if lasts.popleft():
                    reports.write(_REPORT.pack(_SENT, 0.0))

            def late(seconds: float) -> None:
                reports.write(_REPORT.pack(_LATE, seconds))

            try:
                self.pacer.run(
                    _pieces(pieces, lasts, stop),
                    first_due=first_due,
                    prefetch=0,  # the pipe is the read-ahead
                    on_sent=sent,
                    on_late=late,
                )
            finally:
                self.pacer.sink.close()  # UDP: the last partial datagram, padded


def _feed(
    chunks: Iterable[TsChunk],
    fd: int,
    pending: deque[TsChunk],
    lock: threading.Lock,
    failed: list[BaseException],
    closing: threading.Event,
) -> None:
    """The engine's thread: every chunk into the pipe, in pieces; the pipe's end closes at
    the end of the chunks (the child sends the rest, then ends) or on failure."""
    try:
        for chunk in chunks:
            if closing.is_set():
                return
            data = chunk.data
            with lock:
                pending.append(chunk)  # before its report can come back
            for start in range(0, max(len(data), 1), PIECE_BYTES):
                piece = data[start : start + PIECE_BYTES]
                header = _PIECE.pack(
                    chunk.byte_offset + start,
                    chunk.frame,
                    len(piece),
                    chunk.idr and start == 0,
                    start + PIECE_BYTES >= len(data),
                )
                write_all(fd, header + piece)
    except BrokenPipeError:
        pass  # the child is gone: the caller says why
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            failed.append(exc)
    except BaseException as exc:  # the engine's failure, raised by the caller
        failed.append(exc)
    finally:
        os.close(fd)


def _pieces(source: BinaryIO, lasts: deque[bool], stop: threading.Event) -> Iterator[TsChunk]:
    """The pieces the parent writes, until its end of the pipe closes or ``stop`` is set
    (then only between chunks: a chunk started is sent whole)."""
    boundary = True
    while True:
        if boundary and stop.is_set():
            return
        header = source.read(_PIECE.size)
        if len(header) < _PIECE.size:
            return
        offset, frame, length, idr, last = _PIECE.unpack(header)
        data = source.read(length)
        if len(data) < length:
            return
        lasts.append(last)
        boundary = last
        yield TsChunk(data=data, byte_offset=offset, frame=frame, idr=idr, pcr_90k=None)


def _reports(source: BinaryIO) -> Iterator[tuple[int, float]]:
    while len(raw := source.read(_REPORT.size)) == _REPORT.size:
        kind, value = _REPORT.unpack(raw)
        yield kind, value


def _reap(pid: int) -> int:
    """Wait for the child; its exit status (a signal number as its negative)."""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _die_with(parent: int) -> None:
    """SIGKILL when the parent dies (Linux); gone already: exit now."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(0)


def _realtime(priority: int | None) -> None:
    """SCHED_FIFO for this process if allowed; otherwise the pacer's nice applies."""
    if priority is None:
        return
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (AttributeError, OSError) as exc:
        logger.info("pacing process at normal priority (SCHED_FIFO not allowed: %s)", exc)
