"""The as-run (播出记录), owned by its writer: playout.

* ``ledger``: the per-channel hash-chained, fsynced JSON-lines journal;
* ``journal``: journaling as the bytes leave, progress marks, restart recovery;
* ``store``: the append-only ``asrun`` table and the journal-to-database sync.

Compliance reads all of it; nothing here imports compliance.
"""

from playout.asrun.journal import (
    RESTART_NOTE,
    AsRunJournal,
    Interruption,
    cut_short,
    progress_path,
    recover,
)
from playout.asrun.ledger import (
    GAP_TYPE,
    GENESIS,
    AsRunLedger,
    AsRunOutcome,
    AsRunRecord,
    JournalEntry,
    journal_path,
    torn_path,
    write_all,
)
from playout.errors import LedgerError

__all__ = [
    "GAP_TYPE",
    "GENESIS",
    "RESTART_NOTE",
    "AsRunJournal",
    "AsRunLedger",
    "AsRunOutcome",
    "AsRunRecord",
    "Interruption",
    "JournalEntry",
    "LedgerError",
    "cut_short",
    "journal_path",
    "progress_path",
    "recover",
    "torn_path",
    "write_all",
]
