"""CallService against a real store on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from hub.composition.worker import job_runner
from hub.errors import InvalidInput
from hub.events import topics
from hub.models import Direction, Kind, Status
from hub.voice.models import (
    STALE_CALL_AFTER,
    CallEvent,
    CallFilter,
    Outcome,
    State,
    Step,
)
from tests.test_conversations import settings  # noqa: F401 - both engines

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
CALLER = "+44 20 7946 0018"


class Clock:
    """An injectable clock: tests move time instead of waiting."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def line(hub):  # type: ignore[no-untyped-def]
    created, _token = await hub.phone_lines.create("Support line", ["+44 20 7946 0000"], "GB")
    return created


def ev(step: Step, call_id: str = "c1", seconds: int = 0, **fields) -> CallEvent:  # type: ignore[no-untyped-def]
    fields.setdefault("from_number", CALLER)
    fields.setdefault("to_number", "+44 20 7946 0000")
    fields.setdefault("direction", Direction.IN)
    return CallEvent(
        step=step, external_id=call_id, source="cti", at=T0 + timedelta(seconds=seconds), **fields
    )


async def items(hub, call):  # type: ignore[no-untyped-def]
    return [m for m in await hub.conversations.messages(call.conversation_id)]


async def test_ring_answer_hangup_make_one_answered_call_with_its_item(hub, line):
    await hub.calls.record(line, ev(Step.RING, agents=("Sam Agent",), queue="support"))
    await hub.calls.record(line, ev(Step.ANSWER, seconds=10, answered_by="Sam Agent"))
    done = await hub.calls.record(line, ev(Step.HANGUP, seconds=130, cause="normalClearing"))
    call = done.call
    assert call.state is State.ENDED and call.outcome is Outcome.ANSWERED
    assert call.duration_seconds == 120
    assert (call.from_number, call.queue, call.agents_rung) == (
        "+442079460018",
        "support",
        ("Sam Agent",),
    )
    [item] = await items(hub, call)
    assert item.kind is Kind.CALL and item.direction is Direction.IN
    assert item.text == "Call from +44 20 7946 0018 · answered by Sam Agent · 2m 00s"
    conversation = await hub.conversations.get(call.conversation_id)
    assert conversation.status is Status.RESOLVED and not conversation.call_back
    assert conversation.display_name == "+44 20 7946 0018"


async def test_repeated_events_change_nothing(hub, line):
    sequence = [
        ev(Step.RING),
        ev(Step.ANSWER, seconds=5),
        ev(Step.HANGUP, seconds=65, cause="normalClearing"),
    ]
    for event in sequence:
        assert (await hub.calls.record(line, event)).changed
    for event in sequence:
        assert not (await hub.calls.record(line, event)).changed
    [call] = await hub.calls.list()
    assert call.duration_seconds == 60
    assert len(await items(hub, call)) == 1


async def test_hangup_before_answer_then_the_answer_fills_in_who_and_how_long(hub, line):
    await hub.calls.record(line, ev(Step.HANGUP, seconds=100, cause="normalClearing"))
    late = await hub.calls.record(line, ev(Step.ANSWER, seconds=40, answered_by="Sam"))
    assert late.changed
    call = late.call
    assert call.outcome is Outcome.ANSWERED and call.answered_by == "Sam"
    assert call.duration_seconds == 60
    assert len(await items(hub, call)) == 1


async def test_answer_without_new_call_creates_the_call(hub, line):
    answered = await hub.calls.record(line, ev(Step.ANSWER, answered_by="Sam"))
    assert answered.call.state is State.ANSWERED
    assert answered.call.started_at == T0


async def test_missed_call_reopens_marked_call_back_and_an_answered_call_settles_it(hub, line):
    await hub.calls.record(line, ev(Step.RING, "old"))
    await hub.calls.record(line, ev(Step.ANSWER, "old", 5))
    first = await hub.calls.record(line, ev(Step.HANGUP, "old", 50))
    assert (await hub.conversations.get(first.call.conversation_id)).status is Status.RESOLVED

    await hub.calls.record(line, ev(Step.RING, "missed", 3600))
    missed = await hub.calls.record(line, ev(Step.HANGUP, "missed", 3630, cause="noAnswer"))
    assert missed.call.outcome is Outcome.MISSED and missed.call.waiting_for_call_back
    conversation = await hub.conversations.get(missed.call.conversation_id)
    assert conversation.id == first.call.conversation_id  # the contact's one voice conversation
    assert conversation.status is Status.OPEN and conversation.call_back
    assert [c.external_id for c in await hub.calls.list(CallFilter(call_back=True))] == ["missed"]

    back = ev(Step.COMPLETE, "back", 7200, direction=Direction.OUT)
    back = CallEvent(
        **{**back.__dict__, "from_number": "201", "to_number": "020 7946 0018"}
        | {"answered_at": T0 + timedelta(seconds=7200), "outcome": Outcome.ANSWERED}
    )
    called = await hub.calls.record(line, back)
    assert called.call.contact_id == missed.call.contact_id
    assert await hub.calls.list(CallFilter(call_back=True)) == []
    assert not (await hub.conversations.get(conversation.id)).call_back


