"""Importing this module registers every timer handler of the tenant areas."""

from __future__ import annotations

import crm.bot.sender
import crm.tenants.imports.runner
import crm.tenants.mail.sending
import crm.tenants.mailings.sending
import crm.tenants.reminders.handlers  # noqa: F401
