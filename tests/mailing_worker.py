"""A mailing's send loop in a process of its own, for the test that kills it with SIGKILL.

    python -m tests.mailing_worker <database url> <tenant id> <mailing id> <smtp url> <lease seconds>

It runs exactly what the ``mailings.send`` timer runs (``run_mailing``), minus the timer
bookkeeping, which has its own tests; the point is the crash safety of the deliveries.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import replace

from crm.platform.auth import load_tenant
from crm.platform.mail import install_mail
from crm.platform.services import open_services
from crm.settings import load_settings
from crm.tenants.mailings.sending import run_mailing


async def main(database_url: str, tenant_id: str, mailing_id: int, smtp_url: str, lease: int) -> int:
    settings = load_settings({**os.environ, "CRM_DATABASE_URL": database_url, "CRM_SMTP_URL": smtp_url})
    services = await open_services(settings, pool_max=4)
    install_mail(replace(settings))
    try:
        tenant = await load_tenant(tenant_id=tenant_id)
        assert tenant is not None
        state = await run_mailing(tenant, mailing_id, services.db.pool, lease_seconds=lease)
        print(state, flush=True)
        return 0 if state == "sent" else 1
    finally:
        await services.db.close()


if __name__ == "__main__":
    database, tenant, mailing, smtp, lease = sys.argv[1:6]
    sys.exit(asyncio.run(main(database, tenant, int(mailing), smtp, int(lease))))
