"""Console pages for email inboxes (admins): list, create, edit, the intake token, and
continuing a website's chats by email."""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import JSONResponse, RedirectResponse, Response

from agent_console.web import Ctx, console_endpoint
from hub.email.inboxes import EmailInbox, EmailInboxConfig, MailServer
from hub.email.models import TlsMode
from hub.email.secrets import MailSecrets
from hub.errors import InvalidInput, NotFound
from hub.models import Channel

# The intake URL of a new or rotated token is kept in the session for exactly
# one page view, so that it can be copied once and is never shown again.
SESSION_NEW_TOKEN = "new_intake_token"  # noqa: S105 - a session key, not a secret
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,99}$")
MAX_PASSWORD_CHARS = 200
TLS_LABELS = {
    TlsMode.NONE.value: "None (plain; loopback or a local relay only)",
    TlsMode.STARTTLS.value: "STARTTLS (ports 587 / 143)",
    TlsMode.TLS.value: "TLS from the start (ports 465 / 993)",
}
ACK_PLACEHOLDERS = (
    ("{{ name }}", "the sender's name, or their address"),
    ("{{ ticket }}", "the ticket number"),
    ("{{ subject }}", "the subject of their email"),
)


FORM_FIELDS = (
    "name",
    "address",
    "display_name",
    "smtp_host",
    "smtp_port",
    "smtp_tls",
    "smtp_user",
    "smtp_password_env",
    "imap_host",
    "imap_port",
    "imap_tls",
    "imap_user",
    "imap_password_env",
    "imap_folder",
    "signature",
    "auto_ack_subject",
    "auto_ack_template",
)
# Generous bounds against junk; the hub holds each field to its real limit.
MAX_FIELD_CHARS = 20_000


def _form_from(inbox: EmailInbox) -> dict[str, Any]:
    """The edit form's values for a stored inbox (never a password)."""

    def env(server: MailServer) -> str:
        ref = server.password_ref or ""
        return ref[4:] if ref.startswith("env:") else ""

    return {
        "name": inbox.name,
        "address": inbox.address,
        "display_name": inbox.display_name or "",
        "smtp_host": inbox.smtp.host or "",
        "smtp_port": str(inbox.smtp.port or ""),
        "smtp_tls": inbox.smtp.tls.value,
        "smtp_user": inbox.smtp.user or "",
        "smtp_password_env": env(inbox.smtp),
        "imap_enabled": inbox.imap_enabled,
        "imap_host": inbox.imap.host or "",
        "imap_port": str(inbox.imap.port or ""),
        "imap_tls": inbox.imap.tls.value,
        "imap_user": inbox.imap.user or "",
        "imap_password_env": env(inbox.imap),
        "imap_folder": inbox.imap_folder,
        "signature": inbox.signature or "",
        "auto_ack": inbox.auto_ack,
        "auto_ack_subject": inbox.auto_ack_subject,
        "auto_ack_template": inbox.auto_ack_template,
    }


def _new_form() -> dict[str, Any]:
    return {
        **dict.fromkeys(FORM_FIELDS, ""),
        "smtp_port": "587",
        "smtp_tls": TlsMode.STARTTLS.value,
        "imap_port": "993",
        "imap_tls": TlsMode.TLS.value,
        "imap_folder": "INBOX",
        "imap_enabled": False,
        "auto_ack": False,
    }


def _checked(value: object) -> bool:
    return isinstance(value, str) and value.lower() in {"1", "on", "true", "yes"}


