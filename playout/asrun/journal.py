"""The as-run of a running channel, journaled when the bytes have left, and restart recovery.

The engine attaches as-run facts to the chunk whose bytes make them true
(``TsChunk.asrun``); ``playout run`` hands every chunk to ``AsRunJournal.sent``
after the pacer has sent it (or, with ``--fast``, after every output got it).
So after a SIGKILL the journal never claims air time that did not go out.

Two kinds of write, both on the journal's own thread (an fsync never delays a
datagram):

* the finished record of an event, appended to the hash-chained ledger (fsync);
* a progress mark for the event on air, at its first frame and then at most once
  a second: a small JSON file beside the journal, replaced atomically (fsync).

A write that fails (a full disk) is logged and kept: records wait in a
backlog, in order, and go out with the next write that succeeds; past
``BACKLOG_LIMIT`` the oldest are dropped and a ``gap`` entry says how many.

``close(stopped=...)`` (SIGTERM, see ``playout run``) journals the event on air
as truncated at the start of the last chunk sent: within one GOP of the last
frame that left, since chunks are cut at IDRs.

``recover`` runs before a restart plays: if the last mark names an event the
ledger has no record of, the process died during it. It is recorded as
``truncated`` with the duration the last mark proves (a lower bound: at most a
second plus a GOP short), and the restart's own join says "restart after
interruption" with where the gap began.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from playout.asrun.ledger import AsRunLedger, AsRunOutcome, AsRunRecord, write_all
from playout.errors import LedgerError
from playout.stream import TsChunk

logger = logging.getLogger(__name__)

PROGRESS_PERIOD = 1.0  # seconds between progress marks of the event on air
BACKLOG_LIMIT = 10_000  # records kept in memory while the journal cannot be written
RESTART_NOTE = "restart after interruption"
STOPPED = "stopped"  # the reason of the event on air when an operator stops the channel
_STOP = object()
_ON_AIR = object()


def progress_path(journal: Path) -> Path:
    """The progress mark beside a journal: var/asrun/<channel>.onair.json."""
    return journal.with_suffix(".onair.json")


@dataclass(frozen=True, kw_only=True)
class Interruption:
    """What a restart found: the event cut by the death of the previous process."""

    record: AsRunRecord  # as journaled now: truncated at the last progress mark
    last_frame: int  # channel-day frame of the last progress mark (the gap starts after it)

    @property
    def join_note(self) -> str:
        """The reason given to the restart's mid-event join."""
        return f"{RESTART_NOTE} ({self.record.event_id} off air after frame {self.last_frame})"


