"""The one backend registry: which implementation of the hub's shared state
(event bus, agent presence, live visitors, rate limits) a URL names, and the
one Redis client they share.

`memory://` (the embedded default) keeps everything in this process;
`redis://` and `rediss://` share it between nodes. Our own `prefix=` query
parameter namespaces every key (tests and several hubs on one Redis).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    import redis.asyncio as redis

Kind = Literal["memory", "redis"]
SCHEMES: dict[str, Kind] = {"memory": "memory", "redis": "redis", "rediss": "redis"}
DEFAULT_PREFIX = "hub:"


def kind_of(url: str) -> Kind:
    """Which backend `url` names; a clear error naming the choices otherwise."""
    scheme = url.split("://", 1)[0].lower()
    if "://" not in url or scheme not in SCHEMES:
        known = ", ".join(f"{name}://" for name in SCHEMES)
        raise ValueError(f"Unsupported bus URL {url!r}; use one of {known}")
    return SCHEMES[scheme]


def split_redis_url(url: str) -> tuple[str, str]:
    """Our own `prefix=` query parameter out of a redis URL; redis-py gets the rest."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    prefix = next((value for key, value in query if key == "prefix"), DEFAULT_PREFIX)
    rest = urlencode([(key, value) for key, value in query if key != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


class Backends:
    """The backends a URL names, and (for Redis) one client made on first use and
    shared by agent presence, live visitors and rate limits. The event bus keeps
    its own pool (hub/events/bus_redis.py): its subscription holds a connection
    for good and its publishes must fail loudly rather than retry."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.kind = kind_of(url)
        self.prefix = split_redis_url(url)[1] if self.kind == "redis" else ""
        self._client: redis.Redis | None = None

    @property
    def shared(self) -> bool:
        """Whether the state is shared between nodes (Redis)."""
        return self.kind == "redis"

    def redis(self) -> redis.Redis:
        """The one Redis client (only for a Redis URL)."""
        if self.kind != "redis":
            raise ValueError(f"{self.url!r} is not a Redis URL")
        if self._client is None:
            import redis.asyncio as redis_asyncio  # only where Redis is used

            self._client = redis_asyncio.from_url(split_redis_url(self.url)[0])
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def backends_of(given: str | Backends) -> tuple[Backends, bool]:
    """`given` as Backends, and whether the caller owns it (made here from a URL)."""
    if isinstance(given, Backends):
        return given, False
    return Backends(given), True
