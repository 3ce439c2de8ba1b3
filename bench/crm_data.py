"""The CRM core's world: one big company (200,000 clients, 2,000,000 activities, 500,000 tasks) and a few small ones.

    .venv/bin/python -m bench.crm_data [--quick]      # build it in a fresh database, report, drop it

Used by ``bench/crm_core.py`` and ``bench/import_csv.py`` through :func:`build_world`.

Every tenant is signed up with ``provision_tenant`` (its schema is the current DDL, its
edition's pipelines, roles and settings are seeded). The rows are then bulk-loaded on one
connection with the tenant's ``search_path``, not through the API and without audit rows
(that is not what is measured):

* a department tree and staff users (60 in the big company, with real argon2 password
  hashes, roles ``head_of_sales`` / ``manager`` / ``operator``, several time zones);
* clients (``COPY``): 60% companies, 40% people, names built from Russian and English name
  parts (legal forms, «quotes», ё, patronymics) so trigram search sees a realistic spread;
  E.164 phones (mobiles and landlines, some two), e-mails for ~55%, tax ids for most
  companies, statuses, tags, custom fields; owners drawn by per-user weights (sales staff
  hold most, 2% nobody), author = responsible for 85%;
* client_relations (``COPY``): ~35% of the people at a company, skewed so that a few
  companies list dozens of people;
* deals for ~20% of the clients in the default pipeline, open / won / lost, with the
  ``deal_stage_changes`` path that led to each stage (``COPY``);
* activities (``INSERT … SELECT generate_series`` from a per-client plan): a heavy-tailed
  count per client (15% none, most a handful, some hundreds to ~2,000), calls / notes /
  meetings / e-mails between the client's first and last contact over two years; the
  clients' ``first_contact_at`` / ``last_contact_at`` are those of their activities;
* tasks (the same way): per client in proportion to its activity, plus 15% without a
  client; due in working hours of the assignee's zone, from 24 months ago to 3 months
  ahead, mostly on weekdays; past ones 85% done, 4% cancelled, the rest overdue.

For speed the secondary indexes of the filled tables are dropped and rebuilt from their own
definitions (``pg_get_indexdef``), and foreign-key triggers are off during the load
(``session_replication_role = replica``, superuser only; the rows are consistent by
construction). Then VACUUM ANALYZE and CHECKPOINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from bench.common import BENCH_PASSWORD, bench_database, open_bench_services, server_version, settle
from crm.platform.passwords import hash_password
from crm.platform.services import Services
from crm.platform.signup import SignupRequest, provision_tenant
from crm.platform.tenancy import TenantRef

SEED = 20261127

# --- sizes and shapes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    clients: int
    activities: int
    tasks: int
    small_tenants: int
    small_clients: int  # per small tenant; 10 activities and 2.5 tasks per client


FULL = Sizes(clients=200_000, activities=2_000_000, tasks=500_000, small_tenants=3, small_clients=300)
QUICK = Sizes(clients=5_000, activities=50_000, tasks=12_500, small_tenants=2, small_clients=100)


@dataclass(frozen=True)
class Dept:
    name: str
    parent: str | None
    staff: int  # the first is the head
    head_role: str
    role: str
    zones: tuple[str, ...]
    weight: float  # clients (and so tasks) held per staff member, relative


BIG_DEPARTMENTS: tuple[Dept, ...] = (
    Dept("Продажи", None, 3, "head_of_sales", "manager", ("Europe/Moscow",), 0.6),
    Dept("Продажи Москва", "Продажи", 9, "head_of_sales", "manager", ("Europe/Moscow",), 1.0),
    Dept(
        "Продажи Регионы",
        "Продажи",
        9,
        "head_of_sales",
        "manager",
        ("Asia/Yekaterinburg", "Asia/Novosibirsk", "Asia/Vladivostok", "Europe/Moscow"),
        1.0,
    ),
    Dept("Ключевые клиенты", "Продажи", 6, "head_of_sales", "manager", ("Europe/Moscow",), 0.8),
    Dept("Клиентский сервис", None, 2, "head_of_sales", "operator", ("Europe/Moscow",), 0.6),
    Dept("Внедрение", "Клиентский сервис", 4, "operator", "operator", ("Europe/Moscow",), 0.6),
    Dept("Поддержка", "Клиентский сервис", 4, "operator", "operator", ("Europe/Samara", "Europe/Moscow"), 0.6),
    Dept("Продления", "Клиентский сервис", 3, "operator", "operator", ("Europe/Moscow",), 0.6),
    Dept("Маркетинг", None, 2, "manager", "manager", ("Europe/Moscow",), 0.0),
    Dept("Digital", "Маркетинг", 5, "manager", "manager", ("Europe/Moscow",), 0.0),
    Dept("Мероприятия", "Маркетинг", 4, "manager", "manager", ("Europe/Moscow",), 0.0),
)
BIG_UNASSIGNED = 8  # new hires in no department yet; with the admin, 60 users
SMALL_DEPARTMENTS: tuple[Dept, ...] = (
    Dept("Отдел продаж", None, 5, "head_of_sales", "manager", ("Europe/Moscow",), 1.0),
)
# The measured principals of the big company.
DIRECTOR_DEPARTMENT = "Продажи"  # head of the whole sales subtree (27 people)
LINE_DEPARTMENT = "Продажи Москва"  # a line head (9 people) and one of their managers


@dataclass(frozen=True)
class Person:
    """A user one can log in as (password: ``BENCH_PASSWORD``)."""

    user_id: int
    email: str
    role: str
    department_id: int | None
    timezone: str


@dataclass
class Company:
    tenant: TenantRef
    admin: Person
    staff: list[Person]
    departments: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class World:
    big: Company
    small: list[Company]
    director: Person  # head_of_sales of the whole sales subtree
    line_head: Person  # head_of_sales of one sales line
    manager: Person  # a manager (own scope) in that line
    heavy_clients: list[int]  # the clients with the most activities
    activity_counts: dict[int, int]  # per client of the big company
    seconds: float


# --- name parts ------------------------------------------------------------------------------

RU_SURNAMES = (
    "Иванов Смирнов Кузнецов Попов Васильев Петров Соколов Михайлов Новиков Фёдоров Морозов Волков Алексеев"
    " Лебедев Семёнов Егоров Павлов Козлов Степанов Николаев Орлов Андреев Макаров Никитин Захаров Зайцев"
    " Соловьёв Борисов Яковлев Григорьев Романов Воробьёв Сергеев Кузьмин Фролов Александров Дмитриев Королёв"
    " Гусев Киселёв Ильин Максимов Поляков Сорокин Виноградов Ковалёв Белов Медведев Антонов Тарасов Жуков"
    " Баранов Филиппов Комаров Давыдов Беляев Герасимов Богданов Осипов Сидоров Матвеев Титов Марков Миронов"
    " Крылов Куликов Карпов Власов Мельников Денисов Гаврилов Тихонов Казаков Афанасьев Данилов Савельев"
    " Тимофеев Фомин Чернов Абрамов Мартынов Ефимов Федотов Щербаков Назаров Калинин Исаев Чернышёв Быков"
    " Маслов Родионов Коновалов Лазарев Воронин Климов Филатов Пономарёв Голубев Кудрявцев Прохоров Наумов"
    " Потапов Журавлёв Овчинников Трофимов Леонов Соболев Ермаков Колесников Гончаров Емельянов Никифоров"
    " Грачёв Котов Гришин Ефремов Архипов Громов Кириллов Малышев Панов Моисеев Румянцев Акимов Кондратьев"
).split()
RU_INVARIANT_SURNAMES = "Шевченко Бондаренко Коваленко Кравченко Ткаченко Лысенко Мельниченко Гуревич Кох Штерн".split()
RU_MALE = (
    "Александр Алексей Андрей Антон Артём Борис Вадим Валерий Василий Виктор Владимир Дмитрий Евгений Егор"
    " Иван Игорь Илья Кирилл Константин Максим Михаил Никита Николай Олег Павел Роман Сергей Станислав Юрий"
).split()
RU_FEMALE = (
    "Анна Алёна Алина Валентина Валерия Вера Виктория Галина Дарья Екатерина Елена Ирина Ксения Лариса"
    " Людмила Марина Мария Наталья Нина Ольга Полина Светлана София Татьяна Юлия Яна"
).split()
RU_PATRONYMIC_ROOTS = (
    "Александров Алексеев Андреев Борисов Васильев Викторов Владимиров Дмитриев Евгеньев Иванов Игорев"
    " Михайлов Николаев Олегов Павлов Петров Сергеев Юрьев Фёдоров Геннадьев"
).split()
EN_FIRST = (
    "James John Robert Michael David William Richard Thomas Daniel Peter Mark Paul Steven Andrew Kevin Brian"
    " Mary Patricia Jennifer Linda Elizabeth Susan Jessica Sarah Karen Nancy Lisa Emma Sophie Anna Laura Eva"
    " Hans Klaus Marco Luca Pierre Jean Tomas Jan"
).split()
EN_LAST = (
    "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Martin Jackson White"
    " Harris Clark Lewis Walker Young King Wright Scott Green Baker Adams Nelson Hill Campbell Mitchell"
    " Schmidt Müller Schneider Fischer Weber Rossi Russo Bianchi Dubois Moreau Novak Nowak Jensen Hansen"
    " Larsen Kowalski Horvat Garcia Martinez Lopez"
).split()
RU_ROOTS = (
    "Север Юг Восток Запад Техно Энерго Строй Агро Мега Гранд Вектор Альфа Сигма Альянс Импульс Прогресс"
    " Стандарт Регион Сибирь Урал Волга Нева Балтика Кама Дон Алтай Байкал Промо Инвест Капитал Транс Лес"
    " Металл Хим Фарм Мед Нефть Газ Авто Электро Тепло Аква Свет Дом Мир Экспорт Торг Снаб Проект Монтаж"
    " Логистик Маркет Трейд Инжиниринг Ресурс Партнёр Оптима Форвард Меридиан Гарант Профи Эталон"
).split()
RU_SUFFIXES = (
    "строй сервис торг снаб пром комплект маш трейд лайн систем групп холдинг инвест логистик проект маркет"
    " техника мастер плюс центр"
).split()
RU_ADJECTIVES = (
    "Северный Южный Золотой Новый Первый Белый Красный Русский Сибирский Уральский Балтийский Зелёный"
    " Весёлый Тихий Быстрый Надёжный Честный Большой Старый Деловой"
).split()
RU_NOUNS = "ветер берег двор мост путь край парк город сад лес дом мир стандарт альянс проект колос вектор".split()
EN_ADJECTIVES = (
    "Nordic Global Blue Green Bright Smart Prime United First Silver Golden Rapid Modern Pacific Atlantic"
    " Royal Alpha Delta Nova Urban"
).split()
EN_NOUNS = (
    "Logistics Systems Trading Foods Media Solutions Industries Partners Networks Technologies Consulting"
    " Capital Energy Motors Labs Ventures Supply Retail Design Health"
).split()
RU_FORMS = (("ООО", 0.55), ("АО", 0.1), ("ПАО", 0.02), ("ЗАО", 0.03), ("ИП", 0.1), ("", 0.2))
EN_FORMS = ("LLC", "Ltd", "Inc", "GmbH", "")
POSITIONS = (
    "Генеральный директор",
    "Коммерческий директор",
    "Менеджер по закупкам",
    "Главный бухгалтер",
    "Руководитель отдела снабжения",
    "Секретарь",
    "ИТ-директор",
    "Юрист",
    "Procurement manager",
    "CEO",
    "Head of IT",
    "",
)
TAGS = ("vip", "опт", "розница", "партнёр", "тендер", "холодный", "повторный", "конференция", "b2b", "дилер")
TRANSLIT = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        "a b v g d e e zh z i y k l m n o p r s t u f kh ts ch sh sch - y - e yu ya".split(),
        strict=True,
    )
)


def translit(text: str) -> str:
    out = []
    for character in text.lower():
        if character in TRANSLIT:
            out.append("" if TRANSLIT[character] == "-" else TRANSLIT[character])
        elif character.isascii() and character.isalnum():
            out.append(character)
        elif character == "ü":
            out.append("u")
    return "".join(out)


def feminine(surname: str) -> str:
    if surname.endswith(("ов", "ев", "ёв", "ин", "ын")):
        return surname + "а"
    if surname.endswith("ий"):
        return surname[:-2] + "ая"
    return surname


@dataclass
class ClientDraft:
    id: int
    kind: str
    name: str
    short: str  # what a task title or deal title quotes
    phones: list[str]
    emails: list[str]
    tax_id: str | None
    responsible_id: int | None


class Names:
    """Seeded generators of the things a CRM is full of."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used_phones: set[str] = set()

    def person(self) -> tuple[str, str, str]:
        """(full name, short name, e-mail local part)."""
        rng = self.rng
        if rng.random() < 0.8:
            female = rng.random() < 0.5
            surname = rng.choice(RU_INVARIANT_SURNAMES) if rng.random() < 0.06 else rng.choice(RU_SURNAMES)
            surname = feminine(surname) if female else surname
            first = rng.choice(RU_FEMALE if female else RU_MALE)
            patronymic = rng.choice(RU_PATRONYMIC_ROOTS) + ("на" if female else "ич")
            roll = rng.random()
            if roll < 0.5:
                name = f"{surname} {first} {patronymic}"
            elif roll < 0.8:
                name = f"{first} {surname}"
            elif roll < 0.9:
                name = f"{surname} {first[0]}. {patronymic[0]}."
            else:
                name = f"{surname.upper()} {first}"
            return name, f"{surname} {first[0]}.", f"{translit(first)[0]}.{translit(surname)}"
        first, last = rng.choice(EN_FIRST), rng.choice(EN_LAST)
        return f"{first} {last}", last, f"{translit(first)}.{translit(last)}"

    def company(self) -> tuple[str, str, str, bool]:
        """(full name, short name, domain stem, is a sole trader)."""
        rng = self.rng
        if rng.random() < 0.75:
            roll = rng.random()
            if roll < 0.45:
                core = rng.choice(RU_ROOTS) + rng.choice(RU_SUFFIXES)
            elif roll < 0.65:
                core = f"{rng.choice(RU_ROOTS)}-{rng.choice(RU_ROOTS)}"
            elif roll < 0.85:
                core = f"{rng.choice(RU_ADJECTIVES)} {rng.choice(RU_NOUNS)}"
            else:
                core = f"{rng.choice(RU_ROOTS)}{rng.choice(RU_SUFFIXES)} {rng.randint(1, 99)}"
            form = rng.choices([f for f, _ in RU_FORMS], [w for _, w in RU_FORMS])[0]
            if form == "ИП":
                name, short, local = self.person()
                return f"ИП {name}", f"ИП {short}", local.replace(".", ""), True
            quoted = rng.choice((f"«{core}»", f'"{core}"', core))
            return (f"{form} {quoted}" if form else core), core, translit(core), False
        core = f"{rng.choice(EN_ADJECTIVES)} {rng.choice(EN_NOUNS)}"
        form = rng.choice(EN_FORMS)
        return (f"{core} {form}" if form else core), core, translit(core), False

    def phone(self, *, mobile_range: tuple[int, int] = (0, 70)) -> str:
        """A new E.164 number: mostly mobiles +79NN…, some landlines of big cities."""
        rng = self.rng
        while True:
            if rng.random() < 0.75:
                number = f"+79{rng.randrange(*mobile_range):02d}{rng.randrange(10**7):07d}"
            else:
                number = f"+7{rng.choice(('495', '499', '812', '343', '383', '846', '863'))}{rng.randrange(10**7):07d}"
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    def tax_id(self, digits: int) -> str:
        return str(self.rng.randrange(10 ** (digits - 1), 10**digits))


