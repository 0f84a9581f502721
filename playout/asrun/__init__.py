"""The as-run (播出记录), owned by its writer: playout.

* ``ledger``: the per-channel hash-chained, fsynced JSON-lines journal;
* ``journal``: journaling as the bytes leave, progress marks, restart recovery;
* ``store``: the append-only ``asrun`` table and the journal-to-database sync.

Compliance reads all of it; nothing here imports compliance.
"""

from playout.asrun.journal import RESTART_NOTE, AsRunJournal, Interruption, progress_path, recover
from playout.asrun.ledger import (
    GENESIS,
    AsRunLedger,
    AsRunOutcome,
    AsRunRecord,
    JournalEntry,
    journal_path,
)
from playout.errors import LedgerError

__all__ = [
    "GENESIS",
    "RESTART_NOTE",
    "AsRunJournal",
    "AsRunLedger",
    "AsRunOutcome",
    "AsRunRecord",
    "Interruption",
    "JournalEntry",
    "LedgerError",
    "journal_path",
    "progress_path",
    "recover",
]
