"""Importing a 100,000-row CSV of clients through ``POST /api/v1/imports``, in-process: upload to done,
against a bare COPY of the same rows.

    .venv/bin/python -m bench.import_csv [--quick] [--rows N] [--encoding cp1251|utf-8] [--world full|none]
                                         [--no-what-if | --only-what-if]

The file is what a Russian company exports from Excel: ``Название;Телефон;E-mail;ИНН;Статус;Теги``,
semicolons, CRLF, Windows-1251 (or UTF-8 with BOM). Names from ``bench/crm_data.py``'s name
parts; phones in mixed local formats (``8 (912) 345-67-89``, ``+7 912 345 67 89``,
``89123456789``, ``9123456789``, ``8-495-…``, two in one cell); e-mails for half, some in
capitals; tax ids; statuses in Russian (blank for some); tags. ~2% bad rows (no name, a
phone too short, an e-mail without a domain or an @, a 3-digit tax id, an unknown status)
and ~3% duplicates (half repeat the phone of a client already in the company, half the
phone or e-mail of an earlier row of the file); every other phone, e-mail and tax id is
new, so the expected outcome is known exactly and checked.

By default the file goes into the big company of ``bench/crm_data.py`` (200,000 clients,
so the duplicate check runs against a full table; ``--world none``: a fresh company).
The app runs in-process (``create_app(settings, services=services)`` with its lifespan,
so its TimerRunner runs the import job) and is called through ``httpx.ASGITransport``.
Timed: the upload request (``POST /api/v1/imports``, multipart; it parses the file to count
rows and stores it), then polling ``GET /api/v1/imports/{id}`` every 0.5 s until done;
wall time from the start of the upload to ``finished_at``. Phases, by wrapping the
runner's functions for the run: reading the CSV, ``parse_row``, the duplicate check,
``record_audit_many``, ``_import_batch`` in all and each batch's transaction; and every
asyncpg call timed by statement.

Baseline in the same run: the same rows already normalised (E.164 phones, lower-case
e-mails, statuses and tags as the import stores them), ``COPY``-ed with asyncpg
``copy_records_to_table`` into a scratch table ``(LIKE clients INCLUDING DEFAULTS)`` and
into one ``INCLUDING ALL`` (the clients indexes: trigram GIN and GiST, GINs on phones,
e-mails, tags and custom, …), median of 3 each. Goal: the import under 60 s.

After the import: EXPLAIN ANALYZE of the runner's duplicate check for one batch's keys
(``runner.DUPLICATES_SQL``). Then, unless ``--no-what-if``, a what-if that is NOT the
product: a second file of new rows imported while the runner's scope connection inserts
each batch with COPY (``copy_records_to_table`` of the same records) instead of
``INSERT … SELECT FROM jsonb_populate_recordset``. ``--only-what-if`` skips the product's
import, so the what-if runs against the same 200,000 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import os
import random
import statistics
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

import crm.tenants.imports.runner as runner
import crm.tenants.imports.services as import_services
from bench.common import bench_database, open_bench_services, server_version, settle
from bench.crm_core import load, login, served, tracing
from bench.crm_data import FULL as FULL_WORLD
from bench.crm_data import QUICK as QUICK_WORLD
from bench.crm_data import Names, Person, build_world, provision
from crm.platform.app import create_app
from crm.platform.services import Services
from crm.platform.tenancy import TenantRef
from crm.tenants.imports.csvfile import kind_of

GOAL_SECONDS = 60.0
POLL_SECONDS = 0.5
BAD_SHARE = 0.02
DUPLICATE_SHARE = 0.03
HEADER = ["Название", "Телефон", "E-mail", "ИНН", "Статус", "Теги"]
STATUS_WORDS = {"client": "Клиент", "lead": "Лид", "prospect": "Потенциальный", "former": "Бывший"}
IMPORT_TAGS = ("опт", "vip", "выставка 2026", "розница", "дилер", "регионы")
BASELINE_COLUMNS = ["id", "kind", "name", "phones", "emails", "tax_id", "status", "source", "tags", "responsible_id"]


@dataclass(frozen=True)
class Sizes:
    rows: int
    world: str  # full | none
    what_if: bool = True  # a second import that inserts each batch with COPY (not the product)
    product: bool = True  # the import as the product runs it


@dataclass
class Generated:
    content: bytes
    utf8_size: int
    rows: int
    bad: int
    duplicates_existing: int
    duplicates_in_file: int
    normalised: list[tuple[Any, ...]]  # every row as the import would store it (bad ones as intended)

    @property
    def expected_created(self) -> int:
        return self.rows - self.bad - self.duplicates_existing - self.duplicates_in_file


def local_format(rng: random.Random, phone: str) -> str:
    """One way people type ``phone`` (+7XXXXXXXXXX) in a Russian spreadsheet."""
    d = phone.removeprefix("+7")
    return rng.choice(
        (
            f"8 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}",
            f"+7 {d[:3]} {d[3:6]} {d[6:8]} {d[8:]}",
            f"8{d}",
            d,
            f"8-{d[:3]}-{d[3:6]}-{d[6:8]}-{d[8:]}",
            f"+7({d[:3]}){d[3:6]}-{d[6:8]}-{d[8:]}",
            phone,
        )
    )


def generate_csv(
    rows: int,
    *,
    encoding: str,
    existing_phones: set[str],
    existing_emails: set[str],
    existing_tax_ids: set[str],
    owner_id: int,
    seed: int = 777,
) -> Generated:
    rng = random.Random(seed)
    names = Names(rng)
    names.used_phones |= existing_phones
    emails_used = set(existing_emails)
    tax_used = set(existing_tax_ids)
    existing = sorted(existing_phones)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADER)
    normalised: list[tuple[Any, ...]] = []
    kept: list[tuple[str, list[str], list[str]]] = []  # earlier good rows: (name, phones, emails)
    bad = dup_existing = dup_file = 0
    for index in range(rows):
        company = rng.random() < 0.6
        if company:
            name, _, stem, sole_trader = names.company()
            local, domain = rng.choice(("info", "sales", "office", "zakaz")), f"{stem[:20] or 'firm'}.ru"
            tax_id = names.tax_id(12 if sole_trader else 10) if rng.random() < 0.7 else None
        else:
            name, _, local = names.person()
            domain = rng.choice(("mail.ru", "yandex.ru", "gmail.com", "bk.ru"))
            tax_id = None
        kind = "person"
        name = name.replace("ü", "u")
        kind = kind_of("", name) or kind  # what the import infers without a "Тип" column
        while tax_id is not None and tax_id in tax_used:
            tax_id = names.tax_id(len(tax_id))
        if tax_id:
            tax_used.add(tax_id)
        phones = [names.phone(mobile_range=(70, 100))] if rng.random() < 0.93 else []
        if phones and rng.random() < 0.12:
            phones.append(names.phone(mobile_range=(70, 100)))
        emails: list[str] = []
        if rng.random() < 0.5:
            email = f"{local}@{domain}".lower()
            number = 1
            while email in emails_used:
                number += 1
                email = f"{local}{number}@{domain}".lower()
            emails_used.add(email)
            emails.append(email)
        status = rng.choices(list(STATUS_WORDS), (0.35, 0.35, 0.2, 0.1))[0]
        status_cell = "" if status == "lead" and rng.random() < 0.5 else STATUS_WORDS[status]
        tags = sorted(set(rng.sample(IMPORT_TAGS, rng.randint(1, 2)))) if rng.random() < 0.3 else []
        phone_cell = ", ".join(local_format(rng, phone) for phone in phones)
        email_cell = emails[0].upper() if emails and rng.random() < 0.05 else (emails[0] if emails else "")
        tax_cell = tax_id or ""
        roll = rng.random()
        if roll < BAD_SHARE:
            bad += 1
            problem = rng.randrange(5)
            if problem == 0:
                name = ""  # with a phone, or the row would be blank and skipped as such
                phone_cell = phone_cell or local_format(rng, names.phone(mobile_range=(70, 100)))
            elif problem == 1:
                phone_cell = rng.choice(("12-34", "доб. 12", "8 (912) 34"))
            elif problem == 2:
                email_cell = rng.choice((f"{local}@mail", f"{local}.mail.ru", "нет"))
            elif problem == 3:
                tax_cell = str(rng.randrange(100, 999))
            else:
                status_cell = rng.choice(("Закрыт", "VIP-клиент", "?"))
        elif roll < BAD_SHARE + DUPLICATE_SHARE / 2 and existing:
            dup_existing += 1
            twin = rng.choice(existing)
            phone_cell = local_format(rng, twin)
            phones = [twin]
            email_cell, emails, tax_cell, tax_id = "", [], "", None
        elif roll < BAD_SHARE + DUPLICATE_SHARE and kept:
            dup_file += 1
            earlier_name, earlier_phones, earlier_emails = rng.choice(kept)
            name = earlier_name if rng.random() < 0.5 else earlier_name.upper()
            phones, emails, tax_cell, tax_id = earlier_phones[:1], earlier_emails[:1], "", None
            phone_cell = local_format(rng, phones[0]) if phones else ""
            email_cell = emails[0] if emails else ""
            if not phones and not emails:  # nothing to match on: make it a plain new row after all
                dup_file -= 1
        elif phones or emails:
            kept.append((name, phones, emails))
        writer.writerow([name, phone_cell, email_cell, tax_cell, status_cell, ", ".join(tags)])
        normalised.append((10_000_001 + index, kind, name, phones, emails, tax_id, status, "import", tags, owner_id))
    text = out.getvalue()
    content = ("\ufeff" + text).encode("utf-8") if encoding == "utf-8" else text.encode("cp1251")
    return Generated(
        content=content,
        utf8_size=len(("\ufeff" + text).encode("utf-8")),
        rows=rows,
        bad=bad,
        duplicates_existing=dup_existing,
        duplicates_in_file=dup_file,
        normalised=normalised,
    )


# --- phases --------------------------------------------------------------------------------------


@dataclass
class Phases:
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] += seconds
        self.calls[name] += 1


@contextlib.contextmanager
def timed_phases() -> Iterator[Phases]:
    """Wrap the import's functions (module globals of the runner and the controller) for the run."""
    phases = Phases()
    patched: list[tuple[Any, str, Any]] = []

    def wrap_sync(module: Any, name: str, label: str) -> None:
        original = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                phases.add(label, time.perf_counter() - started)

        patched.append((module, name, original))
        setattr(module, name, timed)

    def wrap_async(module: Any, name: str, label: str) -> None:
        original = getattr(module, name)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                phases.add(label, time.perf_counter() - started)

        patched.append((module, name, original))
        setattr(module, name, timed)

    def wrap_scope(module: Any) -> None:
        original: Callable[[TenantRef], Any] = module.tenant_scope

        @contextlib.asynccontextmanager
        async def timed(tenant: TenantRef) -> AsyncIterator[Any]:
            started = time.perf_counter()
            try:
                async with original(tenant) as transaction:
                    yield transaction
            finally:
                phases.add(
                    "runner: tenant_scope transactions (each batch, commit included)", time.perf_counter() - started
                )

        patched.append((module, "tenant_scope", original))
        module.tenant_scope = timed

    wrap_sync(import_services, "read_rows", "upload: read_rows (decode + csv)")
    wrap_sync(runner, "read_rows", "runner: read_rows (decode + csv)")
    wrap_sync(runner, "parse_row", "runner: parse_row (all rows, in the parse thread)")
    wrap_async(runner, "_without_duplicates", "runner: _without_duplicates")
    wrap_async(runner, "record_audit_many", "runner: record_audit_many")
    wrap_async(runner, "_import_batch", "runner: _import_batch (dedup + insert + audit)")
    wrap_async(runner, "_insert_clients", "runner: _insert_clients (ids + INSERT)")
    wrap_scope(runner)
    try:
        yield phases
    finally:
        for module, name, original in reversed(patched):
            setattr(module, name, original)


