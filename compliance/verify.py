"""Is the as-run still what was written? (播出记录防篡改校验)

Each as-run record carries SHA-256(previous hash | sequence number | its content), in
the journal each channel's playout fsyncs and in the ``asrun`` table it is copied to.
``verify_channel`` walks both chains side by side, in one pass and constant memory:

* in each chain: sequence numbers 1, 2, 3…, each ``prev`` the hash before it, each
  hash recomputed from the content: an edited, deleted, inserted or reordered record
  breaks it where the change is, and the first bad record is named;
* across them: record n must have the same hash in both, so a chain rewritten
  consistently in one place (every hash recomputed) differs from the other; the
  journal must reach as far as the table; the table may lag the journal only by what
  the sync has not copied yet (records that ended within ``SYNC_GRACE``), so a
  truncated table is found too (the next sync would copy the lost tail back);
* against chain heads exported earlier (``heads``, ``--against``): the record at the
  exported sequence number must still have the exported hash, which catches what the
  two copies cannot: both rewritten, or both truncated, consistently.

None of this relies on the database triggers: they stop changes, the hashes find them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Engine, text

from compliance.asrun import AsRunTable, torn_tail
from compliance.errors import ComplianceInputError
from core.timecode import FPS
from playout.asrun.ledger import GENESIS

logger = logging.getLogger(__name__)

HEADS_FORMAT = "skyclass-asrun-heads/1"
#: How far the table may lag its journal before the missing tail counts as truncation:
#: the station syncs every 30 s (skyclass.station), so this is many missed runs.
SYNC_GRACE = timedelta(minutes=15)
APPEND_ONLY_TABLES = ("asrun", "guide_log")


def entry_hash(prev: str, seq: int, body: Mapping[str, Any]) -> str:
    """The ledger's chain hash (playout.asrun.ledger), from a record's JSON object."""
    text_ = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{prev}|{seq}|{text_}".encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class ChainHead:
    """The newest record of a channel's chain: what ``heads`` exports."""

    channel_id: str
    seq: int
    hash: str

    def as_json(self) -> dict[str, Any]:
        return {"channel_id": self.channel_id, "seq": self.seq, "hash": self.hash}


@dataclass(frozen=True, kw_only=True)
class Problem:
    """The first thing wrong with one copy of a channel's as-run."""

    channel_id: str
    source: str  # "journal" | "table" | "heads" | "database"
    seq: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.channel_id}: {self.source}: {self.message}"

    def as_json(self) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id,
            "source": self.source,
            "seq": self.seq,
            "message": self.message,
        }


@dataclass(frozen=True, kw_only=True)
class ChannelVerdict:
    channel_id: str
    journal_records: int | None  # None: no journal on this host
    table_records: int | None  # None: the table was not read
    head: ChainHead | None
    problems: tuple[Problem, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id,
            "ok": self.ok,
            "journal_records": self.journal_records,
            "table_records": self.table_records,
            "head": self.head.as_json() if self.head else None,
            "problems": [p.as_json() for p in self.problems],
            "notes": list(self.notes),
        }


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    channels: tuple[ChannelVerdict, ...]
    problems: tuple[Problem, ...] = ()  # not of one chain: the database's triggers

    @property
    def all_problems(self) -> list[Problem]:
        return [p for c in self.channels for p in c.problems] + list(self.problems)

    @property
    def ok(self) -> bool:
        return not self.all_problems

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "channels": [c.as_json() for c in self.channels],
            "problems": [p.as_json() for p in self.problems],
        }


# -- one chain -------------------------------------------------------------------------


class _Link(NamedTuple):
    """One record of a chain as read: where it is, its chain fields and its content.

    A tuple, not a frozen dataclass: a year of as-run is millions of these.
    """

    where: str  # "line 7" or "row id 42"
    seq: int | None
    prev: str
    hash: str
    body: Mapping[str, Any] | None
    unreadable: str = ""


def _event_of(link: _Link) -> str:
    body = link.body or {}
    return f"event {body.get('event_id', '?')} at {body.get('actual_start', '?')}"


