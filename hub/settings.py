"""Settings from `HUB_*` environment variables, then a `.env` file, then defaults.

Read once at start-up and validated; a wrong value stops the start with a
sentence naming the variable.
"""

from __future__ import annotations

import enum
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Secret:
    """A string that does not print itself."""

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


def _read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip().strip("'\"")
    return values


class MailProtocol(enum.StrEnum):
    SMTP = "smtp"  # mail straight from the internet (MX) or a relay speaking SMTP
    LMTP = "lmtp"  # behind an MTA such as Postfix: one answer per recipient


# Mail providers limit a message to 25 MB or so; refusing more at SIZE/DATA
# keeps a sender from filling the store.
DEFAULT_MAIL_MAX_BYTES = 25 * 1024 * 1024
_MAIL_MAX_BYTES_RANGE = (64 * 1024, 1024 * 1024 * 1024)


@dataclass(frozen=True)
class MailSettings:
    """Where and how the inbound mail server listens (HUB_MAIL_*)."""

    host: str = "127.0.0.1"
    port: int = 2525
    protocol: MailProtocol = MailProtocol.SMTP
    max_bytes: int = DEFAULT_MAIL_MAX_BYTES
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # The name in the greeting and EHLO answer; empty: this machine's FQDN.
    hostname: str = ""
    # Per client address, SMTP only (in LMTP mode the one client is your MTA,
    # which limits its own clients): messages a minute (0 = no limit) and
    # connections open at once.
    messages_per_minute: int = 60
    connections_per_ip: int = 20
    # Reading a message (parse and sanitize, in worker processes): how long one
    # may take before it is refused as too complex, and how many are read at
    # once (0: two to four, by this machine's cores).
    parse_seconds: int = 5
    parse_workers: int = 0
    # Outgoing/IMAP servers of email inboxes may be on loopback, link-local or
    # private addresses (HUB_MAIL_ALLOW_PRIVATE_HOSTS); refused by default.
    allow_private_hosts: bool = False
    # Acknowledgements of new tickets: only to a From that passed authentication
    # as reported by this receiving server (its authserv-id in
    # Authentication-Results; empty: no acknowledgement is sent), and at most
    # this many per inbox an hour, whoever the senders.
    trusted_authserv_id: str = ""
    acks_per_inbox_per_hour: int = 30


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    bus_url: str
    secret_key: Secret
    host: str
    port: int
    public_url: str
    cookie_secure: bool
    demo: bool
    extra: dict[str, str] = field(default_factory=dict)
    # Live visitors: how long page views are kept, and which query parameters
    # are removed from page addresses before they are stored.
    pageview_retention_days: int = 90
    tracking_strip_params: str = r"token|key|password|email|session"
    # Open widget sockets per client address (None: the protocol's default), and
    # how long a node's sockets keep counting after its last heartbeat (Redis).
    widget_sockets_per_ip: int | None = None
    widget_socket_ttl_seconds: float = 30.0
    # How long a visitor token stays valid after the welcome that issued it.
    visitor_token_days: int = 30
    # Inbound mail (`hub mail`, or inside `hub serve`): see docs/email.md.
    mail: MailSettings = field(default_factory=lambda: MailSettings())
    # Keys secrets were sealed under before HUB_SECRET_KEY changed: they still
    # open them until `hub rotate-secret-key` re-seals (docs/deploy.md).
    previous_secret_keys: tuple[Secret, ...] = ()
    # The console's "test this site" may fetch pages on loopback, link-local or
    # private addresses (HUB_SITE_CHECK_ALLOW_PRIVATE); refused by default.
    site_check_allow_private: bool = False

    @classmethod
    def load(cls, environ: dict[str, str] | None = None, env_file: str = ".env") -> Settings:
        env = dict(_read_dotenv(Path(env_file)))
        env.update(os.environ if environ is None else environ)

        def get(name: str, default: str) -> str:
            return env.get(f"HUB_{name}", default)

        data_dir = Path(get("DATA_DIR", "data"))
        port_text = get("PORT", "8000")
        if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            raise SettingsError(f"HUB_PORT must be a port number, got {port_text!r}")
        host = get("HOST", "127.0.0.1")
        port = int(port_text)
        database_url = get("DATABASE_URL", f"sqlite+aiosqlite:///{data_dir / 'hub.db'}")
        if "://" not in database_url:
            raise SettingsError(
                "HUB_DATABASE_URL must be a URL such as sqlite+aiosqlite:///data/hub.db "
                f"or postgresql+asyncpg://user@host/db, got {database_url!r}"
            )
        bus_url = get("REDIS_URL", "") or get("BUS_URL", "memory://")
        public_url = get("PUBLIC_URL", f"http://{host}:{port}").rstrip("/")
        if not public_url.startswith(("http://", "https://")):
            raise SettingsError(
                f"HUB_PUBLIC_URL must start with http:// or https://, got {public_url!r}"
            )
        secret = get("SECRET_KEY", "")
        if not secret:
            secret = _embedded_secret(data_dir)
        elif len(secret) < 32:
            raise SettingsError("HUB_SECRET_KEY must be at least 32 characters long")
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            bus_url=bus_url,
            secret_key=Secret(secret),
            host=host,
            port=port,
            public_url=public_url,
            cookie_secure=_flag(env, "HUB_COOKIE_SECURE", public_url.startswith("https://")),
            demo=_flag(env, "HUB_DEMO", True),
            pageview_retention_days=_retention_days(get("PAGEVIEW_RETENTION_DAYS", "90")),
            tracking_strip_params=_strip_params(get("TRACKING_STRIP_PARAMS", "")),
            widget_sockets_per_ip=_sockets_per_ip(get("WIDGET_SOCKETS_PER_IP", "")),
            widget_socket_ttl_seconds=_socket_ttl(get("WIDGET_SOCKET_TTL_SECONDS", "30")),
            visitor_token_days=_number(
                "VISITOR_TOKEN_DAYS", get("VISITOR_TOKEN_DAYS", "30"), 1, 3650, "a number of days"
            ),
            mail=_mail_settings(get),
            previous_secret_keys=_previous_keys(get("PREVIOUS_SECRET_KEYS", "")),
            site_check_allow_private=_flag(env, "HUB_SITE_CHECK_ALLOW_PRIVATE", False),
        )


