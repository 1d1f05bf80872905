"""The unit of work (hub/events/unit_of_work.py): events and actions only after COMMIT."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hub.core import Hub
from hub.errors import Unavailable
from hub.events.domain import ContactCreated, DomainEvent
from hub.models import utcnow
from storage.tables import contacts, visitors
from tests.engines import settings  # noqa: F401 - runs every test on both engines


class Heard:
    """Every event the hub's publisher sends, and every after-commit action that ran."""

    def __init__(self, hub: Hub) -> None:
        self.events: list[DomainEvent] = []
        self.actions: list[str] = []
        hub.publisher.listen(self._hear)

    async def _hear(self, event: DomainEvent) -> None:
        self.events.append(event)

    def action(self, name: str):  # type: ignore[no-untyped-def]
        async def run() -> None:
            self.actions.append(name)

        return run


async def _new_contact(conn) -> int:  # type: ignore[no-untyped-def]
    return await conn.scalar(
        contacts.insert().values(attributes={}, created_at=utcnow()).returning(contacts.c.id)
    )


async def _contact_count(hub: Hub) -> int:
    async with hub.db.read() as conn:
        return await conn.scalar(sa.select(sa.func.count()).select_from(contacts))


async def test_events_and_actions_wait_for_the_commit_and_keep_their_order(hub: Hub) -> None:
    heard = Heard(hub)
    async with hub.writes.begin() as work:
        contact_id = await _new_contact(work.conn)
        work.emit(ContactCreated(contact_id))
        work.after_commit(heard.action("first"))
        work.emit(ContactCreated(contact_id + 1000))
        work.after_commit(heard.action("second"))
        assert heard.events == [] and heard.actions == []  # still inside the transaction
    assert heard.events == [ContactCreated(contact_id), ContactCreated(contact_id + 1000)]
    assert heard.actions == ["first", "second"]


async def test_the_same_action_runs_once_per_unit_of_work(hub: Hub) -> None:
    heard = Heard(hub)
    wake = heard.action("wake")
    async with hub.writes.begin() as work:
        work.after_commit(wake)
        work.after_commit(wake)
    assert heard.actions == ["wake"]


async def test_an_error_inside_tells_nothing_and_stores_nothing(hub: Hub) -> None:
    heard = Heard(hub)
    before = await _contact_count(hub)
    with pytest.raises(RuntimeError, match="changed my mind"):
        async with hub.writes.begin() as work:
            work.emit(ContactCreated(await _new_contact(work.conn)))
            work.after_commit(heard.action("never"))
            raise RuntimeError("changed my mind")
    assert heard.events == [] and heard.actions == []
    assert await _contact_count(hub) == before


async def _refused_at_commit(hub: Hub, work) -> None:  # type: ignore[no-untyped-def]
    """Make this transaction's COMMIT itself fail (not any statement before it)."""
    if hub.db.is_sqlite:
        # A foreign key checked at COMMIT: a visitor of an inbox that does not exist.
        await work.conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        await work.conn.execute(
            visitors.insert().values(
                id="v-orphan",
                inbox_id=999_999,
                contact_id=await _new_contact(work.conn),
                created_at=utcnow(),
                last_seen_at=utcnow(),
            )
        )
        return
    # PostgreSQL: a constraint trigger deferred to COMMIT that refuses any new contact.
    await work.conn.exec_driver_sql("SET CONSTRAINTS refuse_at_commit DEFERRED")
    await _new_contact(work.conn)


async def _install_refusal(hub: Hub) -> None:
    if hub.db.is_sqlite:
        return
    async with hub.db.write() as conn:
        await conn.exec_driver_sql(
            "CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$"
        )
        await conn.exec_driver_sql(
            "CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON contacts "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit()"
        )


async def test_a_failed_commit_tells_nothing(hub: Hub) -> None:
    await _install_refusal(hub)
    heard = Heard(hub)
    before = await _contact_count(hub)
    with pytest.raises(Unavailable, match=r"not stored .*(FOREIGN KEY|refused at commit)"):
        async with hub.writes.begin() as work:
            contact_id = await _new_contact(work.conn)
            await _refused_at_commit(hub, work)
            work.emit(ContactCreated(contact_id))
            work.after_commit(heard.action("never"))
            assert await work.conn.scalar(sa.select(sa.func.count()).select_from(contacts)) > before
    assert heard.events == [] and heard.actions == []
    assert await _contact_count(hub) == before


async def test_a_failing_listener_does_not_stop_the_others(hub: Hub) -> None:
    async def broken(event: DomainEvent) -> None:
        raise ValueError("a listener's bug")

    hub.publisher.listen(broken)
    heard = Heard(hub)
    async with hub.writes.begin() as work:
        work.emit(ContactCreated(1))
    assert heard.events == [ContactCreated(1)]
