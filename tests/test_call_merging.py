"""Merging phone-system events into a call: the pure rules, without a store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.voice.merging import merge
from hub.voice.models import CallEvent, Outcome, State, Step

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def event(step: Step, **fields: object) -> CallEvent:
    return CallEvent(step=step, external_id="call-1", source="cti", **fields)  # type: ignore[arg-type]


def applied(current: dict[str, object], *steps: tuple[CallEvent, datetime]) -> dict[str, object]:
    for each, at in steps:
        current = {**current, **merge(current, each, at)}
    return current


RINGING = {"state": State.RINGING.value, "ringing_at": T0, "agents_rung": []}


def test_a_repeated_event_changes_nothing():
    answered = applied(RINGING, (event(Step.ANSWER, answered_by="Sam"), T0 + timedelta(seconds=5)))
    assert merge(answered, event(Step.ANSWER, answered_by="Sam"), T0 + timedelta(seconds=9)) == {}
    ended = applied(
        answered, (event(Step.HANGUP, cause="normalClearing"), T0 + timedelta(seconds=60))
    )
    assert (
        merge(ended, event(Step.HANGUP, cause="normalClearing"), T0 + timedelta(seconds=61)) == {}
    )


def test_answer_then_hangup_and_hangup_then_answer_end_in_the_same_call():
    answer = (event(Step.ANSWER, answered_by="Sam"), T0 + timedelta(seconds=10))
    hangup = (event(Step.HANGUP, cause="normalClearing"), T0 + timedelta(seconds=70))
    in_order = applied(RINGING, answer, hangup)
    out_of_order = applied(RINGING, hangup, answer)
    assert in_order["state"] == out_of_order["state"] == State.ENDED.value
    assert in_order["duration_seconds"] == out_of_order["duration_seconds"] == 60
    assert in_order["answered_by"] == out_of_order["answered_by"] == "Sam"


def test_a_hangup_without_an_answer_is_missed_and_a_cause_names_the_outcome():
    missed = applied(RINGING, (event(Step.HANGUP, cause="cancel"), T0 + timedelta(seconds=20)))
    assert (missed["outcome"], missed["duration_seconds"]) == (Outcome.MISSED.value, 0)
    unknown = applied(RINGING, (event(Step.HANGUP), T0 + timedelta(seconds=20)))
    assert unknown["outcome"] == Outcome.MISSED.value


def test_agents_rung_accumulate_and_the_first_recording_stays():
    first = applied(
        RINGING,
        (event(Step.RING, agents=("Sam",)), T0),
        (event(Step.UPDATE, recording_url="https://pbx.test/1.mp3"), T0),
    )
    later = applied(
        first,
        (event(Step.RING, agents=("Ana", "Sam")), T0),
        (event(Step.UPDATE, recording_url="https://pbx.test/other.mp3"), T0),
    )
    assert later["agents_rung"] == ["Ana", "Sam"]
    assert later["recording_url"] == "https://pbx.test/1.mp3"