# --- the fill --------------------------------------------------------------------------------

LOADED_TABLES = ("clients", "client_relations", "deals", "deal_stage_changes", "activities", "tasks")

ACTIVITIES_SQL = """
INSERT INTO activities (kind, client_id, deal_id, author_id, status, occurred_at, subject, comment,
                        direction, phone, duration_seconds, outcome, created_at)
SELECT a.kind, a.client_id,
       CASE WHEN a.deal_id IS NOT NULL AND a.r2 < 0.35 THEN a.deal_id END,
       CASE WHEN a.responsible_id IS NOT NULL AND a.r3 < 0.85 THEN a.responsible_id
            ELSE ($1::int[])[1 + floor(a.r4 * cardinality($1::int[]))::int] END,
       'done', a.at,
       CASE a.kind
           WHEN 'meeting' THEN (ARRAY['Встреча в офисе клиента', 'Презентация продукта', 'Демо для закупок',
                                      'Переговоры по договору', 'Online demo', 'Quarterly review'])
                               [1 + floor(a.r5 * 6)::int]
           WHEN 'email' THEN (ARRAY['Коммерческое предложение', 'Re: счёт на оплату', 'Договор на подпись',
                                    'Follow-up', 'Прайс-лист', 'Re: сроки поставки'])[1 + floor(a.r5 * 6)::int]
           ELSE '' END,
       CASE WHEN a.r6 < 0.6 THEN
           (ARRAY['Обсудили условия поставки', 'Клиент просит скидку 5%', 'Отправил КП, ждём ответа',
                  'Договорились созвониться в четверг', 'Лицо, принимающее решение, в отпуске до понедельника',
                  'Interested in the annual plan', 'Нужен счёт на предоплату', 'Уточнить объём заказа',
                  'Не устроила цена, вернуться через квартал', 'Передал контакты техническому специалисту',
                  'Asked for references', 'Согласовали спецификацию'])[1 + floor(a.r7 * 12)::int]
       ELSE '' END,
       CASE WHEN a.kind = 'call' THEN CASE WHEN a.r2 < 0.6 THEN 'out' ELSE 'in' END END,
       CASE WHEN a.kind = 'call' THEN a.phone END,
       CASE WHEN a.kind = 'call' THEN CASE WHEN a.r7 < 0.25 THEN 0 ELSE 15 + floor(a.r6 * a.r6 * 1500)::int END END,
       CASE WHEN a.kind = 'call' THEN
           (ARRAY['interested', 'meeting_scheduled', 'call_back', 'no_answer', 'no_answer', 'not_interested',
                  'wrong_number', 'call_back'])[1 + floor(a.r5 * 8)::int] END,
       a.at
FROM (
    SELECT p.client_id, p.deal_id, p.responsible_id, p.phone,
           CASE WHEN g.i = 1 THEN p.first_at WHEN g.i = p.n_acts THEN p.last_at
                ELSE p.first_at + (p.last_at - p.first_at) * random() END AS at,
           CASE WHEN g.k < 0.55 THEN 'call' WHEN g.k < 0.75 THEN 'note' WHEN g.k < 0.85 THEN 'meeting'
                ELSE 'email' END AS kind,
           random() AS r2, random() AS r3, random() AS r4, random() AS r5, random() AS r6, random() AS r7
    FROM bench_plan p CROSS JOIN LATERAL (SELECT i, random() AS k FROM generate_series(1, p.n_acts) AS i) AS g
    WHERE p.n_acts > 0
    OFFSET 0
) AS a
"""

