"""The background jobs of the hub, and running them (`hub worker`, or inside `hub serve`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from channels.email.imap_poller import ImapPollers, PollSettings
from hub.core import Hub
from hub.jobs.runner import Clock, Job, JobRunner
from hub.models import utcnow
from hub.voice.models import STALE_SWEEP_EVERY

# A snoozed conversation reopens within this long after its snooze ends.
SNOOZE_CHECK_EVERY = timedelta(seconds=30)
# Expired sessions are refused anyway; deleting them only keeps the table small.
SESSION_CLEANUP_EVERY = timedelta(hours=1)
# Page views past the retention period go in one bulk delete now and then.
PAGEVIEW_RETENTION_EVERY = timedelta(hours=1)


def hub_jobs(hub: Hub) -> list[Job]:
    """Every periodic job; each runs on one worker at a time (see hub.jobs)."""
    return [
        Job("wake-snoozed", SNOOZE_CHECK_EVERY, hub.conversations.wake_snoozed),
        Job("expire-sessions", SESSION_CLEANUP_EVERY, hub.agents.delete_expired_sessions),
        Job("pageview-retention", PAGEVIEW_RETENTION_EVERY, hub.tracking.cleanup),
        Job("close-stale-calls", STALE_SWEEP_EVERY, hub.calls.close_stale),
    ]


def job_runner(hub: Hub, clock: Clock = utcnow) -> JobRunner:
    return JobRunner(hub.db, hub_jobs(hub), clock=clock)


def imap_settings(hub: Hub) -> PollSettings:
    """IMAP fetches no message the SMTP server would refuse (HUB_MAIL_MAX_BYTES)."""
    return PollSettings(max_message_bytes=hub.settings.mail.max_bytes)


async def run_background(hub: Hub, stop: asyncio.Event) -> None:
    """Everything a worker does until `stop`: periodic jobs, the email outbox
    (which wakes as soon as mail is queued, on any node) and IMAP polling (each
    inbox polled by one worker at a time)."""
    await asyncio.gather(
        job_runner(hub).run_forever(stop),
        hub.outbox.run_forever(stop),
        ImapPollers(hub, imap_settings(hub)).run_forever(stop),
    )


async def run_once(hub: Hub) -> dict[str, int]:
    """Run the due jobs, send the due mail and poll each IMAP inbox once
    (`hub worker --once`; "imap-poll" only when some inbox is polled)."""
    results = await job_runner(hub).run_due()
    results["email-outbox"] = await hub.outbox.deliver_due()
    polled = await ImapPollers(hub, imap_settings(hub)).poll_once()
    if polled is not None:
        results["imap-poll"] = polled
    return results
