"""ETSI TR 101 290 check catalogue and the bounded log of what failed.

A monitor that watches a channel for a day may see millions of errors of one kind;
keeping every one would exhaust memory, so each check keeps a count and only its first
few examples. The check ids and names are the ones in TR 101 290 (V1.4.1) so that an
operator can look them up; the playout acceptance checks that TR 101 290 does not cover
have ids starting with "A." and priority 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, kw_only=True)
class CheckSpec:
    """One check: its TR 101 290 id (e.g. "1.4"), indicator name and priority."""

    id: str
    name: str
    priority: int
    description: str


class Check(Enum):
    """Every check the monitor runs, in report order."""

    TS_SYNC_LOSS = CheckSpec(
        id="1.1",
        name="TS_sync_loss",
        priority=1,
        description="sync lost: two or more consecutive packets without a 0x47 sync byte",
    )
    SYNC_BYTE_ERROR = CheckSpec(
        id="1.2",
        name="Sync_byte_error",
        priority=1,
        description="a single packet whose sync byte is not 0x47",
    )
    PAT_ERROR = CheckSpec(
        id="1.3",
        name="PAT_error",
        priority=1,
        description="PID 0 absent for more than 0.5 s, scrambled, or not carrying table 0x00",
    )
    PAT_ERROR_2 = CheckSpec(
        id="1.3.a",
        name="PAT_error_2",
        priority=1,
        description="no complete PAT section (table_id 0x00) for more than 0.5 s on PID 0, "
        "another table_id on PID 0, or PID 0 scrambled",
    )
    CONTINUITY_COUNT_ERROR = CheckSpec(
        id="1.4",
        name="Continuity_count_error",
        priority=1,
        description="continuity_counter out of order, a packet lost, or a duplicate twice",
    )
    PMT_ERROR = CheckSpec(
        id="1.5",
        name="PMT_error",
        priority=1,
        description="a PMT PID named in the PAT absent for more than 0.5 s, or scrambled",
    )
    PMT_ERROR_2 = CheckSpec(
        id="1.5.a",
        name="PMT_error_2",
        priority=1,
        description="no complete PMT section (table_id 0x02) for more than 0.5 s on a PMT PID",
    )
    PID_ERROR = CheckSpec(
        id="1.6",
        name="PID_error",
        priority=1,
        description="an elementary PID named in a PMT absent for longer than the timeout",
    )
    TRANSPORT_ERROR = CheckSpec(
        id="2.1",
        name="Transport_error",
        priority=2,
        description="transport_error_indicator set",
    )
    CRC_ERROR = CheckSpec(
        id="2.2",
        name="CRC_error",
        priority=2,
        description="CRC_32 of a PSI/SI section (PAT, CAT, PMT, NIT, SDT, EIT, TOT, SCTE-35) wrong",
    )
    PCR_REPETITION_ERROR = CheckSpec(
        id="2.3a",
        name="PCR_repetition_error",
        priority=2,
        description="more than 40 ms between consecutive PCRs of a PCR PID",
    )
    PCR_DISCONTINUITY_INDICATOR_ERROR = CheckSpec(
        id="2.3b",
        name="PCR_discontinuity_indicator_error",
        priority=2,
        description="PCR step outside 0..100 ms without the discontinuity_indicator",
    )
    PCR_ACCURACY_ERROR = CheckSpec(
        id="2.4",
        name="PCR_accuracy_error",
        priority=2,
        description="PCR deviates more than ±500 ns from the value the constant mux rate implies",
    )
    PTS_ERROR = CheckSpec(
        id="2.5",
        name="PTS_error",
        priority=2,
        description="more than 700 ms between PES packets carrying a PTS on one PID",
    )
    DTS_ORDER_ERROR = CheckSpec(
        id="A.1",
        name="DTS_order_error",
        priority=3,
        description="a DTS (or PTS without DTS) not later than the previous one on its PID",
    )
    VIDEO_TIMESTAMP_GAP = CheckSpec(
        id="A.2",
        name="Video_timestamp_gap",
        priority=3,
        description="consecutive video frames further apart than one frame duration",
    )
    VIDEO_TIMESTAMP_OVERLAP = CheckSpec(
        id="A.3",
        name="Video_timestamp_overlap",
        priority=3,
        description="consecutive video frames closer together than one frame duration",
    )

    @property
    def spec(self) -> CheckSpec:
        value: CheckSpec = self.value
        return value


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One example of a failed check: where it happened and what was seen."""

    check_id: str
    name: str
    packet_index: int | None
    byte_offset: int | None
    pid: int | None
    message: str

    def as_json(self) -> dict[str, object]:
        return {
            "check_id": self.check_id,
            "name": self.name,
            "packet_index": self.packet_index,
            "byte_offset": self.byte_offset,
            "pid": self.pid,
            "message": self.message,
        }


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """The outcome of one check over the stream so far."""

    check_id: str
    name: str
    priority: int
    description: str
    count: int
    examples: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return self.count == 0

    def as_json(self) -> dict[str, object]:
        return {
            "check_id": self.check_id,
            "name": self.name,
            "priority": self.priority,
            "description": self.description,
            "count": self.count,
            "examples": [finding.as_json() for finding in self.examples],
        }