# --- the run -------------------------------------------------------------------------------------


async def copy_baseline(pool: asyncpg.Pool, schema: str, rows: list[tuple[Any, ...]], including: str) -> float:
    """Seconds to COPY ``rows`` into a fresh scratch table ``(LIKE clients INCLUDING …)``, commit included."""
    await pool.execute("CREATE SCHEMA IF NOT EXISTS bench_scratch")
    await pool.execute("DROP TABLE IF EXISTS bench_scratch.clients_copy")
    await pool.execute(f'CREATE TABLE bench_scratch.clients_copy (LIKE "{schema}".clients INCLUDING {including})')
    started = time.perf_counter()
    async with pool.acquire() as connection, connection.transaction():
        await connection.copy_records_to_table(
            "clients_copy", records=rows, columns=BASELINE_COLUMNS, schema_name="bench_scratch"
        )
    seconds = time.perf_counter() - started
    await pool.execute("DROP TABLE bench_scratch.clients_copy")
    return seconds


async def existing_keys(pool: asyncpg.Pool, schema: str) -> tuple[set[str], set[str], set[str]]:
    rows = await pool.fetch(f'SELECT phones, emails, tax_id FROM "{schema}".clients')
    phones = {phone for row in rows for phone in row["phones"]}
    emails = {email for row in rows for email in row["emails"]}
    tax_ids = {row["tax_id"] for row in rows if row["tax_id"]}
    return phones, emails, tax_ids


