"""The root of skyclass's exception tree.

SkyclassError
├── BadInputError          operator input was wrong: the CLI exits with code 2
└── (anything else)        a failure of ours or of the machine: exit code 1

Each package draws its own tree in its ``errors`` module (``grading.errors``,
``channels.errors``, ``ingest.errors``, ``epg.errors``, ``mpegts.errors``,
``playout.errors``, ``compliance.errors``): a package root under SkyclassError,
and its bad-input errors under both that root and BadInputError.

Each message says what was wrong, where (file, row, field) and what to do.
"""

from __future__ import annotations


class SkyclassError(Exception):
    """Root of every error skyclass raises on purpose."""


class BadInputError(SkyclassError, ValueError):
    """The operator's input is wrong; fixing the input fixes the problem."""
