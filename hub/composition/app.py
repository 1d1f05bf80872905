"""Assembles the Starlette application from the channels and the console."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import RedirectResponse
from starlette.routing import Route

from agent_console.routes import routes as console_routes
from channels.email.intake import start_reader
from channels.email.routes import routes as email_routes
from channels.email.smtp_server import MailListener, start_mail_server
from channels.voice.routes import routes as voice_routes
from channels.webchat.limits import WebchatLimits
from channels.webchat.routes import routes as webchat_routes
from hub.composition.assemble import start_hub
from hub.composition.commands import follow_public_url
from hub.composition.worker import run_background
from hub.core import Hub
from hub.errors import Unavailable
from hub.settings import Settings
from hub.visitors import devices

log = logging.getLogger(__name__)

# Agents stay logged in for a working day and a half; after that they log in again.
SESSION_MAX_AGE_SECONDS = 36 * 3600


async def _home(request) -> RedirectResponse:  # type: ignore[no-untyped-def]
    return RedirectResponse("/console/", status_code=303)


class _DenialFalseAlarm(logging.Filter):
    """uvicorn's websockets-sansio protocol logs a refused handshake (HTTP 403/429
    sent through the denial-response extension) as an error although the client
    got the response; drop that one line so real errors stand out."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing handshake" not in record.getMessage()


async def _start_mail(hub: Hub) -> MailListener | None:
    """The inbound mail server inside `hub serve`; a port already taken (another
    node, a `hub mail` process) leaves mail to that one instead of stopping the web."""
    try:
        listener = await start_mail_server(hub)
    except Unavailable as exc:
        log.warning("%s; inbound mail is not received by this process (hub serve --no-mail)", exc)
        return None
    log.info("Inbound mail: %s", listener.describe())
    return listener


class _HideTokensInPaths(logging.Filter):
    """Access-log lines name the path; the CTI webhook's and the email intake's
    paths carry their secret token, which has no business in a log file."""

    _TOKEN_PATH = re.compile(r"^(/voice/cti/|/email/inbound/)[^/?\s]+")

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            hidden = self._TOKEN_PATH.sub(r"\1…", args[2])
            if hidden != args[2]:
                record.args = (*args[:2], hidden, *args[3:])
        return True


# One instance each: a logger keeps a filter once however many apps are made.
_DENIAL_FALSE_ALARM = _DenialFalseAlarm()
HIDE_TOKENS_IN_PATHS = _HideTokensInPaths()


# Young objects are collected every this many allocations (Python's default is
# 700); see tune_garbage_collector.
GC_YOUNG_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """Fewer, not longer, collector pauses for a busy server.

    A full collection scans every tracked object and holds the event loop
    while it does: 50 to 250 ms with a thousand visitors connected, which at
    1,000 chat messages a second put the ack p99 at 200 to 300 ms (measured with
    `gc.callbacks`; with the collector off the same run sustained 2,000/s).
    What is alive once started (library tables, compiled SQL, templates) is
    never garbage, so it is frozen out of every scan; and young collections run
    every 50,000 allocations instead of 700, so full ones come far less often.
    Cycles still get collected, just later.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


def create_app(
    settings: Settings,
    hub: Hub | None = None,
    run_jobs: bool = False,
    run_mail: bool = False,
    tune_gc: bool = False,
) -> Starlette:
    """The web application. Pass a started `hub` to share it (tests); else it starts its own.

    With `run_jobs` the background jobs run in this process too (the embedded
    default); with several nodes they may still run everywhere, or only in
    `hub worker` processes. With `run_mail` the inbound mail server listens
    in this process too (the embedded default); else a `hub mail` process does.
    With `tune_gc` (a server process, not tests) the garbage collector is set
    for a server: see `tune_garbage_collector`.
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = hub is None
        # Before any socket is served: the first visitor's device is not a stall.
        warming = asyncio.create_task(asyncio.to_thread(devices.warm_up))
        app.state.hub = hub if hub is not None else await start_hub(settings)
        await warming
        if own:  # the demo site's origins follow this start's public URL and port
            await follow_public_url(app.state.hub, settings)
        await start_reader()  # the mail readers, before the first mail
        app.state.webchat_limits = WebchatLimits(app.state.hub.limits, settings)
        if tune_gc:
            tune_garbage_collector()
        mail = await _start_mail(app.state.hub) if run_mail else None
        stop = asyncio.Event()
        jobs = (
            asyncio.create_task(run_background(app.state.hub, stop), name="background")
            if run_jobs
            else None
        )
        # Every web process sweeps the visitors whose sockets it holds.
        sweep = asyncio.create_task(app.state.hub.tracking.sweep_forever(), name="visitor-sweep")
        try:
            yield
        finally:
            stop.set()
            sweep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweep
            if jobs is not None:
                await jobs
            if mail is not None:
                await mail.close()
            if own:
                await app.state.hub.stop()

    app = Starlette(
        routes=[Route("/", _home), *webchat_routes, *voice_routes, *email_routes, *console_routes],
        middleware=[
            Middleware(GZipMiddleware, minimum_size=1000),
            Middleware(
                SessionMiddleware,
                secret_key=settings.secret_key.get(),
                session_cookie="hub_session",
                max_age=SESSION_MAX_AGE_SECONDS,
                same_site="lax",
                https_only=settings.cookie_secure,
            ),
        ],
        lifespan=lifespan,
    )
    logging.getLogger("uvicorn.error").addFilter(_DENIAL_FALSE_ALARM)
    logging.getLogger("uvicorn.access").addFilter(HIDE_TOKENS_IN_PATHS)
    app.state.settings = settings
    if hub is not None:
        app.state.hub = hub
    return app
