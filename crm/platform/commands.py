"""Administrative commands of the ``crm`` CLI: migrations, editions, tenants."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from crm.cli import print_json, run_async
from crm.platform.editions import EditionError, check_edition_file, load_editions
from crm.platform.errors import CrmError
from crm.platform.migrate import (
    TenantMigrationResult,
    latest_version,
    migrate_platform,
    migrate_tenants,
    tenant_migrations,
    tenants_behind,
)
from crm.platform.services import Services, open_services
from crm.platform.tenancy import checked_schema_name
from crm.settings import Settings

console = Console(stderr=True)


# --- migrate -----------------------------------------------------------------------------


def command_migrate(args: argparse.Namespace) -> int:
    async def work(services: Services) -> int:
        if args.check:
            return await _check(services)
        jobs = args.jobs or services.settings.migrate_jobs
        return await migrate_everything(services, jobs=jobs, slugs=[args.tenant] if args.tenant else None)

    # One connection per parallel tenant; without --jobs the configured pool is enough.
    return _with_services(work, pool_max=max(2, args.jobs) if args.jobs else None)


async def _check(services: Services) -> int:
    from crm.platform.migrate import platform_migrations, platform_schema_version

    pool = services.db.pool
    async with pool.acquire() as connection:
        platform_version = await platform_schema_version(connection)
    expected_platform = latest_version(platform_migrations())
    if platform_version < expected_platform:
        print(f"platform schema is at version {platform_version}, the code expects {expected_platform}")
        return 1
    target = latest_version(tenant_migrations())
    behind = await tenants_behind(pool, target)
    for tenant in behind:
        print(f"{tenant.slug}\tversion {tenant.schema_version} < {target}")
    if behind:
        print(f"{len(behind)} tenant(s) behind version {target}", file=sys.stderr)
        return 1
    print(f"all tenants are at version {target}", file=sys.stderr)
    return 0


async def migrate_everything(
    services: Services, *, jobs: int, slugs: list[str] | None = None, quiet: bool = False
) -> int:
    """Platform first, then the tenants; returns the exit status (1 if any tenant failed)."""
    applied = await migrate_platform(services.db.pool)
    if applied and not quiet:
        console.print(f"platform schema: applied {', '.join(map(str, applied))}")
    for slug in slugs or []:
        if await _tenant_row(services, slug) is None:
            return _missing(slug)
    failures: list[TenantMigrationResult] = []
    with Progress(
        TextColumn("migrating tenants"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=False,
    ) as progress:
        task = progress.add_task("tenants", total=None)

        def started(total: int) -> None:
            progress.update(task, total=total)

        def finished(result: TenantMigrationResult) -> None:
            progress.advance(task)
            if not result.ok:
                failures.append(result)

        results = await migrate_tenants(services.db.pool, jobs=jobs, slugs=slugs, on_start=started, on_result=finished)
    for failure in failures:
        console.print(f"[red]{failure.slug}: {failure.error}[/red]")
    if not quiet:
        console.print(f"tenants migrated: {len(results) - len(failures)}, failed: {len(failures)}")
    return 1 if failures else 0


# --- editions ----------------------------------------------------------------------------


def command_editions_list(args: argparse.Namespace) -> int:
    editions = load_editions()
    for key in editions.keys():
        edition = editions[key]
        summary = edition.public_summary()
        print(f"{key:12} {summary['names']['en']:14} modules: {', '.join(summary['modules'])}")
    return 0


def command_editions_check(args: argparse.Namespace) -> int:
    problems: list[EditionError] = check_edition_file(args.file)
    for problem in problems:
        print(str(problem), file=sys.stderr)
    if not problems:
        print(f"{args.file}: ok")
    return 1 if problems else 0


# --- audit -------------------------------------------------------------------------------


def command_audit_verify(args: argparse.Namespace) -> int:
    from crm.platform.tenancy import set_tenant_search_path
    from crm.tenants.audit.services import verify_chain

    async def work(services: Services) -> int:
        row = await _tenant_row(services, args.slug)
        if row is None:
            return _missing(args.slug)
        async with services.db.pool.acquire() as connection, connection.transaction(readonly=True):
            await set_tenant_search_path(connection, row["schema_name"])
            report = await verify_chain(connection)
        if report.intact:
            print(f"{args.slug}: audit log intact ({report.rows} rows)")
            return 0
        where = f"row {report.broken_at}" if report.broken_at is not None else "the end of the chain"
        print(f"{args.slug}: audit log broken at {where}: {report.reason}", file=sys.stderr)
        return 1

    return _with_services(work)


# --- tenants -----------------------------------------------------------------------------


def command_tenants_create(args: argparse.Namespace) -> int:
    from crm.platform.signup import SignupRequest, provision_tenant

    password = args.admin_password or os.environ.get("CRM_ADMIN_PASSWORD") or getpass.getpass("Admin password: ")

    async def work(services: Services) -> int:
        try:
            provisioned = await provision_tenant(
                services.db,
                services.editions,
                SignupRequest(
                    company=args.company,
                    slug=args.slug,
                    edition=args.edition,
                    admin_email=args.admin_email,
                    admin_password=password,
                    admin_name=args.admin_name,
                    locale=args.locale,
                    timezone=args.timezone,
                ),
            )
        except CrmError as exc:
            return _report(exc)
        print(f"created tenant {provisioned.tenant.slug} ({provisioned.tenant.edition})")
        return 0

    return _with_services(work)


_TENANT_COLUMNS = "id, slug, name, schema_name, edition, status, schema_version, locale, timezone, created_at"


def command_tenants_list(args: argparse.Namespace) -> int:
    async def work(services: Services) -> int:
        rows = [
            dict(row)
            for row in await services.db.pool.fetch(
                f"SELECT {_TENANT_COLUMNS} FROM platform.tenants ORDER BY created_at, id"
            )
        ]
        if args.json:
            print_json(rows)
        else:
            for row in rows:
                status = f"{row['status']:10} v{row['schema_version']}"
                print(f"{row['slug']:30} {row['edition']:12} {status}  {row['name']}")
        return 0

    return _with_services(work)


def command_tenants_show(args: argparse.Namespace) -> int:
    async def work(services: Services) -> int:
        row = await _tenant_row(services, args.slug)
        if row is None:
            return _missing(args.slug)
        row["users"] = await services.db.pool.fetchval(
            "SELECT count(*) FROM platform.identities WHERE tenant_id = $1", row["id"]
        )
        print_json(row)
        return 0

    return _with_services(work)


def command_tenants_suspend(args: argparse.Namespace) -> int:
    return _set_status(args.slug, "suspended", allowed_from=("active",))


def command_tenants_resume(args: argparse.Namespace) -> int:
    return _set_status(args.slug, "active", allowed_from=("suspended",))


def command_tenants_delete(args: argparse.Namespace) -> int:
    if not args.purge:
        return _set_status(args.slug, "deleted", allowed_from=("active", "suspended"))

    async def work(services: Services) -> int:
        row = await _tenant_row(services, args.slug)
        if row is None:
            return _missing(args.slug)
        schema = checked_schema_name(row["schema_name"])
        async with services.db.pool.acquire() as connection, connection.transaction():
            await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await connection.execute("DELETE FROM platform.tenants WHERE id = $1", row["id"])
        print(f"purged tenant {args.slug}: schema {schema} dropped")
        return 0

    return _with_services(work)


def _set_status(slug: str, status: str, *, allowed_from: tuple[str, ...]) -> int:
    async def work(services: Services) -> int:
        updated = await services.db.pool.fetchval(
            """
            UPDATE platform.tenants SET status = $2, updated_at = now()
            WHERE slug = $1 AND status = ANY($3::text[]) RETURNING slug
            """,
            slug,
            status,
            list(allowed_from),
        )
        if updated is None:
            row = await _tenant_row(services, slug)
            if row is None:
                return _missing(slug)
            print(f"crm: tenant {slug} is {row['status']}; cannot make it {status}", file=sys.stderr)
            return 1
        print(f"tenant {slug} is now {status}")
        return 0

    return _with_services(work)


def _with_services(work: Callable[[Services], Awaitable[int]], *, pool_max: int | None = 2) -> int:
    """Run a command body with the database open; close it whatever happens."""

    async def run(settings: Settings) -> int:
        services = await open_services(settings, pool_max=pool_max)
        try:
            result: int = await work(services)
            return result
        finally:
            await services.db.close()

    return run_async(run)


async def _tenant_row(services: Services, slug: str) -> dict[str, Any] | None:
    row = await services.db.pool.fetchrow(f"SELECT {_TENANT_COLUMNS} FROM platform.tenants WHERE slug = $1", slug)
    return dict(row) if row else None


def _missing(slug: str) -> int:
    print(f"crm: no tenant {slug!r}", file=sys.stderr)
    return 1


def _report(exc: CrmError) -> int:
    print(f"crm: {exc.detail}", file=sys.stderr)
    for error in exc.errors:
        print(f"  {error.field}: {error.detail}", file=sys.stderr)
    return 1
