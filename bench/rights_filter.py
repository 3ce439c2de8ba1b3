"""Rights filtering: what a ``department`` (and an ``own``) scope adds to listing 100,000 clients, against ``all``.

    .venv/bin/python -m bench.rights_filter [--quick] [--clients N] [--requests N]

Setup. One tenant signed up with ``provision_tenant``, so its schema is the current one,
indexes included (``clients_pkey``, ``clients_name``, ``clients_responsible_id``,
``clients_author_id`` and the rest of ``CLIENT_DDL``; the run lists them and stops if
the two owner indexes are missing). A department tree of 11 (3 top-level departments
with 2-3 sub-departments each), 59 staff users spread over it plus the admin (60 users),
and N stand-in client rows (one ``INSERT … SELECT generate_series``, seeded
``random()``): Russian and English company and person names, 2% without a responsible,
the rest spread uniformly over the 60 users; the author is the responsible for 85% of
the rows, else a user drawn uniformly. Then VACUUM ANALYZE and CHECKPOINT.

Measured. The page query of the clients list (``crm/tenants/clients/_listing.py``),
without its filters and without ``with_relations``: inside ``read_in_tenant`` (the
transaction and search_path of a request), ``records_in_scope(principal, "clients",
"read", *OWNERS)`` (owners: responsible and author, as ``clients_in_scope``) then
``page_query(Client.select(*READ_COLUMNS).where(condition), ordering, cursor, 50)
.output(load_json=True).run()``, then ``page_of``. Hand-built principals: (a) the admin
with ``clients.read = all``; (b) the head of "Customer success" with ``clients.read =
department``, whose subtree (4 departments, 13 users) owns or authored ~24% of the
clients; (c) a Sales North user with ``clients.read = own``, responsible for or author
of ~2%. The rows each principal sees are checked against plain SQL. Cases: sort by id and
by name, each the first page, page 21 (20 cursors followed; page 6 with --quick) and the
page after the middle of what the principal sees. In each case (a), (b) and (c) are
interleaved request by request, the order reversing every request. The pool has one
connection, so every request runs on the same server backend. Reported: p50/p95 of the
whole unit and of the page query alone, and the p50 ratio to (a); goal for (b) < 1.3x.
Then EXPLAIN (ANALYZE, BUFFERS) of (b)'s and (c)'s queries in each case ((a) in one
line), and how often the cached statements used generic plans.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from piccolo.columns.combination import Combinable
from piccolo.query import Select

from bench.common import bench_database, ms, open_bench_services, p50_p95, percentile, server_version, settle
from bench.provisioning import signup_request
from crm.platform.auth import Principal
from crm.platform.listing import Ordering, page_of, page_query
from crm.platform.services import Services
from crm.platform.signup import provision_tenant
from crm.platform.tenancy import TenantRef, read_in_tenant, scope_connection, tenant_scope
from crm.tenants.clients._listing import CLIENT_LIST
from crm.tenants.clients._read import OWNERS, READ_COLUMNS
from crm.tenants.clients.tables import Client
from crm.tenants.users.scopes import records_in_scope
from crm.tenants.users.tables import Department, User

LIMIT = 50
GOAL = 1.3
# Without these the ``own`` case would walk an index of the sort order and filter.
OWNER_INDEXES = ("clients_responsible_id", "clients_author_id")

# (department, parent, staff in it); the measured principals head "Customer success" and
# work in "Sales North".
DEPARTMENTS: tuple[tuple[str, str | None, int], ...] = (
    ("Sales", None, 3),
    ("Sales North", "Sales", 9),
    ("Sales South", "Sales", 9),
    ("Key accounts", "Sales", 6),
    ("Customer success", None, 2),
    ("Onboarding", "Customer success", 4),
    ("Support", "Customer success", 4),
    ("Renewals", "Customer success", 3),
    ("Marketing", None, 2),
    ("Digital", "Marketing", 5),
    ("Events", "Marketing", 4),
)
UNASSIGNED_STAFF = 8  # users not (yet) in any department; with the admin, 60 users
SCOPED_DEPARTMENT = "Customer success"
OWN_DEPARTMENT = "Sales North"

FILL_SQL = """
INSERT INTO clients (kind, name, phones, emails, status, responsible_id, author_id, created_at, updated_at)
SELECT CASE WHEN g.company THEN 'company' ELSE 'person' END,
       CASE WHEN g.company
            THEN (ARRAY['ООО «', 'АО «', 'ИП «', '', ''])[1 + floor(g.r1 * 5)::int]
                 || (ARRAY['Северный', 'Южный', 'Bright', 'Global', 'Новый', 'Первый', 'Green', 'Альфа',
                           'Nordic', 'Восток', 'Blue', 'Сибирский'])[1 + floor(g.r2 * 12)::int] || ' '
                 || (ARRAY['ветер', 'Logistics', 'строй', 'Trading', 'мир', 'Systems', 'торг', 'Foods',
                           'лес', 'Partners', 'сервис', 'Media'])[1 + floor(g.r3 * 12)::int]
                 || ' ' || (1 + floor(g.r4 * 999)::int)
                 || CASE WHEN g.r1 < 0.6 THEN '»' ELSE '' END
            ELSE (ARRAY['Анна', 'Daniel', 'Ольга', 'Maria', 'Иван', 'Peter', 'Елена', 'Sophie', 'Сергей',
                        'Tomas', 'Наталья', 'Alex', 'Дмитрий', 'Eva', 'Михаил', 'Lena'])[1 + floor(g.r2 * 16)::int]
                 || ' '
                 || (ARRAY['Кузнецова', 'Novak', 'Смирнов', 'Schmidt', 'Иванова', 'Brown', 'Попов', 'Dubois',
                           'Соколова', 'Rossi', 'Лебедев', 'Jensen', 'Козлова', 'Garcia', 'Морозов',
                           'Nowak'])[1 + floor(g.r3 * 16)::int]
       END,
       ARRAY['+7' || (9000000000 + g.n)::text],
       CASE WHEN g.r4 < 0.3 THEN ARRAY[]::varchar[] ELSE ARRAY['client' || g.n || '@example.ru'] END,
       (ARRAY['lead', 'prospect', 'client', 'former'])[1 + floor(g.r5 * 4)::int],
       g.responsible,
       CASE WHEN g.responsible IS NOT NULL AND g.r8 < 0.85 THEN g.responsible
            ELSE ($2::int[])[1 + floor(g.r9 * cardinality($2::int[]))::int] END,
       now() - make_interval(mins => $1 - g.n),
       now() - make_interval(mins => ($1 - g.n) / 2)
