"""``/lang``: the user's language, the same setting as the profile's in the CRM (audited)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from crm.bot.callbacks import LanguageChoice
from crm.bot.keyboards import languages_keyboard
from crm.bot.links import BOT
from crm.bot.texts import LOCALES, Texts
from crm.platform.auth import Principal
from crm.tenants.users.services import update_profile


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(choose_language, Command("lang"))
    router.callback_query.register(set_language, LanguageChoice.filter())
    return router


async def choose_language(message: Message, staff: Principal, texts: Texts) -> None:
    await message.answer(texts("lang.choose"), reply_markup=languages_keyboard(staff.locale))


async def set_language(query: CallbackQuery, callback_data: LanguageChoice, staff: Principal) -> None:
    locale = callback_data.locale if callback_data.locale in LOCALES else staff.locale
    # The service function of the profile API, in the update's tenant scope.
    await update_profile(staff, {"locale": locale}, origin=BOT)
    words = Texts(locale)
    if isinstance(query.message, Message):
        await query.message.edit_text(words("lang.set"))
    await query.answer()
