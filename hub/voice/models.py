"""Calls as the hub knows them: the events phone systems send (`CallEvent`,
its `Step`), the call record (`Call`, its `State` and `Outcome`), and how a
call reads in a conversation (`summary`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hub.contacts import phones
from hub.models import (
    Direction,
    iso,
)

# A call with no event for this long is closed as if its hangup had come:
# phone systems do lose hangup events (a restart, a dropped webhook), and no
# call a support line logs lasts four hours, so waiting longer only leaves
# ghost "ringing" calls on every agent's screen.
STALE_CALL_AFTER = timedelta(hours=4)
# How often the background jobs look for such calls.
STALE_SWEEP_EVERY = timedelta(minutes=5)
# Calls and conversations shown in a screen pop for a known caller.
POP_RECENT = 3
MAX_NOTES_CHARS = 5000
MAX_NAME_CHARS = 100
MAX_AGENTS = 20
MAX_CALL_SECONDS = 24 * 3600
DEFAULT_PAGE = 200


class Step(enum.StrEnum):
    RING = "ring"
    ANSWER = "answer"
    HANGUP = "hangup"
    COMPLETE = "complete"
    UPDATE = "update"


class State(enum.StrEnum):
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


class Outcome(enum.StrEnum):
    ANSWERED = "answered"
    MISSED = "missed"
    BUSY = "busy"
    REJECTED = "rejected"
    VOICEMAIL = "voicemail"
    FAILED = "failed"


# Outcomes of an inbound call that leave a customer waiting for us to ring back.
CALL_BACK_OUTCOMES = frozenset({Outcome.MISSED, Outcome.BUSY, Outcome.VOICEMAIL})


@dataclass(frozen=True)
class CallEvent:
    """One thing a phone system told us, as plain data (numbers as it wrote them)."""

    step: Step
    external_id: str
    source: str
    direction: Direction | None = None
    from_number: str | None = None
    to_number: str | None = None
    at: datetime | None = None  # when it happened; the hub's clock if absent
    started_at: datetime | None = None  # complete: when it started ringing
    answered_at: datetime | None = None  # complete: when it was answered
    agents: tuple[str, ...] = ()
    queue: str | None = None
    answered_by: str | None = None
    outcome: Outcome | None = None  # hangup/complete; else from the cause or the answer
    cause: str | None = None
    duration_seconds: int | None = None
    recording_url: str | None = None
    notes: str | None = None


@dataclass(frozen=True)
class Call:
    id: int
    inbox_id: int
    inbox_name: str
    source: str
    external_id: str
    direction: Direction
    from_number: str | None
    to_number: str | None
    contact_id: int
    contact_name: str | None
    conversation_id: int
    queue: str | None
    agents_rung: tuple[str, ...]
    answered_by: str | None
    state: State
    outcome: Outcome | None
    hangup_cause: str | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_seconds: int | None
    recording_url: str | None
    notes: str | None
    call_back: bool
    called_back_at: datetime | None

    @property
    def number(self) -> str | None:
        """The customer's number: the caller of an inbound call, the callee of an outbound one."""
        return self.from_number if self.direction is Direction.IN else self.to_number

    @property
    def waiting_for_call_back(self) -> bool:
        return self.call_back and self.called_back_at is None

    @property
    def display_name(self) -> str:
        return self.contact_name or phones.display(self.number)

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "inbox": {"id": self.inbox_id, "name": self.inbox_name},
            "direction": self.direction.value,
            "from": self.from_number,
            "to": self.to_number,
            "number": self.number,
            "number_display": phones.display(self.number),
            "contact": {
                "id": self.contact_id,
                "name": self.contact_name,
                "display_name": self.display_name,
            },
            "conversation_id": self.conversation_id,
            "queue": self.queue,
            "agents_rung": list(self.agents_rung),
            "answered_by": self.answered_by,
            "state": self.state.value,
            "outcome": self.outcome.value if self.outcome else None,
            "hangup_cause": self.hangup_cause,
            "started_at": iso(self.started_at),
            "answered_at": iso(self.answered_at),
            "ended_at": iso(self.ended_at),
            "duration_seconds": self.duration_seconds,
            "recording_url": self.recording_url,
            "call_back": self.waiting_for_call_back,
        }


@dataclass(frozen=True)
class CallFilter:
    direction: Direction | None = None
    outcome: Outcome | None = None
    agent: str | None = None  # who answered, as the phone system names them
    today: bool = False
    call_back: bool = False  # missed, not yet called back
    contact_id: int | None = None
    inbox_ids: frozenset[int] | None = None  # None: every phone line


@dataclass(frozen=True)
class Recorded:
    """What `record` did: the call (None if nothing was stored) and whether it changed."""

    call: Call | None
    changed: bool
    rejected: bool = False


def duration_text(seconds: int | None) -> str:
    if not seconds:
        return "0s"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def summary(call: Call) -> str:
    """The call item's text in the conversation: what happened, in one line."""
    number = phones.display(call.number)
    if call.direction is Direction.IN:
        head = {
            Outcome.ANSWERED: f"Call from {number}",
            Outcome.MISSED: f"Missed call from {number}",
            Outcome.BUSY: f"Missed call from {number} (line busy)",
            Outcome.VOICEMAIL: f"Voicemail from {number}",
            Outcome.REJECTED: f"Rejected call from {number} (blocked)",
            Outcome.FAILED: f"Failed call from {number}",
        }[call.outcome or Outcome.MISSED]
    else:
        head = {
            Outcome.ANSWERED: f"Call to {number}",
            Outcome.MISSED: f"Call to {number}, not answered",
            Outcome.BUSY: f"Call to {number}, busy",
            Outcome.VOICEMAIL: f"Call to {number}, left a voicemail",
            Outcome.REJECTED: f"Call to {number}, rejected",
            Outcome.FAILED: f"Call to {number} failed",
        }[call.outcome or Outcome.MISSED]
    parts = [head]
    if call.outcome is Outcome.ANSWERED:
        if call.answered_by:
            parts.append(f"answered by {call.answered_by}")
        if call.duration_seconds:
            parts.append(duration_text(call.duration_seconds))
    if call.hangup_cause == "timeout":
        parts.append("closed without a hangup")
    return " · ".join(parts)
