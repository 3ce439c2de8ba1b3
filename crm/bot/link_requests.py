"""Connecting a staff user's Telegram account from the web console: whether the user is
linked, and a new one-time deep link — issued exactly as ``POST /api/v1/me/telegram-link``
issues it (:func:`crm.bot.links.issue_link_code` in the user's tenant scope, audited
``telegram.link_requested`` there)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from crm.bot.links import issue_link_code
from crm.bot.runtime import BotRuntime
from crm.platform.auth import Origin, Principal
from crm.platform.tenancy import tenant_scope
from crm.tenants.audit.services import record_audit


@dataclass(frozen=True)
class LinkStatus:
    linked_at: datetime
    blocked: bool  # the chat blocked the bot: reminders go by e-mail meanwhile


@dataclass(frozen=True)
class DeepLink:
    url: str
    expires_at: datetime


async def link_status(pool: asyncpg.Pool, principal: Principal) -> LinkStatus | None:
    """The user's Telegram link in their company, or None when they have none."""
    row = await pool.fetchrow(
        "SELECT linked_at, blocked_at IS NOT NULL AS blocked FROM platform.telegram_links"
        " WHERE tenant_id = $1 AND user_id = $2",
        principal.tenant.id,
        principal.user_id,
    )
    return LinkStatus(linked_at=row["linked_at"], blocked=row["blocked"]) if row else None


async def request_deep_link(runtime: BotRuntime, principal: Principal, *, origin: Origin) -> DeepLink:
    """A new one-time link (15 minutes, single use) that connects the user's Telegram
    account; their unused earlier ones stop working."""
    username = await runtime.username()
    async with tenant_scope(principal.tenant):
        code = await issue_link_code(principal.tenant.id, principal.user_id)
        await record_audit(
            origin.user(principal), "telegram.link_requested", entity="user", entity_id=principal.user_id
        )
    return DeepLink(url=f"https://t.me/{username}?start={code.code}", expires_at=code.expires_at)
