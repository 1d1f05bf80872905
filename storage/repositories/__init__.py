"""Queries, one module per table group: the SQL lives here, the rules in `hub/`.

Each function takes the caller's connection (so it runs inside the caller's
unit of work) and returns rows or plain values; nothing here imports `hub`,
so values that mean something to the hub (a status, a kind) come in as
arguments.
"""