@pytest.mark.parametrize(
    "written",
    [
        "+44 20 7946 0018",
        "+44 (0)20 7946-0018",
        "(020) 7946 0018",
        "0044 20 7946 0018",
        "020.7946.0018",
        "+442079460018",
        " 020-7946-0018 ",
    ],
)
async def test_a_caller_matches_their_contact_however_the_number_is_written(hub, line, written):
    first = await hub.calls.record(line, ev(Step.RING, "a", from_number="+44 20 7946 0018"))
    again = await hub.calls.record(line, ev(Step.RING, "b", from_number=written))
    assert again.call.contact_id == first.call.contact_id
    assert again.call.from_number == "+442079460018"


async def test_an_unknown_number_creates_a_contact_with_that_number(hub, line):
    recorded = await hub.calls.record(line, ev(Step.RING, from_number="07700 900123"))
    contact = await hub.visitors.contact(recorded.call.contact_id)
    assert contact.phone == "+447700900123"


async def test_a_call_without_hangup_is_closed_after_the_timeout(hub, line):
    clock = Clock(T0)
    hub.calls.clock = clock
    await hub.calls.record(line, ev(Step.RING))
    clock.now = T0 + STALE_CALL_AFTER - timedelta(seconds=1)
    assert await hub.calls.close_stale() == 0
    clock.now = T0 + STALE_CALL_AFTER + timedelta(seconds=1)
    assert await hub.calls.close_stale() == 1
    [call] = await hub.calls.list()
    assert call.state is State.ENDED and call.outcome is Outcome.MISSED
    assert call.hangup_cause == "timeout" and call.waiting_for_call_back
    assert await hub.calls.close_stale() == 0


async def test_a_blocked_caller_is_rejected_and_logged_without_a_call_back(hub, line):
    line = await hub.phone_lines.update(
        line.inbox_id,
        phone_numbers=list(line.phone_numbers),
        default_region="GB",
        blocked_numbers=["020 7946 0018"],
    )
    recorded = await hub.calls.record(line, ev(Step.RING))
    assert recorded.rejected
    assert recorded.call.outcome is Outcome.REJECTED and not recorded.call.waiting_for_call_back


async def test_a_malformed_number_is_refused_and_nothing_is_stored(hub, line):
    with pytest.raises(InvalidInput, match="from"):
        await hub.calls.record(line, ev(Step.RING, from_number="call me <maybe>"))
    assert await hub.calls.list() == []


async def test_the_screen_pop_goes_to_the_agents_named_else_to_everyone_online(
    hub, line, agent, admin
):
    channels = (topics.agent_channel(agent.id), topics.agent_channel(admin.id))
    async with hub.bus.subscribe(*channels) as subscription:
        await hub.calls.record(line, ev(Step.RING, "named", agents=("sam agent",)))
        await hub.presence.connected(admin.id)
        await hub.calls.record(line, ev(Step.RING, "anyone", from_number="07700 900123"))
        first = await subscription.get()
        second = await subscription.get()
    assert first.channel == topics.agent_channel(agent.id)
    pop = first.json()
    assert pop["type"] == "call_ringing" and pop["call"]["id"]
    assert pop["known"] is False and pop["call"]["number"] == "+442079460018"
    assert second.channel == topics.agent_channel(admin.id)
    assert second.json()["call"]["number"] == "+447700900123"


