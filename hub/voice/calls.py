"""Phone calls: one record per call, built from events that may come twice or out of order.

Every way a call reaches the hub (CTI webhook, provider callbacks, a PBX's
CDR file, an agent logging it by hand) becomes `CallEvent`s with a `Step`:

    ring      the phone rings (a screen pop for the agents)
    answer    someone picked up
    hangup    the call ended; its cause gives the outcome
    complete  a finished call in one go (CDR rows, calls logged by hand)
    update    late details only (a recording link)

`CallService.record` merges an event into the call's row, keyed by the
inbox and the phone system's call id. Merging is idempotent (a repeated event
changes nothing) and tolerant of disorder: an answer without a ring creates
the call, an answer after the hangup only fills in who answered. Two first
events of one call at once queue on the call id's claim (storage/repositories/
claims.py), so the second merges into the call the first stored. When a call
ends, a call item is appended to the contact's conversation in the voice
inbox; a missed inbound call reopens that conversation marked "call back".
Calls whose hangup never comes are closed by `close_stale`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from hub.agents.presence import AgentPresence
from hub.agents.service import AgentService
from hub.contacts import phones
from hub.conversations.log import Entry
from hub.conversations.pipeline import InboundPipeline, Thread
from hub.conversations.service import ConversationService
from hub.errors import InvalidInput
from hub.events import topics
from hub.events.domain import (
    CallMissed,
    CallUpdated,
    ConversationCreated,
    ConversationUpdated,
    MessageCreated,
)
from hub.events.unit_of_work import UnitOfWork, Writes
from hub.models import (
    Agent,
    AuthorType,
    Channel,
    Direction,
    Inbound,
    Kind,
    Sender,
    aware,
    utcnow,
)
from hub.text import clean_optional
from hub.voice.call_reads import CallReads
from hub.voice.merging import Prepared, ending, merge, prepare
from hub.voice.models import (
    CALL_BACK_OUTCOMES,
    MAX_CALL_SECONDS,
    MAX_NOTES_CHARS,
    STALE_CALL_AFTER,
    Call,
    CallEvent,
    Outcome,
    Recorded,
    State,
    Step,
    summary,
)
from hub.voice.phone_lines import PhoneLine, PhoneLineService
from hub.voice.screen_pop import ScreenPop
from storage.repositories import calls as call_rows
from storage.repositories import conversations as conversation_rows

# ---- the service ------------------------------------------------------------------------


class CallService(CallReads):
    def __init__(
        self,
        writes: Writes,
        pipeline: InboundPipeline,
        conversations: ConversationService,
        agents: AgentService,
        presence: AgentPresence,
        lines: PhoneLineService,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(writes.db, clock)
        self._writes = writes
        self._lines = lines
        self._bus = writes.publisher.bus
        self._pipeline = pipeline
        self._log = pipeline.log
        self._conversations = conversations  # an agent's note on a logged call
        self._screen_pop = ScreenPop(self._bus, self, conversations, agents, presence)

    # ---- writing ------------------------------------------------------------------------

    async def record(self, line: PhoneLine, event: CallEvent) -> Recorded:
        """Merge one event into its call and tell the agents; see the module doc."""
        prepared = prepare(line, event)
        recorded = await self._record_all(line, [prepared])
        return recorded[0]

    async def record_many(self, line: PhoneLine, batch: list[CallEvent]) -> list[Recorded]:
        """Many finished calls (an import) in one transaction; one `calls_imported` event.

        Every event is validated first, so a bad one raises before anything is stored.
        """
        prepared = [prepare(line, event) for event in batch]
        return await self._record_all(line, prepared, live=False)

    async def _record_all(
        self, line: PhoneLine, prepared: list[Prepared], live: bool = True
    ) -> list[Recorded]:
        """Every event in one unit of work. `live` tells each call as it changes
        (and pops the screens of a ringing one); an import (not live) tells one
        `calls_imported` at the end and skips the reads that telling needs."""
        results: list[Recorded] = []
        now = self.clock()
        # Contacts and conversations looked up in this transaction: an import
        # meets the same callers again and again.
        seen: dict[str | None, Thread] = {}
        async with self._writes.begin() as work:
            for item in prepared:
                results.append(await self._apply(work, line, item, now, live, seen))
            changed = sum(1 for r in results if r.changed)
            if not live and changed:
                work.after_commit(
                    functools.partial(
                        self._bus.publish,
                        topics.inbox_channel(line.inbox_id),
                        {"type": "calls_imported", "count": changed},
                    )
                )
        return results

    async def _apply(
        self,
        work: UnitOfWork,
        line: PhoneLine,
        item: Prepared,
        now: datetime,
        live: bool,
        seen: dict[str | None, Thread],
    ) -> Recorded:
        conn = work.conn
        event = item.event
        ringing = False
        at = event.at or now
        row = await call_rows.locked(conn, line.inbox_id, event.external_id)
        if row is None:
            if event.step is Step.UPDATE:
                return Recorded(None, changed=False)
            call_id = await self._insert(work, line, item, at, now, live, seen)
            ringing = event.step is Step.RING
            changed = True
        else:
            current = {
                k: aware(v) if isinstance(v, datetime) else v for k, v in row._mapping.items()
            }
            changes = merge(current, event, at)
            call_id = row.id
            changed = bool(changes)
            if changes:
                changes["updated_at"] = now
                await call_rows.update(conn, call_id, changes)
        call = await self._get(conn, call_id)
        ended = changed and call.state is State.ENDED and (row is None or row.state != "ended")
        if ended:
            await self._finish(work, call, live, now)
            if live:
                call = await self._get(conn, call_id)
        if live:
            work.emit(CallUpdated(call))
            if ended and call.call_back:
                work.emit(CallMissed(call))
            if ringing:
                work.after_commit(functools.partial(self._screen_pop.pop, call))
        return Recorded(call, changed, rejected=item.blocked)

    async def _insert(
        self,
        work: UnitOfWork,
        line: PhoneLine,
        item: Prepared,
        at: datetime,
        now: datetime,
        live: bool,
        seen: dict[str | None, Thread],
    ) -> int:
        event, from_number, to_number = item.event, item.from_number, item.to_number
        direction = event.direction or Direction.IN
        customer = from_number if direction is Direction.IN else to_number
        thread = seen.get(customer) if phones.is_public(customer) else None
        if thread is None:
            inbound = Inbound(
                Channel.VOICE,
                line.inbox_id,
                Sender(phone=customer),
                dedup_key=event.external_id,
                payload=event,
            )
            thread = seen[customer] = await self._pipeline.thread(work.conn, inbound)
            work.emit(*thread.contact_events())  # a caller seen for the first time
            if thread.opened and live:
                # Before the call that points at it, so a console can draw both.
                opened = await self._log.get(work.conn, thread.conversation_id)
                work.emit(ConversationCreated(opened))
        contact_id, conversation_id = thread.contact_id, thread.conversation_id
        values: dict[str, Any] = {
            "inbox_id": line.inbox_id,
            "source": event.source,
            "external_id": event.external_id,
            "direction": direction.value,
            "from_number": from_number,
            "to_number": to_number,
            "contact_id": contact_id,
            "conversation_id": conversation_id,
            "state": State.RINGING.value,
            "agents_rung": [],
            "call_back": False,
            "notes": event.notes,
            "updated_at": now,
        }
        if event.step is Step.COMPLETE:
            started = event.started_at or at
            values.update(
                started_at=started,
                ringing_at=started,
                answered_at=event.answered_at,
                answered_by=event.answered_by,
                queue=event.queue,
                recording_url=event.recording_url,
            )
            values.update(ending(values, event, at))
        else:
            values["started_at"] = at
            values.update(merge(values, event, at))
        return await call_rows.insert(work.conn, values)

    async def _finish(self, work: UnitOfWork, call: Call, live: bool, now: datetime) -> None:
        """The call has ended: its item in the conversation, and the call-back bookkeeping."""
        conn = work.conn
        needs_call_back = call.direction is Direction.IN and call.outcome in CALL_BACK_OUTCOMES
        before = await self._log.get(conn, call.conversation_id) if live else None
        if needs_call_back:
            await call_rows.update(conn, call.id, {"call_back": True})
        elif call.outcome is Outcome.ANSWERED:
            await self._called_back(conn, call.contact_id, call.started_at, now)
        # A missed call reopens the conversation and waits to be called back.
        message = await self._log.append(
            conn,
            call.conversation_id,
            Entry(
                call.direction,
                Kind.CALL,
                AuthorType.CONTACT if call.direction is Direction.IN else AuthorType.SYSTEM,
                summary(call),
                client_id=f"call-{call.id}",
                reopens=needs_call_back,
                changes={"call_back": True} if needs_call_back else None,
                at=call.ended_at,
            ),
        )
        if before is None:
            return
        after = await self._log.get(conn, call.conversation_id)
        work.emit(MessageCreated(after, message))
        if before.status != after.status or before.call_back != after.call_back:
            work.emit(ConversationUpdated(after))

    async def _called_back(
        self, conn: AsyncConnection, contact_id: int, before: datetime | None, now: datetime
    ) -> None:
        """An answered call with the contact settles their earlier missed calls."""
        await call_rows.settle_call_backs(conn, contact_id, before, now)
        await conversation_rows.settle_call_backs(conn, contact_id)

    async def mark_called_back(self, agent: Agent, call_id: int) -> Call:
        """An agent says the customer has been called back (from the call log's queue)."""
        now = self.clock()
        async with self._writes.begin() as work:
            conn = work.conn
            call = await self._get(conn, call_id)
            if not call.waiting_for_call_back:
                return call
            await self._called_back(conn, call.contact_id, None, now)
            message = await self._log.append(
                conn,
                call.conversation_id,
                Entry.activity(f"{agent.name} marked the missed call as called back"),
            )
            conversation = await self._log.get(conn, call.conversation_id)
            call = await self._get(conn, call_id)
            work.emit(
                MessageCreated(conversation, message),
                ConversationUpdated(conversation),
                CallUpdated(call),
            )
        return call

    async def log_by_hand(
        self,
        agent: Agent,
        line: PhoneLine,
        *,
        direction: Direction,
        number: str,
        started_at: datetime,
        duration_seconds: int,
        outcome: Outcome,
        notes: str | None,
        client_id: str,
    ) -> Recorded:
        """A call an agent logs: stored like a CDR row; the notes become a note on it."""
        notes = clean_optional(notes, MAX_NOTES_CHARS, "notes")
        customer = phones.normalize(number, line.default_region, "number")
        if not phones.is_public(customer):
            raise InvalidInput("number must be the customer's full phone number")
        own = line.phone_numbers[0] if line.phone_numbers else None
        answered = outcome is Outcome.ANSWERED
        if duration_seconds < 0 or duration_seconds > MAX_CALL_SECONDS:
            raise InvalidInput(f"duration must be 0-{MAX_CALL_SECONDS} seconds")
        if started_at > self.clock() + timedelta(minutes=5):
            raise InvalidInput("start must not be in the future")
        event = CallEvent(
            step=Step.COMPLETE,
            external_id=f"manual-{client_id}",
            source="manual",
            direction=direction,
            from_number=customer if direction is Direction.IN else own,
            to_number=own if direction is Direction.IN else customer,
            started_at=started_at,
            answered_at=started_at if answered else None,
            at=started_at + timedelta(seconds=duration_seconds if answered else 0),
            answered_by=agent.name if answered else None,
            outcome=outcome,
            duration_seconds=duration_seconds if answered else 0,
            notes=notes,
        )
        recorded = await self.record(line, event)
        if notes and recorded.call is not None:
            await self._conversations.reply(
                agent,
                recorded.call.conversation_id,
                f"Note on the call: {notes}",
                client_id=f"note-{client_id}"[:64],
                private=True,
            )
        return recorded

    async def close_stale(self, now: datetime | None = None) -> int:
        """Close calls without an event for `STALE_CALL_AFTER`; returns how many.

        A background job (hub/composition/worker.py) runs this every `STALE_SWEEP_EVERY`.
        """
        cutoff = (now or self.clock()) - STALE_CALL_AFTER
        async with self._db.read() as conn:
            rows = await call_rows.stale(conn, State.ENDED.value, cutoff)
        for row in rows:
            line = await self._lines.get(row.inbox_id)
            event = CallEvent(
                step=Step.HANGUP,
                external_id=row.external_id,
                source="timeout",
                cause="timeout",
                at=aware(row.updated_at),
            )
            await self.record(line, event)
        return len(rows)