def _read_form(ctx: Ctx) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """(what was typed, for showing again; passwords, never shown; field errors)."""
    form: dict[str, Any] = {name: ctx.text(name, MAX_FIELD_CHARS) for name in FORM_FIELDS}
    form["imap_enabled"] = _checked(ctx.data.get("imap_enabled"))
    form["auto_ack"] = _checked(ctx.data.get("auto_ack"))
    passwords = {
        name: ctx.text(name, MAX_FIELD_CHARS) for name in ("smtp_password", "imap_password")
    }
    for prefix in ("smtp", "imap"):
        form[f"{prefix}_password_remove"] = _checked(ctx.data.get(f"{prefix}_password_remove"))
    errors: dict[str, str] = {}
    for name in ("smtp_port", "imap_port"):
        value = form[name].strip()
        if value and not (value.isdigit() and 1 <= int(value) <= 65535):
            errors[name] = "Must be a port number (1-65535)."
    for name in ("smtp_password_env", "imap_password_env"):
        value = form[name].strip()
        if value and not _ENV_NAME.match(value):
            errors[name] = "Must be an environment variable name such as SMTP_PASSWORD."
    for name, value in passwords.items():
        if len(value) > MAX_PASSWORD_CHARS:
            errors[name] = f"Must be at most {MAX_PASSWORD_CHARS} characters."
    for name in ("smtp_tls", "imap_tls"):
        if form[name] not in TLS_LABELS:
            errors[name] = "Choose one of the listed modes."
    return form, passwords, errors


def _port(text: str) -> int | None:
    return int(text) if text.strip() else None


def _config(form: dict[str, Any], passwords: dict[str, str]) -> EmailInboxConfig:
    def server(prefix: str) -> MailServer:
        return MailServer(
            host=form[f"{prefix}_host"].strip() or None,
            port=_port(form[f"{prefix}_port"]),
            tls=TlsMode(form[f"{prefix}_tls"]),
            user=form[f"{prefix}_user"].strip() or None,
        )

    return EmailInboxConfig(
        name=form["name"],
        address=form["address"].strip(),
        display_name=form["display_name"],
        smtp=server("smtp"),
        smtp_password=passwords["smtp_password"] or None,
        smtp_password_env=form["smtp_password_env"].strip() or None,
        smtp_password_remove=form["smtp_password_remove"],
        imap_enabled=form["imap_enabled"],
        imap=server("imap"),
        imap_password=passwords["imap_password"] or None,
        imap_password_env=form["imap_password_env"].strip() or None,
        imap_password_remove=form["imap_password_remove"],
        imap_folder=form["imap_folder"],
        signature=form["signature"],
        auto_ack=form["auto_ack"],
        auto_ack_subject=form["auto_ack_subject"],
        auto_ack_template=form["auto_ack_template"],
    )


def _field_of(exc: InvalidInput) -> str:
    """The form field a hub error is about: its `field`, else the message's first word."""
    if exc.field in (*FORM_FIELDS, "smtp_password", "imap_password"):
        return exc.field
    first = exc.message.split(" ", 1)[0]
    return first if first in FORM_FIELDS else "form"


def _message(exc: InvalidInput) -> str:
    text = exc.message
    field = _field_of(exc)
    if text.startswith(field + " "):
        text = text[len(field) + 1 :]
        text = text[3:] if text.startswith("is ") else text
        text = text[:1].upper() + text[1:]
    return text.rstrip(".") + "."


def _intake_url(ctx: Ctx, token: str) -> str:
    return f"{ctx.settings.public_url}/email/inbound/{token}"


async def _list_page(ctx: Ctx) -> Response:
    new_token = ctx.request.session.pop(SESSION_NEW_TOKEN, None)
    items = []
    for inbox in await ctx.hub.email_inboxes.list():
        token = (
            new_token.get("token")
            if isinstance(new_token, dict) and new_token.get("id") == inbox.id
            else None
        )
        items.append(
            {
                "inbox": inbox,
                "intake_url": _intake_url(ctx, token) if token else None,
                "smtp_password": MailSecrets.describe(inbox.smtp.password_ref),
                "imap_password": MailSecrets.describe(inbox.imap.password_ref),
                "websites": [
                    w.name
                    for w in await ctx.hub.inboxes.list()
                    if w.channel is Channel.WEBSITE and w.email_inbox_id == inbox.id
                ],
            }
        )
    return ctx.render(
        "email_inboxes.html",
        {
            "nav": "email_inboxes",
            "items": items,
            "tls_labels": TLS_LABELS,
            "ack_server": ctx.settings.mail.trusted_authserv_id,
        },
    )


