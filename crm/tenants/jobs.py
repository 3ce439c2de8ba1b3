"""Importing this module registers every timer handler of the tenant areas."""

from __future__ import annotations

import crm.tenants.imports.runner  # noqa: F401
