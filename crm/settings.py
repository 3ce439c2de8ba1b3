"""Typed settings read from the environment (prefix ``CRM_``).

Settings are read by :func:`load_settings` when a process starts (in the app factory or
the CLI), never at import time, so tests can build an app with their own environment.
Each concern has its own small class; secrets are :class:`Secret` values that never
print themselves.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """An environment variable holds a value the product cannot use."""


class Secret:
    """A string that shows ``'**********'`` wherever it is printed, logged or repr'd."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value, for the one place that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class DatabaseSettings:
    """Where PostgreSQL is. ``url`` None means: start the embedded server in the data dir."""

    url: str | None
    pool_min: int = 2
    pool_max: int = 10


@dataclass(frozen=True)
class BrokerSettings:
    """Dramatiq broker: ``redis://``, ``amqp://`` or None for the PostgreSQL broker."""

    url: str | None


@dataclass(frozen=True)
class SentrySettings:
    dsn: Secret | None
    environment: str = "production"
    traces_sample_rate: float = 0.0


@dataclass(frozen=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    # Addresses whose X-Forwarded-For is believed (the load balancer); "*" trusts any.
    trusted_proxies: str = "127.0.0.1"
    # ``crm.example``: the console also answers at ``<company>.crm.example`` (besides ``/<company>/``).
    console_domain: str | None = None


@dataclass(frozen=True)
class SmtpSettings:
    """Where outgoing mail goes: parsed from ``CRM_SMTP_URL``.

    ``tls`` is ``implicit`` (``smtps://``, TLS from the first byte), ``starttls`` (upgrade
    required), ``none`` (plain, e.g. a local relay) or ``auto`` (upgrade when the server
    offers it). The password is a :class:`Secret`, so printing the settings never shows it.
    """

    host: str
    port: int
    username: str | None = None
    password: Secret | None = None
    tls: str = "auto"
    timeout: float = 30.0

    def describe(self) -> str:
        """For logs: everything but the password."""
        user = f"{self.username}@" if self.username else ""
        return f"smtp://{user}{self.host}:{self.port} (tls={self.tls})"


@dataclass(frozen=True)
class MailSettings:
    """Outgoing mail. ``smtp`` None: every message is written to ``outbox_dir`` as a .eml file."""

    smtp: SmtpSettings | None
    outbox_dir: Path
    # The product's sender, used by tenants that have not set their own.
    from_name: str = "Relay CRM"
    from_address: str = "noreply@localhost"


@dataclass(frozen=True)
class TelegramSettings:
    """The staff bot. No token: no bot. With ``webhook_secret`` the web app takes updates on
    its webhook route (production); without, ``crm bot`` polls (development). ``api_base``
    points the bot at another Bot API server (a local one, or a test fake)."""

    token: Secret | None = None
    api_base: str | None = None
    webhook_secret: Secret | None = None
    # Deep links need it; when unset it is asked of Telegram (getMe) once.
    bot_username: str | None = None

    @property
    def mode(self) -> str:
        """``off``, ``webhook`` or ``polling``."""
        if self.token is None:
            return "off"
        return "webhook" if self.webhook_secret is not None else "polling"


_BOT_TOKEN = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$")
# What Telegram accepts as a webhook's secret_token.
_WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
_BOT_USERNAME = re.compile(r"^@?([A-Za-z][A-Za-z0-9_]{3,31})$")


def _telegram(env: Mapping[str, str]) -> TelegramSettings:
    # The token and the secret are credentials: no message below quotes them.
    token = _optional(env, "CRM_TELEGRAM_BOT_TOKEN")
    if token is not None and not _BOT_TOKEN.fullmatch(token):
        raise SettingsError("CRM_TELEGRAM_BOT_TOKEN must look like '123456789:AA…' (as @BotFather gives it)")
    api_base = _optional(env, "CRM_TELEGRAM_API_BASE")
    if api_base is not None and not api_base.startswith(("http://", "https://")):
        raise SettingsError(f"CRM_TELEGRAM_API_BASE must be an http:// or https:// URL, got {api_base!r}")
    secret = _optional(env, "CRM_TELEGRAM_WEBHOOK_SECRET")
    if secret is not None and not _WEBHOOK_SECRET.fullmatch(secret):
        raise SettingsError("CRM_TELEGRAM_WEBHOOK_SECRET must be 16-256 characters of A-Z, a-z, 0-9, _ and -")
    username = _optional(env, "CRM_TELEGRAM_BOT_USERNAME")
    matched = _BOT_USERNAME.fullmatch(username) if username is not None else None
    if username is not None and matched is None:
        raise SettingsError(
            f"CRM_TELEGRAM_BOT_USERNAME must be a bot's username like 'relay_crm_bot', got {username!r}"
        )
    return TelegramSettings(
        token=Secret(token) if token else None,
        api_base=api_base.rstrip("/") if api_base else None,
        webhook_secret=Secret(secret) if secret else None,
        bot_username=matched.group(1) if matched else None,
    )


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    secret_key: Secret
    log_level: str
    database: DatabaseSettings
    broker: BrokerSettings
    sentry: SentrySettings
    web: WebSettings
    mail: MailSettings
    signup_rate_limit: int = 10
    login_rate_limit: int = 30
    migrate_jobs: int = 4
    telegram: TelegramSettings = TelegramSettings()


def int_setting(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    """``env[name]`` as an integer of at least ``minimum`` (``default`` when unset or empty)."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _secret_key(env: Mapping[str, str], data_dir: Path) -> Secret:
    """``CRM_SECRET_KEY``, or a key generated once into the data dir (mode 0600)."""
    given = _optional(env, "CRM_SECRET_KEY")
    if given:
        if len(given) < 32:
            raise SettingsError("CRM_SECRET_KEY must be at least 32 characters long")
        return Secret(given)
    key_file = data_dir / "secret_key"
    if not key_file.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        # Written completely to a private temporary file, then linked into place: a crash
        # never leaves a partial key, and of two processes starting at once one key wins.
        fd, temporary = tempfile.mkstemp(dir=data_dir, prefix=".secret_key.")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
            with contextlib.suppress(FileExistsError):
                os.link(temporary, key_file)
        finally:
            os.unlink(temporary)
    value = key_file.read_text().strip()
    if len(value) < 32:
        raise SettingsError(f"{key_file} holds no usable key (under 32 characters); remove it or set CRM_SECRET_KEY")
    return Secret(value)


SMTP_TLS_MODES = ("auto", "starttls", "none")


def _smtp(env: Mapping[str, str]) -> SmtpSettings | None:
    """``CRM_SMTP_URL``: ``smtp://user:pass@host:port?starttls=required|auto|none&timeout=30``
    or ``smtps://…`` for implicit TLS. User and password are percent-decoded."""
    raw = _optional(env, "CRM_SMTP_URL")
    if raw is None:
        return None
    # The URL holds a password: no message below quotes it.
    parts = urlsplit(raw)
    if parts.scheme not in ("smtp", "smtps"):
        raise SettingsError("CRM_SMTP_URL must start with smtp:// or smtps://")
    if not parts.hostname:
        raise SettingsError("CRM_SMTP_URL has no host")
    try:
        port = parts.port
    except ValueError:
        raise SettingsError("CRM_SMTP_URL has an invalid port") from None
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"starttls", "timeout"})
    if unknown:
        raise SettingsError(f"CRM_SMTP_URL has unknown options: {', '.join(unknown)} (known: starttls, timeout)")
    starttls = (query.get("starttls") or ["auto"])[-1].lower()
    starttls = {"required": "starttls", "true": "starttls", "false": "none", "no": "none"}.get(starttls, starttls)
    if starttls not in SMTP_TLS_MODES:
        raise SettingsError("CRM_SMTP_URL option starttls must be one of: required, auto, none")
    if parts.scheme == "smtps":
        if "starttls" in query:
            raise SettingsError("CRM_SMTP_URL: smtps:// is TLS from the start; starttls does not apply")
        tls = "implicit"
    else:
        tls = starttls
    try:
        timeout = float((query.get("timeout") or ["30"])[-1])
    except ValueError:
        raise SettingsError("CRM_SMTP_URL option timeout must be a number of seconds") from None
    if timeout <= 0:
        raise SettingsError("CRM_SMTP_URL option timeout must be positive")
    password = unquote(parts.password) if parts.password is not None else None
    return SmtpSettings(
        host=parts.hostname,
        port=port or (465 if tls == "implicit" else 587 if tls == "starttls" else 25),
        username=unquote(parts.username) if parts.username else None,
        password=Secret(password) if password else None,
        tls=tls,
        timeout=timeout,
    )


