"""The rolling migration of bench.migrate (c), as a process of its own with its own pool.

    CRM_DATABASE_URL=... .venv/bin/python -m bench.migrate_worker --jobs 4

It does what ``crm migrate`` does for the tenants (``migrate_tenants`` over a pool of
``jobs`` connections), with the benchmark's version 2 added to the real migrations, which
``crm migrate`` cannot be given. Prints one JSON line: seconds, migrated, failed, errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from bench.common import migrations_with_department
from crm.platform.migrate import migrate_tenants
from crm.platform.services import open_services
from crm.settings import load_settings


async def run(jobs: int) -> dict[str, object]:
    services = await open_services(load_settings(), pool_max=jobs)
    try:
        started = time.perf_counter()
        results = await migrate_tenants(services.db.pool, migrations_with_department(), jobs=jobs)
        seconds = time.perf_counter() - started
    finally:
        await services.db.close()
    failed = [result for result in results if not result.ok]
    return {
        "seconds": seconds,
        "migrated": len(results) - len(failed),
        "failed": len(failed),
        "errors": [f"{result.slug}: {result.error}" for result in failed[:5]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.migrate_worker")
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.jobs))), flush=True)


if __name__ == "__main__":
    main()