def statement_label(sql: str) -> str:
    text = " ".join(sql.split())
    if text == "clients":  # copy_records_to_table's table name
        return "batch: COPY clients (what-if)"
    for start, name in (
        ("SELECT status FROM imports WHERE id = $1 FOR UPDATE", "batch: lock the job row"),
        ("SELECT c.id, c.phones, c.emails, c.tax_id FROM unnest", "batch: duplicate check"),
        ("SELECT nextval('clients_id_seq')", "batch: ids (nextval)"),
        ("INSERT INTO clients", "batch: INSERT clients (jsonb_populate_recordset)"),
        ("SELECT last_hash, row_count FROM audit_head", "batch: audit head FOR UPDATE"),
        ("WITH appended AS ( INSERT INTO audit_log", "batch: audit rows + head (one INSERT … unnest)"),
        ("UPDATE imports SET processed_rows", "batch: progress"),
        ("UPDATE platform.timers SET lease_until", "batch: renew lease"),
    ):
        if text.startswith(start):
            return name
    from bench.crm_core import _label

    return _label(sql)


async def run(sizes: Sizes, encoding: str) -> None:
    async with bench_database() as database:
        services = await open_bench_services(database, pool_max=10)
        try:
            pool = services.db.pool
            print(f"PostgreSQL {await server_version(pool)}; {os.cpu_count()} CPUs; load average {load()}")
            tenant, admin = await target_company(services, sizes)
            await measure(services, database.settings(), tenant, admin, sizes, encoding)
            print(f"\nLoad average at the end: {load()}")
        finally:
            await services.db.close()