# Due: a random instant from 24 months ago to 3 months ahead, moved to working hours of the
# assignee's zone, weekends mostly moved to the nearest weekday.
TASKS_SQL = """
INSERT INTO tasks (title, description, task_type, assignee_id, author_id, client_id, deal_id, due_at,
                   remind_before_minutes, priority, status, done_at, created_at, updated_at)
SELECT t.title, '', t.task_type, t.assignee_id,
       CASE WHEN t.r4 < 0.8 THEN t.assignee_id ELSE ($1::int[])[1 + floor(t.r5 * cardinality($1::int[]))::int] END,
       t.client_id, t.deal_id, t.due,
       CASE WHEN t.r5 < 0.3 THEN ARRAY[15] ELSE ARRAY[]::int[] END,
       CASE WHEN t.r6 < 0.1 THEN 'high' WHEN t.r6 < 0.2 THEN 'low' ELSE 'normal' END,
       CASE WHEN t.due < now() THEN CASE WHEN t.r7 < 0.85 THEN 'done' WHEN t.r7 < 0.89 THEN 'cancelled' ELSE 'open' END
            ELSE CASE WHEN t.r7 < 0.03 THEN 'done' ELSE 'open' END END,
       CASE WHEN (t.due < now() AND t.r7 < 0.85) OR (t.due >= now() AND t.r7 < 0.03)
            THEN least(now(), t.due + make_interval(mins => floor(t.r6 * 600)::int - 120)) END,
       t.due - make_interval(days => 1 + floor(t.r4 * 14)::int),
       t.due - make_interval(days => floor(t.r4 * 3)::int)
FROM (
    SELECT s.*, ((((s.raw AT TIME ZONE u.timezone)::date
                   + CASE WHEN s.r3 < 0.9 THEN CASE extract(isodow FROM (s.raw AT TIME ZONE u.timezone))
                                                   WHEN 6 THEN -1 WHEN 7 THEN 1 ELSE 0 END ELSE 0 END)::timestamp
                  + make_interval(hours => 9 + floor(s.r1 * 10)::int, mins => 15 * floor(s.r2 * 4)::int))
                 AT TIME ZONE u.timezone) AS due
    FROM (
        SELECT c.client_id, c.deal_id, c.assignee_id, c.r1, c.r2, c.r3, c.r4, c.r5, c.r6, c.r7,
               now() - interval '720 days' + c.r8 * interval '810 days' AS raw,
               (ARRAY['call', 'call', 'call', 'meeting', 'email', 'send_documents'])[1 + floor(c.r9 * 6)::int]
                   AS task_type,
               (ARRAY['Позвонить', 'Перезвонить по КП', 'Уточнить потребность', 'Встреча', 'Отправить договор',
                      'Выставить счёт', 'Напомнить об оплате', 'Follow-up call', 'Send the proposal',
                      'Подготовить спецификацию', 'Согласовать скидку', 'Поздравить с праздником'])
                   [1 + floor(c.r1 * 12)::int]
               || CASE WHEN c.short IS NOT NULL AND c.r2 < 0.6 THEN ': ' || c.short ELSE '' END AS title
        FROM (
            SELECT p.client_id, CASE WHEN random() < 0.3 THEN p.deal_id END AS deal_id, p.short,
                   CASE WHEN p.responsible_id IS NOT NULL AND random() < 0.9 THEN p.responsible_id
                        ELSE ($2::int[])[1 + floor(random() * cardinality($2::int[]))::int] END AS assignee_id,
                   random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5, random() AS r6,
                   random() AS r7, random() AS r8, random() AS r9
            FROM bench_plan p CROSS JOIN LATERAL generate_series(1, p.n_tasks) AS g
            UNION ALL
            SELECT NULL, NULL, NULL, ($2::int[])[1 + floor(random() * cardinality($2::int[]))::int],
                   random(), random(), random(), random(), random(), random(), random(), random(), random()
            FROM generate_series(1, $3)
            OFFSET 0
        ) AS c
        OFFSET 0
    ) AS s JOIN users u ON u.id = s.assignee_id
    OFFSET 0
) AS t
"""


