"""The ``mail.send`` timer: hands one queued message to the transport, once.

The row is locked (``FOR UPDATE``) while the message is staged — the SMTP server has the
whole message but not the final "." of DATA, so it delivers nothing yet — and ``sent_at``
commits in that transaction; only then is the "." written. So two runs of the timer never
send side by side, a run that finds ``sent_at`` set does nothing, and a process killed
before the commit leaves a message the server discarded and a retry sends once.

The residual windows, stated honestly. A process killed after the commit and before the
"." is written (the commit's reply in flight: well under a millisecond) leaves the message
marked sent and never delivered. A server that refuses the "." (4xx/5xx), or a connection
lost after it, clears ``sent_at`` and the timer retries with back-off: if the connection
was lost after the server had accepted, that retry is a second copy — with the same
Message-ID, which mail clients fold. For an invitation or a password reset a second copy
is harmless and a missing one is not, hence the retry.
"""

from __future__ import annotations

import logging

from crm.platform.mail import MailError, StagedMessage, build_message, current_mail, message_id_for
from crm.platform.tenancy import TenantRef, scope_connection, tenant_scope
from crm.platform.timers import Timer, timer_handler
from crm.tenants.mail.outbox import SEND_KIND
from crm.tenants.mail.sender import tenant_sender

log = logging.getLogger(__name__)


@timer_handler(SEND_KIND)
async def send_queued_mail(tenant: TenantRef, timer: Timer) -> None:
    await send_outbox_message(tenant, int(timer.payload["message_id"]))


async def send_outbox_message(tenant: TenantRef, message_id: int) -> bool:
    """Send the outbox row ``message_id`` unless it was sent; True if this call sent it."""
    mail = current_mail()
    async with mail.transport.session() as session:
        staged: StagedMessage | None = None
        try:
            async with tenant_scope(tenant):
                connection = scope_connection()
                row = await connection.fetchrow(
                    "SELECT to_address, subject, body, sent_at FROM mail_outbox WHERE id = $1 FOR UPDATE", message_id
                )
                if row is None or row["sent_at"] is not None:
                    return False  # sent already (the timer ran twice) or gone with its tenant
                sender = await tenant_sender()
                message = build_message(
                    sender=sender,
                    to=row["to_address"],
                    subject=row["subject"],
                    text=row["body"],
                    message_id=message_id_for(f"{tenant.id}.mail.{message_id}", sender),
                )
                staged = await session.stage(message)
                await connection.execute("UPDATE mail_outbox SET sent_at = now() WHERE id = $1", message_id)
        except BaseException:
            if staged is not None:
                await staged.abort()
            raise
        assert staged is not None
        try:
            await staged.finish()
        except MailError:
            async with tenant_scope(tenant):
                await scope_connection().execute("UPDATE mail_outbox SET sent_at = NULL WHERE id = $1", message_id)
            log.warning("mail %s of tenant %s refused after staging; it will be retried", message_id, tenant.id)
            raise
    return True
