"""Inline mode: ``@bot text`` in any chat searches the clients the user may see.

Answers are personal and never cached (``is_personal``, ``cache_time=0``): what one user
finds depends on their role, and Telegram would otherwise show it to others typing the
same text. A chosen result posts only the client's name and phones, the user's choice to
share; it carries no buttons, since anyone in that chat could press them.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.types import InlineQuery, InlineQueryResultArticle, InlineQueryResultUnion, InputTextMessageContent

from crm.bot.routers.clients import MAX_QUERY, MIN_QUERY, contacts_of
from crm.bot.work_texts import may
from crm.platform.auth import Principal
from crm.tenants.search.services import CLIENTS_ONLY, search

INLINE_RESULTS = 10


def create_router() -> Router:
    router = Router(name=__name__)
    router.inline_query.register(find_inline)
    return router


async def find_inline(query: InlineQuery, staff: Principal) -> None:
    text = " ".join(query.query.split())
    results: list[InlineQueryResultUnion] = []
    if MIN_QUERY <= len(text) <= MAX_QUERY and may(staff, "clients", "clients", "read"):
        for hit in await search(staff, text, INLINE_RESULTS, only=CLIENTS_ONLY):
            results.append(
                InlineQueryResultArticle(
                    id=f"client-{hit.id}",
                    title=hit.title,
                    description=" · ".join(contacts_of(hit)) or None,
                    input_message_content=InputTextMessageContent(
                        message_text="\n".join([hit.title, *contacts_of(hit)])
                    ),
                )
            )
    await query.answer(results, cache_time=0, is_personal=True)
