"""Checks on the SMTP/IMAP host names and IMAP folder an admin saves.

A host is a DNS name or an IP address, nothing else: no whitespace, CR/LF or
other control characters. Unless HUB_MAIL_ALLOW_PRIVATE_HOSTS is set, a host
that is, or resolves at save time to, a loopback, link-local, private or other
non-public address is refused: the admin form must not become a way to make
the hub connect to services inside its own network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket

from hub.errors import InvalidInput
from hub.text import clean_optional

# How long a save waits for DNS before it refuses the host.
RESOLVE_SECONDS = 5.0
MAX_FOLDER_CHARS = 200

_HOST_NAME = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)"
    r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?"
)
# Any control character, tab and line breaks included.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def clean_host(value: str | None, field: str) -> str | None:
    """A host name or IP address, or None when not given; else InvalidInput."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or _CONTROL.search(value):
        raise InvalidInput(f"{field} must be a host name or address", field)
    host = value.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if _literal(host) is None and not _HOST_NAME.fullmatch(host):
        raise InvalidInput(f"{field} must be a host name or address", field)
    return host


def clean_folder(value: object, field: str = "imap_folder") -> str | None:
    """An IMAP folder name: no control characters (a CR/LF would end the command)."""
    if isinstance(value, str) and _CONTROL.search(value):
        raise InvalidInput(f"{field} must not contain line breaks or control characters", field)
    return clean_optional(value, MAX_FOLDER_CHARS, field)


async def refuse_private(host: str | None, field: str) -> None:
    """InvalidInput when `host` is, or resolves to, a non-public address."""
    if host is None:
        return
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            found = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM),
                RESOLVE_SECONDS,
            )
        except (OSError, TimeoutError):
            raise InvalidInput(f"{field}: {host} does not resolve", field) from None
        addresses = [a for a in (_literal(str(info[4][0])) for info in found) if a is not None]
    for address in addresses:
        if not address.is_global:
            raise InvalidInput(
                f"{field}: {host} is a private, loopback or link-local address ({address}); "
                "set HUB_MAIL_ALLOW_PRIVATE_HOSTS=true to allow mail servers on this network",
                field,
            )


def _literal(host: str) -> Address | None:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
