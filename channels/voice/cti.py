"""The generic CTI webhook's events (`newCall`, `answer`, `hangup`) as call events.

Field names and values follow the generic CTI API that helpdesks and phone
systems already speak, so a PBX configured for it needs only a new URL.
Parsing is pure: fields in, a `CallEvent` out, or `Invalid` naming the field.
"""

from __future__ import annotations

from typing import Any

from hub.errors import InvalidInput
from hub.models import Direction
from hub.voice.merging import CAUSE_OUTCOMES
from hub.voice.models import CallEvent, Step

STEPS = {"newCall": Step.RING, "answer": Step.ANSWER, "hangup": Step.HANGUP}
CAUSES = frozenset(name for name in CAUSE_OUTCOMES if name != "timeout")
MAX_FIELD_CHARS = 200
MAX_USERS = 20


def _text(fields: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"{name} is required", name)
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", name)
    if len(value) > MAX_FIELD_CHARS:
        raise InvalidInput(f"{name} is longer than {MAX_FIELD_CHARS} characters", name)
    return value


def _users(fields: dict[str, Any]) -> tuple[str, ...]:
    value = fields.get("user", fields.get("user[]"))
    if value is None or value == "":
        return ()
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidInput("user must be an agent's name or a list of names", "user")
    if len(names) > MAX_USERS or any(len(n) > MAX_FIELD_CHARS for n in names):
        raise InvalidInput(
            f"user: at most {MAX_USERS} names of {MAX_FIELD_CHARS} characters", "user"
        )
    return tuple(n.strip() for n in names if n.strip())


def parse(fields: dict[str, Any]) -> CallEvent:
    """One CTI event; raises `InvalidInput` with `.field` set for a malformed one."""
    event = _text(fields, "event", required=True)
    if event not in STEPS:
        raise InvalidInput("event must be newCall, answer or hangup", "event")
    direction = _text(fields, "direction", required=event == "newCall")
    if direction is not None and direction not in {"in", "out"}:
        raise InvalidInput("direction must be in or out", "direction")
    cause = _text(fields, "cause")
    if cause is not None and cause not in CAUSES:
        raise InvalidInput(f"cause must be one of {', '.join(sorted(CAUSES))}", "cause")
    call_id = _text(fields, "callId", required=True)
    assert call_id is not None
    if len(call_id) > 100:
        raise InvalidInput("callId is longer than 100 characters", "callId")
    step = STEPS[event]
    users = _users(fields)
    return CallEvent(
        step=step,
        external_id=call_id,
        source="cti",
        direction=Direction(direction) if direction else None,
        from_number=_text(fields, "from"),
        to_number=_text(fields, "to"),
        agents=users,
        queue=_text(fields, "queue"),
        answered_by=_agent(fields, step, direction, users),
        cause=cause if step is Step.HANGUP else None,
    )


def _agent(
    fields: dict[str, Any], step: Step, direction: str | None, users: tuple[str, ...]
) -> str | None:
    """Who talked for the hub's side: the agent who placed an outbound call (its
    `user`, on any event), or who picked up an inbound one (`user` on answer, or
    the number that answered in `answeringNumber`)."""
    if direction == "out" and users:
        return users[0]
    if step is not Step.ANSWER:
        return None
    return users[0] if users else _text(fields, "answeringNumber")
