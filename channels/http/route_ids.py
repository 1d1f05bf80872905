"""The `{name:id}` path parameter: a row id as the store can hold it.

Starlette's `int` converter takes any run of digits, so `/x/99999999999999999999`
reached the store and failed there (SQLite cannot bind it, PostgreSQL's integer
refuses it) with a 500. This one matches 1 … 1,999,999,999 only — inside a
32-bit key — so anything else is simply no route: 404.
"""

from __future__ import annotations

from starlette.convertors import IntegerConvertor, register_url_convertor


class RowIdConvertor(IntegerConvertor):
    regex = "[1-9][0-9]{0,8}|1[0-9]{9}"


register_url_convertor("id", RowIdConvertor())