async def _secondary_indexes(connection: asyncpg.Connection, schema: str, table: str) -> list[tuple[str, str]]:
    """(name, definition) of the indexes not backing a constraint."""
    rows = await connection.fetch(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) AS definition"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid"
        " JOIN pg_namespace n ON n.oid = t.relnamespace"
        " WHERE n.nspname = $1 AND t.relname = $2"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)",
        schema,
        table,
    )
    return [(str(row["relname"]), str(row["definition"])) for row in rows]


def _weighted_pool(people: Sequence[tuple[int, float]], size: int = 1000) -> list[int]:
    """User ids repeated in proportion to their weight: drawing uniformly from it is drawing by weight."""
    total = sum(weight for _, weight in people)
    pool = [user for user, weight in people for _ in range(max(1, round(size * weight / total)))]
    return pool


def activity_counts(rng: random.Random, clients: int, total: int) -> list[int]:
    """A heavy-tailed count per client summing to ``total``: 15% none, most a handful, a few
    hundreds, the largest ~2,000 (capped at 1% of the total)."""
    cap = max(50, min(2000, total // 100))
    raw = [
        0.0 if rng.random() < 0.15 else min(float(cap), 2.0 / (1.0 - rng.random()) ** (1 / 1.15))
        for _ in range(clients)
    ]
    scale = total / sum(raw)
    counts = [min(cap, int(value * scale + rng.random())) if value else 0 for value in raw]
    missing = total - sum(counts)
    candidates = [index for index, count in enumerate(counts) if 0 < count < cap - 1]
    while missing != 0 and candidates:
        index = rng.choice(candidates)
        step = 1 if missing > 0 else -1
        if 0 < counts[index] + step < cap:
            counts[index] += step
            missing -= step
    return counts


async def _insert_staff(
    connection: asyncpg.Connection, tenant: TenantRef, departments: Sequence[Dept], unassigned: int, password_hash: str
) -> tuple[dict[str, int], list[Person], list[tuple[int, float]]]:
    """Departments and staff; (department ids, staff, (user id, client weight))."""
    ids: dict[str, int] = {}
    for dept in departments:
        ids[dept.name] = int(
            await connection.fetchval(
                "INSERT INTO departments (name, parent_id) VALUES ($1, $2) RETURNING id",
                dept.name,
                None if dept.parent is None else ids[dept.parent],
            )
        )
    staff: list[Person] = []
    weights: list[tuple[int, float]] = []
    number = 0
    for dept in departments:
        for position in range(dept.staff):
            number += 1
            role = dept.head_role if position == 0 else dept.role
            zone = dept.zones[position % len(dept.zones)]
            email = f"user{number}.{translit(dept.name)[:12]}@{tenant.slug}.example"
            user_id = int(
                await connection.fetchval(
                    "INSERT INTO users (email, name, password_hash, locale, timezone, role, department_id)"
                    " VALUES ($1, $2, $3, 'ru', $4, $5, $6) RETURNING id",
                    email,
                    f"Сотрудник {number} ({dept.name})",
                    password_hash,
                    zone,
                    role,
                    ids[dept.name],
                )
            )
            staff.append(Person(user_id, email, role, ids[dept.name], zone))
            weight = dept.weight * (0.3 if position == 0 and dept.head_role == "head_of_sales" else 1.0)
            if weight > 0:
                weights.append((user_id, weight * (0.7 + 0.6 * ((number * 7919) % 100) / 100)))
    for n in range(unassigned):
        email = f"new{n}@{tenant.slug}.example"
        user_id = int(
            await connection.fetchval(
                "INSERT INTO users (email, name, password_hash, locale, timezone, role)"
                " VALUES ($1, $2, $3, 'ru', 'Europe/Moscow', 'manager') RETURNING id",
                email,
                f"Новый сотрудник {n}",
                password_hash,
            )
        )
        staff.append(Person(user_id, email, "manager", None, "Europe/Moscow"))
    await connection.executemany(
        "INSERT INTO platform.identities (email, tenant_id, user_id) VALUES ($1, $2, $3)",
        [(person.email, tenant.id, person.user_id) for person in staff],
    )
    return ids, staff, weights


async def fill_company(
    services: Services,
    tenant: TenantRef,
    admin: Person,
    *,
    departments: Sequence[Dept],
    unassigned: int,
    clients: int,
    activities: int,
    tasks: int,
    password_hash: str,
    seed: int,
) -> tuple[Company, list[int]]:
    """Fill one provisioned tenant; return it and the activity count per client (index = id - 1)."""
    rng = random.Random(seed)
    names = Names(rng)
    timings: dict[str, float] = {}
    now = datetime.now(UTC)
    async with services.db.pool.acquire() as connection:
        superuser = bool(await connection.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
        await connection.execute(f'SET search_path = "{tenant.schema}", public')
        await connection.execute("SET maintenance_work_mem = '256MB'")
        await connection.execute("SET synchronous_commit = off")
        if superuser:
            await connection.execute("SET session_replication_role = replica")
        await connection.execute(f"SELECT setseed({(seed % 1000) / 1000})")
        try:
            started = time.perf_counter()
            ids, staff, weights = await _insert_staff(connection, tenant, departments, unassigned, password_hash)
            everyone = [admin.user_id] + [person.user_id for person in staff]
            timings["users"] = time.perf_counter() - started

            started = time.perf_counter()
            dropped: list[tuple[str, str]] = []
            for table in LOADED_TABLES:
                for name, definition in await _secondary_indexes(connection, tenant.schema, table):
                    await connection.execute(f'DROP INDEX "{name}"')
                    dropped.append((name, definition))
            timings["drop indexes"] = time.perf_counter() - started

            # Clients, their relations, their plan.
            started = time.perf_counter()
            owner_pool = _weighted_pool(weights)
            counts = activity_counts(rng, clients, activities)
            drafts: list[ClientDraft] = []
            client_rows: list[tuple[Any, ...]] = []
            spans: list[tuple[datetime | None, datetime | None]] = []
            for index in range(clients):
                client_id = index + 1
                company = rng.random() < 0.6
                if company:
                    name, short, stem, sole_trader = names.company()
                    kind = "person" if sole_trader and rng.random() < 0.3 else "company"
                    domain = f"{stem[:20] or 'firm'}{rng.randint(1, 999) if rng.random() < 0.4 else ''}"
                    domain += rng.choice((".ru", ".ru", ".com", ".su"))
                    local = rng.choice(("info", "sales", "office", "zakaz", "hello", "buh"))
                    tax_id = names.tax_id(12 if sole_trader else 10) if rng.random() < 0.75 else None
                else:
                    kind = "person"
                    name, short, local = names.person()
                    domain = rng.choice(("mail.ru", "yandex.ru", "gmail.com", "bk.ru", "inbox.ru", "outlook.com"))
                    local = f"{local}{rng.randint(1, 99) if rng.random() < 0.5 else ''}"
                    tax_id = names.tax_id(12) if rng.random() < 0.05 else None
                phones = [] if rng.random() < 0.05 else [names.phone()]
                if phones and rng.random() < 0.15:
                    phones.append(names.phone())
                emails = [f"{local}@{domain}".lower()] if rng.random() < 0.55 else []
                responsible = None if rng.random() < 0.02 else rng.choice(owner_pool)
                author = responsible if responsible is not None and rng.random() < 0.85 else rng.choice(everyone)
                created = now - timedelta(days=730 * rng.random())
                n = counts[index]
                status = rng.choices(("lead", "prospect", "client", "former"), (0.3, 0.2, 0.4, 0.1))[0]
                first = last = None
                if n:
                    first = min(now - timedelta(hours=1), created + timedelta(hours=72 * rng.random()))
                    if n == 1:
                        last = first
                    elif status == "former":
                        last = first + (now - first) * (0.6 * rng.random())
                    else:
                        last = first + (now - first) * (1 - rng.random() ** 3)
                spans.append((first, last))
                tags = sorted(set(rng.sample(TAGS, rng.randint(1, 3)))) if rng.random() < 0.3 else []
                custom: dict[str, str] = {}
                if rng.random() < 0.4:
                    custom["channel"] = rng.choice(("website", "referral", "exhibition", "cold_call", "advertising"))
                if company and rng.random() < 0.5:
                    custom["industry"] = rng.choice(("retail", "wholesale", "manufacturing", "services", "it", "other"))
                messengers = (
                    [{"kind": rng.choice(("telegram", "whatsapp")), "handle": phones[0]}]
                    if phones and rng.random() < 0.2
                    else []
                )
                addresses = (
                    [{"kind": "office", "text": f"г. Москва, ул. {rng.choice(RU_SURNAMES)}а, д. {rng.randint(1, 120)}"}]
                    if company and rng.random() < 0.3
                    else []
                )
                birthday = (
                    date(1960 + rng.randrange(45), 1 + rng.randrange(12), 1 + rng.randrange(28))
                    if kind == "person" and rng.random() < 0.2
                    else None
                )
                client_rows.append(
                    (
                        client_id,
                        kind,
                        name,
                        phones,
                        emails,
                        json.dumps(messengers, ensure_ascii=False),
                        json.dumps(addresses, ensure_ascii=False),
                        tax_id,
                        rng.choice(("manual", "manual", "import", "web_form", "call")),
                        status,
                        tags,
                        json.dumps(custom),
                        birthday,
                        responsible,
                        author,
                        first,
                        last,
                        created,
                        max(created, last or created),
                    )
                )
                drafts.append(ClientDraft(client_id, kind, name, short, phones, emails, tax_id, responsible))
            timings["clients (generate)"] = time.perf_counter() - started
            started = time.perf_counter()
            await connection.copy_records_to_table(
                "clients",
                records=client_rows,
                columns=[
                    "id",
                    "kind",
                    "name",
                    "phones",
                    "emails",
                    "messengers",
                    "addresses",
                    "tax_id",
                    "source",
                    "status",
                    "tags",
                    "custom",
                    "birthday",
                    "responsible_id",
                    "author_id",
                    "first_contact_at",
                    "last_contact_at",
                    "created_at",
                    "updated_at",
                ],
                schema_name=tenant.schema,
            )
            await connection.execute("SELECT setval('clients_id_seq', $1)", clients)
            del client_rows

            companies = [draft.id for draft in drafts if draft.kind == "company"]
            rng.shuffle(companies)
            relations: list[tuple[Any, ...]] = []
            pairs: set[tuple[int, int]] = set()
            for draft in drafts:
                if draft.kind != "person" or not companies or rng.random() >= 0.35:
                    continue
                for _ in range(2 if rng.random() < 0.1 else 1):
                    # Squared: the first companies of the shuffled list get dozens of people.
                    company_id = companies[int(len(companies) * rng.random() ** 2)]
                    if (draft.id, company_id) not in pairs:
                        pairs.add((draft.id, company_id))
                        relations.append((len(relations) + 1, draft.id, company_id, rng.choice(POSITIONS)))
            await connection.copy_records_to_table(
                "client_relations",
                records=relations,
                columns=["id", "person_id", "company_id", "position"],
                schema_name=tenant.schema,
            )
            await connection.execute("SELECT setval('client_relations_id_seq', $1)", max(1, len(relations)))
            timings["clients + relations (COPY)"] = time.perf_counter() - started

            # Deals and their stage paths.
            started = time.perf_counter()
            pipeline = await connection.fetchrow("SELECT id FROM pipelines ORDER BY position, id LIMIT 1")
            assert pipeline is not None
            stages = await connection.fetch(
                "SELECT id, kind, probability FROM pipeline_stages WHERE pipeline_id = $1 ORDER BY position, id",
                pipeline["id"],
            )
            open_stages = [row for row in stages if row["kind"] == "open"]
            won_stage = next(row for row in stages if row["kind"] == "won")
            lost_stages = [row for row in stages if row["kind"] == "lost"]
            deal_rows: list[tuple[Any, ...]] = []
            change_rows: list[tuple[Any, ...]] = []
            first_deal: dict[int, int] = {}
            deal_titles = (
                "Поставка оборудования",
                "Годовой контракт",
                "Лицензии 50 шт.",
                "Внедрение CRM",
                "Сервисное обслуживание",
                "Пилотный проект",
                "Оптовая партия",
                "Annual subscription",
                "Консалтинг",
                "Расширение договора",
            )
            for draft, n in zip(drafts, counts, strict=True):
                if rng.random() >= (0.22 if n else 0.05):
                    continue
                many = 3 + rng.randrange(8) if n > 200 else (1 if rng.random() < 0.75 else 2 + rng.randrange(3))
                for _ in range(many):
                    deal_id = len(deal_rows) + 1
                    first_deal.setdefault(draft.id, deal_id)
                    status = rng.choices(("open", "won", "lost"), (0.45, 0.35, 0.2))[0]
                    if status == "open":
                        path = open_stages[: 1 + rng.randrange(len(open_stages))]
                    elif status == "won":
                        path = [*open_stages, won_stage]
                    else:
                        path = [*open_stages[: 1 + rng.randrange(len(open_stages))], rng.choice(lost_stages)]
                    created = now - timedelta(days=700 * rng.random())
                    moments = sorted(created + (now - created) * rng.random() for _ in range(len(path) - 1))
                    moments = [created, *moments]
                    actor = draft.responsible_id or admin.user_id
                    previous = None
                    for stage, moment in zip(path, moments, strict=True):
                        change_rows.append((len(change_rows) + 1, deal_id, previous, stage["id"], moment, actor))
                        previous = stage["id"]
                    last_stage = path[-1]
                    amount = Decimal(round(10 ** (4 + 3 * rng.random()), -2)).quantize(Decimal("0.01"))
                    closed = moments[-1] if status != "open" else None
                    deal_rows.append(
                        (
                            deal_id,
                            f"{rng.choice(deal_titles)} — {draft.short}"[:300],
                            draft.id,
                            pipeline["id"],
                            last_stage["id"],
                            amount,
                            rng.choices(("RUB", "USD", "EUR"), (0.88, 0.08, 0.04))[0],
                            last_stage["probability"],
                            (now + timedelta(days=rng.randrange(-30, 120))).date() if status == "open" else None,
                            status,
                            rng.choice(("Дорого", "Выбрали конкурента", "Нет бюджета")) if status == "lost" else None,
                            closed,
                            draft.responsible_id,
                            draft.responsible_id or admin.user_id,
                            "{}",
                            moments[-1],
                            created,
                            moments[-1],
                        )
                    )
            await connection.copy_records_to_table(
                "deals",
                records=deal_rows,
                columns=[
                    "id",
                    "title",
                    "client_id",
                    "pipeline_id",
                    "stage_id",
                    "amount",
                    "currency",
                    "probability",
                    "expected_close_on",
                    "status",
                    "lost_reason",
                    "closed_at",
                    "responsible_id",
                    "author_id",
                    "custom",
                    "stage_changed_at",
                    "created_at",
                    "updated_at",
                ],
                schema_name=tenant.schema,
            )
            await connection.copy_records_to_table(
                "deal_stage_changes",
                records=change_rows,
                columns=["id", "deal_id", "from_stage_id", "to_stage_id", "changed_at", "actor_id"],
                schema_name=tenant.schema,
            )
            await connection.execute("SELECT setval('deals_id_seq', $1)", max(1, len(deal_rows)))
            await connection.execute("SELECT setval('deal_stage_changes_id_seq', $1)", max(1, len(change_rows)))
            timings["deals + stage changes"] = time.perf_counter() - started

            # The per-client plan: activity count and span, task count, what titles quote.
            started = time.perf_counter()
            client_tasks = round(tasks * 0.85)
            raw_tasks = [1 + 0.5 * n for n in counts]
            scale = client_tasks / sum(raw_tasks)
            task_counts = [int(value * scale + rng.random()) for value in raw_tasks]
            await connection.execute(
                "CREATE TEMP TABLE bench_plan (client_id int, n_acts int, n_tasks int, first_at timestamptz,"
                " last_at timestamptz, responsible_id int, phone varchar, deal_id int, short varchar)"
            )
            await connection.copy_records_to_table(
                "bench_plan",
                records=[
                    (
                        draft.id,
                        n,
                        task_counts[index],
                        span[0],
                        span[1],
                        draft.responsible_id,
                        draft.phones[0] if draft.phones else None,
                        first_deal.get(draft.id),
                        draft.short[:80],
                    )
                    for index, (draft, n, span) in enumerate(zip(drafts, counts, spans, strict=True))
                ],
            )
            timings["plan"] = time.perf_counter() - started

            started = time.perf_counter()
            await connection.execute(ACTIVITIES_SQL, everyone)
            timings["activities (INSERT … SELECT)"] = time.perf_counter() - started
            started = time.perf_counter()
            await connection.execute(TASKS_SQL, everyone, owner_pool, tasks - sum(task_counts))
            timings["tasks (INSERT … SELECT)"] = time.perf_counter() - started
            await connection.execute("DROP TABLE bench_plan")

            started = time.perf_counter()
            for _, definition in dropped:
                await connection.execute(definition)
            timings["rebuild indexes"] = time.perf_counter() - started
        finally:
            await connection.execute("RESET session_replication_role")
            await connection.execute("RESET synchronous_commit")
            await connection.execute("RESET maintenance_work_mem")
            await connection.execute("RESET search_path")
    started = time.perf_counter()
    for table in ("departments", "users", *LOADED_TABLES):
        await services.db.pool.execute(f'VACUUM ANALYZE "{tenant.schema}"."{table}"')
    timings["VACUUM ANALYZE"] = time.perf_counter() - started
    filled = Company(tenant, admin, staff, ids, timings)
    filled.counts = {
        table: int(await services.db.pool.fetchval(f'SELECT count(*) FROM "{tenant.schema}"."{table}"'))
        for table in ("users", *LOADED_TABLES)
    }
    return filled, counts


async def provision(services: Services, edition: str, company: str) -> tuple[TenantRef, Person]:
    slug = f"bench-{edition[:3]}-{random.randrange(16**8):08x}"
    email = f"owner@{slug}.example"
    provisioned = await provision_tenant(
        services.db,
        services.editions,
        SignupRequest(
            company=company,
            slug=slug,
            edition=edition,
            admin_email=email,
            admin_password=BENCH_PASSWORD,
            admin_name="Ольга Петрова",
            locale="ru",
            timezone="Europe/Moscow",
        ),
    )
    admin = Person(provisioned.admin_user_id, email, "admin", None, "Europe/Moscow")
    return provisioned.tenant, admin


async def build_world(services: Services, sizes: Sizes, *, seed: int = SEED, verbose: bool = True) -> World:
    """Sign the companies up and fill them; return what the benchmarks probe."""
    started = time.perf_counter()
    password_hash = await hash_password(BENCH_PASSWORD)
    small: list[Company] = []
    for index in range(sizes.small_tenants):
        tenant, admin = await provision(services, "business", f"Малая компания {index + 1}")
        company, _ = await fill_company(
            services,
            tenant,
            admin,
            departments=SMALL_DEPARTMENTS,
            unassigned=0,
            clients=sizes.small_clients,
            activities=sizes.small_clients * 10,
            tasks=sizes.small_clients * 5 // 2,
            password_hash=password_hash,
            seed=seed + 1 + index,
        )
        small.append(company)
        if verbose:
            print(f"  small company {tenant.slug}: {company.counts} in {sum(company.timings.values()):.1f} s")
    tenant, admin = await provision(services, "enterprise", "Большая Компания")
    big, counts = await fill_company(
        services,
        tenant,
        admin,
        departments=BIG_DEPARTMENTS,
        unassigned=BIG_UNASSIGNED,
        clients=sizes.clients,
        activities=sizes.activities,
        tasks=sizes.tasks,
        password_hash=password_hash,
        seed=seed,
    )
    settle_seconds = await settle(services.db.pool)
    big.timings["CHECKPOINT"] = settle_seconds
    director = next(p for p in big.staff if p.department_id == big.departments[DIRECTOR_DEPARTMENT])
    line = [p for p in big.staff if p.department_id == big.departments[LINE_DEPARTMENT]]
    line_head, manager = line[0], line[1]
    assert director.role == line_head.role == "head_of_sales" and manager.role == "manager"
    ranked = sorted(range(len(counts)), key=lambda index: -counts[index])
    world = World(
        big=big,
        small=small,
        director=director,
        line_head=line_head,
        manager=manager,
        heavy_clients=[index + 1 for index in ranked[: max(10, len(counts) // 100)]],
        activity_counts={index + 1: count for index, count in enumerate(counts)},
        seconds=time.perf_counter() - started,
    )
    if verbose:
        await describe(services, world)
    return world


async def describe(services: Services, world: World) -> None:
    """Print the fill's timings and the shape of the big company."""
    big = world.big
    pool = services.db.pool
    schema = big.tenant.schema
    print(f"  big company {big.tenant.slug} ({big.tenant.edition}), schema {schema}:")
    print("    rows: " + ", ".join(f"{table} {count:,}" for table, count in big.counts.items()))
    print("    fill: " + "; ".join(f"{phase} {seconds:.1f} s" for phase, seconds in big.timings.items()))
    print(f"    whole world built in {world.seconds:.1f} s")
    counts = sorted(world.activity_counts.values())
    share = sum(1 for count in counts if count >= 100) / len(counts)
    print(
        f"    activities per client: median {counts[len(counts) // 2]}, p90 {counts[int(len(counts) * 0.9)]},"
        f" p99 {counts[int(len(counts) * 0.99)]}, max {counts[-1]}; none {counts.count(0) / len(counts):.0%};"
        f" >= 100: {share:.1%}"
    )
    sizes = await pool.fetch(
        "SELECT c.relname, pg_size_pretty(pg_total_relation_size(c.oid)) AS size FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = ANY($2::text[])"
        " ORDER BY pg_total_relation_size(c.oid) DESC",
        schema,
        list(LOADED_TABLES),
    )
    print("    sizes with indexes: " + ", ".join(f"{row['relname']} {row['size']}" for row in sizes))
    load = await pool.fetchrow(
        f"""
        WITH window_tasks AS (
            SELECT t.assignee_id, (t.due_at AT TIME ZONE u.timezone)::date AS day
            FROM "{schema}".tasks t JOIN "{schema}".users u ON u.id = t.assignee_id
            WHERE t.due_at >= date_trunc('week', now()) AND t.due_at < date_trunc('week', now()) + interval '21 days'
              AND t.status <> 'cancelled'
        ), per_day AS (
            SELECT assignee_id, day, count(*) AS n FROM window_tasks
            WHERE extract(isodow FROM day) < 6 GROUP BY assignee_id, day
        )
        SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY n) AS median, max(n) AS top, min(n) AS least,
               count(DISTINCT assignee_id) AS people,
               (SELECT count(*) FROM window_tasks) AS total
        FROM per_day
        """
    )
    assert load is not None
    print(
        f"    planner window (this week + 2): {load['total']:,} tasks of {load['people']} employees;"
        f" per employee and weekday median {load['median']}, min {load['least']}, max {load['top']}"
    )
    mine = await pool.fetchval(
        f"SELECT count(*) FROM \"{schema}\".tasks WHERE assignee_id = $1 AND status <> 'cancelled'"
        " AND due_at >= date_trunc('week', now()) AND due_at < date_trunc('week', now()) + interval '21 days'",
        world.manager.user_id,
    )
    print(f"    the measured manager (user {world.manager.user_id}) has {mine} tasks in the window")


async def run(sizes: Sizes) -> None:
    async with bench_database() as database:
        services = await open_bench_services(database, pool_max=4)
        try:
            load = " ".join(f"{value:.2f}" for value in os.getloadavg())
            print(f"PostgreSQL {await server_version(services.db.pool)}; {os.cpu_count()} CPUs; load average {load}")
            await build_world(services, sizes)
            load = " ".join(f"{value:.2f}" for value in os.getloadavg())
            print(f"Load average at the end: {load}")
        finally:
            await services.db.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.crm_data", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK.clients:,} clients, to smoke-test the generator")
    args = parser.parse_args()
    asyncio.run(run(QUICK if args.quick else FULL))


if __name__ == "__main__":
    main()
