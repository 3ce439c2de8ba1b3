"""Platform tables (schema ``platform``): tenants, login identities, rate-limit windows."""

from __future__ import annotations

from piccolo.columns import JSONB, BigInt, BigSerial, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Tenant(Table, tablename="tenants", schema="platform"):
    """A company. ``id`` is short and immutable; the schema is ``t_<id>``, never the slug."""

    id = Varchar(length=32, primary_key=True)
    slug = Varchar(length=63, unique=True)
    name = Varchar(length=200)
    schema_name = Varchar(length=63, unique=True)
    edition = Varchar(length=32)
    status = Varchar(length=16, default="active")  # active | suspended | deleted
    # The tenant migration version its schema is at: "what is pending" is one query.
    schema_version = Integer(default=0)
    locale = Varchar(length=5, default="en")
    timezone = Varchar(length=64, default="UTC")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Identity(Table, tablename="identities", schema="platform"):
    """A login e-mail and the tenant user it belongs to (one e-mail may exist in several tenants)."""

    id = Serial(primary_key=True)
    email = Varchar(length=320)
    tenant_id = Varchar(length=32)
    user_id = Integer()
    created_at = Timestamptz(default=TimestamptzNow())


class RateLimitWindow(Table, tablename="rate_limits", schema="platform"):
    """Fixed-window counters shared by every web process (signup and login limits)."""

    id = Serial(primary_key=True)
    key = Varchar(length=200, unique=True)
    window_start = Timestamptz(default=TimestamptzNow())
    hits = Integer(default=0)


class LoginFailures(Table, tablename="login_failures", schema="platform"):
    """Consecutive failed logins and the lockout they earned, per company + e-mail."""

    id = Serial(primary_key=True)
    key = Varchar(length=400, unique=True)
    failures = Integer(default=0)
    locked_until = Timestamptz(null=True, default=None)
    last_failure_at = Timestamptz(default=TimestamptzNow())


class Timer(Table, tablename="timers", schema="platform"):
    """Work due at a time for a tenant; see crm/platform/timers.py (which uses SQL directly)."""

    id = BigSerial(primary_key=True)
    tenant_id = Varchar(length=32)
    kind = Varchar(length=100)
    payload = JSONB(default={})
    due_at = Timestamptz(default=TimestamptzNow())
    state = Varchar(length=10, default="pending")  # pending | queued | running | done | failed
    attempts = Integer(default=0)
    lease_until = Timestamptz(null=True, default=None)
    last_error = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    finished_at = Timestamptz(null=True, default=None)


class TelegramLink(Table, tablename="telegram_links", schema="platform"):
    """A Telegram account linked to a staff user; the latest ``selected_at`` is the company
    the bot works in for that account (crm/bot/links.py, which uses SQL directly)."""

    id = Serial(primary_key=True)
    telegram_user_id = BigInt()
    chat_id = BigInt()
    tenant_id = Varchar(length=32)
    user_id = Integer()
    linked_at = Timestamptz(default=TimestamptzNow())
    selected_at = Timestamptz(default=TimestamptzNow())
    blocked_at = Timestamptz(null=True, default=None)


class TelegramLinkCode(Table, tablename="telegram_link_codes", schema="platform"):
    """A one-time deep-link code (its SHA-256) that links a Telegram account to a user."""

    code_hash = Varchar(length=64, primary_key=True)
    tenant_id = Varchar(length=32)
    user_id = Integer()
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


class BotConversationState(Table, tablename="bot_fsm", schema="platform"):
    """The bot's conversation state per chat and user when no Redis is configured."""

    key = Varchar(length=300, primary_key=True)
    state = Varchar(length=200, null=True, default=None)
    data = JSONB(default={})
    updated_at = Timestamptz(default=TimestamptzNow())


class WebFormKey(Table, tablename="web_form_keys", schema="platform"):
    """The SHA-256 of an active web form's public key, and whose form it is
    (crm/tenants/leads/web_forms.py): a submission finds its company in one lookup."""

    key_hash = Varchar(length=64, primary_key=True)
    tenant_id = Varchar(length=32)
    form_id = Integer()


PLATFORM_TABLES: list[type[Table]] = [
    Tenant,
    Identity,
    RateLimitWindow,
    LoginFailures,
    Timer,
    TelegramLink,
    TelegramLinkCode,
    BotConversationState,
    WebFormKey,
]
