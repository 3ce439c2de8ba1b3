"""The mail interface the rest of the product calls: ``queue_mail`` inside a tenant scope.

The message row and a ``mail.send`` timer are written in the caller's transaction, so a
message exists — and is sent, after commit — only if the change that queued it commits.
"""

from __future__ import annotations

from crm.platform.tenancy import current_tenant, scope_connection
from crm.platform.timers import schedule
from crm.tenants.mail.tables import OutboxMessage

SEND_KIND = "mail.send"


async def queue_mail(*, to: str, subject: str, body: str, kind: str) -> int:
    """Queue one message in the open tenant scope (sent after commit, or never if rolled back)."""
    rows = await OutboxMessage.insert(
        OutboxMessage(to_address=to, subject=subject[:300], body=body, kind=kind)
    ).returning(OutboxMessage.id)
    message_id = int(rows[0]["id"])
    tenant = current_tenant()
    assert tenant is not None  # the insert above needed the scope
    await schedule(scope_connection(), SEND_KIND, tenant.id, {"message_id": message_id})
    return message_id
