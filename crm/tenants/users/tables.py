"""Staff users of a tenant and their API tokens."""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    Array,
    BigInt,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    OnDelete,
    Serial,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Department(Table, tablename="departments"):
    """Departments form a tree; a user belongs to one (or none yet)."""

    id = Serial(primary_key=True)
    name = Varchar(length=200)
    parent_id: ForeignKey[Department] = ForeignKey("self", on_delete=OnDelete.restrict, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class User(Table, tablename="users"):
    id = Serial(primary_key=True)
    email = Varchar(length=320, unique=True)  # stored lower-cased
    name = Varchar(length=200)
    password_hash = Varchar(length=200)
    locale = Varchar(length=5, default="en")
    timezone = Varchar(length=64, default="UTC")
    role = Varchar(length=50, default="manager")  # the main role
    # Further roles: the user's rights are the widest any of their roles grants.
    extra_roles = Array(base_column=Varchar(length=50))
    # When reminders may reach the user: ISO weekdays (1 = Monday) and local times.
    working_hours = JSONB(default={"days": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00"})
    is_active = Boolean(default=True)
    department_id = ForeignKey(Department, on_delete=OnDelete.set_null, null=True, default=None)
    # Two-factor login: the TOTP secret, encrypted with the product's key (crm/platform/secretbox.py);
    # enabled once the user has proved their authenticator app with one code. The last
    # accepted time step makes every code single-use.
    totp_secret = Varchar(length=200, null=True, default=None)
    totp_enabled_at = Timestamptz(null=True, default=None)
    totp_last_step = BigInt(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    # Reminders (crm/tenants/reminders): the offsets used for tasks that set none, the
    # channels besides the console list, the local day of the next morning digest
    # already scheduled (NULL: none yet), and the birthday the admins are told about.
    reminder_minutes = Array(base_column=Integer(), default=[15])
    notify_channels = Array(base_column=Varchar(length=20), default=[])
    digest_next_on = Date(null=True, default=None)
    birthday = Date(null=True, default=None)


class AccessToken(Table, tablename="access_tokens"):
    """A bearer token. Only the SHA-256 of its secret part is stored."""

    id = Serial(primary_key=True)
    user_id = ForeignKey(User, on_delete=OnDelete.cascade, null=False)
    name = Varchar(length=100)
    token_hash = Varchar(length=64, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())
    last_used_at = Timestamptz(null=True, default=None)
    expires_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class Invitation(Table, tablename="invitations"):
    """A single-use invitation: the link carries a nonce whose SHA-256 is kept here."""

    id = Serial(primary_key=True)
    user_id = ForeignKey(User, on_delete=OnDelete.cascade, null=False)
    token_hash = Varchar(length=64, unique=True)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class PasswordReset(Table, tablename="password_resets"):
    """A single-use, short-lived password reset link (only its nonce's SHA-256 is kept)."""

    id = Serial(primary_key=True)
    user_id = ForeignKey(User, on_delete=OnDelete.cascade, null=False)
    token_hash = Varchar(length=64, unique=True)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