FROM (
    SELECT *, CASE WHEN r6 < 0.02 THEN NULL ELSE ($2::int[])[1 + floor(r7 * cardinality($2::int[]))::int] END
              AS responsible
    FROM (
        SELECT n, random() < 0.6 AS company, random() AS r1, random() AS r2, random() AS r3, random() AS r4,
               random() AS r5, random() AS r6, random() AS r7, random() AS r8, random() AS r9
        FROM generate_series(1, $1) AS n
    ) AS drawn
    OFFSET 0
) AS g
"""


@dataclass(frozen=True)
class Sizes:
    clients: int
    requests: int  # measured requests of each kind per case
    warmup: int
    deep_page: int  # the page reached by following cursors


FULL = Sizes(clients=100_000, requests=300, warmup=20, deep_page=21)
# 20,000 so that (c) own (~2%, ~380 rows) still has a full page 6 and a full page after its middle.
QUICK = Sizes(clients=20_000, requests=30, warmup=5, deep_page=6)


@dataclass(frozen=True)
class Kind:
    key: str
    label: str
    who: Principal


@dataclass(frozen=True)
class World:
    tenant: TenantRef
    kinds: list[Kind]  # (a) all, (b) department, (c) own
    subtree: list[int]  # the department principal's departments
    expected: dict[str, int]  # clients each kind should see, counted by plain SQL


@dataclass(frozen=True)
class Sample:
    total: float  # read_in_tenant end to end, page_of included
    scope: float  # records_in_scope (Python only now: no query of its own)
    query: float  # the page query


@dataclass(frozen=True)
class Case:
    label: str
    sort: str
    cursors: dict[str, str | None]  # by principal kind


# --- setup -------------------------------------------------------------------------------------


def principal(tenant: TenantRef, user_id: int, department_id: int | None, scope: str) -> Principal:
    return Principal(
        tenant=tenant,
        user_id=user_id,
        email=f"user{user_id}@bench.example",
        name=f"User {user_id}",
        locale="en",
        timezone="UTC",
        role=f"bench-{scope}",
        token_id=0,
        department_id=department_id,
        rights={"clients": {"read": scope}},
    )


# What each scope should see, written without records_in_scope (the subtree, computed
# here on its own, passed as $2).
_SUBTREE = (
    "WITH RECURSIVE subtree AS (SELECT id FROM departments WHERE id = $1"
    " UNION ALL SELECT d.id FROM departments d JOIN subtree s ON d.parent_id = s.id) SELECT id FROM subtree"
)
_EXPECTED_DEPARTMENT = (
    "SELECT count(*) FROM clients WHERE responsible_id = $1 OR author_id = $1"
    " OR responsible_id IN (SELECT id FROM users WHERE department_id = ANY($2::int[]))"
    " OR author_id IN (SELECT id FROM users WHERE department_id = ANY($2::int[]))"
)
_EXPECTED_OWN = "SELECT count(*) FROM clients WHERE responsible_id = $1 OR author_id = $1"


async def build_world(services: Services, sizes: Sizes) -> World:
    provisioned = await provision_tenant(services.db, services.editions, signup_request())
    tenant = provisioned.tenant
    async with tenant_scope(tenant):
        ids: dict[str, int] = {}
        for name, parent, _ in DEPARTMENTS:
            rows = await Department.insert(
                Department(name=name, parent_id=None if parent is None else ids[parent])
            ).returning(Department.id)
            ids[name] = int(rows[0]["id"])
        staff = [
            User(
                email=f"{name.lower().replace(' ', '.')}.{n}@bench.example", name=f"{name} {n}", department_id=ids[name]
            )
            for name, _, count in DEPARTMENTS
            for n in range(count)
        ]
        staff += [User(email=f"new.{n}@bench.example", name=f"New hire {n}") for n in range(UNASSIGNED_STAFF)]
        for user in staff:
            user.password_hash = "x"
        await User.insert(*staff)
        users = await User.select(User.id, User.department_id).order_by(User.id).run()
        head = next(row["id"] for row in users if row["department_id"] == ids[SCOPED_DEPARTMENT])
        seller = next(row["id"] for row in users if row["department_id"] == ids[OWN_DEPARTMENT])
        connection = scope_connection()
        await connection.execute("SELECT setseed(0.42)")
        started = time.perf_counter()
        await connection.execute(FILL_SQL, sizes.clients, [row["id"] for row in users])
        fill = time.perf_counter() - started
    pool = services.db.pool
    started = time.perf_counter()
    for table in ("departments", "users", "clients"):
        await pool.execute(f'VACUUM ANALYZE "{tenant.schema}"."{table}"')
    vacuum = time.perf_counter() - started
    checkpoint = await settle(pool)
    indexes = await pool.fetch(
        "SELECT c.relname, pg_size_pretty(pg_relation_size(c.oid)) AS size"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid"
        " JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = $1 AND t.relname = 'clients'"
        " ORDER BY c.relname",
        tenant.schema,
    )
    names = [str(row["relname"]) for row in indexes]
    missing = [index for index in OWNER_INDEXES if index not in names]
    assert not missing, f"the tenant schema lacks {missing}: provision_tenant no longer builds the current DDL?"
    heap = await pool.fetchval(
        "SELECT pg_size_pretty(pg_relation_size(format('%I.clients', $1::text)::regclass))", tenant.schema
    )
    print(
        f"  {len(DEPARTMENTS)} departments, {len(users)} users, {sizes.clients:,} clients filled in {fill:.1f} s;"
        f" VACUUM ANALYZE {vacuum:.1f} s; CHECKPOINT {checkpoint:.1f} s"
    )
    print(f"  clients heap {heap}; its indexes: " + ", ".join(f"{row['relname']} {row['size']}" for row in indexes))

    async def facts() -> tuple[list[int], int, int]:
        connection = scope_connection()
        subtree = [row["id"] for row in await connection.fetch(_SUBTREE, ids[SCOPED_DEPARTMENT])]
        department = int(await connection.fetchval(_EXPECTED_DEPARTMENT, head, subtree))
        own = int(await connection.fetchval(_EXPECTED_OWN, seller))
        return subtree, department, own

    subtree, department_count, own_count = await read_in_tenant(tenant, facts)
    kinds = [
        Kind("all", "(a) all", principal(tenant, provisioned.admin_user_id, None, "all")),
        Kind("department", "(b) department", principal(tenant, head, ids[SCOPED_DEPARTMENT], "department")),
        Kind("own", "(c) own", principal(tenant, seller, ids[OWN_DEPARTMENT], "own")),
    ]
    expected = {"all": sizes.clients, "department": department_count, "own": own_count}
    return World(tenant, kinds, subtree, expected)


# --- the listing ---------------------------------------------------------------------------------


async def client_scope(who: Principal) -> Combinable:
    """What the clients list adds (``clients_in_scope`` in ``crm/tenants/clients/_read.py``)."""
    return await records_in_scope(who, "clients", "read", *OWNERS)


def client_query(condition: Combinable, ordering: Ordering, cursor: str | None) -> Select:
    return page_query(Client.select(*READ_COLUMNS).where(condition), ordering, cursor, LIMIT).output(load_json=True)


async def list_clients(kind: Kind, ordering: Ordering, cursor: str | None) -> tuple[list[int], str | None, Sample]:
    """One page as the clients list queries it; (ids on it, next cursor, timings)."""
    marks: list[float] = []

    async def page() -> list[dict[str, Any]]:
        marks.append(time.perf_counter())
        condition = await client_scope(kind.who)
        marks.append(time.perf_counter())
        rows: list[dict[str, Any]] = await client_query(condition, ordering, cursor).run()
        marks.append(time.perf_counter())
        return rows

    started = time.perf_counter()
    rows = await read_in_tenant(kind.who.tenant, page)
    items, after = page_of(rows, ordering, LIMIT)
    total = time.perf_counter() - started
    return [item["id"] for item in items], after, Sample(total, marks[-2] - marks[-3], marks[-1] - marks[-2])


async def visible_count(kind: Kind) -> int:
    async def count() -> int:
        return int(await Client.count().where(await client_scope(kind.who)).run())

    return await read_in_tenant(kind.who.tenant, count)


async def cursor_after_page(kind: Kind, ordering: Ordering, pages: int) -> str | None:
    """The cursor a client holds after following ``pages`` pages."""
    cursor = None
    for page in range(pages):
        _, cursor, _ = await list_clients(kind, ordering, cursor)
        assert cursor is not None, f"{kind.key} sees only {page + 1} pages, fewer than {pages + 1}"
    return cursor


async def cursor_at_middle(kind: Kind, ordering: Ordering) -> str | None:
    """A cursor pointing just past the middle row of what ``kind`` sees in this order."""
    middle = await visible_count(kind) // 2

    async def row() -> list[dict[str, Any]]:
        query = client_query(await client_scope(kind.who), ordering, None).limit(1).offset(middle)
        found: list[dict[str, Any]] = await query.run()
        return found

    found = await read_in_tenant(kind.who.tenant, row)
    return page_of([*found, *found], ordering, 1)[1]


# --- measuring -------------------------------------------------------------------------------


async def measure(kinds: list[Kind], case: Case, sizes: Sizes) -> dict[str, list[Sample]]:
    ordering = CLIENT_LIST.ordering(case.sort)
    samples: dict[str, list[Sample]] = {kind.key: [] for kind in kinds}
    for index in range(sizes.warmup + sizes.requests):
        for kind in kinds if index % 2 == 0 else kinds[::-1]:
            ids, _, sample = await list_clients(kind, ordering, case.cursors[kind.key])
            assert len(ids) == LIMIT, f"{case.label}: {kind.key} got {len(ids)} rows"
            if index >= sizes.warmup:
                samples[kind.key].append(sample)
    return samples


def report(kinds: list[Kind], case: Case, samples: dict[str, list[Sample]]) -> dict[str, float]:
    """Print the case; return the p50 ratio of each kind to (a) ``all``."""
    base = samples["all"]
    base_total, base_query = [s.total for s in base], [s.query for s in base]
    print(f"\n  {case.label} (sort={case.sort})")
    ratios: dict[str, float] = {}
    for kind in kinds:
        mine = samples[kind.key]
        total, query = [s.total for s in mine], [s.query for s in mine]
        print(f"    {kind.label:16} whole unit {p50_p95(total)}   page query {p50_p95(query)}")
        if kind.key == "all":
            continue
        ratios[kind.key] = ratio = percentile(total, 50) / percentile(base_total, 50)
        paired = statistics.median(y.total - x.total for x, y in zip(base, mine, strict=True))
        print(
            f"      {kind.key}/all: whole unit p50 {ratio:5.2f}x  p95"
            f" {percentile(total, 95) / percentile(base_total, 95):5.2f}x; page query p50"
            f" {percentile(query, 50) / percentile(base_query, 50):5.2f}x; median paired difference {ms(paired)};"
            f" scope condition built in p50 {ms(percentile([s.scope for s in mine], 50))}"
            f"   -> {verdict(ratio)} (< {GOAL}x)"
        )
    return ratios


async def explain(kind: Kind, case: Case) -> list[str]:
    ordering = CLIENT_LIST.ordering(case.sort)

    async def plan() -> list[str]:
        query = client_query(await client_scope(kind.who), ordering, case.cursors[kind.key])
        sql, args = query.querystrings[0].compile_string()
        rows = await scope_connection().fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
        return [str(row[0]) for row in rows]

    return await read_in_tenant(kind.who.tenant, plan)


async def cached_plans(services: Services) -> Sequence[Any]:
    """How the pool's one connection planned the cached page statements so far."""
    rows: Sequence[Any] = await services.db.pool.fetch(
        "SELECT generic_plans, custom_plans, statement FROM pg_prepared_statements"
        " WHERE statement LIKE 'SELECT %FROM \"clients\"%LIMIT 51'"
        " ORDER BY statement"
    )
    return rows


