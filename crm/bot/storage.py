"""Where the bot keeps conversation state (aiogram FSM), so a restart loses nothing:
Redis when the broker is Redis, else a platform table (``platform.bot_fsm``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import asyncpg
from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, KeyBuilder, StateType, StorageKey

from crm.platform.timers import PURGE_BATCH
from crm.settings import Settings

# One bot per deployment today, but the key names it so a second one never mixes in.
KEY_BUILDER = DefaultKeyBuilder(prefix="crm-bot", with_bot_id=True, with_destiny=True)
# A conversation left half-way (a call whose next step was never chosen) is forgotten after
# this long: Redis expires its keys, the active scheduler deletes its rows.
CONVERSATION_KEPT = timedelta(days=7)

_SET_STATE = """
INSERT INTO platform.bot_fsm ("key", "state") VALUES ($1, $2)
ON CONFLICT ("key") DO UPDATE SET "state" = excluded."state", "updated_at" = now()
"""
_SET_DATA = """
INSERT INTO platform.bot_fsm ("key", "data") VALUES ($1, $2::jsonb)
ON CONFLICT ("key") DO UPDATE SET "data" = excluded."data", "updated_at" = now()
"""
# A row with neither state nor data is the same as no row.
_FORGET_EMPTY = """DELETE FROM platform.bot_fsm WHERE "key" = $1 AND "state" IS NULL AND "data" = '{}'::jsonb"""


class PostgresStorage(BaseStorage):
    """aiogram FSM storage in PostgreSQL: one row per chat and user, state and data (JSON).

    Statements run on the pool, outside the update's tenant transaction: like Redis, the
    conversation moves on even when the handler's own work rolls back."""

    def __init__(self, pool: asyncpg.Pool, key_builder: KeyBuilder = KEY_BUILDER) -> None:
        self.pool = pool
        self.key_builder = key_builder

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        storage_key = self.key_builder.build(key)
        async with self.pool.acquire() as connection:
            await connection.execute(_SET_STATE, storage_key, value)
            if value is None:
                await connection.execute(_FORGET_EMPTY, storage_key)

    async def get_state(self, key: StorageKey) -> str | None:
        value: str | None = await self.pool.fetchval(
            'SELECT "state" FROM platform.bot_fsm WHERE "key" = $1', self.key_builder.build(key)
        )
        return value

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        if not isinstance(data, dict):
            raise DataNotDictLikeError(f"Data must be a dict or dict-like object, got {type(data).__name__}")
        storage_key = self.key_builder.build(key)
        async with self.pool.acquire() as connection:
            await connection.execute(_SET_DATA, storage_key, json.dumps(data, ensure_ascii=False))
            if not data:
                await connection.execute(_FORGET_EMPTY, storage_key)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        value = await self.pool.fetchval(
            'SELECT "data" FROM platform.bot_fsm WHERE "key" = $1', self.key_builder.build(key)
        )
        if value is None:
            return {}
        data: dict[str, Any] = json.loads(value) if isinstance(value, str) else dict(value)
        return data

    async def close(self) -> None:
        """The pool belongs to the process, not to the storage."""


async def purge_abandoned_conversations(
    pool: asyncpg.Pool, *, kept: timedelta = CONVERSATION_KEPT, limit: int = PURGE_BATCH
) -> int:
    """Delete up to ``limit`` conversations untouched for longer than ``kept``; how many."""
    status: str = await pool.execute(
        'DELETE FROM platform.bot_fsm WHERE "key" IN (SELECT "key" FROM platform.bot_fsm'
        ' WHERE "updated_at" < now() - $1::interval LIMIT $2)',
        kept,
        limit,
    )
    return int(status.split()[-1])


def storage_for(settings: Settings, pool: asyncpg.Pool) -> BaseStorage:
    """Redis when ``CRM_BROKER_URL`` is ``redis://`` (or ``rediss://``), else PostgreSQL."""
    url = settings.broker.url
    if url is not None and url.startswith(("redis://", "rediss://")):
        from aiogram.fsm.storage.redis import RedisStorage

        return RedisStorage.from_url(
            url, key_builder=KEY_BUILDER, state_ttl=CONVERSATION_KEPT, data_ttl=CONVERSATION_KEPT
        )
    return PostgresStorage(pool)
