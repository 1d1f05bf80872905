"""The store's errors reach the hub's callers as the hub's own (hub.errors.translated)."""

from __future__ import annotations

import json

import pytest

from hub.errors import HubError, NotMigrated, Unavailable, from_the_store, translated
from storage.errors import CopyError, StoreUnavailable
from storage.errors import NotMigrated as StoreNotMigrated


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (StoreUnavailable("the contact was not stored"), Unavailable),
        (StoreNotMigrated("run hub migrate"), NotMigrated),
        (CopyError("the target is not empty"), HubError),
    ],
)
def test_a_store_error_becomes_the_hubs_with_its_sentence(raised, expected) -> None:
    with pytest.raises(expected) as caught, translated():
        raise raised
    assert caught.value.message == raised.message
    assert caught.value.__cause__ is raised


async def test_an_awaited_store_call_is_translated_too() -> None:
    async def failing() -> None:
        raise StoreUnavailable("the visit was not stored")

    with pytest.raises(Unavailable, match="the visit was not stored"):
        await from_the_store(failing())


def test_other_errors_pass_through_untouched() -> None:
    with pytest.raises(KeyError), translated():
        raise KeyError("not the store's")


def test_each_hub_error_carries_the_http_status_every_adapter_answers_with():
    from channels.http.edge import Refused
    from hub import errors

    expected = {
        errors.NotFound: 404,
        errors.Forbidden: 403,
        errors.InvalidInput: 400,
        errors.TooLarge: 413,
        errors.RateLimited: 429,
        errors.Unverified: 403,
        errors.NotMigrated: 503,
        errors.Unavailable: 503,
    }
    assert {kind: kind.status for kind in expected} == expected
    refused = Refused.of(errors.InvalidInput("name is too long", "name"))
    body = refused.response().body
    assert (refused.status, json.loads(body)) == (
        400,
        {"error": {"code": "invalid", "message": "name is too long", "field": "name"}},
    )
