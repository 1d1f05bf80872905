"""What the hub serves for the widget: the script, its size budget, the demo page."""

from __future__ import annotations

import gzip
from dataclasses import replace

import httpx

from hub.inboxes.service import DEMO_SITE_TOKEN
from widget import WIDGET_DIR

# The budget for everything the widget loads (script with its styles).
WIDGET_GZIP_BUDGET = 25 * 1024


def test_widget_fits_its_gzip_budget():
    size = len(gzip.compress((WIDGET_DIR / "widget.js").read_bytes(), compresslevel=9))
    assert size <= WIDGET_GZIP_BUDGET, f"widget.js is {size} bytes gzipped"


async def test_widget_script_is_served_compressed_as_javascript(live_server):
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"{live_server.url}/widget.js", headers={"Accept-Encoding": "gzip"}
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text == (WIDGET_DIR / "widget.js").read_text(encoding="utf-8")


async def test_demo_page_needs_the_demo_site(live_server, hub):
    async with httpx.AsyncClient() as client:
        missing = await client.get(f"{live_server.url}/demo")
        await hub.inboxes.create_website("Demo", [live_server.url], site_token=DEMO_SITE_TOKEN)
        live_server.app.state.settings = replace(live_server.app.state.settings, demo=True)
        page = await client.get(f"{live_server.url}/demo")
    assert missing.status_code == 404
    assert page.status_code == 200
    assert f'data-site="{DEMO_SITE_TOKEN}"' in page.text
    assert "__HUB_URL__" not in page.text and "__SITE_TOKEN__" not in page.text
