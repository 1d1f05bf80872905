"""`python -m bench.run [--quick] [--only NAME ...]`: run the benchmarks, write the table.

The hub and each baseline server run pinned to core 0; this process is the
load generator, pinned to core 1, and reports its own CPU use beside every
figure, so that a saturated generator is not mistaken for a slow hub.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import chatload, email_ingest, fanout, idle, mail_stall, nodes, storm
from bench.context import Context
from bench.procs import pin_self, raise_fd_limit, run_on_uvloop
from bench.report import Progress, Results, markdown, write, write_charts

# name -> (run, estimated seconds at full size, at --quick size)
BENCHMARKS: dict[str, tuple[Callable[[Context], Awaitable[None]], int, int]] = {
    "idle": (idle.run, 100, 25),
    "fanout": (fanout.run, 45, 15),
    "chat": (chatload.run, 120, 20),
    "storm": (storm.run, 30, 10),
    "nodes": (nodes.run, 130, 30),
    "email": (email_ingest.run, 85, 20),
    "stall": (mail_stall.run, 55, 25),
}
HERE = Path(__file__).parent


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, for development on a shared machine"
    )
    parser.add_argument(
        "--only", action="append", choices=sorted(BENCHMARKS), help="run only this one (repeat)"
    )
    parser.add_argument("--output", type=Path, help="where the Markdown table goes")
    return parser.parse_args(argv)


async def run_all(names: list[str], ctx: Context) -> list[str]:
    failed = []
    for name in names:
        ctx.progress(name, "starting")
        try:
            await BENCHMARKS[name][0](ctx)
        except Exception:
            failed.append(name)
            traceback.print_exc()
            ctx.results.note(name, "FAILED: " + traceback.format_exc().strip().splitlines()[-1])
        ctx.progress(name, "done")
    return failed


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    names = args.only or list(BENCHMARKS)
    mode = "quick" if args.quick else "full"
    output = args.output or HERE / ("results-quick.md" if args.quick else "results.md")
    _, fd_limit = raise_fd_limit()
    pinned = pin_self()
    estimate = sum(BENCHMARKS[name][2] if args.quick else BENCHMARKS[name][1] for name in names)
    print(
        f"bench: {mode} run of {', '.join(names)}; estimated {estimate // 60} min "
        f"{estimate % 60} s; generator pinned to core 1: {'yes' if pinned else 'no'}; "
        f"open-file limit {fd_limit}",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    ctx = Context(args.quick, work, Progress(), Results())
    started = time.monotonic()
    try:
        failed = run_on_uvloop(run_all(names, ctx))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = markdown(ctx.results, mode, pinned, fd_limit, time.monotonic() - started, output)
    print("\n" + text)
    write_charts(output, ctx.results)
    write(output, text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
