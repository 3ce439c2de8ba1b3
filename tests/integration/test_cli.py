"""The ``crm`` command run as a real process against the test database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from crm.platform.migrate import latest_version, tenant_migrations
from crm.platform.services import Services
from tests.conftest import TenantFactory
from tests.support import env_for_cli, unique


def crm(database_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crm", *args],
        env=env_for_cli(database_url, data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_tenant_lifecycle(database_url: str, data_dir: Path, services: Services) -> None:
    slug = unique("cli")
    created = crm(
        database_url,
        data_dir,
        "tenants",
        "create",
        "--company",
        "Северный ветер",
        "--slug",
        slug,
        "--edition",
        "start",
        "--admin-email",
        f"boss@{slug}.example",
        "--admin-name",
        "Boss",
        "--admin-password",
        "a long enough secret",
        "--locale",
        "ru",
        "--timezone",
        "Asia/Yekaterinburg",
    )
    assert created.returncode == 0, created.stderr
    other = unique("cli")
    assert (
        crm(
            database_url,
            data_dir,
            "tenants",
            "create",
            "--company",
            "Other",
            "--slug",
            other,
            "--edition",
            "business",
            "--admin-email",
            f"boss@{other}.example",
            "--admin-name",
            "Boss",
            "--admin-password",
            "another long secret",
        ).returncode
        == 0
    )

    listed = json.loads(crm(database_url, data_dir, "tenants", "list", "--json").stdout)
    mine = {row["slug"]: row for row in listed if row["slug"] in (slug, other)}
    assert mine[slug]["edition"] == "start" and mine[slug]["name"] == "Северный ветер"
    assert mine[other]["edition"] == "business"

    shown = json.loads(crm(database_url, data_dir, "tenants", "show", slug).stdout)
    assert shown["users"] == 1 and shown["timezone"] == "Asia/Yekaterinburg"

    assert crm(database_url, data_dir, "tenants", "suspend", slug).returncode == 0
    assert crm(database_url, data_dir, "tenants", "suspend", slug).returncode == 1  # already suspended
    assert crm(database_url, data_dir, "tenants", "resume", slug).returncode == 0
    assert crm(database_url, data_dir, "tenants", "delete", slug).returncode == 0
    status = await services.db.pool.fetchval("SELECT status FROM platform.tenants WHERE slug = $1", slug)
    assert status == "deleted"
    schema = await services.db.pool.fetchval("SELECT schema_name FROM platform.tenants WHERE slug = $1", slug)

    purged = crm(database_url, data_dir, "tenants", "delete", slug, "--purge")
    assert purged.returncode == 0, purged.stderr
    assert await services.db.pool.fetchval("SELECT count(*) FROM platform.tenants WHERE slug = $1", slug) == 0
    assert await services.db.pool.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema) == 0
    # The other tenant is untouched.
    assert await services.db.pool.fetchval("SELECT status FROM platform.tenants WHERE slug = $1", other) == "active"


async def test_create_with_bad_input_names_the_field(database_url: str, data_dir: Path) -> None:
    result = crm(
        database_url,
        data_dir,
        "tenants",
        "create",
        "--company",
        "X",
        "--slug",
        "Bad Slug",
        "--edition",
        "gold",
        "--admin-email",
        "nobody",
        "--admin-name",
        "N",
        "--admin-password",
        "short",
    )
    assert result.returncode == 1
    for field in ("slug", "edition", "admin_email", "admin_password"):
        assert f"  {field}: " in result.stderr


async def test_migrate_check_lists_tenants_behind(
    make_tenant: TenantFactory, database_url: str, data_dir: Path, services: Services
) -> None:
    slug = (await make_tenant()).slug
    assert crm(database_url, data_dir, "migrate").returncode == 0
    assert crm(database_url, data_dir, "migrate", "--check").returncode == 0

    latest = latest_version(tenant_migrations())
    await services.db.pool.execute("UPDATE platform.tenants SET schema_version = 0 WHERE slug = $1", slug)
    try:
        check = crm(database_url, data_dir, "migrate", "--check")
        assert check.returncode == 1
        assert check.stdout.splitlines() == [f"{slug}\tversion 0 < {latest}"]
    finally:
        await services.db.pool.execute("UPDATE platform.tenants SET schema_version = $2 WHERE slug = $1", slug, latest)


def test_editions_list_and_check(database_url: str, data_dir: Path, tmp_path: Path) -> None:
    listed = crm(database_url, data_dir, "editions", "list")
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["start", "business", "enterprise", "realty"]

    shipped = Path(__file__).resolve().parents[2] / "crm/platform/editions/business.toml"
    assert crm(database_url, data_dir, "editions", "check", str(shipped)).returncode == 0
    broken = tmp_path / "business.toml"
    broken.write_text(shipped.read_text().replace("modules = [", 'modules = ["teleport", ', 1))
    result = crm(database_url, data_dir, "editions", "check", str(broken))
    assert result.returncode == 1
    assert f"{broken}: modules[0]:" in result.stderr and "teleport" in result.stderr


def test_migrate_an_unknown_tenant_fails(database_url: str, data_dir: Path) -> None:
    result = crm(database_url, data_dir, "migrate", "--tenant", "no-such-company")
    assert result.returncode == 1
    assert "no tenant 'no-such-company'" in result.stderr
