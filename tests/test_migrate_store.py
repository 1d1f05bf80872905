"""`hub migrate-store`: an embedded SQLite install moved to PostgreSQL, verified."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from hub.composition.assemble import start_hub
from hub.core import Hub
from hub.models import Inbound, Role, Status
from tests.conftest import make_settings
from tests.nodes import hub_env
from tests.servers import postgres_database


async def fill_sqlite(hub: Hub) -> int:
    admin = await hub.agents.create("admin@example.com", "Admin", "a long password", Role.ADMIN)
    inbox = await hub.inboxes.create_website("Shop", ["http://shop.test"])
    conversation_id = 0
    for n in range(30):
        visitor = await hub.visitors.create(inbox, "pytest")
        posted = await hub.conversations.ingest(
            Inbound.web_chat(
                inbox_id=inbox.id, text=f"hello {n}", client_id=f"c-{n}", visitor_id=visitor.id
            )
        )
        await hub.conversations.reply(admin, posted.conversation.id, f"reply {n}")
        conversation_id = posted.conversation.id
    await hub.conversations.set_status(admin, conversation_id, Status.RESOLVED)
    return conversation_id


def migrate_store(tmp_path, source: str, target: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "hub", "migrate-store", target, "--from", source],
        env=hub_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_everything_is_copied_and_the_copy_keeps_working(tmp_path, hub, settings):
    last_conversation = await fill_sqlite(hub)
    async with postgres_database() as target:
        result = await asyncio.to_thread(migrate_store, tmp_path, settings.database_url, target)
        assert result.returncode == 0, result.stderr
        assert "messages" in result.stdout and "MISMATCH" not in result.stdout
        assert "messages         [##############################]" in result.stderr
        counts = {
            line.split()[0]: line.split()[1:]
            for line in result.stdout.splitlines()[1:]
            if line and not line.startswith("All rows")
        }
        # 30 visitor messages, 30 replies and the one "resolved" activity line.
        assert counts["messages"] == ["61", "61"]
        moved = await start_hub(make_settings(tmp_path, HUB_DATABASE_URL=target))
        try:
            conversation = await moved.conversations.get(last_conversation)
            assert conversation.status is Status.RESOLVED
            admin = await moved.agents.authenticate("admin@example.com", "a long password")
            assert admin is not None
            # New rows get fresh ids after the copied ones, and seq continues.
            inbox = (await moved.inboxes.list())[0]
            visitor = await moved.visitors.create(inbox, "pytest")
            posted = await moved.conversations.ingest(
                Inbound.web_chat(
                    inbox_id=inbox.id, text="after", client_id="x", visitor_id=visitor.id
                )
            )
            assert posted.conversation.id == last_conversation + 1
            reply = await moved.conversations.reply(admin, last_conversation, "still here")
            assert reply.message.seq == conversation.last_seq + 1
        finally:
            await moved.stop()


async def test_a_target_with_rows_is_refused_and_left_alone(tmp_path, hub, settings):
    await fill_sqlite(hub)
    async with postgres_database() as target:
        first = await asyncio.to_thread(migrate_store, tmp_path, settings.database_url, target)
        assert first.returncode == 0
        second = await asyncio.to_thread(migrate_store, tmp_path, settings.database_url, target)
    assert second.returncode == 2
    assert "already has rows in" in second.stderr
