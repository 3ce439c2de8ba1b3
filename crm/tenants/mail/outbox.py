"""The mail interface the rest of the product calls; today it writes to the outbox table."""

from __future__ import annotations

from crm.tenants.mail.tables import OutboxMessage


async def queue_mail(*, to: str, subject: str, body: str, kind: str) -> int:
    """Queue one message in the open tenant scope (sent after commit, or never if rolled back)."""
    rows = await OutboxMessage.insert(
        OutboxMessage(to_address=to, subject=subject[:300], body=body, kind=kind)
    ).returning(OutboxMessage.id)
    return int(rows[0]["id"])
