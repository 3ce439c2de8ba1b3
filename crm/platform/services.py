"""What every request handler, command and job needs: settings, database and editions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crm.platform.db import Database
from crm.platform.editions import Editions
from crm.settings import Settings


@dataclass
class Services:
    settings: Settings
    db: Database
    editions: Editions


def services_of(app_state: Any) -> Services:
    services: Services = app_state.services
    return services


async def open_services(settings: Settings, *, pool_max: int | None = None) -> Services:
    """Connect to the database and load editions, for commands and workers."""
    from crm.platform.db import connect_database, database_url
    from crm.platform.editions import load_editions

    db = await connect_database(
        database_url(settings),
        pool_min=1,
        pool_max=pool_max or settings.database.pool_max,
    )
    return Services(settings=settings, db=db, editions=load_editions())
