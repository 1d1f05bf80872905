"""The console's CSP behind an https public address: sockets only to its wss origin."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from hub.settings import Settings
from tests.conftest import migrated_settings


@pytest.fixture
def settings(tmp_path: Path, migrated_store: Path) -> Settings:
    return migrated_settings(
        tmp_path, migrated_store, HUB_PUBLIC_URL="https://help.example.com:8443/"
    )


async def test_an_https_hub_lets_the_console_open_sockets_only_to_its_wss_origin(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/console/login")
    directives = dict(
        d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";")
    )
    assert directives["connect-src"] == "'self' wss://help.example.com:8443"
