"""Logging for the entry points: a terminal gets timestamps, journald gets priorities.

Under systemd, stderr is connected to the journal (``JOURNAL_STREAM`` is set). The
journal stamps each line itself and reads a ``<N>`` prefix as its syslog priority,
so ``journalctl -p warning -u skyclass`` filters by level with no extra package.
"""

from __future__ import annotations

import logging
import os
import sys

#: sd-daemon(3) priority prefixes, by Python level.
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class JournalFormatter(logging.Formatter):
    """``<priority>logger: message``, one journal entry per line."""

    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 6)
        text = super().format(record)
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines() or [""])


def under_journald() -> bool:
    """True when stderr is the systemd journal (systemd sets JOURNAL_STREAM=dev:inode)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = stream.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


def configure_logging(*, debug: bool = False, level: int | None = None) -> None:
    """Set up the root logger once per process (entry points only, never libraries).

    Like ``logging.basicConfig``: a root logger that already has handlers (a host
    application, pytest's capture) is left alone.
    """
    root = logging.getLogger()
    if root.handlers:
        return
    chosen = level if level is not None else (logging.DEBUG if debug else logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    if under_journald():
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(chosen)