async def target_company(services: Services, sizes: Sizes) -> tuple[TenantRef, Person]:
    if sizes.world == "none":
        tenant, admin = await provision(services, "enterprise", "Пустая Компания")
        print(f"Importing into a fresh company {tenant.slug} (no clients)")
        return tenant, admin
    print("World:")
    world = await build_world(services, FULL_WORLD if sizes.rows > 20_000 else QUICK_WORLD)
    return world.big.tenant, world.big.admin


async def measure(
    services: Services, settings: Any, tenant: TenantRef, admin: Person, sizes: Sizes, encoding: str
) -> None:
    pool = services.db.pool
    schema = tenant.schema
    started = time.perf_counter()
    phones, emails, tax_ids = await existing_keys(pool, schema)
    generated = generate_csv(
        sizes.rows,
        encoding=encoding,
        existing_phones=phones,
        existing_emails=emails,
        existing_tax_ids=tax_ids,
        owner_id=admin.user_id,
    )
    print(
        f"\nCSV: {generated.rows:,} rows, {len(generated.content) / 2**20:.1f} MiB in {encoding}"
        f" ({generated.utf8_size / 2**20:.1f} MiB as UTF-8); {generated.bad} bad rows"
        f" ({generated.bad / generated.rows:.1%}), {generated.duplicates_existing} duplicates of existing clients,"
        f" {generated.duplicates_in_file} of earlier rows"
        f" ({(generated.duplicates_existing + generated.duplicates_in_file) / generated.rows:.1%});"
        f" expected to create {generated.expected_created:,}; generated in {time.perf_counter() - started:.1f} s"
    )
    print("  first lines: " + " | ".join(generated.content.decode(encoding).splitlines()[:3]))
    await settle(pool)

    print(
        f"\nBaseline: COPY of the {generated.rows:,} normalised rows into a scratch table, 3 runs each; load {load()}"
    )
    baselines: dict[str, list[float]] = defaultdict(list)
    for _ in range(3):
        for including in ("DEFAULTS", "ALL"):
            baselines[including].append(await copy_baseline(pool, schema, generated.normalised, including))
    for including, values in baselines.items():
        label = "no indexes" if including == "DEFAULTS" else "with the clients indexes"
        median = statistics.median(values)
        print(
            f"  COPY into (LIKE clients INCLUDING {including}) — {label}: median {median:.2f} s"
            f" ({generated.rows / median:,.0f} rows/s); runs " + ", ".join(f"{v:.2f}" for v in values)
        )

    app = create_app(settings, services=services)
    async with app.lifespan(), served(app) as http:
        token = await login(http, tenant, admin)
        headers = {"Authorization": f"Bearer {token}"}
        if generated.utf8_size > 10_000_000 and encoding != "utf-8":
            utf8 = ("\ufeff" + generated.content.decode(encoding)).encode("utf-8")
            probe = await http.post(
                "/api/v1/imports/preview", files={"file": ("clients-utf8.csv", utf8, "text/csv")}, headers=headers
            )
            print(
                f"\n  The same file as UTF-8 ({len(utf8) / 1e6:.1f} MB) to POST /api/v1/imports/preview:"
                f" {probe.status_code} {probe.text[:160]}"
            )
        second = generated
        print(f"\nThe clients GIN indexes: {await gin_options(pool, schema)}")
        if sizes.product:
            print(f"\nImport through the API (the product); load {load()}")
            await import_once(pool, schema, http, headers, generated, baselines)
            print(f"  the clients GIN indexes after it: {await gin_options(pool, schema)}")
            await explain_duplicate_check(pool, schema, generated.normalised[: runner.BATCH_ROWS])
        if sizes.what_if and sizes.product:
            phones, emails, tax_ids = await existing_keys(pool, schema)
            second = generate_csv(
                sizes.rows,
                encoding=encoding,
                existing_phones=phones,
                existing_emails=emails,
                existing_tax_ids=tax_ids,
                owner_id=admin.user_id,
                seed=778,
            )
        if sizes.what_if:
            which = "a second file of" if sizes.product else "the file,"
            print(
                f"\nWhat-if, NOT the product: {which} {second.rows:,} new rows ({second.bad} bad,"
                f" {second.duplicates_existing + second.duplicates_in_file} duplicates), each batch inserted with COPY"
                " (asyncpg copy_records_to_table of the same records) instead of INSERT … SELECT FROM"
                f" jsonb_populate_recordset; load {load()}"
            )
            with copied_batches() as copies:
                await import_once(pool, schema, http, headers, second, baselines)
            print(f"  (batches copied: {copies[0]})")