def _previous_keys(text: str) -> tuple[Secret, ...]:
    keys = [key.strip() for key in text.split(",") if key.strip()]
    if any(len(key) < 32 for key in keys):
        raise SettingsError(
            "HUB_PREVIOUS_SECRET_KEYS must be comma-separated keys of at least 32 characters"
        )
    return tuple(Secret(key) for key in keys)


def _number(name: str, text: str, low: int, high: int, what: str) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise SettingsError(f"HUB_{name} must be {what} from {low} to {high}, got {text!r}")
    return int(text)


def _mail_settings(get: Callable[[str, str], str]) -> MailSettings:
    protocol = get("MAIL_PROTOCOL", "smtp").lower()
    if protocol not in {p.value for p in MailProtocol}:
        raise SettingsError(f"HUB_MAIL_PROTOCOL must be smtp or lmtp, got {protocol!r}")
    port_text = get("MAIL_PORT", "2525")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise SettingsError(f"HUB_MAIL_PORT must be a port number, got {port_text!r}")
    low, high = _MAIL_MAX_BYTES_RANGE
    max_bytes = _number(
        "MAIL_MAX_BYTES",
        get("MAIL_MAX_BYTES", str(DEFAULT_MAIL_MAX_BYTES)),
        low,
        high,
        "a number of bytes",
    )
    cert, key = get("MAIL_TLS_CERT", ""), get("MAIL_TLS_KEY", "")
    if bool(cert) != bool(key):
        raise SettingsError(
            "HUB_MAIL_TLS_CERT and HUB_MAIL_TLS_KEY go together: set both (PEM files) "
            "to offer STARTTLS, or neither"
        )
    for name, value in (("MAIL_TLS_CERT", cert), ("MAIL_TLS_KEY", key)):
        if value and not os.access(value, os.R_OK):
            raise SettingsError(f"HUB_{name} must be a readable PEM file, got {value!r}")
    hostname = get("MAIL_HOSTNAME", "")
    if hostname and not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", hostname):
        raise SettingsError(f"HUB_MAIL_HOSTNAME must be a host name, got {hostname!r}")
    authserv_id = get("MAIL_TRUSTED_AUTHSERV_ID", "").strip()
    if authserv_id and not re.fullmatch(r"[A-Za-z0-9._-]{1,253}", authserv_id):
        raise SettingsError(
            "HUB_MAIL_TRUSTED_AUTHSERV_ID must be the receiving server's name "
            f"(its authserv-id in Authentication-Results), got {authserv_id!r}"
        )
    return MailSettings(
        host=get("MAIL_HOST", "127.0.0.1"),
        port=int(port_text),
        protocol=MailProtocol(protocol),
        max_bytes=max_bytes,
        tls_cert=Path(cert) if cert else None,
        tls_key=Path(key) if key else None,
        hostname=hostname,
        messages_per_minute=_number(
            "MAIL_MESSAGES_PER_MINUTE",
            get("MAIL_MESSAGES_PER_MINUTE", "60"),
            0,
            100_000,
            "a number of messages",
        ),
        connections_per_ip=_number(
            "MAIL_CONNECTIONS_PER_IP",
            get("MAIL_CONNECTIONS_PER_IP", "20"),
            1,
            10_000,
            "a number of connections",
        ),
        parse_seconds=_number(
            "MAIL_PARSE_SECONDS", get("MAIL_PARSE_SECONDS", "5"), 1, 600, "a number of seconds"
        ),
        parse_workers=_number(
            "MAIL_PARSE_WORKERS", get("MAIL_PARSE_WORKERS", "0"), 0, 64, "a number of processes"
        ),
        allow_private_hosts=_flag(
            {"HUB_MAIL_ALLOW_PRIVATE_HOSTS": get("MAIL_ALLOW_PRIVATE_HOSTS", "")},
            "HUB_MAIL_ALLOW_PRIVATE_HOSTS",
            False,
        ),
        trusted_authserv_id=authserv_id,
        acks_per_inbox_per_hour=_number(
            "MAIL_ACKS_PER_INBOX_PER_HOUR",
            get("MAIL_ACKS_PER_INBOX_PER_HOUR", "30"),
            0,
            100_000,
            "a number of acknowledgements",
        ),
    )


