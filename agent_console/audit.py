"""The admins' audit log page: `/console/audit` (hub/audit.py records)."""

from __future__ import annotations

from starlette.responses import Response

from agent_console.access import ADMIN
from agent_console.web import Ctx, console_endpoint


@console_endpoint(ADMIN)
async def audit_page(ctx: Ctx) -> Response:
    before_text = ctx.request.query_params.get("before", "")
    before = int(before_text) if before_text.isdigit() and len(before_text) < 12 else None
    entries = await ctx.hub.audit.recent(before)
    return ctx.render(
        "audit.html",
        {
            "nav": "audit",
            "entries": entries,
            "older": entries[-1].id if len(entries) == ctx.hub.audit.page_size else None,
        },
    )
