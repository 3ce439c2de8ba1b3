"""Inline keyboards the bot shows."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import InlineKeyboardMarkup

from crm.bot.callbacks import CompanyChoice, LanguageChoice
from crm.bot.keyboard_builder import Keyboard
from crm.bot.links import LinkedCompany
from crm.bot.texts import LANGUAGE_NAMES


def companies_keyboard(companies: Sequence[LinkedCompany], current: str) -> InlineKeyboardMarkup:
    """One button per linked company, the current one ticked."""
    builder = Keyboard()
    for company in companies:
        mark = "✓ " if company.tenant_id == current else ""
        builder.button(text=f"{mark}{company.name}", callback_data=CompanyChoice(tenant_id=company.tenant_id))
    builder.adjust(1)
    return builder.as_markup()


def languages_keyboard(current: str) -> InlineKeyboardMarkup:
    builder = Keyboard()
    for locale, name in LANGUAGE_NAMES.items():
        mark = "✓ " if locale == current else ""
        builder.button(text=f"{mark}{name}", callback_data=LanguageChoice(locale=locale))
    builder.adjust(2)
    return builder.as_markup()
