"""Browser fixtures: Debian's Chromium driven by Playwright, and a second-origin site."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.servers import unavailable

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying to reach hosts
# that this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Screenshots of failing and passing browser runs land here for people to look at.
ARTIFACTS = Path(os.environ.get("HUB_TEST_ARTIFACTS", "test-artifacts"))
# `make screenshots` sets this to docs/img: only then do the docs' pictures change.
DOCS_IMG = os.environ.get("HUB_DOCS_IMG")


def docs_image(name: str) -> Path:
    """Where a screenshot that the docs show is saved: docs/img under `make
    screenshots`, the test artifacts otherwise (a test run changes no tracked file)."""
    folder = Path(DOCS_IMG) if DOCS_IMG else ARTIFACTS
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def _require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")


@asynccontextmanager
async def chromium() -> AsyncIterator[object]:
    _require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def shop_site(
    hub_url: str,
    site_token: str,
    host: str = "127.0.0.2",
    pages: dict[str, tuple[str, str]] | None = None,
) -> AsyncIterator[str]:
    """A static shop on another origin that embeds the widget's script tag.

    `pages` maps paths to (title, body HTML); by default "/" and "/other".
    """
    pages = pages or {"/": ("Test shop", "<p>Products.</p>"), "/other": ("Test shop", "")}

    def page_for(title: str, body: str):  # type: ignore[no-untyped-def]
        async def page(request) -> HTMLResponse:  # type: ignore[no-untyped-def]
            return HTMLResponse(
                f"<!doctype html><html><head><title>{title}</title>"
                "<style>* { font-family: serif !important; } button { all: unset; }</style>"
                f"</head><body><h1>Test shop</h1>{body}"
                f'<script src="{hub_url}/widget.js" data-site="{site_token}" async></script>'
                "</body></html>"
            )

        return page

    app = Starlette(routes=[Route(path, page_for(*pages[path])) for path in pages])
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task