class FindingLog:
    """Counts per check and keeps the first `max_examples` findings of each."""

    def __init__(self, max_examples: int = 5) -> None:
        self.max_examples = max_examples
        self._counts: dict[Check, int] = dict.fromkeys(Check, 0)
        self._examples: dict[Check, list[Finding]] = {check: [] for check in Check}

    def wants_examples(self, check: Check) -> int:
        """How many more examples `check` would keep (callers skip formatting at zero)."""
        return self.max_examples - len(self._examples[check])

    def add(
        self,
        check: Check,
        message: str,
        *,
        packet_index: int | None = None,
        byte_offset: int | None = None,
        pid: int | None = None,
    ) -> None:
        self.add_count(check, 1)
        self.add_example(
            check, message, packet_index=packet_index, byte_offset=byte_offset, pid=pid
        )

    def add_count(self, check: Check, count: int) -> None:
        """Count findings whose examples the caller adds separately (vectorised checks)."""
        self._counts[check] += count

    def add_example(
        self,
        check: Check,
        message: str,
        *,
        packet_index: int | None = None,
        byte_offset: int | None = None,
        pid: int | None = None,
    ) -> None:
        if self.wants_examples(check) > 0:
            self._examples[check].append(
                make_finding(
                    check, message, packet_index=packet_index, byte_offset=byte_offset, pid=pid
                ),
            )

    def results(
        self, open_findings: list[tuple[Check, Finding]] | None = None
    ) -> list[CheckResult]:
        """Snapshot of every check, merged with conditions still open at the end."""
        extra_counts: dict[Check, int] = dict.fromkeys(Check, 0)
        extra_examples: dict[Check, list[Finding]] = {check: [] for check in Check}
        for check, finding in open_findings or []:
            extra_counts[check] += 1
            extra_examples[check].append(finding)
        results = []
        for check in Check:
            spec = check.spec
            examples = (self._examples[check] + extra_examples[check])[: self.max_examples]
            results.append(
                CheckResult(
                    check_id=spec.id,
                    name=spec.name,
                    priority=spec.priority,
                    description=spec.description,
                    count=self._counts[check] + extra_counts[check],
                    examples=tuple(examples),
                )
            )
        return results


def make_finding(
    check: Check,
    message: str,
    *,
    packet_index: int | None = None,
    byte_offset: int | None = None,
    pid: int | None = None,
) -> Finding:
    """One finding of `check` at a place in the stream."""
    return Finding(
        check_id=check.spec.id,
        name=check.spec.name,
        packet_index=packet_index,
        byte_offset=byte_offset,
        pid=pid,
        message=message,
    )


class OpenFindings:
    """Conditions still open at report time (a PID silent since 6 s), not yet in the log.

    They are placed at the end of what was analysed, and counted in the report without
    changing the monitor's state, so a live stream can be reported on at any time.
    """

    def __init__(self, *, packet_index: int, byte_offset: int) -> None:
        self.packet_index = packet_index
        self.byte_offset = byte_offset
        self.items: list[tuple[Check, Finding]] = []

    def add(self, check: Check, message: str, pid: int | None = None) -> None:
        self.items.append(
            (
                check,
                make_finding(
                    check,
                    message,
                    packet_index=self.packet_index,
                    byte_offset=self.byte_offset,
                    pid=pid,
                ),
            )
        )
