"""Linking: ``/start <code>`` binds the account, ``/logout`` unbinds it from the current
company, ``/company`` switches between the companies it is linked to."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from crm.bot.callbacks import CompanyChoice
from crm.bot.keyboards import companies_keyboard
from crm.bot.links import (
    ActiveLink,
    Redeemed,
    active_link,
    company_name,
    linked_companies,
    redeem_link_code,
    select_company,
    unlink_account,
)
from crm.bot.texts import Texts
from crm.platform.auth import Principal
from crm.platform.services import Services
from crm.platform.tenancy import scope_connection

REFUSALS = {Redeemed.INVALID: "link.invalid", Redeemed.EXPIRED: "link.expired", Redeemed.USED: "link.used"}


def create_router() -> Router:
    router = Router(name=__name__)
    # The deep link first: /start with a code is linking, plain /start a greeting.
    router.message.register(link_account, CommandStart(deep_link=True), F.from_user)
    router.message.register(greet, CommandStart())
    router.message.register(logout, Command("logout"), F.from_user)
    router.message.register(choose_company, Command("company"), F.from_user)
    router.callback_query.register(switch_company, CompanyChoice.filter())
    return router


async def link_account(
    message: Message, command: CommandObject, services: Services, texts: Texts, state: FSMContext
) -> None:
    assert message.from_user is not None
    redemption = await redeem_link_code(
        services.db.pool, command.args or "", telegram_user_id=message.from_user.id, chat_id=message.chat.id
    )
    if redemption.outcome is not Redeemed.LINKED:
        await message.answer(texts(REFUSALS[redemption.outcome]))
        return
    # Whatever was half-done belonged to the company worked in before.
    await state.clear()
    words = Texts(redemption.locale)
    await message.answer(words("link.done", company=redemption.company, name=redemption.user_name))


async def greet(message: Message, staff: Principal, link: ActiveLink, texts: Texts) -> None:
    await message.answer(texts("start.hello", name=staff.name, company=link.company))


async def logout(message: Message, staff: Principal, link: ActiveLink, texts: Texts, state: FSMContext) -> None:
    assert message.from_user is not None
    await unlink_account(message.from_user.id, staff.tenant, email=staff.email, user_id=staff.user_id)
    await state.clear()
    lines = [texts("logout.done", company=link.company)]
    # Read in the scope's transaction, which no longer sees the link just removed.
    following = await active_link(scope_connection(), message.from_user.id)
    if following is not None:
        lines.append(texts("logout.next", company=following.company))
    await message.answer("\n".join(lines))


async def choose_company(message: Message, link: ActiveLink, services: Services, texts: Texts) -> None:
    assert message.from_user is not None
    companies = await linked_companies(services.db.pool, message.from_user.id)
    if len(companies) <= 1:
        await message.answer(texts("company.only", company=link.company))
        return
    await message.answer(
        texts("company.choose", company=link.company), reply_markup=companies_keyboard(companies, link.tenant.id)
    )


async def switch_company(
    query: CallbackQuery, callback_data: CompanyChoice, services: Services, texts: Texts, state: FSMContext
) -> None:
    if not await select_company(services.db.pool, query.from_user.id, callback_data.tenant_id):
        await query.answer(texts("company.gone"), show_alert=True)
        return
    # A conversation begun in the other company must not continue in this one.
    await state.clear()
    name = await company_name(services.db.pool, callback_data.tenant_id)
    if isinstance(query.message, Message):
        await query.message.edit_text(texts("company.switched", company=name))
    await query.answer()