def verdict(ratio: float) -> str:
    return "met" if ratio < GOAL else "MISSED"


def summary(plan: list[str]) -> str:
    """The outer plan's nodes (down to its first sub-plan), rows its filter removed, execution time."""
    outer = plan[: next((i for i, line in enumerate(plan) if line.strip().startswith(("SubPlan", "CTE "))), None)]
    nodes = [line.strip().removeprefix("->  ").split("  (")[0] for line in outer if "(cost=" in line]
    removed = sum(int(line.split(":")[1]) for line in outer if line.strip().startswith("Rows Removed by Filter"))
    execution = next((line.strip() for line in plan if line.startswith("Execution Time")), "")
    return f"{' > '.join(nodes)}; rows removed by filter {removed}; {execution}"


_SUBTREE_SELECT = re.compile(
    r'"(\w+)" IN \(WITH RECURSIVE subtree AS \(SELECT id FROM departments WHERE id = (\$\d+).*?department_id = s\.id\)'
)


def shorter(statement: str) -> str:
    """A cached statement from its WHERE on, the subtree sub-selects abbreviated."""
    text = " ".join(statement.split())
    text = text[text.find(" WHERE ") + 1 :]
    text = _SUBTREE_SELECT.sub(r"\1 IN <users of subtree(\2)>", text)
    return text.replace('"clients".', "")


