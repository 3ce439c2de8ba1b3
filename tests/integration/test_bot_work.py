"""A day's client work from Telegram: /today and /week with Done, find → card → log a call
(activity and follow-up task, audited as done from the bot), a new task from the card, and
rights: a user whose role reads only their own clients cannot open a colleague's. Updates go
through ``Dispatcher.feed_webhook_update``; the bot's calls reach the fake Bot API server.
Every test uses two companies and checks they never mix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from crm.bot.callbacks import (
    AgendaTaskDone,
    CallLogStart,
    ClientCardOpen,
    ClientDeals,
    ClientHistory,
    NewTaskStart,
    TaskReassign,
    TaskReassignTo,
    WorkStep,
)
from crm.bot.dispatcher import create_bot, create_dispatcher
from crm.bot.work_texts import WorkTexts
from crm.platform.services import Services
from crm.platform.tenancy import tenant_scope
from crm.settings import Settings
from crm.tenants.tasks.tables import Task
from tests.conftest import SignedUpTenant, TenantFactory, add_staff
from tests.fakes.telegram import Call, FakeTelegram
from tests.integration import test_bot_link as link
from tests.integration.helpers import create_client, my_id, tenant_of
from tests.integration.test_bot_link import (
    Conversation,
    audit_actions,
    code_in,
    deep_link,
    telegram_user,
)

RU, EN = WorkTexts("ru"), WorkTexts("en")


# The bot's fixtures, shared with the linking tests.
fake_telegram = link.fake_telegram
bot_settings = link.bot_settings
bot_base_url = link.bot_base_url
bot_http = link.bot_http


@pytest.fixture
async def chat(bot_settings: Settings, services: Services, fake_telegram: FakeTelegram) -> AsyncIterator[Conversation]:
    bot = create_bot(bot_settings.telegram)
    try:
        yield Conversation(fake_telegram, bot, create_dispatcher(services))
    finally:
        await bot.session.close()


async def linked(chat: Conversation, bot_http: httpx.AsyncClient, who: SignedUpTenant | dict[str, str]) -> int:
    """A Telegram account of this test's own, linked to ``who``."""
    account = telegram_user()
    replies = await chat.say(account, f"/start {code_in(await deep_link(bot_http, who))}")
    assert len(replies) == 1 and replies[0].startswith(("Готово", "Done")), replies
    return account


def buttons_since(chat: Conversation, mark: int) -> list[tuple[str, str]]:
    """(text, callback data) of the last keyboard the bot sent or edited in since ``mark``."""
    for call in reversed(chat.fake.calls[mark:]):
        markup = call.params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            return [(button["text"], button["callback_data"]) for row in markup["inline_keyboard"] for button in row]
    return []


async def add_task(
    company: SignedUpTenant, title: str, assignee_id: int, due_at: datetime, *, status: str = "open"
) -> int:
    async with tenant_scope(await tenant_of(company)):
        rows = await Task.insert(
            Task(
                title=title,
                assignee_id=assignee_id,
                author_id=assignee_id,
                due_at=due_at,
                status=status,
                done_at=due_at if status == "done" else None,
            )
        ).returning(Task.id)
    return int(rows[0]["id"])


