"""Device, browser and system from a user agent string, for the live visitors view.

Parsing uses ua-parser (the maintained Python port of the uap-core rules)
rather than our own regular expressions: browsers change their strings often
and the rules are kept current upstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import ua_parser
from ua_parser import parse

# Visitors come back with the same few strings; parsing each once is enough.
CACHE_SIZE = 4096

_TABLETS = ("ipad", "tablet", "kindle", "nexus 7", "nexus 9", "nexus 10", "sm-t")
_MOBILE_SYSTEMS = {"ios", "android", "windows phone", "kaios"}


@dataclass(frozen=True)
class Device:
    kind: str  # "desktop", "mobile", "tablet" or "bot"
    browser: str  # "Chrome 126"
    system: str  # "macOS"

    def to_wire(self) -> dict[str, str]:
        return {"kind": self.kind, "browser": self.browser, "system": self.system}


def warm_up() -> None:
    """Build ua-parser's rules now. It builds them on the first parse, which takes
    a fraction of a second to a second of CPU: in a web process that would stall
    every socket while the first visitor of the day arrives. Call it off the event
    loop (it is safe in a thread: ua-parser guards the build with a lock)."""
    _ = ua_parser.parser


def _version(family: str, major: str | None) -> str:
    return f"{family} {major}" if major else family


@lru_cache(maxsize=CACHE_SIZE)
def describe(user_agent: str | None) -> Device:
    if not user_agent:
        return Device("desktop", "Unknown browser", "Unknown system")
    result = parse(user_agent[:400])
    browser = (
        _version(result.user_agent.family, result.user_agent.major) if result.user_agent else ""
    )
    system = result.os.family if result.os else ""
    device = (result.device.family if result.device else "") or ""
    lowered = f"{device} {user_agent}".lower()
    if device == "Spider" or "bot" in (
        result.user_agent.family.lower() if result.user_agent else ""
    ):
        kind = "bot"
    elif any(word in lowered for word in _TABLETS) or (
        system == "Android" and "mobile" not in user_agent.lower()
    ):
        kind = "tablet"
    elif system.lower() in _MOBILE_SYSTEMS:
        kind = "mobile"
    else:
        kind = "desktop"
    system = {"Mac OS X": "macOS"}.get(system, system)
    return Device(kind, browser or "Unknown browser", system or "Unknown system")
