"""The search API under /api/v1."""

from __future__ import annotations

from litestar import Controller

CONTROLLERS: list[type[Controller]] = []
