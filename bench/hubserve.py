"""`hub serve` as the benchmarks run it: production code with the fd limit raised and
the per-visitor rate limits lifted.

The widget's limits (2 messages per second per visitor, 20 frames per second)
protect a real site from a runaway client; the chat-load benchmark sends
several messages a second from each of its visitors (1,000 visitors cannot
offer 5,000 messages per second otherwise), so the limits are raised here,
and only here. The console's login limit (10 attempts per account and
address) is lifted too: the chat load logs in 20 agents from one generator
address. Everything else is `hub serve` unchanged.
"""

from __future__ import annotations

import argparse
import sys

from bench.procs import raise_fd_limit

BENCH_RATE = 10_000.0
BENCH_BURST = 10_000
_LIFTED = ("MESSAGES_PER_SECOND", "MESSAGE_BURST", "FRAMES_PER_SECOND", "FRAME_BURST")


_LIFTED_LOGIN = ("LOGIN_RATE_PER_SECOND", "LOGIN_BURST")


def lift_rate_limits() -> None:
    from agent_console import login
    from channels.webchat import protocol

    for module, names in ((protocol, _LIFTED), (login, _LIFTED_LOGIN)):
        for name in names:
            if not hasattr(module, name):
                # The limiter moved; fail loudly rather than benchmark a throttled hub.
                raise SystemExit(f"bench: {module.__name__}.{name} is gone; update bench")
            setattr(module, name, BENCH_BURST if name.endswith("BURST") else BENCH_RATE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    raise_fd_limit()
    lift_rate_limits()
    from hub.composition.cli import main as hub_main

    return hub_main(["serve", "--port", str(args.port), "--log-level", "warning"])


if __name__ == "__main__":
    sys.exit(main())
