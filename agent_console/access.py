"""What each console endpoint declares about who may use it (see hub/agents/access.py
for the decision itself).

Every endpoint passes exactly one `Guard` to `console_endpoint`, and the wrapper
applies it before the handler runs: a route without a declaration does not
import (tests/test_access_walk.py then walks every route as an agent outside
the inbox). The guards:

    ANYONE          no login needed (the login page)
    OWN             logged in; touches no inbox's data (log out, own profile)
    ADMIN           admins only
    LISTS           a list the handler filters by `ctx.access.readable`
    reads(kind, p)  the thing of `kind` named by path parameter `p` is in an
                    inbox the agent may read (else 404)
    acts(kind, p)   ... and works in (else 403 for a manager who only reads)
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.repositories.access import KINDS


@dataclass(frozen=True)
class Guard:
    """Who may use an endpoint; see the module doc."""

    name: str
    kind: str | None = None
    param: str | None = None
    act: bool = False

    @property
    def login_required(self) -> bool:
        return self.name != "anyone"

    @property
    def admin_only(self) -> bool:
        return self.name == "admin"

    def __str__(self) -> str:
        if self.kind is None:
            return self.name
        return f"{'acts' if self.act else 'reads'}({self.kind}, {self.param})"


ANYONE = Guard("anyone")
OWN = Guard("own")
ADMIN = Guard("admin")
LISTS = Guard("lists")


def reads(kind: str, param: str) -> Guard:
    """The agent may read the inbox of the `kind` named by path parameter `param`."""
    if kind not in KINDS:
        raise ValueError(f"no such kind {kind!r}; one of {', '.join(KINDS)}")
    return Guard("resource", kind, param, act=False)


def acts(kind: str, param: str) -> Guard:
    """The agent works in the inbox of the `kind` named by path parameter `param`."""
    return Guard("resource", kind, param, act=True) if reads(kind, param) else ADMIN
