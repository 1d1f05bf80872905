"""Merging an event into a call: pure rules, no store (tests/test_call_merging.py).

An event is checked and its numbers put in E.164 (`prepare`); `merge` and
`ending` give the call row's new values from its current ones and the event,
so that a repeated event changes nothing and events in any order end in the
same call.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from hub.contacts import phones
from hub.errors import InvalidInput
from hub.models import (
    Direction,
)
from hub.text import clean_optional
from hub.voice.models import (
    MAX_AGENTS,
    MAX_CALL_SECONDS,
    MAX_NAME_CHARS,
    CallEvent,
    Outcome,
    State,
    Step,
)
from hub.voice.phone_lines import PhoneLine

# The generic CTI API's hangup causes, as outcomes. `normalClearing` is a call
# that was connected and then hung up; a caller who gives up before anyone
# answers is `cancel`.
CAUSE_OUTCOMES = {
    "normalClearing": Outcome.ANSWERED,
    "busy": Outcome.BUSY,
    "cancel": Outcome.MISSED,
    "noAnswer": Outcome.MISSED,
    "congestion": Outcome.FAILED,
    "notFound": Outcome.FAILED,
    "forwarded": None,  # answered elsewhere if an answer came, else missed
    "timeout": None,  # closed by close_stale
}


def ending(current: dict[str, Any], event: CallEvent, at: datetime) -> dict[str, Any]:
    answered_at = current.get("answered_at")
    outcome = event.outcome or CAUSE_OUTCOMES.get(event.cause or "")
    if outcome is None:
        outcome = Outcome.ANSWERED if answered_at else Outcome.MISSED
    duration = event.duration_seconds
    if duration is None:
        duration = int((at - answered_at).total_seconds()) if answered_at else 0
    return {
        "state": State.ENDED.value,
        "ended_at": at,
        "outcome": outcome.value,
        "hangup_cause": event.cause,
        "duration_seconds": max(0, min(duration, MAX_CALL_SECONDS)),
    }


def merge(current: dict[str, Any], event: CallEvent, at: datetime) -> dict[str, Any]:
    """The columns that change when `event` meets the call as stored (`current`)."""
    changes: dict[str, Any] = {}
    if event.recording_url and not current.get("recording_url"):
        changes["recording_url"] = event.recording_url
    if event.agents:
        rung = sorted(set(current.get("agents_rung") or ()) | set(event.agents))
        if rung != sorted(current.get("agents_rung") or ()):
            changes["agents_rung"] = rung
    if event.queue and not current.get("queue"):
        changes["queue"] = event.queue
    if event.answered_by and not current.get("answered_by"):
        changes["answered_by"] = event.answered_by
    ended = current.get("state") == State.ENDED.value
    if event.step is Step.RING and current.get("ringing_at") is None:
        changes["ringing_at"] = at
    elif event.step is Step.ANSWER and current.get("answered_at") is None:
        changes["answered_at"] = at
        if not ended:
            changes["state"] = State.ANSWERED.value
        elif current.get("ended_at") and not current.get("duration_seconds"):
            # The hangup came first: now the talk time is known.
            talk = int((current["ended_at"] - at).total_seconds())
            changes["duration_seconds"] = max(0, min(talk, MAX_CALL_SECONDS))
    elif event.step is Step.HANGUP and not ended:
        changes.update(ending({**current, **changes}, event, at))
    return changes


@dataclass(frozen=True)
class Prepared:
    """An event checked and with its numbers in E.164, ready to store."""

    event: CallEvent
    from_number: str | None
    to_number: str | None
    blocked: bool


def prepare(line: PhoneLine, event: CallEvent) -> Prepared:
    event = _checked(event)
    from_number = phones.normalize(event.from_number, line.default_region, "from")
    to_number = phones.normalize(event.to_number, line.default_region, "to")
    blocked = (event.direction or Direction.IN) is Direction.IN and (
        from_number in line.blocked_numbers
    )
    if blocked and event.step is not Step.UPDATE:
        # Logged, but ended at once: no screen pop, no call back.
        event = replace(event, step=Step.HANGUP, outcome=Outcome.REJECTED, cause="blocked")
    return Prepared(event, from_number, to_number, blocked)


def _checked(event: CallEvent) -> CallEvent:
    """Bounds on free-text fields from outside; the edges validate shapes before this."""
    if not event.external_id or len(event.external_id) > 100:
        raise InvalidInput("callId must be 1-100 characters", "callId")
    if len(event.agents) > MAX_AGENTS:
        raise InvalidInput(f"user: at most {MAX_AGENTS} agents", "user")
    return replace(
        event,
        agents=tuple(
            a for a in (clean_optional(n, MAX_NAME_CHARS, "user") for n in event.agents) if a
        ),
        queue=clean_optional(event.queue, MAX_NAME_CHARS, "queue"),
        answered_by=clean_optional(event.answered_by, MAX_NAME_CHARS, "answeringNumber"),
        # In UTC before the store sees them: SQLite keeps a time's digits but not its zone.
        at=_utc(event.at),
        started_at=_utc(event.started_at),
        answered_at=_utc(event.answered_at),
    )


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None and moment.tzinfo else moment