async def test_calls_logged_by_hand_carry_their_notes_as_a_note(hub, line, agent):
    recorded = await hub.calls.log_by_hand(
        agent,
        line,
        direction=Direction.OUT,
        number="07700 900123",
        started_at=T0,
        duration_seconds=95,
        outcome=Outcome.ANSWERED,
        notes="Promised a refund",
        client_id="form-1",
    )
    messages = await items(hub, recorded.call)
    assert [m.kind for m in messages] == [Kind.CALL, Kind.NOTE]
    assert messages[0].text == "Call to +44 7700 900123 · answered by Sam Agent · 1m 35s"
    assert messages[1].text == "Note on the call: Promised a refund"


async def test_the_background_job_closes_stale_calls_and_tells_the_agents(hub, line):
    hub.calls.clock = Clock(T0)
    await hub.calls.record(line, ev(Step.RING))
    runner = job_runner(hub, clock=lambda: T0 + STALE_CALL_AFTER * 2)
    async with hub.bus.subscribe(topics.inbox_channel(line.inbox_id)) as subscription:
        results = await runner.run_due()
        while True:
            frame = (await asyncio.wait_for(subscription.get(), 5)).json()
            if frame["type"] == "call":
                break
    assert results["close-stale-calls"] == 1
    assert frame["call"]["state"] == "ended" and frame["call"]["outcome"] == "missed"


async def test_two_events_of_a_new_call_at_once_make_one_call(hub, line):
    # On PostgreSQL both may try to create the call (and its contact); the
    # loser's unique violation turns into an update of the winner's call.
    results = await asyncio.gather(
        hub.calls.record(line, ev(Step.RING, "race")),
        hub.calls.record(line, ev(Step.ANSWER, "race", 3, answered_by="Sam")),
    )
    [call] = await hub.calls.list()
    assert call.answered_by == "Sam" and call.answered_at is not None
    assert {r.call.id for r in results} == {call.id}


async def _at_once(hub, line, *events):  # type: ignore[no-untyped-def]
    """Record the events at once, each past its look-up of the call and its caller
    before any stores a contact (on SQLite writers queue in the process: they
    cannot interleave)."""
    if hub.db.is_sqlite:
        return await asyncio.gather(*(hub.calls.record(line, e) for e in events))
    async with hub.db.engine.connect() as blocker, hub.db.engine.connect() as watch:
        await blocker.execute(sa.text("LOCK TABLE contacts IN EXCLUSIVE MODE"))
        racing = asyncio.gather(*(hub.calls.record(line, e) for e in events))
        waiting = 0
        async with asyncio.timeout(30):  # only reached when something is broken
            while waiting < len(events):  # a state of the server, no event to await
                await asyncio.sleep(0.01)
                waiting = await watch.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                    )
                )
                # pg_stat_activity is read once per transaction: end it to look again.
                await watch.rollback()
        await blocker.rollback()  # lets them go
        return await racing


async def test_two_first_events_of_one_call_at_once_make_one_call_with_both(hub, line):
    first, second = await _at_once(
        hub,
        line,
        ev(Step.RING, call_id="race", agents=("Sam Agent",)),
        ev(Step.ANSWER, call_id="race", seconds=4, answered_by="Sam Agent"),
    )
    assert first.call.id == second.call.id
    [call] = await hub.calls.list()
    assert call.state is State.ANSWERED and call.answered_by == "Sam Agent"
    assert call.agents_rung == ("Sam Agent",)


async def test_two_first_calls_from_one_new_number_at_once_share_one_contact(hub, line):
    first, second = await _at_once(
        hub, line, ev(Step.RING, call_id="a"), ev(Step.RING, call_id="b", seconds=1)
    )
    assert first.call.id != second.call.id
    assert first.call.contact_id == second.call.contact_id
    assert first.call.conversation_id == second.call.conversation_id
    assert await hub.contacts.phones(first.call.contact_id) == ["+442079460018"]


class _Fault(Exception):
    pass


async def test_a_number_added_in_a_unit_of_work_that_fails_is_not_stored(hub, line):
    call = (await hub.calls.record(line, ev(Step.RING))).call
    with pytest.raises(_Fault):
        async with hub.writes.begin() as work:
            added = await hub.contacts.add_phone(call.contact_id, "020 7946 0999", "GB", work)
            assert added == "+442079460999"
            raise _Fault  # a fault after add_phone, in the same unit of work
    assert await hub.contacts.phones(call.contact_id) == ["+442079460018"]
    # On its own it is stored.
    await hub.contacts.add_phone(call.contact_id, "020 7946 0999", "GB")
    assert await hub.contacts.phones(call.contact_id) == ["+442079460018", "+442079460999"]