async def _form_page(
    ctx: Ctx,
    inbox: EmailInbox | None,
    form: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    return ctx.render(
        "email_inbox_form.html",
        {
            "nav": "email_inboxes",
            "inbox": inbox,
            "form": form,
            "errors": errors,
            "tls_labels": TLS_LABELS,
            "placeholders": ACK_PLACEHOLDERS,
            # Acknowledgements need the trusted receiving server (HUB_MAIL_TRUSTED_AUTHSERV_ID).
            "ack_server": ctx.settings.mail.trusted_authserv_id,
            "smtp_password": MailSecrets.describe(inbox.smtp.password_ref) if inbox else "none",
            "imap_password": MailSecrets.describe(inbox.imap.password_ref) if inbox else "none",
            "saved": ctx.request.query_params.get("saved") == "1",
        },
        status,
    )


@console_endpoint(admin=True)
async def email_inboxes_page(ctx: Ctx) -> Response:
    return await _list_page(ctx)


@console_endpoint(admin=True)
async def new_email_inbox_page(ctx: Ctx) -> Response:
    return await _form_page(ctx, None, _new_form(), {})


@console_endpoint(admin=True)
async def email_inbox_page(ctx: Ctx) -> Response:
    inbox = await ctx.hub.email_inboxes.get(ctx.request.path_params["inbox_id"])
    return await _form_page(ctx, inbox, _form_from(inbox), {})


async def _save(ctx: Ctx, inbox: EmailInbox | None) -> Response:
    form, passwords, errors = _read_form(ctx)
    if not errors:
        try:
            config = _config(form, passwords)
            if inbox is None:
                created, token = await ctx.hub.email_inboxes.create(config)
                ctx.request.session[SESSION_NEW_TOKEN] = {"id": created.id, "token": token}
                saved = created
            else:
                saved = await ctx.hub.email_inboxes.update(inbox.id, config)
        except InvalidInput as exc:
            errors[_field_of(exc)] = _message(exc)
    if errors:
        if ctx.wants_json:
            return JSONResponse(
                {"error": {"code": "invalid", "message": "Check the fields.", "fields": errors}},
                status_code=400,
            )
        return await _form_page(ctx, inbox, form, errors, status=400)
    if ctx.wants_json:
        return JSONResponse({"inbox": {"id": saved.id}}, status_code=201 if inbox is None else 200)
    if inbox is None:
        return RedirectResponse(f"/console/email-inboxes#inbox-{saved.id}", status_code=303)
    return RedirectResponse(f"/console/email-inboxes/{saved.id}?saved=1", status_code=303)


@console_endpoint(admin=True)
async def create_email_inbox(ctx: Ctx) -> Response:
    return await _save(ctx, None)


@console_endpoint(admin=True)
async def update_email_inbox(ctx: Ctx) -> Response:
    inbox = await ctx.hub.email_inboxes.get(ctx.request.path_params["inbox_id"])
    return await _save(ctx, inbox)


@console_endpoint(admin=True)
async def rotate_intake_token(ctx: Ctx) -> Response:
    inbox_id = ctx.request.path_params["inbox_id"]
    token = await ctx.hub.email_inboxes.rotate_intake_token(inbox_id)
    ctx.request.session[SESSION_NEW_TOKEN] = {"id": inbox_id, "token": token}
    return RedirectResponse(f"/console/email-inboxes#inbox-{inbox_id}", status_code=303)


@console_endpoint(admin=True)
async def continue_by_email(ctx: Ctx) -> Response:
    """A website's chats continue by email from this email inbox (or none)."""
    website_id = ctx.request.path_params["inbox_id"]
    website = await ctx.hub.inboxes.get(website_id)
    if website is None or website.channel is not Channel.WEBSITE:
        raise NotFound(f"no website inbox {website_id}")
    value = ctx.text("email_inbox_id", 12)
    if value and not value.isdigit():
        raise InvalidInput("choose an email inbox or none", "email_inbox_id")
    await ctx.hub.inboxes.continue_by_email(website_id, int(value) if value else None)
    if ctx.wants_json:
        return JSONResponse({"inbox": {"id": website_id, "email_inbox_id": value or None}})
    return RedirectResponse(f"/console/inboxes/{website_id}#continue", status_code=303)
