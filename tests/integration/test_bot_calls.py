"""Logging a call from Telegram with a voice note and a picked date: find → card → Log call →
outcome → voice note → "pick a date" → a calendar day (or a typed date) → the call activity
with its recording as an attachment and the follow-up task due that day at the quick
choices' hour, audited as done from the bot; the recording read back through the API under
the activity's rights. Updates go through ``Dispatcher.feed_webhook_update``; the bot
fetches files from the fake Bot API server. Every test uses two companies and checks they
never mix."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from crm.bot.callbacks import CallDueDay, CallLogStart, CallPickDate, ClientCardOpen, WorkStep
from crm.bot.date_picker import parse_typed_date
from crm.bot.links import BOT
from crm.bot.routers.tasks import DUE_HOUR
from crm.bot.voice_notes import TELEGRAM_DOWNLOAD_LIMIT
from crm.bot.work_texts import WorkTexts
from crm.platform.auth import principal_of_user
from crm.platform.errors import InvalidInput
from crm.platform.tenancy import tenant_scope
from crm.tenants.activities.attachments import NewAttachment
from crm.tenants.activities.schemas import ActivityCreate
from crm.tenants.activities.services import create_activity
from crm.tenants.activities.tables import Activity, ActivityAttachment
from tests.conftest import SignedUpTenant, TenantFactory, add_staff
from tests.integration import test_bot_link as link
from tests.integration import test_bot_work as work
from tests.integration.helpers import create_client, my_id, tenant_of
from tests.integration.test_bot_link import Conversation, audit_actions
from tests.integration.test_bot_work import buttons_since, linked

RU, EN = WorkTexts("ru"), WorkTexts("en")

# The bot's fixtures, shared with the linking and daily-work tests.
fake_telegram = link.fake_telegram
bot_settings = link.bot_settings
bot_base_url = link.bot_base_url
bot_http = link.bot_http
chat = work.chat


def _voice_bytes() -> bytes:
    """A recording of this test's own: an Ogg page header and random bytes."""
    return b"OggS\x00\x02" + secrets.token_bytes(3000)


async def _zone(http: httpx.AsyncClient, auth: dict[str, str]) -> ZoneInfo:
    return ZoneInfo((await http.get("/api/v1/me", headers=auth)).json()["user"]["timezone"])


def _working_start(day: date, zone: ZoneInfo) -> datetime:
    """Where the quick choices put a follow-up on ``day``: its 10:00 on the user's clock."""
    return datetime.combine(day, time(DUE_HOUR), tzinfo=zone).astimezone(UTC)


def _next_month(day: date) -> tuple[int, int]:
    return (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)


async def _start_call(chat: Conversation, account: int, client_id: int, client_name: str) -> None:
    """Card → Log call → the first outcome: the bot now asks for the comment."""
    await chat.press(account, ClientCardOpen(client_id=client_id).pack())
    mark = len(chat.fake.calls)
    assert await chat.press(account, CallLogStart(client_id=client_id).pack()) == [
        RU("call.outcome", client=client_name)
    ]
    outcomes = buttons_since(chat, mark)
    assert await chat.press(account, outcomes[0][1]) == [RU("call.comment")]


async def _send_voice(
    chat: Conversation, account: int, file_id: str, duration: int
) -> tuple[list[str], dict[str, str]]:
    """A voice note as the comment: the bot's replies and the next-step buttons by label."""
    mark = len(chat.fake.calls)
    replies = await chat.feed(chat.fake.voice(account, file_id, duration=duration))
    return replies, dict(buttons_since(chat, mark))


async def _timeline(http: httpx.AsyncClient, company: SignedUpTenant, client_id: int) -> list[dict[str, object]]:
    card = (await http.get(f"/api/v1/clients/{client_id}/card", headers=company.auth)).json()
    timeline: list[dict[str, object]] = card["timeline"]
    return timeline


