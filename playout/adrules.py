"""The ad rules at air time (播出环节的广告规则): a rundown never airs an ad it must not.

Schedule validation refuses a schedule that breaks a channel's ad policy, but a
rundown file can be edited by hand after it was compiled. So playout checks every
rundown it loads or reloads against the channel's ``AdPolicy`` (channels.ads) and
withholds the commercials (ads, promos) that break it:

* a banned category (``MediaRef.ad_category``, copied from the asset library at
  compile time): Advertising Law §40, 双减 (tutoring), TV shopping;
* inside a lesson: a commercial between two parts of one lesson (events that share
  the lesson's EIT event). Overruns need no rule here: the timeline never cuts a
  lesson, so a break that was due during one airs after it;
* over the channel's ad minutes in a clock hour (ads, not promos): the ad that
  would cross the limit is withheld, and any later one that would too.

A withheld event keeps its slot, without media: the timeline airs filler (else
slate) for its duration, as for any bad media, and its as-run record says
``substituted`` with the rule that withheld it (``AdRules.explain``). An ad
without a category is not withheld here (playout has no library to ask); the
compliance audit reports it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from channels.ads import DEFAULT_AD_POLICY, AdCategory, AdPolicy, split_by_clock_hour
from core.timecode import FPS
from epg.rundown import EventType, Rundown, RundownEvent
from playout.asrun.ledger import AsRunOutcome, AsRunRecord

logger = logging.getLogger(__name__)

WITHHELD = "withheld by the ad rules"
NO_MEDIA = "event has no media"  # the timeline's reason for an event without media


@dataclass(frozen=True, kw_only=True)
class Withholding:
    """A commercial event of a rundown that must not air, and why."""

    event_id: str
    start_frame: int
    reason: str


def check_rundown(
    rundown: Rundown,
    policy: AdPolicy,
    *,
    before: Sequence[RundownEvent] = (),
    boundary: int | None = None,
) -> list[Withholding]:
    """The commercials of ``rundown`` that break ``policy``, in rundown order.

    For a reload, ``before`` holds the events of the same day already committed up to
    frame ``boundary`` (they air whatever this says): their ads count toward the
    clock hours, and only events of ``rundown`` from ``boundary`` on are judged.
    """
    first = boundary if boundary is not None else -1
    events = [e for e in rundown.events if e.start_frame >= first]
    out: dict[int, Withholding] = {}
    for index, event in enumerate(events):
        if not event.type.is_commercial or event.media is None:
            continue
        category = event.media.ad_category
        if category is not None and policy.bans(category):
            named = AdCategory(category)
            out[index] = Withholding(
                event_id=event.event_id,
                start_frame=event.start_frame,
                reason=f"ad category {named.value} ({named.name_zh}) is banned on this "
                "channel for minors",
            )
    for index, lesson in _inside_lessons(rundown.events, events):
        out.setdefault(
            index,
            Withholding(
                event_id=events[index].event_id,
                start_frame=events[index].start_frame,
                reason=f"scheduled inside lesson {lesson} (between two parts of it): "
                "a lesson is never interrupted by an ad",
            ),
        )
    # Ad minutes per clock hour: committed ads first, then this rundown's in order.
    used: dict[datetime, int] = {}
    for event in before:
        if event.type is not EventType.AD or event.media is None:
            continue
        if boundary is not None and event.start_frame >= boundary:
            continue
        for hour, frames in _hours(rundown, event).items():
            used[hour] = used.get(hour, 0) + frames
    limit = policy.max_frames_per_hour
    for index, event in enumerate(events):
        if event.type is not EventType.AD or event.media is None or index in out:
            continue
        share = _hours(rundown, event)
        over = [h for h, frames in share.items() if used.get(h, 0) + frames > limit]
        if over:
            hour = over[0]
            total = (used.get(hour, 0) + share[hour]) / FPS / 60
            out[index] = Withholding(
                event_id=event.event_id,
                start_frame=event.start_frame,
                reason=f"it would bring {hour:%H:00}–{hour.hour + 1:02d}:00 to {total:.1f} ad "
                f"minutes, over this channel's {policy.max_minutes_per_hour:g} per clock hour",
            )
            continue
        for hour, frames in share.items():
            used[hour] = used.get(hour, 0) + frames
    return [out[i] for i in sorted(out)]


def _hours(rundown: Rundown, event: RundownEvent) -> dict[datetime, int]:
    return split_by_clock_hour(
        [(rundown.wall_clock(event.start_frame), event.duration_frames)], rundown.zone
    )


def _inside_lessons(
    everything: Sequence[RundownEvent], judged: Sequence[RundownEvent]
) -> list[tuple[int, str]]:
    """(index in ``judged``, lesson event id) of commercials between two parts of a lesson."""
    lesson_before: dict[int, RundownEvent | None] = {}
    last: RundownEvent | None = None
    for event in everything:
        if event.type.is_lesson:
            last = event
        lesson_before[id(event)] = last
    lesson_after: dict[int, RundownEvent | None] = {}
    following: RundownEvent | None = None
    for event in reversed(everything):
        lesson_after[id(event)] = following
        if event.type.is_lesson:
            following = event
    out: list[tuple[int, str]] = []
    for index, event in enumerate(judged):
        if not event.type.is_commercial:
            continue
        before = lesson_before.get(id(event))
        after = lesson_after.get(id(event))
        if (
            before is not None
            and after is not None
            and before.eit_event_id != 0
            and before.eit_event_id == after.eit_event_id
        ):
            out.append((index, before.event_id))
    return out


class AdRules:
    """Applies a channel's ad policy to every rundown the engine plays (see the module doc)."""

    def __init__(self, policy: AdPolicy | None = None) -> None:
        self.policy = policy or DEFAULT_AD_POLICY
        self._why: dict[tuple[str, datetime], str] = {}  # (event id, scheduled start) → reason

    def apply(
        self, rundown: Rundown, *, current: Rundown | None = None, on_air_frame: int | None = None
    ) -> Rundown:
        """``rundown`` with the commercials that break the policy withheld (media removed).

        For a reload pass the rundown playing that day and the frame on air: what airs
        up to the end of the item on air is committed and counts toward the hour.
        """
        before: Sequence[RundownEvent] = ()
        boundary = None
        if current is not None and on_air_frame is not None:
            on_air = current.event_at(on_air_frame)
            boundary = on_air.end_frame if on_air is not None else on_air_frame
            before = current.events
        withheld = check_rundown(rundown, self.policy, before=before, boundary=boundary)
        if not withheld:
            return rundown
        reasons = {(w.event_id, w.start_frame): w.reason for w in withheld}
        events = []
        for event in rundown.events:
            reason = reasons.get((event.event_id, event.start_frame))
            if reason is None:
                events.append(event)
                continue
            logger.warning(
                "%s %s: %s %s withheld: %s",
                rundown.channel_id,
                rundown.broadcast_date,
                event.type.value,
                event.event_id,
                reason,
            )
            self._why[(event.event_id, rundown.wall_clock(event.start_frame))] = reason
            events.append(dataclasses.replace(event, media=None))
        return dataclasses.replace(rundown, events=tuple(events))

    def explain(self, record: AsRunRecord) -> AsRunRecord:
        """The as-run of a withheld event, with the rule that withheld it as its reason."""
        if not self._why or record.outcome is AsRunOutcome.AIRED:
            return record
        why = self._why.get((record.event_id, record.scheduled_start))
        if why is None:
            return record
        text = f"{WITHHELD}: {why}"
        if NO_MEDIA in record.reason:
            reason = record.reason.replace(NO_MEDIA, text, 1)
        else:
            reason = "; ".join(x for x in (text, record.reason) if x)
        return dataclasses.replace(record, reason=reason)
