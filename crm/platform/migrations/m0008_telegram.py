"""The Telegram bot: links of Telegram accounts to staff users, one-time link codes, and
the bot's conversation state (FSM) when no Redis is configured.

A Telegram account may be linked to users of several companies (one user per company);
the link chosen most recently (``selected_at``) is the company the bot works in. Codes
are stored as their SHA-256 only. Conversation state is keyed by aiogram's storage key.
"""

from __future__ import annotations

import asyncpg

VERSION = 8
NAME = "telegram"

SQL = """
CREATE TABLE platform.telegram_links (
    "id" SERIAL PRIMARY KEY NOT NULL,
    "telegram_user_id" BIGINT NOT NULL,
    "chat_id" BIGINT NOT NULL,
    "tenant_id" VARCHAR(32) NOT NULL REFERENCES platform.tenants ("id") ON DELETE CASCADE,
    "user_id" INTEGER NOT NULL,
    "linked_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "selected_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "blocked_at" TIMESTAMPTZ
);
CREATE UNIQUE INDEX telegram_links_user ON platform.telegram_links ("tenant_id", "user_id");
CREATE UNIQUE INDEX telegram_links_account ON platform.telegram_links ("telegram_user_id", "tenant_id");
CREATE INDEX telegram_links_selected ON platform.telegram_links ("telegram_user_id", "selected_at" DESC);

CREATE TABLE platform.telegram_link_codes (
    "code_hash" VARCHAR(64) PRIMARY KEY NOT NULL,
    "tenant_id" VARCHAR(32) NOT NULL REFERENCES platform.tenants ("id") ON DELETE CASCADE,
    "user_id" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "expires_at" TIMESTAMPTZ NOT NULL,
    "used_at" TIMESTAMPTZ
);
CREATE INDEX telegram_link_codes_user ON platform.telegram_link_codes ("tenant_id", "user_id");
CREATE INDEX telegram_link_codes_expires ON platform.telegram_link_codes ("expires_at");

CREATE TABLE platform.bot_fsm (
    "key" VARCHAR(300) PRIMARY KEY NOT NULL,
    "state" VARCHAR(200),
    "data" JSONB NOT NULL DEFAULT '{}',
    "updated_at" TIMESTAMPTZ NOT NULL DEFAULT now()
);
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
