"""What every HTTP adapter (email intake, voice events, the console) shares:
one refusal type, one capped body read, form-or-JSON parsing, and one JSON
error shape — `{"error": {"code": ..., "message": ...[, "field": ...]}}` —
into which a `HubError` turns with the HTTP status its class carries."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse

from hub.errors import HubError
from hub.events import json_text

MAX_FORM_FIELDS = 50


class Refused(Exception):
    """An answer other than success, raised anywhere inside an endpoint."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers

    @classmethod
    def of(cls, exc: HubError, status: int | None = None) -> Refused:
        """The refusal a hub error becomes (its class's status unless `status`)."""
        return cls(status or exc.status, exc.code, exc.message, getattr(exc, "field", None))

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        return error_json(self.status, self.code, self.message, self.field, headers or self.headers)


def error_json(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The one shape of an error body."""
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status, headers=headers)


async def capped_stream(
    request: Request, cap: int, too_large: str = "The request is too large."
) -> AsyncGenerator[bytes, None]:
    """The body's chunks, refused (413) as soon as more than `cap` bytes came,
    or at once when Content-Length says so (400 when it is not a number)."""
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise Refused(400, "bad_request", "Content-Length is not a number.")
    if declared is not None and int(declared) > cap:
        raise Refused(413, "too_large", too_large)
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise Refused(413, "too_large", too_large)
        yield chunk


async def read_capped(
    request: Request, cap: int, too_large: str = "The request is too large."
) -> bytes:
    """The whole body, at most `cap` bytes (see `capped_stream`)."""
    return b"".join([chunk async for chunk in capped_stream(request, cap, too_large)])


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def form_pairs(body: bytes, max_fields: int = MAX_FORM_FIELDS) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=max_fields)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refused(400, "bad_form", "The form could not be read.") from exc


def json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json_text.parse(body or b"{}")
    except ValueError as exc:
        raise Refused(400, "bad_json", "The body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise Refused(400, "bad_json", "The body must be a JSON object.")
    return data


def form_or_json(
    request: Request, body: bytes, max_fields: int = MAX_FORM_FIELDS
) -> tuple[dict[str, Any], bool]:
    """(fields, is_json) from a JSON object or a urlencoded form; a form field
    repeated (or named `x[]`) becomes a list."""
    kind = content_type(request)
    if kind == "application/json":
        return json_object(body), True
    if kind in {"application/x-www-form-urlencoded", ""}:
        fields: dict[str, Any] = {}
        for name, value in form_pairs(body, max_fields):
            if name in fields:
                previous = fields[name]
                fields[name] = (
                    [*previous, value] if isinstance(previous, list) else [previous, value]
                )
            else:
                fields[name] = [value] if name.endswith("[]") else value
        return fields, False
    raise Refused(415, "unsupported_media_type", "Send JSON or a urlencoded form.")
