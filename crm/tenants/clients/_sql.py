"""Moved to :mod:`crm.platform.sql`; this name stays only while ``bench/crm_core.py`` imports it."""

from crm.platform.sql import compile_sql, execute_sql, fetch_sql

__all__ = ["compile_sql", "execute_sql", "fetch_sql"]