@dataclass
class _Chain:
    """Checks one copy of a chain link by link and keeps the first problem."""

    channel_id: str
    source: str
    count: int = 0
    last: str = GENESIS
    problem: Problem | None = None

    def feed(self, link: _Link) -> bool:
        """Check the next link; False (and ``problem`` set) at the first bad one."""
        if self.problem is not None:
            return False
        expected = self.count + 1
        what: str | None = None
        if link.body is None or link.seq is None:
            what = f"{link.where} is not an as-run record ({link.unreadable}): it was edited"
        elif link.seq > expected:
            missing = (
                f"record {expected} is"
                if link.seq == expected + 1
                else f"records {expected}–{link.seq - 1} are"
            )
            what = f"{missing} missing: {link.where} holds seq {link.seq} (deleted or moved)"
        elif link.seq < expected:
            what = (
                f"seq {link.seq} ({link.where}, {_event_of(link)}) comes after seq {self.count}: "
                "records were reordered or duplicated"
            )
        elif link.prev != self.last:
            what = (
                f"seq {link.seq} ({link.where}, {_event_of(link)}) does not follow the record "
                "before it: a record was removed, inserted or reordered"
            )
        elif entry_hash(link.prev, link.seq, link.body) != link.hash:
            what = (
                f"seq {link.seq} ({link.where}, {_event_of(link)}) was edited: its content "
                "does not match its hash"
            )
        if what is not None:
            seq = link.seq if link.seq is not None else expected
            self.problem = Problem(
                channel_id=self.channel_id, source=self.source, seq=seq, message=what
            )
            return False
        self.count, self.last = expected, link.hash
        return True


def _journal_links(path: Path) -> Iterator[_Link]:
    """Every complete line of a journal; a torn last line (crash mid-write) is not yielded."""
    name = path.name
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n"):
                return
            try:
                data = json.loads(raw)
                yield _Link(
                    f"{name} line {number}",
                    int(data["seq"]),
                    str(data["prev"]),
                    str(data["hash"]),
                    data["record"],
                )
            except (ValueError, KeyError, TypeError) as exc:
                yield _Link(f"{name} line {number}", None, "", "", None, str(exc))


def _table_links(table: AsRunTable, channel_id: str) -> Iterator[_Link]:
    previous_id = -1
    for row in table.rows(channel_id):
        # Rows are inserted in sequence order, so ids rise with seq; a row whose id
        # does not was renumbered into place (reordered).
        where = f"table row id {row.row_id}"
        if row.row_id < previous_id:
            where += " (out of insertion order)"
            yield _Link(where=where, seq=row.seq, prev="", hash=row.hash, body=row.body)
            continue
        previous_id = row.row_id
        yield _Link(where=where, seq=row.seq, prev=row.prev, hash=row.hash, body=row.body)


def _ended(body: Mapping[str, Any] | None) -> datetime | None:
    """When a record's event ended on air (it was journaled about then)."""
    if body is None:
        return None
    try:
        start = datetime.fromisoformat(str(body["actual_start"]))
        return start + timedelta(seconds=int(body["duration_frames"]) / FPS)
    except (KeyError, TypeError, ValueError):
        return None