async def run(sizes: Sizes) -> None:
    async with bench_database() as database:
        # One connection: every request runs on it in turn, and its cached statements can be inspected.
        services = await open_bench_services(database, pool_max=1)
        try:
            load = " ".join(f"{value:.2f}" for value in os.getloadavg())
            print(f"PostgreSQL {await server_version(services.db.pool)}; {os.cpu_count()} CPUs; load average {load}")
            world = await build_world(services, sizes)
            kinds = world.kinds
            seen = {kind.key: await visible_count(kind) for kind in kinds}
            assert seen == world.expected, f"records_in_scope sees {seen}, plain SQL {world.expected}"
            everyone = seen["all"]
            print(
                f"  (a) all sees {everyone:,} clients; (b) department ({SCOPED_DEPARTMENT}, subtree"
                f" {len(world.subtree)} departments) sees {seen['department']:,} = {seen['department'] / everyone:.1%};"
                f" (c) own ({OWN_DEPARTMENT} user) sees {seen['own']:,} = {seen['own'] / everyone:.1%}"
            )
            cases: list[Case] = []
            for sort in ("id", "name"):
                ordering = CLIENT_LIST.ordering(sort)
                first: dict[str, str | None] = {kind.key: None for kind in kinds}
                deep = {kind.key: await cursor_after_page(kind, ordering, sizes.deep_page - 1) for kind in kinds}
                middle = {kind.key: await cursor_at_middle(kind, ordering) for kind in kinds}
                cases += [
                    Case("first page", sort, first),
                    Case(f"page {sizes.deep_page} (cursor followed)", sort, deep),
                    Case("page after the middle (cursor)", sort, middle),
                ]
            print(
                f"\nList latency, {LIMIT} per page, {sizes.requests} requests of each kind per case, interleaved"
                " (order a b c, then c b a)"
            )
            ratios = {
                f"{case.label}, sort={case.sort}": report(kinds, case, await measure(kinds, case, sizes))
                for case in cases
            }
            print("\nEXPLAIN (ANALYZE, BUFFERS) of (b) department's and (c) own's page queries; (a) in one line:")
            for case in cases:
                print(f"\n  {case.label}, sort={case.sort}")
                for kind in kinds[1:]:
                    print(f"    {kind.label}:")
                    plan = await explain(kind, case)
                    for line in plan:
                        print(f"      {line}")
                    print(f"      = {summary(plan)}")
                print(f"    (a) all: {summary(await explain(kinds[0], case))}")
            print("\nCached page statements on the connection: plans used (generic / custom)")
            for row in await cached_plans(services):
                print(f"  {row['generic_plans']:4} / {row['custom_plans']:<4} {shorter(str(row['statement']))}")
            load = " ".join(f"{value:.2f}" for value in os.getloadavg())
            print(f"\nLoad average at the end: {load}")
            print(f"Goal: department / all < {GOAL}x (p50 of the whole listing unit); own / all for comparison")
            print(f"  {'':45} {'(b) dept/all':>12} {'(c) own/all':>12}")
            for label, ratio in ratios.items():
                b, c = ratio["department"], ratio["own"]
                print(f"  {label:45} {b:11.2f}x {c:11.2f}x  {verdict(b)} / {verdict(c)}")
        finally:
            await services.db.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rights_filter", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK.clients:,} clients, to smoke-test the benchmark")
    parser.add_argument("--clients", type=int, default=None, help=f"client rows (default {FULL.clients:,})")
    parser.add_argument("--requests", type=int, default=None, help="measured requests of each kind per case")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    sizes = replace(sizes, clients=args.clients or sizes.clients, requests=args.requests or sizes.requests)
    asyncio.run(run(sizes))


if __name__ == "__main__":
    main()