async def test_today_and_week_list_only_the_users_open_tasks_and_done_is_audited(
    make_tenant: TenantFactory, http: httpx.AsyncClient, bot_http: httpx.AsyncClient, chat: Conversation
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    ivan = await add_staff(http, romashka, "ivan")
    olga_id, lyutik_admin = await my_id(http, romashka.auth), await my_id(http, lyutik.auth)
    now = datetime.now(UTC)
    late = await add_task(romashka, "Просроченный звонок", olga_id, now - timedelta(days=2))
    # An hour from now may be tomorrow in Moscow, so "later" goes in whichever list it lands.
    soon = await add_task(romashka, "Скоро встреча", olga_id, now + timedelta(hours=1))
    await add_task(romashka, "Через три дня", olga_id, now + timedelta(days=3))
    await add_task(romashka, "Уже сделано", olga_id, now - timedelta(hours=1), status="done")
    await add_task(romashka, "Задача Ивана", ivan.id, now - timedelta(hours=1))
    await add_task(lyutik, "Задача Лютика", lyutik_admin, now - timedelta(hours=1))

    olga = await linked(chat, bot_http, romashka)
    mark = len(chat.fake.calls)
    [today] = await chat.say(olga, "/today")
    assert today.startswith(RU("today.title"))
    assert today.index(RU("tasks.overdue")) < today.index("Просроченный звонок")
    for absent in ("Через три дня", "Уже сделано", "Задача Ивана", "Задача Лютика"):
        assert absent not in today
    buttons = buttons_since(chat, mark)
    assert AgendaTaskDone(task_id=late, view="today").pack() == buttons[0][1]  # overdue first

    [week] = await chat.say(olga, "/week")
    assert week.startswith(RU("week.title"))
    for title in ("Просроченный звонок", "Скоро встреча", "Через три дня"):
        assert title in week
    assert "Задача Ивана" not in week and "Задача Лютика" not in week

    # Done: completed through the tasks service, the list redrawn without it.
    replies = await chat.press(olga, AgendaTaskDone(task_id=late, view="today").pack())
    assert replies[-1] == RU("task.done", title="Просроченный звонок")
    assert "Просроченный звонок" not in replies[0]
    assert await chat.press(olga, AgendaTaskDone(task_id=late, view="today").pack()) == [RU("task.closed")]
    # Ivan's role (operator) covers his own tasks: he sees his, and cannot close Olga's.
    ivan_account = await linked(chat, bot_http, ivan.auth)
    [his] = await chat.say(ivan_account, "/today")
    assert "Задача Ивана" in his and "Скоро встреча" not in his
    assert await chat.press(ivan_account, AgendaTaskDone(task_id=soon, view="today").pack()) == [EN("task.gone")]
    task = (await http.get(f"/api/v1/tasks/{late}", headers=romashka.auth)).json()
    assert task["status"] == "done"
    assert ("task.completed", "bot") in await audit_actions(http, romashka, prefix="task.")
    assert (await http.get(f"/api/v1/tasks/{soon}", headers=romashka.auth)).json()["status"] == "open"

    # The other company's admin sees only their own.
    lyutik_account = await linked(chat, bot_http, lyutik)
    [theirs] = await chat.say(lyutik_account, "/today")
    assert "Задача Лютика" in theirs and "Ромашка" not in theirs and "Просроченный" not in theirs
    assert [row for row in await audit_actions(http, lyutik, prefix="task.") if row[1] == "bot"] == []


async def test_find_card_log_call_and_new_task_are_the_api_services_audited_as_bot(
    make_tenant: TenantFactory, http: httpx.AsyncClient, bot_http: httpx.AsyncClient, chat: Conversation
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    ours = await create_client(http, romashka.auth, name="Иван Сидоров", phones=["+7 916 123-45-67"])
    theirs = await create_client(http, lyutik.auth, name="Иван Сидоров", phones=["+7 916 123-45-67"])
    olga = await linked(chat, bot_http, romashka)

    # Typing a name is a search; only this company's client comes back.
    mark = len(chat.fake.calls)
    assert await chat.say(olga, "Сидоров") == [RU("find.found", q="Сидоров")]
    found = buttons_since(chat, mark)
    assert [data for _, data in found] == [ClientCardOpen(client_id=ours["id"]).pack()]
    mark = len(chat.fake.calls)
    assert await chat.say(olga, "/find +79161234567") == [RU("find.found", q="+79161234567")]
    assert [data for _, data in buttons_since(chat, mark)] == [ClientCardOpen(client_id=ours["id"]).pack()]
    assert await chat.say(olga, "/find Несуществующий") == [RU("find.none", q="Несуществующий")]

    mark = len(chat.fake.calls)
    [card] = await chat.press(olga, ClientCardOpen(client_id=ours["id"]).pack())
    assert card.startswith("Иван Сидоров") and "+79161234567" in card
    assert [data for _, data in buttons_since(chat, mark)] == [
        CallLogStart(client_id=ours["id"]).pack(),
        NewTaskStart(client_id=ours["id"]).pack(),
        ClientHistory(client_id=ours["id"]).pack(),
        ClientDeals(client_id=ours["id"]).pack(),
    ]

    # Log a call: outcome → comment → next step.
    mark = len(chat.fake.calls)
    assert await chat.press(olga, CallLogStart(client_id=ours["id"]).pack()) == [
        RU("call.outcome", client="Иван Сидоров")
    ]
    outcomes = buttons_since(chat, mark)
    assert await chat.say(olga, "алло") == [RU("call.buttons")]  # a button is expected here
    assert outcomes[0][0] == "Дозвонились — интересно"
    assert await chat.press(olga, outcomes[0][1]) == [RU("call.comment")]
    mark = len(chat.fake.calls)
    assert await chat.say(olga, "Обсудили поставку, ждут КП") == [RU("call.next_required")]
    steps = dict(buttons_since(chat, mark))
    assert RU("next.0") not in steps  # this outcome needs a next step
    [saved] = await chat.press(olga, steps[RU("next.1")])
    assert saved.startswith(RU("call.saved_task", title="Связаться: Иван Сидоров", when="")[:-1])

    card_api = (await http.get(f"/api/v1/clients/{ours['id']}/card", headers=romashka.auth)).json()
    [call] = card_api["timeline"]
    assert (call["kind"], call["outcome"], call["comment"]) == ("call", "interested", "Обсудили поставку, ждут КП")
    [follow_up] = card_api["tasks"]
    assert follow_up["id"] == call["next_task_id"] and follow_up["title"] == "Связаться: Иван Сидоров"
    due = datetime.fromisoformat(follow_up["due_at"])
    assert timedelta(0) < due - datetime.now(UTC) < timedelta(days=2)

    # A new task from the card: cancelled once (plain text is a search again), then made.
    await chat.press(olga, NewTaskStart(client_id=ours["id"]).pack())
    assert await chat.press(olga, WorkStep(action="cancel").pack()) == [RU("cancelled")]
    assert await chat.say(olga, "Сидоров") == [RU("find.found", q="Сидоров")]
    assert await chat.press(olga, NewTaskStart(client_id=ours["id"]).pack()) == [
        RU("task.ask_title", client="Иван Сидоров")
    ]
    mark = len(chat.fake.calls)
    assert await chat.say(olga, "Отправить КП") == [RU("task.ask_due")]
    dues = dict(buttons_since(chat, mark))
    [created] = await chat.press(olga, dues[RU("next.3")])
    assert created.startswith("Задача «Отправить КП»")
    card_api = (await http.get(f"/api/v1/clients/{ours['id']}/card", headers=romashka.auth)).json()
    titles = [task["title"] for task in card_api["tasks"]]
    assert titles == ["Связаться: Иван Сидоров", "Отправить КП"]

    # Reassign the follow-up to a colleague, from the card (the admin may assign to anyone).
    ivan = await add_staff(http, romashka, "ivan")
    mark = len(chat.fake.calls)
    await chat.press(olga, ClientCardOpen(client_id=ours["id"]).pack())
    card_buttons = [data for _, data in buttons_since(chat, mark)]
    assert TaskReassign(task_id=follow_up["id"]).pack() in card_buttons
    mark = len(chat.fake.calls)
    assert await chat.press(olga, TaskReassign(task_id=follow_up["id"]).pack()) == [
        RU("reassign.choose", title="Связаться: Иван Сидоров")
    ]
    people = dict(buttons_since(chat, mark))
    assert "Olga Petrova" not in people  # the assignee now
    assert await chat.press(olga, people["Ivan"]) == [RU("reassign.done", title="Связаться: Иван Сидоров", name="Ivan")]
    moved = (await http.get(f"/api/v1/tasks/{follow_up['id']}", headers=romashka.auth)).json()
    assert moved["assignee_id"] == ivan.id
    # Ivan, an operator, may not hand tasks on: no such buttons, and a forged one is refused.
    ivan_account = await linked(chat, bot_http, ivan.auth)
    mark = len(chat.fake.calls)
    await chat.press(ivan_account, ClientCardOpen(client_id=ours["id"]).pack())
    assert not [data for _, data in buttons_since(chat, mark) if data.startswith("wre")]
    forged = TaskReassignTo(task_id=follow_up["id"], user_id=await my_id(http, romashka.auth)).pack()
    assert await chat.press(ivan_account, forged) == [EN("denied")]

    actions = await audit_actions(http, romashka, prefix="")
    assert ("activity.created", "bot") in actions
    assert actions.count(("task.created", "bot")) == 2
    assert actions.count(("task.updated", "bot")) == 1
    # A finished conversation's buttons do nothing.
    assert await chat.press(olga, steps[RU("next.1")]) == [RU("call.stale")]

    # The other company: its same-named client untouched, nothing done from the bot.
    their_card = (await http.get(f"/api/v1/clients/{theirs['id']}/card", headers=lyutik.auth)).json()
    assert their_card["timeline"] == [] and their_card["tasks"] == []
    assert [row for row in await audit_actions(http, lyutik, prefix="") if row[1] == "bot"] == []


async def test_history_pages_through_activities_and_deals_lists_them(
    make_tenant: TenantFactory, http: httpx.AsyncClient, bot_http: httpx.AsyncClient, chat: Conversation
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    await create_client(http, romashka.auth, name="Первый клиент")  # ids differ between the companies
    ours = await create_client(http, romashka.auth, name="Иван Сидоров")
    theirs = await create_client(http, lyutik.auth, name="Пётр Лютиков")
    assert ours["id"] != theirs["id"]
    start = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    for number in range(12):
        note = {"kind": "note", "client_id": ours["id"], "comment": f"Запись №{number}"}
        # Notes 1 and 2 share a moment and the first page ends between them: ties split by id.
        note["occurred_at"] = (start + timedelta(hours=(number + 1) // 2)).isoformat()
        response = await http.post("/api/v1/activities", json=note, headers=romashka.auth)
        assert response.status_code == 201, response.text
    their_note = {"kind": "note", "client_id": theirs["id"], "comment": "Заметка Лютика"}
    assert (await http.post("/api/v1/activities", json=their_note, headers=lyutik.auth)).status_code == 201
    for title, amount in (("Поставка бумаги", "1500.00"), ("Картриджи", "320.50")):
        deal = {"title": title, "client_id": ours["id"], "amount": amount}
        assert (await http.post("/api/v1/deals", json=deal, headers=romashka.auth)).status_code == 201
    olga = await linked(chat, bot_http, romashka)
    petr = await linked(chat, bot_http, lyutik)

    mark = len(chat.fake.calls)
    [first] = await chat.press(olga, ClientHistory(client_id=ours["id"]).pack())
    assert first.startswith(RU("history.title", client="Иван Сидоров"))
    assert notes_in(first) == list(range(11, 1, -1))  # newest first
    older = dict(buttons_since(chat, mark))[RU("button.older")]
    [second] = await chat.press(olga, older)
    assert second.startswith(RU("history.older", client="Иван Сидоров"))
    assert notes_in(second) == [1, 0]  # every note once over the two pages
    assert "Заметка Лютика" not in first + second

    [deals] = await chat.press(olga, ClientDeals(client_id=ours["id"]).pack())
    assert deals.startswith(RU("deals.title", client="Иван Сидоров"))
    assert "Поставка бумаги — 1500.00 RUB" in deals and "Картриджи — 320.50 RUB" in deals

    # The other company's user reaches neither, and learns nothing.
    assert await chat.press(petr, ClientHistory(client_id=ours["id"]).pack()) == [RU("card.gone")]
    assert await chat.press(petr, ClientDeals(client_id=ours["id"]).pack()) == [RU("card.gone")]
    [theirs_history] = await chat.press(petr, ClientHistory(client_id=theirs["id"]).pack())
    assert "Заметка Лютика" in theirs_history and "Запись" not in theirs_history
    assert await chat.press(petr, ClientDeals(client_id=theirs["id"]).pack()) == [
        RU("deals.empty", client="Пётр Лютиков")
    ]


def notes_in(text: str) -> list[int]:
    """The numbers of the "Запись №N" lines of a history page, top to bottom."""
    return [int(line.split("№")[1].split()[0]) for line in text.splitlines() if "№" in line]


async def test_an_own_scope_user_cannot_open_a_colleagues_client(
    make_tenant: TenantFactory, http: httpx.AsyncClient, bot_http: httpx.AsyncClient, chat: Conversation
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    manager = await add_staff(http, romashka, "manager", role="manager")
    colleague = await add_staff(http, romashka, "colleague", role="manager")
    mine = await create_client(http, manager.auth, name="Мой клиент Петров")
    colleagues = await create_client(http, colleague.auth, name="Чужой клиент Петров")
    await create_client(http, lyutik.auth, name="Клиент Лютика Петров")
    account = await linked(chat, bot_http, manager.auth)
    words = EN if (await http.get("/api/v1/me", headers=manager.auth)).json()["user"]["locale"] == "en" else RU

    mark = len(chat.fake.calls)
    assert await chat.say(account, "Петров") == [words("find.found", q="Петров")]
    assert [data for _, data in buttons_since(chat, mark)] == [ClientCardOpen(client_id=mine["id"]).pack()]

    # Forged buttons for the colleague's client reach nothing, and say nothing about it.
    for data in (
        ClientCardOpen(client_id=colleagues["id"]).pack(),
        CallLogStart(client_id=colleagues["id"]).pack(),
        NewTaskStart(client_id=colleagues["id"]).pack(),
        ClientHistory(client_id=colleagues["id"]).pack(),
        ClientDeals(client_id=colleagues["id"]).pack(),
        ClientCardOpen(client_id=10**9).pack(),
    ):
        assert await chat.press(account, data) == [words("card.gone")]
    [card] = await chat.press(account, ClientCardOpen(client_id=mine["id"]).pack())
    assert card.startswith("Мой клиент Петров")

    # Inline mode finds the same, personally and uncached.
    answer = await inline_search(chat, account, "Петров")
    assert [result["id"] for result in answer.params["results"]] == [f"client-{mine['id']}"]
    assert str(answer.params["is_personal"]).lower() == "true" and answer.params["cache_time"] == 0
    lyutik_account = await linked(chat, bot_http, lyutik)
    [result] = (await inline_search(chat, lyutik_account, "Петров")).params["results"]
    assert result["title"] == "Клиент Лютика Петров"
    stranger = await inline_search(chat, telegram_user(), "Петров")
    assert stranger.params.get("results") == []

    assert [row for row in await audit_actions(http, romashka, prefix="") if row[1] == "bot"] == [
        ("telegram.linked", "bot")
    ]
    assert [row for row in await audit_actions(http, lyutik, prefix="") if row[1] == "bot"] == [
        ("telegram.linked", "bot")
    ]


async def inline_search(chat: Conversation, account: int, text: str) -> Call:
    """``@bot text`` typed by ``account``; the bot's answerInlineQuery."""
    mark = len(chat.fake.calls)
    update = {
        "update_id": chat.fake.next_update_id(),
        "inline_query": {
            "id": f"iq{account}{mark}",
            "from": chat.fake.user(account),
            "query": text,
            "offset": "",
            "chat_type": "sender",
        },
    }
    await chat.feed(update)
    [answer] = [call for call in chat.fake.calls[mark:] if call.method.lower() == "answerinlinequery"]
    return answer
