"""Seed a migrated store for the benchmarks: agents and one website inbox."""

from __future__ import annotations

import argparse
import asyncio

from bench.procs import AGENT_PASSWORD, SITE_ORIGIN, SITE_TOKEN, agent_email
from hub.composition.assemble import start_hub
from hub.models import Role
from hub.settings import Settings


async def seed(agents: int) -> None:
    hub = await start_hub(Settings.load())
    try:
        await hub.inboxes.create_website("Bench shop", [SITE_ORIGIN], site_token=SITE_TOKEN)
        for index in range(agents):
            await hub.agents.create(
                agent_email(index), f"Agent {index}", AGENT_PASSWORD, Role.AGENT
            )
    finally:
        await hub.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=1)
    asyncio.run(seed(parser.parse_args().agents))


if __name__ == "__main__":
    main()
