"""Whether a received message's From address passed authentication, as the
trusted receiving server reported it in `Authentication-Results` (RFC 8601).

Only results stamped with the trusted server's authserv-id count: anyone can
write an `Authentication-Results` header, and the receiving server removes
copies bearing its own id that arrive from outside (RFC 8601 section 5). The
From domain passes on `dmarc=pass` for it, or on `dkim=pass` or `spf=pass`
for a domain aligned with it (the same domain, or one a subdomain of the other).
"""

from __future__ import annotations

from collections.abc import Iterable

import authres  # RFC 8601 grammar (comments, quoting, versions) instead of a hand-written parser

# A message carries a few of these; more is someone padding it.
MAX_RESULTS_HEADERS = 20


def _domain(value: str | None) -> str:
    """The domain of `user@domain`, `@domain` or `domain`, lower case."""
    return (value or "").rpartition("@")[2].strip().strip(".").lower()


def _aligned(one: str, other: str) -> bool:
    return bool(one and other) and (
        one == other or one.endswith("." + other) or other.endswith("." + one)
    )


def _property(result: authres.AuthenticationResult, kind: str, name: str) -> str:
    for prop in result.properties:
        if prop.type.lower() == kind and prop.name.lower() == name:
            return _domain(prop.value)
    return ""


def _passes(result: authres.AuthenticationResult, from_domain: str) -> bool:
    if (result.result or "").lower() != "pass":
        return False
    method = (result.method or "").lower()
    if method == "dmarc":
        return _property(result, "header", "from") in ("", from_domain)
    if method == "dkim":
        signer = _property(result, "header", "d") or _property(result, "header", "i")
        return _aligned(signer, from_domain)
    if method == "spf":
        return _aligned(_property(result, "smtp", "mailfrom"), from_domain)
    return False


def from_authenticated(headers: Iterable[str], trusted_authserv_id: str, address: str) -> bool:
    """True when the trusted server reports a pass aligned with `address`'s domain;
    False without a trusted server, a trusted result, or a readable one."""
    trusted = trusted_authserv_id.strip().lower()
    from_domain = _domain(address)
    if not trusted or not from_domain:
        return False
    for index, value in enumerate(headers):
        if index >= MAX_RESULTS_HEADERS:
            break
        try:
            parsed = authres.AuthenticationResultsHeader.parse_value(value)
        except authres.AuthResError:
            continue  # a malformed header is no evidence either way
        if (parsed.authserv_id or "").lower() != trusted:
            continue
        if any(_passes(result, from_domain) for result in parsed.results):
            return True
    return False
