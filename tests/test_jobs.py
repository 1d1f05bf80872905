"""Background jobs: one run per due time across workers, dead workers' jobs taken over."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from hub.composition.worker import job_runner
from hub.errors import InvalidInput
from hub.jobs.runner import Job, JobRunner
from hub.models import Inbound, Kind, Status, utcnow
from tests.engines import settings  # noqa: F401 - runs every test on both engines


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.now


def counting_job(calls: list[str], name: str = "count", every: timedelta = timedelta(minutes=1)):  # type: ignore[no-untyped-def]
    async def run(now) -> int:  # type: ignore[no-untyped-def]
        calls.append(name)
        await asyncio.sleep(0)  # let a racing runner interleave
        return 1

    return Job(name, every, run)


async def test_racing_workers_run_a_due_job_once(hub):
    calls: list[str] = []
    clock = Clock()
    runners = [JobRunner(hub.db, [counting_job(calls)], f"w{n}", clock) for n in range(4)]
    await asyncio.gather(*(r.run_due() for r in runners))
    assert calls == ["count"]
    # Not due again until its interval has passed …
    await asyncio.gather(*(r.run_due() for r in runners))
    assert calls == ["count"]
    clock.now += timedelta(minutes=1)
    await asyncio.gather(*(r.run_due() for r in runners))
    assert calls == ["count", "count"]


async def test_a_dead_workers_lease_expires_and_another_takes_the_job(hub):
    calls: list[str] = []
    clock = Clock()
    job = counting_job(calls)
    started = asyncio.Event()

    async def hangs(now) -> int:  # type: ignore[no-untyped-def]
        started.set()
        await asyncio.Event().wait()  # the process dies here, holding the lease
        return 0

    dead = JobRunner(hub.db, [Job(job.name, job.every, hangs)], "dead", clock)
    dying = asyncio.create_task(dead.run_due())
    await started.wait()
    alive = JobRunner(hub.db, [job], "alive", clock)
    assert await alive.run_due() == {}
    clock.now += job.lease + timedelta(seconds=1)
    assert await alive.run_due() == {"count": 1}
    dying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dying


async def test_a_failing_job_is_logged_and_released(hub, caplog):
    async def broken(now) -> int:  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    clock = Clock()
    runner = JobRunner(hub.db, [Job("broken", timedelta(seconds=1), broken)], "w", clock)
    assert await runner.run_due() == {"broken": -1}
    assert "job broken failed" in caplog.text
    clock.now += timedelta(seconds=1)
    assert await runner.run_due() == {"broken": -1}  # due again: the lease was released


async def test_a_snooze_with_an_end_reopens_when_the_worker_runs(hub, website, agent):
    visitor = await hub.visitors.create(website, "pytest")
    posted = await hub.conversations.ingest(
        Inbound.web_chat(inbox_id=website.id, text="hi", client_id=None, visitor_id=visitor.id)
    )
    cid = posted.conversation.id
    until = utcnow() + timedelta(hours=1)
    snoozed = await hub.conversations.set_status(agent, cid, Status.SNOOZED, snoozed_until=until)
    assert snoozed.status is Status.SNOOZED
    assert await hub.conversations.wake_snoozed(until - timedelta(seconds=1)) == 0
    assert await hub.conversations.wake_snoozed(until) == 1
    conversation = await hub.conversations.get(cid)
    assert conversation.status is Status.OPEN
    last = (await hub.conversations.messages(cid))[-1]
    assert (last.kind, last.text) == (Kind.ACTIVITY, "Snooze ended; the conversation is open again")


async def test_the_hub_worker_wakes_snoozed_conversations(hub, website, agent):
    visitor = await hub.visitors.create(website, "pytest")
    posted = await hub.conversations.ingest(
        Inbound.web_chat(inbox_id=website.id, text="hi", client_id=None, visitor_id=visitor.id)
    )
    await hub.conversations.set_status(
        agent, posted.conversation.id, Status.SNOOZED, snoozed_until=utcnow() + timedelta(hours=1)
    )
    clock = Clock()
    runner = job_runner(hub, clock)
    assert (await runner.run_due())["wake-snoozed"] == 0
    clock.now += timedelta(hours=2)
    assert (await runner.run_due())["wake-snoozed"] == 1
    assert (await hub.conversations.get(posted.conversation.id)).status is Status.OPEN


@pytest.mark.parametrize("status", [Status.OPEN, Status.RESOLVED])
async def test_only_a_snooze_has_an_end(hub, website, agent, status):
    visitor = await hub.visitors.create(website, "pytest")
    posted = await hub.conversations.ingest(
        Inbound.web_chat(inbox_id=website.id, text="hi", client_id=None, visitor_id=visitor.id)
    )
    with pytest.raises(InvalidInput):
        await hub.conversations.set_status(
            agent, posted.conversation.id, status, snoozed_until=utcnow() + timedelta(hours=1)
        )


async def test_a_snooze_must_end_in_the_future(hub, website, agent):
    visitor = await hub.visitors.create(website, "pytest")
    posted = await hub.conversations.ingest(
        Inbound.web_chat(inbox_id=website.id, text="hi", client_id=None, visitor_id=visitor.id)
    )
    with pytest.raises(InvalidInput):
        await hub.conversations.set_status(
            agent, posted.conversation.id, Status.SNOOZED, snoozed_until=utcnow()
        )


async def test_a_runner_asks_the_store_again_only_when_a_job_can_be_due(hub, transactions):
    calls: list[str] = []
    clock = Clock()
    job = counting_job(calls, every=timedelta(minutes=1))
    runner = JobRunner(hub.db, [job], "w", clock)
    await runner.run_due()
    claimed_and_released = transactions["write"]
    for _ in range(5):  # polls within the minute: no write transaction at all
        clock.now += timedelta(seconds=5)
        await runner.run_due()
    assert transactions["write"] == claimed_and_released and calls == ["count"]
    clock.now += timedelta(minutes=1)
    await runner.run_due()
    assert transactions["write"] == 2 * claimed_and_released and calls == ["count", "count"]