def verify_channel(
    channel_id: str,
    *,
    journal: Path | None,
    table: AsRunTable | None,
    head: ChainHead | None = None,
    now: datetime,
) -> ChannelVerdict:
    """Check a channel's journal and table against each other and against ``head``."""
    problems: list[Problem] = []
    notes: list[str] = []
    j = _Chain(channel_id, "journal")
    t = _Chain(channel_id, "table")
    jlinks = _journal_links(journal) if journal is not None and journal.exists() else None
    tlinks = _table_links(table, channel_id) if table is not None else None
    if journal is not None and jlinks is None:
        notes.append(f"no journal at {journal}: only the table was checked")
    if journal is not None and jlinks is not None and torn_tail(journal):
        notes.append("the journal's last line is incomplete (a crash mid-write): ignored")
    head_seen = {"journal": False, "table": False}
    unsynced = 0
    lag_problem: Problem | None = None
    jnext: _Link | None = None
    tnext: _Link | None = None
    while True:
        jnext = next(jlinks, None) if jlinks is not None and j.problem is None else None
        tnext = next(tlinks, None) if tlinks is not None and t.problem is None else None
        if jnext is None and tnext is None:
            break
        jok = jnext is not None and j.feed(jnext)
        tok = tnext is not None and t.feed(tnext)
        if jok and tok:
            assert jnext is not None and tnext is not None
            if jnext.hash != tnext.hash and not problems:
                problems.append(
                    Problem(
                        channel_id=channel_id,
                        source="table",
                        seq=j.count,
                        message=f"seq {j.count} ({tnext.where}, {_event_of(tnext)}) differs from "
                        f"the journal's ({jnext.where}): one copy was rewritten (hash "
                        f"{tnext.hash[:16]}… in the table, {jnext.hash[:16]}… in the journal)",
                    )
                )
        if head is not None:
            for chain, link, ok in (("journal", jnext, jok), ("table", tnext, tok)):
                if ok and link is not None and link.seq == head.seq:
                    head_seen[chain] = True
                    if link.hash != head.hash and not any(p.source == "heads" for p in problems):
                        problems.append(
                            Problem(
                                channel_id=channel_id,
                                source="heads",
                                seq=head.seq,
                                message=f"seq {head.seq} in the {chain} ({link.where}) has hash "
                                f"{link.hash[:16]}…, the exported head says {head.hash[:16]}…: "
                                "the chain was rewritten since the heads were exported",
                            )
                        )
        # The journal goes on where the table stopped: not synced yet, or truncated.
        if jok and tnext is None and tlinks is not None and t.problem is None:
            assert jnext is not None
            unsynced += 1
            ended = _ended(jnext.body)
            if lag_problem is None and ended is not None and ended < now - SYNC_GRACE:
                lag_problem = Problem(
                    channel_id=channel_id,
                    source="table",
                    seq=jnext.seq,
                    message=f"records from seq {jnext.seq} ({_event_of(jnext)}, in the journal) "
                    f"are missing from the table although they ended over "
                    f"{int(SYNC_GRACE.total_seconds() // 60)} min ago: the table was truncated, "
                    "or the as-run sync is failing",
                )
    for checked in (t, j):
        if checked.problem is not None:
            problems.insert(0, checked.problem)
    if jlinks is not None and tlinks is not None and j.problem is None and t.problem is None:
        if t.count > j.count:
            problems.append(
                Problem(
                    channel_id=channel_id,
                    source="journal",
                    seq=j.count + 1,
                    message=f"the journal ends at seq {j.count} but the table holds up to seq "
                    f"{t.count}: the journal was truncated or replaced",
                )
            )
        if lag_problem is not None:
            problems.append(lag_problem)
        elif unsynced:
            notes.append(f"{unsynced} newest record(s) not in the table yet (the sync copies them)")
    if head is not None:
        for checked in (j, t):
            present = jlinks if checked is j else tlinks
            if present is None or checked.problem is not None or head_seen[checked.source]:
                continue
            if checked.count < head.seq:
                problems.append(
                    Problem(
                        channel_id=channel_id,
                        source="heads",
                        seq=checked.count + 1,
                        message=f"the {checked.source} ends at seq {checked.count}, but the heads "
                        f"exported earlier reach seq {head.seq}: records were removed from "
                        "its end (truncated)",
                    )
                )
    counts = [c for c in (j, t) if (jlinks if c is j else tlinks) is not None]
    newest = max(counts, key=lambda c: c.count, default=None)
    found_head = (
        ChainHead(channel_id=channel_id, seq=newest.count, hash=newest.last)
        if newest is not None and newest.count and newest.problem is None
        else None
    )
    return ChannelVerdict(
        channel_id=channel_id,
        journal_records=j.count if jlinks is not None else None,
        table_records=t.count if tlinks is not None else None,
        head=found_head,
        problems=tuple(problems),
        notes=tuple(notes),
    )


