"""Stored rows into the hub's records: one mapper for every dataclass a query fills.

A field takes the row's column of the same name, turned into the field's type where
the store keeps a plainer one: an enum from its value, a tuple from an array (or
nothing), a dict from a JSON object (or nothing). What has another name or needs
more is passed by keyword.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

_Convert = Callable[[Any], Any] | None
_MISSING = object()
# Each record type's fields and how to convert them, worked out at its first row.
_FIELDS: dict[type, tuple[tuple[str, _Convert], ...]] = {}


def record_of(cls: type[T], row: Any, **given: Any) -> T:
    """A `cls` from `row` (a SQLAlchemy row, a named tuple or a mapping); `given` win.

    A field the row lacks keeps its default (or is a TypeError if it has none)."""
    column = row.get if isinstance(row, Mapping) else functools.partial(getattr, row)
    values = dict(given)
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = _FIELDS[cls] = _fields_of(cls)
    for name, convert in fields:
        if name in values:
            continue
        value = column(name, _MISSING)
        if value is not _MISSING:
            values[name] = value if convert is None else convert(value)
    return cls(**values)


def _fields_of(cls: type) -> tuple[tuple[str, _Convert], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, _converter(hints[f.name])) for f in dataclasses.fields(cls))


def _converter(hint: Any) -> _Convert:
    optional = False
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            return None
        optional, hint = True, rest[0]
    origin = typing.get_origin(hint) or hint
    convert: _Convert
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        convert = origin
    elif origin is tuple:
        convert = _as_tuple
    elif origin is dict:
        convert = _as_dict
    else:
        return None
    if optional:
        inner = convert
        return lambda value: None if value is None else inner(value)
    return convert


def _as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value or ())


def _as_dict(value: Any) -> dict[Any, Any]:
    return dict(value or {})
