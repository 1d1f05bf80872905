"""Website inboxes (hub.inboxes), on both engines."""

from __future__ import annotations

import asyncio
import contextlib

from tests.engines import settings  # noqa: F401 - runs every test on both engines


async def test_site_tokens_looked_up_together_share_one_read(hub, monkeypatch):
    shops = [await hub.inboxes.create_website(f"Shop {n}", [f"https://{n}.test"]) for n in range(3)]
    reads = []
    read = hub.db.read

    @contextlib.asynccontextmanager
    async def counting_read():  # type: ignore[no-untyped-def]
        reads.append(1)
        async with read() as conn:
            yield conn

    monkeypatch.setattr(hub.db, "read", counting_read)
    tokens = [shop.site_token for shop in shops for _ in range(4)]  # (many widgets a shop)
    found = await asyncio.gather(*(hub.inboxes.by_site_token(t) for t in [*tokens, "nope"]))
    assert len(reads) == 1
    assert found == [shop for shop in shops for _ in range(4)] + [None]


async def test_a_site_token_lookup_sees_the_origins_as_they_are_now(hub):
    shop = await hub.inboxes.create_website("Shop", ["https://shop.test"])
    assert (await hub.inboxes.by_site_token(shop.site_token)).allowed_origins == (
        "https://shop.test",
    )
    await hub.inboxes.set_allowed_origins(shop.id, ["https://new.test"])
    assert (await hub.inboxes.by_site_token(shop.site_token)).allowed_origins == (
        "https://new.test",
    )