# -- the database's own guard ------------------------------------------------------------


def _triggers(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.execute(
                text("SELECT tbl_name || '.' || name FROM sqlite_master WHERE type = 'trigger'")
            )
        elif engine.dialect.name == "postgresql":
            rows = connection.execute(
                text(
                    "SELECT c.relname || '.' || t.tgname FROM pg_trigger t "
                    "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"
                )
            )
        else:
            return set()
        return {str(r[0]) for r in rows}


def expected_triggers(dialect: str) -> set[str]:
    """The append-only triggers migration 0012 creates on this database."""
    if dialect == "postgresql":
        kinds = ("no_update", "no_truncate")
    elif dialect == "sqlite":
        kinds = ("no_update", "no_delete")
    else:
        return set()
    return {f"{table}.{table}_{kind}" for table in APPEND_ONLY_TABLES for kind in kinds}


def trigger_problems(engine: Engine) -> list[Problem]:
    """A problem if the append-only triggers were dropped (the hashes still catch edits)."""
    missing = sorted(expected_triggers(engine.dialect.name) - _triggers(engine))
    if not missing:
        return []
    return [
        Problem(
            channel_id="*",
            source="database",
            seq=None,
            message=f"append-only trigger(s) {', '.join(m.split('.')[1] for m in missing)} are "
            "missing: records can be changed again; restore them "
            "(skyclass/migrations/versions/0012_compliance.py) and keep verifying",
        )
    ]


# -- heads files ---------------------------------------------------------------------------


def heads_json(heads: Iterable[ChainHead], exported_at: datetime) -> dict[str, Any]:
    return {
        "format": HEADS_FORMAT,
        "exported_at": exported_at.isoformat(),
        "heads": [h.as_json() for h in sorted(heads, key=lambda h: h.channel_id)],
    }


def load_heads(path: Path) -> dict[str, ChainHead]:
    """A heads file written by ``skyclass compliance heads --json``; exit 2 if it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ComplianceInputError(
            f"--against {path}: no such file: export heads with `skyclass compliance heads --json`"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ComplianceInputError(f"--against {path}: not a heads file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != HEADS_FORMAT:
        raise ComplianceInputError(
            f"--against {path}: not a {HEADS_FORMAT} file: export one with "
            "`skyclass compliance heads --json`"
        )
    heads: dict[str, ChainHead] = {}
    for index, item in enumerate(data.get("heads", [])):
        try:
            head = ChainHead(
                channel_id=str(item["channel_id"]), seq=int(item["seq"]), hash=str(item["hash"])
            )
        except (KeyError, TypeError, ValueError):
            raise ComplianceInputError(
                f"--against {path}: heads[{index}] needs channel_id, seq and hash"
            ) from None
        heads[head.channel_id] = head
    return heads


@dataclass(frozen=True, kw_only=True)
class Verifier:
    """Verifies the as-run of several channels on one host (journals) and database."""

    var_dir: Path
    table: AsRunTable | None
    engine: Engine | None = None
    heads: Mapping[str, ChainHead] = field(default_factory=dict)

    def journal(self, channel_id: str) -> Path:
        from playout.asrun.ledger import journal_path

        return journal_path(self.var_dir, channel_id)

    def run(self, channel_ids: Iterable[str], *, now: datetime) -> VerifyReport:
        verdicts = tuple(
            verify_channel(
                channel_id,
                journal=self.journal(channel_id),
                table=self.table,
                head=self.heads.get(channel_id),
                now=now,
            )
            for channel_id in channel_ids
        )
        guard = trigger_problems(self.engine) if self.engine is not None else []
        for verdict in verdicts:
            logger.info(
                "verify %s: journal %s, table %s, %s",
                verdict.channel_id,
                verdict.journal_records,
                verdict.table_records,
                "ok" if verdict.ok else verdict.problems[0],
            )
        return VerifyReport(channels=verdicts, problems=tuple(guard))
