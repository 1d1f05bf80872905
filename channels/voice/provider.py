"""A cloud voice provider's status callbacks: request signatures and call statuses.

The provider signs each callback: HMAC-SHA1, keyed with the account's auth
token, over the full URL it requested followed by every POST parameter's name
and value, sorted by name; base64; sent in `X-Twilio-Signature`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from hub.errors import InvalidInput
from hub.models import Direction
from hub.voice.models import CallEvent, Outcome, Step

SIGNATURE_HEADER = "x-twilio-signature"

# CallStatus -> what happened, and the outcome once the call is over.
STATUSES: dict[str, tuple[Step, Outcome | None]] = {
    "queued": (Step.RING, None),
    "ringing": (Step.RING, None),
    "in-progress": (Step.ANSWER, None),
    "completed": (Step.HANGUP, None),  # answered if it was, else missed
    "busy": (Step.HANGUP, Outcome.BUSY),
    "failed": (Step.HANGUP, Outcome.FAILED),
    "no-answer": (Step.HANGUP, Outcome.MISSED),
    "canceled": (Step.HANGUP, Outcome.MISSED),
}
MAX_FIELD_CHARS = 2000


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    payload = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_valid(
    auth_token: str, urls: Iterable[str], params: list[tuple[str, str]], presented: str | None
) -> bool:
    """Whether `presented` signs the parameters for any URL the request may have had."""
    if not presented:
        return False
    matches = [
        hmac.compare_digest(signature(auth_token, url, params).encode(), presented.encode())
        for url in urls
    ]
    return any(matches)


def _field(fields: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = fields.get(name)
    if value in (None, ""):
        if required:
            raise InvalidInput(f"{name} is required", name)
        return None
    if len(value) > MAX_FIELD_CHARS:
        raise InvalidInput(f"{name} is longer than {MAX_FIELD_CHARS} characters", name)
    return value


def parse(fields: dict[str, str]) -> CallEvent:
    call_sid = _field(fields, "CallSid", required=True)
    assert call_sid is not None
    if len(call_sid) > 100:
        raise InvalidInput("CallSid is longer than 100 characters", "CallSid")
    status = _field(fields, "CallStatus", required=True)
    if status not in STATUSES:
        raise InvalidInput(f"CallStatus must be one of {', '.join(STATUSES)}", "CallStatus")
    step, outcome = STATUSES[status]
    direction_text = _field(fields, "Direction") or "inbound"
    direction = Direction.IN if direction_text == "inbound" else Direction.OUT
    duration_text = _field(fields, "CallDuration")
    duration = None
    if duration_text is not None:
        if not duration_text.isdigit() or len(duration_text) > 6:
            raise InvalidInput("CallDuration must be a number of seconds", "CallDuration")
        duration = int(duration_text)
    if step is Step.HANGUP and status == "completed" and duration:
        outcome = Outcome.ANSWERED
    recording = _field(fields, "RecordingUrl")
    if recording is not None and not recording.startswith("https://"):
        raise InvalidInput("RecordingUrl must be an https URL", "RecordingUrl")
    return CallEvent(
        step=step,
        external_id=call_sid,
        source="provider",
        direction=direction,
        from_number=_field(fields, "From"),
        to_number=_field(fields, "To"),
        outcome=outcome,
        duration_seconds=duration if step is Step.HANGUP else None,
        recording_url=recording,
    )