class AsRunJournal:
    """Journals the as-run as chunks are sent; see the module docstring."""

    def __init__(
        self,
        ledger: AsRunLedger,
        *,
        progress_file: Path | None = None,
        period: float = PROGRESS_PERIOD,
        monotonic: Callable[[], float] = time.monotonic,
        on_air: Callable[[], None] | None = None,
        checkpoint: Callable[[], None] | None = None,
    ) -> None:
        """``on_air`` is called once, on the journal's thread, when the first chunk was sent
        (``playout run`` tells the supervisor the run is healthy). ``checkpoint`` is
        called on the sending thread after each sent chunk is journaled: a clean place
        to stop (``playout.supervisor.StopSignal.checkpoint`` raises there on SIGTERM)."""
        self.ledger = ledger
        self.progress_file = progress_file or progress_path(ledger.path)
        self._period = period
        self._monotonic = monotonic
        self._on_air = on_air
        self._checkpoint = checkpoint
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._open: tuple[AsRunRecord, int] | None = None  # event on air, its first frame
        self._last_frame: int | None = None  # frame at the start of the last chunk sent
        self._next_mark = 0.0
        self._backlog: list[AsRunRecord] = []  # records a failed write left (journal thread)
        self._dropped = 0
        self.failed_writes = 0
        self._thread = threading.Thread(target=self._write, name="as-run journal", daemon=True)
        self._thread.start()

    def sent(self, chunk: TsChunk) -> None:
        """The chunk has left: journal what it makes true (called on the pacing thread)."""
        if self._last_frame is None and self._on_air is not None:
            self._queue.put(_ON_AIR)
        self._last_frame = chunk.frame
        for mark in chunk.asrun:
            if mark.final:
                self._queue.put(mark.record)
                if self._open is not None and self._open[0].event_id == mark.record.event_id:
                    self._open = None
            else:
                self._open = (mark.record, mark.frame)
                self._next_mark = 0.0
        if self._open is not None:
            now = self._monotonic()
            if now >= self._next_mark:
                self._next_mark = now + self._period
                record, first = self._open
                self._queue.put((record, max(0, chunk.frame - first)))
        if self._checkpoint is not None:
            self._checkpoint()

    def close(self, *, stopped: str | None = None) -> None:
        """Write everything queued, then stop the thread.

        ``stopped`` (why the run was stopped, e.g. "SIGTERM"): the event on air is
        journaled as truncated at the last chunk sent, instead of being left to
        the next start's recovery (which only knows the last progress mark).
        """
        if stopped is not None and self._open is not None and self._last_frame is not None:
            record, first = self._open
            self._open = None
            last = max(first, self._last_frame)
            self._queue.put(
                cut_short(record, last - first, f"{STOPPED} ({stopped}) after frame {last}")
            )
        self._queue.put(_STOP)
        self._thread.join()
        if self._backlog:
            logger.error(
                "as-run journal: %d record(s) could not be written and are lost: %s",
                len(self._backlog),
                "; ".join(f"{r.event_id} {r.outcome.value}" for r in self._backlog),
            )

    def _write(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                self._flush()
                return
            if item is _ON_AIR:
                assert self._on_air is not None
                try:
                    self._on_air()
                except Exception:  # a notification must never stop the journal
                    logger.exception("as-run journal: on-air notification failed")
                continue
            try:
                if isinstance(item, AsRunRecord):
                    self._backlog.append(item)
                    self._flush()
                else:
                    assert isinstance(item, tuple)
                    record, frames = item
                    self._write_progress(record, frames)
            except OSError as exc:  # the bytes are on air regardless; say the journal lags
                logger.error("as-run journal write failed: %s", exc)

    def _flush(self) -> None:
        """Append the backlog in order; on failure keep it (bounded) for the next try."""
        try:
            if self._dropped:
                self.ledger.append(
                    self.ledger.gap_record(
                        f"{self._dropped} as-run record(s) lost: the journal could not be "
                        "written for a while (disk full?)"
                    )
                )
                self._dropped = 0
            while self._backlog:
                self.ledger.append(self._backlog[0])
                self._backlog.pop(0)
        except (OSError, LedgerError) as exc:
            self.failed_writes += 1
            if len(self._backlog) > BACKLOG_LIMIT:
                extra = len(self._backlog) - BACKLOG_LIMIT
                del self._backlog[:extra]
                self._dropped += extra
            logger.error(
                "as-run journal write failed (%d record(s) waiting): %s", len(self._backlog), exc
            )

    def _write_progress(self, record: AsRunRecord, frames: int) -> None:
        body = json.dumps(
            {"record": record.as_json(), "aired_frames": frames}, ensure_ascii=False
        ).encode()
        tmp = self.progress_file.with_suffix(".tmp")
        self.progress_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.progress_file)


def ended_by_stop(record: AsRunRecord) -> bool:
    """The event was on air when an operator stopped the channel (``close(stopped=...)``),
    not when it crashed: the channel was meant to be off air after it."""
    return any(part.startswith(f"{STOPPED} (") for part in record.reason.split("; "))


def cut_short(record: AsRunRecord, aired: int, why: str) -> AsRunRecord:
    """``record`` (as opened) aired ``aired`` frames only: truncated (substituted stays so)."""
    return dataclasses.replace(
        record,
        duration_frames=aired,
        outcome=AsRunOutcome.TRUNCATED if record.outcome is AsRunOutcome.AIRED else record.outcome,
        reason="; ".join(x for x in (record.reason, why) if x),
    )


def recover(ledger: AsRunLedger, progress_file: Path | None = None) -> Interruption | None:
    """Record the event a dead process left unfinished, if any; see the module docstring."""
    path = progress_file or progress_path(ledger.path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        opened = AsRunRecord.from_json(raw["record"])
        aired = int(raw["aired_frames"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        logger.error("%s unreadable (%s): an interrupted event may lack its as-run", path, exc)
        path.unlink(missing_ok=True)
        return None
    last = ledger.last
    if last is not None and (last.event_id, last.actual_start) == (
        opened.event_id,
        opened.actual_start,
    ):
        path.unlink(missing_ok=True)  # it finished and was journaled: nothing was cut
        return None
    last_frame = opened.actual_frame + aired
    cut = f"interrupted: playout stopped after frame {last_frame} (last progress mark)"
    record = cut_short(opened, aired, cut)
    try:
        ledger.append(record)
    except OSError as exc:  # keep the mark: the next start tries again
        logger.error("%s: cannot journal the interrupted %s: %s", path, opened.event_id, exc)
        return Interruption(record=record, last_frame=last_frame)
    path.unlink(missing_ok=True)
    logger.warning(
        "%s: %s was interrupted after %d frames: journaled as %s",
        record.channel_id,
        record.event_id,
        aired,
        record.outcome.value,
    )
    return Interruption(record=record, last_frame=last_frame)
