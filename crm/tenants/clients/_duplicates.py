"""Finding clients that already have a phone, e-mail or tax id being saved.

The answer names only the duplicates the caller may read; of the others it says just that
one exists, so the check cannot be used to look into colleagues' clients.
"""

from __future__ import annotations

from typing import Any

from crm.platform.auth import Principal
from crm.platform.errors import Conflict
from crm.platform.sql import fetch_sql
from crm.tenants.clients._read import clients_in_scope

MAX_REPORTED = 20

# Each arm alone is an index lookup (GIN on phones and e-mails, b-tree on tax id); as
# one OR under a LIMIT the planner may instead walk every client in id order.
_DUPLICATES = """
WITH found AS MATERIALIZED (
    SELECT id FROM clients WHERE phones && {}::varchar[]
    UNION SELECT id FROM clients WHERE emails && {}::varchar[]
    UNION SELECT id FROM clients WHERE tax_id = {}
)
SELECT clients.id, clients.name,
       clients.phones && {}::varchar[] AS phone,
       clients.emails && {}::varchar[] AS email,
       coalesce(clients.tax_id = {}, false) AS tax_id,
       coalesce(({}), false) AS readable
FROM found JOIN clients ON clients.id = found.id
WHERE clients.id <> {}
ORDER BY clients.id
LIMIT {}
"""


class DuplicateClient(Conflict):
    code = "duplicate-client"
    title = "Possible duplicate client"


async def find_duplicates(
    principal: Principal, *, phones: list[str], emails: list[str], tax_id: str | None, exclude_id: int = 0
) -> list[dict[str, Any]]:
    """``[{"id", "name", "matched_on"}]`` of clients sharing any of the values; id and name
    are null for the ones the caller may not read."""
    if not phones and not emails and not tax_id:
        return []
    readable = (await clients_in_scope(principal, "read")).querystring
    rows = await fetch_sql(
        _DUPLICATES, phones, emails, tax_id, phones, emails, tax_id, readable, exclude_id, MAX_REPORTED
    )
    found = []
    for row in rows:
        matched_on = [field for field in ("phone", "email", "tax_id") if row[field]]
        if row["readable"]:
            found.append({"id": row["id"], "name": row["name"], "matched_on": matched_on})
        else:
            found.append({"id": None, "name": None, "matched_on": matched_on})
    return found


async def refuse_duplicates(
    principal: Principal, *, phones: list[str], emails: list[str], tax_id: str | None, exclude_id: int = 0
) -> None:
    """409 listing the duplicates, unless there are none."""
    duplicates = await find_duplicates(principal, phones=phones, emails=emails, tax_id=tax_id, exclude_id=exclude_id)
    if duplicates:
        raise DuplicateClient(
            "A client with the same phone, e-mail or tax id already exists; send force=true to save this one anyway.",
            duplicates=duplicates,
        )