async def import_once(
    pool: asyncpg.Pool,
    schema: str,
    http: Any,
    headers: dict[str, str],
    generated: Generated,
    baselines: dict[str, list[float]],
) -> float:
    """Upload ``generated``, poll it to the end, print what it took; return the wall seconds."""
    before = int(await pool.fetchval(f'SELECT count(*) FROM "{schema}".clients'))
    await settle(pool)
    with timed_phases() as phases, tracing() as trace:
        wall_start = datetime.now(UTC)
        started = time.perf_counter()
        response = await http.post(
            "/api/v1/imports",
            files={"file": ("clients.csv", generated.content, "text/csv")},
            data={"on_duplicate": "skip"},
            headers=headers,
        )
        upload = time.perf_counter() - started
        assert response.status_code == 202, response.text[:500]
        job = response.json()
        progress: list[tuple[float, int]] = []
        while job["status"] in ("queued", "running"):
            await asyncio.sleep(POLL_SECONDS)
            polled = await http.get(f"/api/v1/imports/{job['id']}", headers=headers)
            assert polled.status_code == 200, polled.text
            job = polled.json()
            progress.append((time.perf_counter() - started, job["processed_rows"]))
        seen_done = time.perf_counter() - started
    finished = datetime.fromisoformat(job["finished_at"])
    begun = datetime.fromisoformat(job["started_at"])
    created = datetime.fromisoformat(job["created_at"])
    total = (finished - wall_start).total_seconds()
    print(f"  status {job['status']}: created {job['created_rows']:,}, skipped {job['skipped_rows']:,},", end="")
    print(f" errors {job['error_rows']:,}; processed {job['processed_rows']:,} of {job['total_rows']:,}")
    expected = (generated.expected_created, generated.duplicates_existing + generated.duplicates_in_file)
    outcome = (job["created_rows"], job["skipped_rows"])
    print(f"  expected created / skipped / bad: {expected[0]:,} / {expected[1]:,} / {generated.bad:,}", end="")
    print(f" -> {'as expected' if outcome == expected and job['error_rows'] == generated.bad else 'DIFFERENT'}")
    after = int(await pool.fetchval(f'SELECT count(*) FROM "{schema}".clients'))
    print(f"  clients in the company: {before:,} -> {after:,}")
    print(f"  upload request (POST, parse to count rows, store the file, audit, schedule): {upload:.2f} s")
    print(f"  queued (created_at -> started_at): {(begun - created).total_seconds():.2f} s")
    print(f"  running (started_at -> finished_at): {(finished - begun).total_seconds():.2f} s")
    verdict = "met" if total < GOAL_SECONDS else "MISSED"
    print(
        f"  WALL, upload start -> finished_at: {total:.1f} s ({generated.rows / total:,.0f} rows/s)"
        f"   goal < {GOAL_SECONDS:.0f} s: {verdict}   (client saw 'done' after {seen_done:.1f} s)"
    )
    copy_median = statistics.median(baselines["ALL"])
    print(f"  import / bare COPY with indexes: {total / copy_median:.1f}x")
    if len(progress) > 4:
        marks = progress[:: max(1, len(progress) // 8)]
        print("  progress (s: rows): " + ", ".join(f"{t:.0f}: {rows:,}" for t, rows in marks))
    print("  phases (wrapped functions, summed):")
    for name, seconds in sorted(phases.seconds.items()):
        print(f"    {name:66} {seconds:7.2f} s  ({phases.calls[name]} calls)")
    grouped: dict[str, list[float]] = defaultdict(list)
    for sql, seconds in trace.calls:
        grouped[statement_label(sql)].append(seconds)
    print("  statements (every asyncpg call in the process during the import, polling included):")
    for name, values in sorted(grouped.items(), key=lambda item: -sum(item[1]))[:14]:
        print(f"    {name:66} {sum(values):7.2f} s  ({len(values)} calls)")
    return total


async def explain_duplicate_check(pool: asyncpg.Pool, schema: str, rows: list[tuple[Any, ...]]) -> None:
    """EXPLAIN ANALYZE of the runner's duplicate check for one batch's keys."""
    phones = sorted({phone for row in rows for phone in row[3]})
    emails = sorted({email for row in rows for email in row[4]})
    tax_ids = sorted({row[5] for row in rows if row[5]})
    print(
        f"\n  EXPLAIN ANALYZE of the duplicate check for one batch's keys ({len(phones)} phones, {len(emails)} e-mails,"
        f" {len(tax_ids)} tax ids), now that the rows are in the table:"
    )
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT set_config('search_path', $1, true)", f'"{schema}", public')
        plan = [
            str(row[0])
            for row in await connection.fetch(f"EXPLAIN ANALYZE {runner.DUPLICATES_SQL}", phones, emails, tax_ids)
        ]
    for line in plan:
        if "(cost=" in line or line.startswith(("Planning Time", "Execution Time")) or "Rows Removed" in line:
            print(f"      {line[:150]}")


async def gin_options(pool: asyncpg.Pool, schema: str) -> str:
    """The clients GIN indexes' storage options, and how much waits in their pending lists."""
    await pool.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")  # the bench's own database
    rows = await pool.fetch(
        """
        SELECT c.relname, coalesce(array_to_string(c.reloptions, ', '), 'defaults') AS options,
               (SELECT pending_pages FROM pgstatginindex(c.oid)) AS pending
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
        WHERE i.indrelid = format('%I.clients', $1::text)::regclass AND a.amname = 'gin' ORDER BY c.relname
        """,
        schema,
    )
    return "; ".join(f"{row['relname']} ({row['options']}, {row['pending']} pending pages)" for row in rows)


# The runner's batch insert as it is sent: INSERT INTO clients (…) SELECT … FROM jsonb_populate_recordset(…).
INSERT_PRODUCT = "INSERT INTO clients ("
_JSONB_FIELDS = ("messengers", "addresses", "custom")


class _CopyingConnection:
    """The scope connection, with the batch insert sent as a binary COPY of the same records."""

    def __init__(self, connection: asyncpg.Connection, copies: list[int]) -> None:
        self._connection = connection
        self._copies = copies

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    async def execute(self, sql: str, *args: Any) -> Any:
        if not (sql.startswith(INSERT_PRODUCT) and "jsonb_populate_recordset" in sql):
            return await self._connection.execute(sql, *args)
        columns = [name.strip().strip('"') for name in sql[len(INSERT_PRODUCT) : sql.index(")")].split(",")]
        records = []
        for record in json.loads(args[0]):
            values = []
            for column in columns:
                value = record.get(column)
                if column in _JSONB_FIELDS:
                    value = json.dumps(value if value is not None else ({} if column == "custom" else []))
                elif column == "birthday" and value is not None:
                    value = date.fromisoformat(value)
                values.append(value)
            records.append(tuple(values))
        self._copies[0] += 1
        await self._connection.copy_records_to_table("clients", records=records, columns=columns)
        return f"INSERT 0 {len(records)}"


@contextlib.contextmanager
def copied_batches() -> Iterator[list[int]]:
    """NOT the product: the runner's scope connection inserts each batch with COPY."""
    original = runner.scope_connection
    copies = [0]
    runner.scope_connection = lambda: _CopyingConnection(original(), copies)
    try:
        yield copies
    finally:
        runner.scope_connection = original


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.import_csv", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5,000 rows into the small world, to smoke-test")
    parser.add_argument("--rows", type=int, default=None, help="CSV rows (default 100,000)")
    parser.add_argument("--encoding", choices=("cp1251", "utf-8"), default="cp1251")
    parser.add_argument(
        "--world", choices=("full", "none"), default="full", help="import into the big company or a fresh one"
    )
    parser.add_argument("--no-what-if", action="store_true", help="skip the second import that inserts with COPY")
    parser.add_argument(
        "--only-what-if", action="store_true", help="only the import that inserts with COPY (not the product)"
    )
    args = parser.parse_args()
    rows = args.rows or (5_000 if args.quick else 100_000)
    sizes = Sizes(
        rows=rows,
        world=args.world,
        what_if=not args.no_what_if,
        product=not args.only_what_if,
    )
    asyncio.run(run(sizes, args.encoding))


if __name__ == "__main__":
    main()