async def test_voice_note_and_calendar_day_make_the_call_its_attachment_and_the_follow_up(
    make_tenant: TenantFactory, http: httpx.AsyncClient, bot_http: httpx.AsyncClient, chat: Conversation
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    ours = await create_client(http, romashka.auth, name="Иван Сидоров", phones=["+7 916 123-45-67"])
    theirs = await create_client(http, lyutik.auth, name="Пётр Лютиков")
    # A note first, so this company's call is not activity 1 (which Лютик's call will be).
    note = await http.post(
        "/api/v1/activities",
        json={"kind": "note", "client_id": ours["id"], "comment": "Заметка"},
        headers=romashka.auth,
    )
    assert note.status_code == 201, note.text
    olga = await linked(chat, bot_http, romashka)
    zone = await _zone(http, romashka.auth)

    # find → card → Log call → outcome → a voice note.
    assert await chat.say(olga, "Сидоров") == [RU("find.found", q="Сидоров")]
    await _start_call(chat, olga, ours["id"], "Иван Сидоров")
    recording = _voice_bytes()
    file_id = f"voice-{secrets.token_hex(4)}"
    chat.fake.add_file(file_id, recording)
    downloads_before = len(chat.fake.calls_to("getFile"))
    replies, steps = await _send_voice(chat, olga, file_id, 12)
    assert replies == [RU("call.next_required")]
    assert RU("next.pick") in steps and RU("next.0") not in steps
    # Nothing is fetched until the call is saved: the conversation holds only the file id.
    assert len(chat.fake.calls_to("getFile")) == downloads_before

    # "Pick a date" → this month's calendar (days gone by are not buttons) → ▶ → a day.
    today = datetime.now(UTC).astimezone(zone).date()
    mark = len(chat.fake.calls)
    assert await chat.press(olga, steps[RU("next.pick")]) == [RU("call.pick_date")]
    shown = buttons_since(chat, mark)
    calendar = {data: text for text, data in shown}
    assert CallDueDay(year=today.year, month=today.month, day=today.day).pack() in calendar
    if today.day > 1:
        yesterday = today - timedelta(days=1)
        assert CallDueDay(year=yesterday.year, month=yesterday.month, day=yesterday.day).pack() not in calendar
    year, month = _next_month(today)
    forward = CallPickDate(year=year, month=month).pack()
    assert calendar[forward] == "▶"
    assert f"{RU(f'month.{today.month}')} {today.year}" in [text for text, _ in shown]
    mark = len(chat.fake.calls)
    assert await chat.press(olga, forward) == [RU("call.pick_date")]
    next_page = {data: text for text, data in buttons_since(chat, mark)}
    assert next_page[CallPickDate(year=today.year, month=today.month).pack()] == "◀"
    assert forward not in next_page  # the calendar shows this month and the next
    picked = date(year, month, 15)
    day_button = CallDueDay(year=year, month=month, day=15).pack()
    assert next_page[day_button] == "15"
    [saved] = await chat.press(olga, day_button)
    due = _working_start(picked, zone)
    assert saved == RU("call.saved_task", title="Связаться: Иван Сидоров", when=RU.moment(due, zone))
    assert len(chat.fake.calls_to("getFile")) == downloads_before + 1

    # The call, its recording and the follow-up, as the API reads them.
    calls = (
        await http.get("/api/v1/activities", headers=romashka.auth, params={"client_id": ours["id"], "kind": "call"})
    ).json()["items"]
    [call] = calls
    assert call["outcome"] == "interested" and call["comment"] == RU("call.voice_note", duration="0:12")
    [attachment] = call["attachments"]
    assert (attachment["kind"], attachment["mime_type"]) == ("voice", "audio/ogg")
    assert (attachment["duration_seconds"], attachment["size_bytes"]) == (12, len(recording))
    one = (await http.get(f"/api/v1/activities/{call['id']}", headers=romashka.auth)).json()
    assert one["attachments"] == call["attachments"]
    task = (await http.get(f"/api/v1/tasks/{call['next_task_id']}", headers=romashka.auth)).json()
    assert datetime.fromisoformat(task["due_at"]) == due and task["client_id"] == ours["id"]
    url = f"/api/v1/activities/{call['id']}/attachments/{attachment['id']}"
    fetched = await http.get(url, headers=romashka.auth)
    assert fetched.status_code == 200 and fetched.content == recording
    assert fetched.headers["content-type"].startswith("audio/ogg")
    assert fetched.headers["x-content-type-options"] == "nosniff"
    async with tenant_scope(await tenant_of(romashka)):
        [row] = await ActivityAttachment.select(ActivityAttachment.content, ActivityAttachment.author_id).where(
            ActivityAttachment.activity_id == call["id"]
        )
    assert row["content"] == recording and row["author_id"] == await my_id(http, romashka.auth)
    actions = await audit_actions(http, romashka, prefix="")
    assert ("activity.created", "bot") in actions and ("task.created", "bot") in actions
    created = await http.get(
        "/api/v1/audit",
        headers=romashka.auth,
        params={"action": "activity.created", "entity_id": str(call["id"])},
    )
    [entry] = [item for item in created.json()["items"] if item["entity_id"] == str(call["id"])]
    assert entry["changes"]["attachments"][1] == [
        {
            "id": attachment["id"],
            "kind": "voice",
            "mime_type": "audio/ogg",
            "size_bytes": len(recording),
            "duration_seconds": 12,
        }
    ]
    # The card's timeline in the bot says there is a voice note.
    [card] = await chat.press(olga, ClientCardOpen(client_id=ours["id"]).pack())
    assert RU("call.voice_note", duration="0:12") in card
    # The conversation is over: the calendar's buttons do nothing now.
    assert await chat.press(olga, day_button) == [RU("call.stale")]

    # A missing attachment id, another activity's id: 404.
    assert (await http.get(f"{url}0", headers=romashka.auth)).status_code == 404
    wrong_activity = f"/api/v1/activities/{note.json()['id']}/attachments/{attachment['id']}"
    assert (await http.get(wrong_activity, headers=romashka.auth)).status_code == 404
    # A colleague whose role reads only their own clients and calls: as if it did not exist.
    manager = await add_staff(http, romashka, "manager", role="manager")
    assert (await http.get(url, headers=manager.auth)).status_code == 404
    assert (await http.get(f"/api/v1/activities/{call['id']}", headers=manager.auth)).status_code == 404

    # Лютик logs its own voice call; neither company reaches the other's recording.
    piotr = await linked(chat, bot_http, lyutik)
    await _start_call(chat, piotr, theirs["id"], "Пётр Лютиков")
    their_recording = _voice_bytes()
    their_file = f"voice-{secrets.token_hex(4)}"
    chat.fake.add_file(their_file, their_recording)
    _, their_steps = await _send_voice(chat, piotr, their_file, 75)
    await chat.press(piotr, their_steps[RU("next.1")])
    [their_call] = (await http.get("/api/v1/activities", headers=lyutik.auth)).json()["items"]
    [their_attachment] = their_call["attachments"]
    assert their_call["comment"] == RU("call.voice_note", duration="1:15")
    their_url = f"/api/v1/activities/{their_call['id']}/attachments/{their_attachment['id']}"
    assert (await http.get(their_url, headers=lyutik.auth)).content == their_recording
    assert their_call["id"] != call["id"]
    assert (await http.get(url, headers=lyutik.auth)).status_code == 404
    their_answer = await http.get(their_url, headers=romashka.auth)
    assert their_answer.status_code == 404 and their_recording not in their_answer.content
    assert [item["id"] for item in await _timeline(http, lyutik, theirs["id"])] == [their_call["id"]]
    ours_listed = (await http.get("/api/v1/activities", headers=romashka.auth)).json()["items"]
    assert their_call["id"] not in {item["id"] for item in ours_listed if item["kind"] == "call"}
    assert [row for row in await audit_actions(http, lyutik, prefix="activity.")] == [("activity.created", "bot")]


async def test_a_typed_date_works_and_a_past_or_unknown_one_is_refused(
    make_tenant: TenantFactory, http: httpx.AsyncClient, bot_http: httpx.AsyncClient, chat: Conversation
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    ours = await create_client(http, romashka.auth, name="Анна Каренина")
    theirs = await create_client(http, lyutik.auth, name="Анна Каренина")
    olga = await linked(chat, bot_http, romashka)
    zone = await _zone(http, romashka.auth)

    await _start_call(chat, olga, ours["id"], "Анна Каренина")
    mark = len(chat.fake.calls)
    assert await chat.say(olga, "Обещали перезвонить") == [RU("call.next_required")]
    steps = dict(buttons_since(chat, mark))
    assert await chat.press(olga, steps[RU("next.pick")]) == [RU("call.pick_date")]
    assert await chat.say(olga, "2020-01-01") == [RU("call.date_past")]
    assert await chat.say(olga, "1.1.2020") == [RU("call.date_past")]
    assert await chat.say(olga, "31.02.2031") == [RU("call.date_unknown", text="31.02.2031")]
    assert await chat.say(olga, "на днях") == [RU("call.date_unknown", text="на днях")]
    # A forged (or day-old) calendar button for yesterday is refused too.
    today = datetime.now(UTC).astimezone(zone).date()
    yesterday = today - timedelta(days=1)
    forged = CallDueDay(year=yesterday.year, month=yesterday.month, day=yesterday.day).pack()
    assert await chat.press(olga, forged) == [RU("call.date_past")]
    assert (await http.get("/api/v1/activities", headers=romashka.auth)).json()["items"] == []

    picked = today + timedelta(days=40)  # beyond the calendar's pages: typing reaches it
    [saved] = await chat.say(olga, f"{picked:%d.%m}")
    due = _working_start(picked, zone)
    assert saved == RU("call.saved_task", title="Связаться: Анна Каренина", when=RU.moment(due, zone))
    [call] = (await http.get("/api/v1/activities", headers=romashka.auth)).json()["items"]
    assert call["comment"] == "Обещали перезвонить" and call["attachments"] == []
    task = (await http.get(f"/api/v1/tasks/{call['next_task_id']}", headers=romashka.auth)).json()
    assert datetime.fromisoformat(task["due_at"]) == due

    # The ISO form, on the company's other client list: today is allowed (not the past).
    await _start_call(chat, olga, ours["id"], "Анна Каренина")
    mark = len(chat.fake.calls)
    await chat.press(olga, WorkStep(action="skip").pack())
    steps = dict(buttons_since(chat, mark))
    await chat.press(olga, steps[RU("next.pick")])
    [saved] = await chat.say(olga, today.isoformat())
    assert saved.startswith(RU("call.saved_task", title="Связаться: Анна Каренина", when="")[:-1])
    calls = (await http.get("/api/v1/activities", headers=romashka.auth, params={"sort": "id"})).json()["items"]
    task = (await http.get(f"/api/v1/tasks/{calls[-1]['next_task_id']}", headers=romashka.auth)).json()
    assert datetime.fromisoformat(task["due_at"]).astimezone(zone).date() == today
    assert [(action, channel) for action, channel in await audit_actions(http, romashka, prefix="activity.")] == [
        ("activity.created", "bot"),
        ("activity.created", "bot"),
    ]

    # The other company: its same-named client untouched.
    assert await _timeline(http, lyutik, theirs["id"]) == []
    assert await audit_actions(http, lyutik, prefix="activity.") == []


async def test_a_recording_too_large_or_gone_is_refused_and_nothing_is_half_saved(
    make_tenant: TenantFactory, http: httpx.AsyncClient, bot_http: httpx.AsyncClient, chat: Conversation
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    ours = await create_client(http, romashka.auth, name="Фёдор Достоевский")
    await create_client(http, lyutik.auth, name="Фёдор Достоевский")
    olga = await linked(chat, bot_http, romashka)
    await _start_call(chat, olga, ours["id"], "Фёдор Достоевский")

    # Over Telegram's 20 MB: refused from the size Telegram states, nothing downloaded.
    huge = f"huge-{secrets.token_hex(4)}"
    chat.fake.add_file(huge, bytes(TELEGRAM_DOWNLOAD_LIMIT + 1))
    downloads_before = len(chat.fake.calls_to("getFile"))
    replies, _ = await _send_voice(chat, olga, huge, 3600)
    assert replies == [RU("call.voice_too_big")]
    assert len(chat.fake.calls_to("getFile")) == downloads_before

    # A voice note Telegram no longer hands over: back to the comment, no call saved.
    gone = f"gone-{secrets.token_hex(4)}"
    replies, steps = await _send_voice(chat, olga, gone, 5)
    assert replies == [RU("call.next_required")]
    assert await chat.press(olga, steps[RU("next.3")]) == [RU("call.voice_failed")]
    assert (await http.get("/api/v1/activities", headers=romashka.auth)).json()["items"] == []
    # The outcome was kept: a typed comment now saves the call, without an attachment.
    mark = len(chat.fake.calls)
    assert await chat.say(olga, "Перезвонить") == [RU("call.next_required")]
    [saved] = await chat.press(olga, dict(buttons_since(chat, mark))[RU("next.3")])
    assert saved.startswith(RU("call.saved_task", title="Связаться: Фёдор Достоевский", when="")[:-1])
    [call] = (await http.get("/api/v1/activities", headers=romashka.auth)).json()["items"]
    assert (call["comment"], call["attachments"]) == ("Перезвонить", [])

    # The service takes the activity and its files together or not at all.
    company = await tenant_of(romashka)
    admin = await my_id(http, romashka.auth)
    async with tenant_scope(company):
        principal = await principal_of_user(company, admin)
        assert principal is not None
        bad = [
            NewAttachment(kind="voice", mime_type="audio/ogg", content=b"ok"),
            NewAttachment(kind="video", mime_type="not a type", content=b""),
        ]
        with pytest.raises(InvalidInput) as refused:
            await create_activity(
                principal, ActivityCreate(kind="note", client_id=ours["id"], comment="x"), origin=BOT, attachments=bad
            )
        assert {error.field for error in refused.value.errors} == {
            "attachments.1.kind",
            "attachments.1.mime_type",
            "attachments.1.content",
        }
        assert await Activity.count().where(Activity.kind == "note") == 0
        assert await ActivityAttachment.count() == 0
    async with tenant_scope(await tenant_of(lyutik)):
        assert await Activity.count() == 0 and await ActivityAttachment.count() == 0


@pytest.mark.parametrize(
    ("typed", "today", "expected"),
    [
        ("28.11", date(2026, 11, 20), date(2026, 11, 28)),
        ("28.11", date(2026, 11, 28), date(2026, 11, 28)),
        ("10.01", date(2026, 12, 20), date(2027, 1, 10)),  # the coming January
        ("28.11.2026", date(2026, 1, 1), date(2026, 11, 28)),
        (" 2026-11-28 ", date(2026, 1, 1), date(2026, 11, 28)),
        ("1.2.2020", date(2026, 1, 1), date(2020, 2, 1)),  # as written: the caller refuses it
        ("29.02", date(2026, 3, 1), None),  # no 29 February this year or the next
        ("29.02", date(2027, 3, 1), date(2028, 2, 29)),
        ("31.04.2026", date(2026, 1, 1), None),
        ("2026/11/28", date(2026, 1, 1), None),
        ("завтра", date(2026, 1, 1), None),
    ],
)
def test_typed_dates(typed: str, today: date, expected: date | None) -> None:
    assert parse_typed_date(typed, today) == expected
