"""Callback data of the bot's inline buttons, one class per kind of button.

Telegram gives callback data 64 bytes: prefixes are short and values are ids, never names.
"""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class CompanyChoice(CallbackData, prefix="co"):
    """Work in another of the companies this Telegram account is linked to."""

    tenant_id: str


class LanguageChoice(CallbackData, prefix="lang"):
    locale: str
