"""Continuity (TR 101 290 1.4) and transport errors (2.1), on every PID of a batch at once."""

from __future__ import annotations

import numpy as np

from mpegts.monitor.batch import PacketBatch
from mpegts.monitor.findings import Check, FindingLog
from mpegts.packet import I64, MAX_PID, NULL_PID

PIDS = MAX_PID + 1


class ContinuityCheck:
    """continuity_counter per PID: one allowed repeat, a discontinuity_indicator resets it."""

    def __init__(self, log: FindingLog) -> None:
        self._log = log
        self._last_cc = np.full(PIDS, -1, np.int16)
        self._last_dup = np.zeros(PIDS, np.bool_)
        self.errors: I64 = np.zeros(PIDS, np.int64)  # per PID

    def check_transport_errors(self, batch: PacketBatch) -> None:
        """2.1: transport_error_indicator set."""
        tei = np.flatnonzero(~batch.good)
        if not len(tei):
            return
        self._log.add_count(Check.TRANSPORT_ERROR, len(tei))
        for i in tei[: self._log.wants_examples(Check.TRANSPORT_ERROR)].tolist():
            self._log.add_example(
                Check.TRANSPORT_ERROR,
                "transport_error_indicator set",
                packet_index=batch.packet_index(i),
                byte_offset=batch.byte_offset(i),
                pid=int(batch.pid[i]),
            )

    def check(self, batch: PacketBatch) -> tuple[I64, I64]:
        """1.4 on every PID at once: sort packets by PID (stable), compare neighbours.

        Marks `batch.cc_error` and `batch.repeat`. Returns the sort order (batch indices
        grouped by PID, in arrival order within a PID) and the sorted PIDs, reused by
        the 1.6 presence check.
        """
        rows = np.flatnonzero(batch.good & (batch.pid != NULL_PID))
        order = rows[np.argsort(batch.pid[rows], kind="stable")]
        spid = batch.pid[order]
        if not len(order):
            return order, spid
        cc = batch.continuity_counter[order].astype(np.int16)
        payload = batch.has_payload[order]
        first = np.empty(len(order), np.bool_)
        first[0] = True
        first[1:] = spid[1:] != spid[:-1]
        prev = np.empty_like(cc)
        prev[1:] = cc[:-1]
        prev[first] = self._last_cc[spid[first]]
        duplicate = payload & (cc == prev)
        prev_duplicate = np.empty_like(duplicate)
        prev_duplicate[1:] = duplicate[:-1]
        prev_duplicate[first] = self._last_dup[spid[first]]
        expected = np.where(payload, (prev + 1) & 0x0F, prev)
        allowed_repeat = duplicate & ~prev_duplicate  # one repeat of a packet is allowed
        error = (prev >= 0) & ~batch.discontinuity[order] & (cc != expected) & ~allowed_repeat
        batch.repeat[order[allowed_repeat]] = True
        last = np.empty(len(order), np.bool_)
        last[:-1] = first[1:]
        last[-1] = True
        self._last_cc[spid[last]] = cc[last]
        self._last_dup[spid[last]] = duplicate[last]
        if error.any():
            where = order[error]
            batch.cc_error[where] = True
            self.errors += np.bincount(spid[error], minlength=PIDS)
            self._log.add_count(Check.CONTINUITY_COUNT_ERROR, len(where))
            wanted = self._log.wants_examples(Check.CONTINUITY_COUNT_ERROR)
            if wanted > 0:
                firsts = np.argsort(where, kind="stable")[:wanted]
                got, was = cc[error], prev[error]
                for k in firsts.tolist():
                    i = int(where[k])
                    self._log.add_example(
                        Check.CONTINUITY_COUNT_ERROR,
                        f"continuity_counter {int(got[k])} after {int(was[k])}"
                        f" (expected {(int(was[k]) + 1) & 0x0F})",
                        packet_index=batch.packet_index(i),
                        byte_offset=batch.byte_offset(i),
                        pid=int(batch.pid[i]),
                    )
        return order, spid
