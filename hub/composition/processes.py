"""The hub's long-running processes, as `hub serve`, `hub worker` and `hub mail` start them."""

from __future__ import annotations

import argparse
import asyncio

from hub.settings import Settings


def serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from channels.webchat.protocol import WS_MAX_SIZE
    from channels.websocket.protocol import HubWebSocketProtocol
    from hub.composition.app import create_app
    from hub.composition.assemble import start_hub

    async def check() -> None:
        hub = await start_hub(settings)
        await hub.stop()
        if not args.no_mail:
            from channels.email.smtp_server import tls_context

            tls_context(settings.mail)  # a certificate that does not load stops here

    asyncio.run(check())  # refuse to start on an unmigrated database, with the reason
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    print(f"Contact hub on http://{host}:{port}/  (console /console/, demo page /demo)")
    uvicorn.run(
        create_app(
            settings,
            run_jobs=not args.no_jobs,
            run_mail=not args.no_mail,
            tune_gc=True,
        ),
        host=host,
        port=port,
        ws=HubWebSocketProtocol,
        ws_max_size=WS_MAX_SIZE,
        proxy_headers=True,
        log_level=args.log_level,
    )
    return 0


def worker(settings: Settings, args: argparse.Namespace) -> int:
    import signal

    from hub.composition.assemble import start_hub
    from hub.composition.worker import hub_jobs, run_background, run_once

    async def run() -> None:
        hub = await start_hub(settings)
        try:
            if args.once:
                results = await run_once(hub)
                for name in sorted(results):
                    print(f"{name}: {results[name]}")
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            jobs = len(hub_jobs(hub))
            print(
                f"Worker running {jobs} jobs, the email outbox and IMAP polling; Ctrl-C stops it."
            )
            await run_background(hub, stop)
        finally:
            await hub.stop()

    asyncio.run(run())
    return 0


def mail(settings: Settings, args: argparse.Namespace) -> int:
    import signal

    from channels.email.intake import start_reader
    from channels.email.smtp_server import start_mail_server
    from hub.composition.assemble import start_hub

    async def run() -> None:
        hub = await start_hub(settings)
        try:
            await start_reader()
            listener = await start_mail_server(hub, host=args.host, port=args.port)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            print(f"Inbound mail: {listener.describe()}; Ctrl-C stops it.", flush=True)
            await stop.wait()
            print("Stopping: finishing the messages being stored.", flush=True)
            await listener.close()
        finally:
            await hub.stop()

    asyncio.run(run())
    return 0
