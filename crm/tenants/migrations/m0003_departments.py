"""Departments (a tree) and each user's department."""

from __future__ import annotations

import asyncpg

VERSION = 3
NAME = "departments"

# Expand only: a new table and a nullable column; code of the previous release ignores both.
SQL = """
CREATE TABLE "departments" ("id" SERIAL PRIMARY KEY NOT NULL, "name" VARCHAR(200) NOT NULL DEFAULT '', "parent_id" INTEGER REFERENCES "departments" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp);
ALTER TABLE "users" ADD COLUMN "department_id" INTEGER REFERENCES "departments" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null;
CREATE INDEX users_department_id ON "users" ("department_id");
CREATE INDEX departments_parent_id ON "departments" ("parent_id");
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