def _flag(env: dict[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {value!r}")


def _retention_days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 3650:
        raise SettingsError(
            f"HUB_PAGEVIEW_RETENTION_DAYS must be a number of days from 1 to 3650, got {text!r}"
        )
    return int(text)


def _sockets_per_ip(text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise SettingsError(
            f"HUB_WIDGET_SOCKETS_PER_IP must be a number from 1 to 100000, got {text!r}"
        )
    return int(text)


def _socket_ttl(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0.5 <= seconds <= 3600:
        raise SettingsError(
            f"HUB_WIDGET_SOCKET_TTL_SECONDS must be seconds from 0.5 to 3600, got {text!r}"
        )
    return seconds


def _strip_params(pattern: str) -> str:
    from hub.visitors.pages import DEFAULT_STRIP_PATTERN

    pattern = pattern or DEFAULT_STRIP_PATTERN
    try:
        re.compile(pattern)
    except re.error as exc:
        raise SettingsError(
            f"HUB_TRACKING_STRIP_PARAMS must be a regular expression: {exc}"
        ) from None
    return pattern


def _embedded_secret(data_dir: Path) -> str:
    """The embedded default keeps a generated key in the data directory."""
    path = data_dir / "secret_key"
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    if not data_dir.exists():
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        data_dir.chmod(0o700)
    key = secrets.token_urlsafe(48)
    # Created 0600, never readable by others even for a moment.
    with os.fdopen(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600), "w") as out:
        out.write(key)
    return key


def redacted_url(url: str) -> str:
    """A server URL fit for messages and logs: its password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