def _mail(env: Mapping[str, str], data_dir: Path) -> MailSettings:
    sender = _optional(env, "CRM_MAIL_FROM")
    name, address = parseaddr(sender) if sender else ("Relay CRM", "noreply@localhost")
    if "@" not in address:
        raise SettingsError(f"CRM_MAIL_FROM must be an address like 'Relay CRM <noreply@example.com>', got {sender!r}")
    return MailSettings(
        smtp=_smtp(env), outbox_dir=data_dir / "outbox", from_name=name or "Relay CRM", from_address=address
    )


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read every ``CRM_*`` setting; raise :class:`SettingsError` naming the bad variable."""
    env = os.environ if env is None else env
    data_dir = Path(env.get("CRM_DATA_DIR") or "./var").resolve()
    log_level = (env.get("CRM_LOG_LEVEL") or "INFO").upper()
    if log_level not in LOG_LEVELS:
        raise SettingsError(f"CRM_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    host = env.get("CRM_HOST") or "127.0.0.1"
    port = int_setting(env, "CRM_PORT", 8000, minimum=1)
    dsn = _optional(env, "CRM_SENTRY_DSN")
    return Settings(
        data_dir=data_dir,
        secret_key=_secret_key(env, data_dir),
        log_level=log_level,
        database=DatabaseSettings(
            url=_optional(env, "CRM_DATABASE_URL"),
            pool_min=int_setting(env, "CRM_DB_POOL_MIN", 2, minimum=1),
            pool_max=int_setting(env, "CRM_DB_POOL_MAX", 10, minimum=1),
        ),
        broker=BrokerSettings(url=_optional(env, "CRM_BROKER_URL")),
        sentry=SentrySettings(
            dsn=Secret(dsn) if dsn else None,
            environment=env.get("CRM_SENTRY_ENVIRONMENT") or "production",
            traces_sample_rate=_float(env, "CRM_SENTRY_TRACES_SAMPLE_RATE", 0.0),
        ),
        web=WebSettings(
            host=host,
            port=port,
            public_url=env.get("CRM_PUBLIC_URL") or f"http://{host}:{port}",
            trusted_proxies=env.get("CRM_TRUSTED_PROXIES") or "127.0.0.1",
            console_domain=(env.get("CRM_CONSOLE_DOMAIN") or "").strip().lower() or None,
        ),
        mail=_mail(env, data_dir),
        signup_rate_limit=int_setting(env, "CRM_SIGNUP_RATE_LIMIT", 10, minimum=1),
        login_rate_limit=int_setting(env, "CRM_LOGIN_RATE_LIMIT", 30, minimum=1),
        migrate_jobs=int_setting(env, "CRM_MIGRATE_JOBS", 4, minimum=1),
        telegram=_telegram(env),
    )
