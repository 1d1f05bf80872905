"""Settings: environment, .env file, validation, secrets that do not print."""

from __future__ import annotations

import pytest

from hub.settings import Settings, SettingsError


def load(tmp_path, **env):  # type: ignore[no-untyped-def]
    return Settings.load(
        environ={"HUB_DATA_DIR": str(tmp_path), **env}, env_file=str(tmp_path / ".env")
    )


def test_defaults_are_the_embedded_setup(tmp_path):
    settings = load(tmp_path)
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    assert settings.bus_url == "memory://"
    assert settings.public_url == "http://127.0.0.1:8000"
    assert settings.cookie_secure is False


def test_a_generated_secret_key_is_kept_between_starts(tmp_path):
    first = load(tmp_path).secret_key.get()
    assert len(first) >= 32
    assert load(tmp_path).secret_key.get() == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_secrets_do_not_print_themselves(tmp_path):
    settings = load(tmp_path, HUB_SECRET_KEY="s" * 40)
    assert "sss" not in repr(settings) and "sss" not in str(settings.secret_key)


def test_dotenv_is_read_and_the_environment_wins(tmp_path):
    (tmp_path / ".env").write_text("HUB_PORT=9000\nHUB_HOST='0.0.0.0'\n# comment\n")
    settings = load(tmp_path, HUB_HOST="127.0.0.9")
    assert (settings.port, settings.host) == (9000, "127.0.0.9")


def test_https_public_url_makes_cookies_secure(tmp_path):
    assert load(tmp_path, HUB_PUBLIC_URL="https://help.example/").cookie_secure is True
    assert (
        load(tmp_path, HUB_PUBLIC_URL="https://help.example").public_url == "https://help.example"
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("HUB_PORT", "eighty", "HUB_PORT must be a port number"),
        ("HUB_PORT", "70000", "HUB_PORT must be a port number"),
        ("HUB_DATABASE_URL", "hub.db", "HUB_DATABASE_URL must be a URL"),
        ("HUB_SECRET_KEY", "short", "HUB_SECRET_KEY must be at least 32 characters"),
        ("HUB_PREVIOUS_SECRET_KEYS", "k" * 40 + ",short", "HUB_PREVIOUS_SECRET_KEYS must be"),
        ("HUB_PUBLIC_URL", "help.example", "HUB_PUBLIC_URL must start with http"),
        ("HUB_COOKIE_SECURE", "maybe", "HUB_COOKIE_SECURE must be true or false"),
    ],
)
def test_bad_values_name_the_variable(tmp_path, name, value, message):
    with pytest.raises(SettingsError, match=message):
        load(tmp_path, **{name: value})


def test_previous_secret_keys_are_read_and_hidden(tmp_path):
    settings = load(tmp_path, HUB_PREVIOUS_SECRET_KEYS=" " + "a" * 32 + " , " + "b" * 40 + ",")
    assert [key.get() for key in settings.previous_secret_keys] == ["a" * 32, "b" * 40]
    assert "aaa" not in repr(settings)
    assert load(tmp_path).previous_secret_keys == ()


def test_page_view_retention_and_stripped_parameters_have_privacy_defaults(tmp_path):
    settings = load(tmp_path)
    assert settings.pageview_retention_days == 90
    assert settings.tracking_strip_params == "token|key|password|email|session"
    custom = load(tmp_path, HUB_PAGEVIEW_RETENTION_DAYS="7", HUB_TRACKING_STRIP_PARAMS="^utm_")
    assert (custom.pageview_retention_days, custom.tracking_strip_params) == (7, "^utm_")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("HUB_PAGEVIEW_RETENTION_DAYS", "0", "number of days"),
        ("HUB_PAGEVIEW_RETENTION_DAYS", "ninety", "number of days"),
        ("HUB_TRACKING_STRIP_PARAMS", "token(", "regular expression"),
    ],
)
def test_bad_tracking_settings_name_the_variable(tmp_path, name, value, message):
    with pytest.raises(SettingsError, match=f"{name}.*{message}"):
        load(tmp_path, **{name: value})


def test_widget_sockets_per_address_and_their_expiry_have_defaults_and_overrides(tmp_path):
    settings = load(tmp_path)
    assert (settings.widget_sockets_per_ip, settings.widget_socket_ttl_seconds) == (None, 30.0)
    custom = load(tmp_path, HUB_WIDGET_SOCKETS_PER_IP="3", HUB_WIDGET_SOCKET_TTL_SECONDS="1.5")
    assert (custom.widget_sockets_per_ip, custom.widget_socket_ttl_seconds) == (3, 1.5)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HUB_WIDGET_SOCKETS_PER_IP", "0"),
        ("HUB_WIDGET_SOCKETS_PER_IP", "many"),
        ("HUB_WIDGET_SOCKET_TTL_SECONDS", "0.1"),
        ("HUB_WIDGET_SOCKET_TTL_SECONDS", "nan"),
        ("HUB_WIDGET_SOCKET_TTL_SECONDS", "soon"),
    ],
)
def test_bad_widget_socket_settings_name_the_variable(tmp_path, name, value):
    with pytest.raises(SettingsError, match=name):
        load(tmp_path, **{name: value})


def test_visitor_tokens_last_thirty_days_unless_told(tmp_path):
    assert load(tmp_path).visitor_token_days == 30
    assert load(tmp_path, HUB_VISITOR_TOKEN_DAYS="7").visitor_token_days == 7


@pytest.mark.parametrize("value", ["0", "3651", "a month", "-1"])
def test_a_bad_visitor_token_lifetime_names_the_variable(tmp_path, value):
    with pytest.raises(SettingsError, match="HUB_VISITOR_TOKEN_DAYS"):
        load(tmp_path, HUB_VISITOR_TOKEN_DAYS=value)


def test_acknowledgement_settings_have_defaults_and_overrides(tmp_path):
    settings = load(tmp_path)
    assert (settings.mail.trusted_authserv_id, settings.mail.acks_per_inbox_per_hour) == ("", 30)
    custom = load(
        tmp_path,
        HUB_MAIL_TRUSTED_AUTHSERV_ID="mx.example.com",
        HUB_MAIL_ACKS_PER_INBOX_PER_HOUR="5",
    )
    assert (custom.mail.trusted_authserv_id, custom.mail.acks_per_inbox_per_hour) == (
        "mx.example.com",
        5,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HUB_MAIL_TRUSTED_AUTHSERV_ID", "mx.example.com; dkim=pass"),
        ("HUB_MAIL_ACKS_PER_INBOX_PER_HOUR", "lots"),
        ("HUB_MAIL_ACKS_PER_INBOX_PER_HOUR", "-1"),
    ],
)
def test_bad_acknowledgement_settings_name_the_variable(tmp_path, name, value):
    with pytest.raises(SettingsError, match=name):
        load(tmp_path, **{name: value})
