"""The store's errors reach the hub's callers as the hub's own (hub.errors.translated)."""

from __future__ import annotations

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
