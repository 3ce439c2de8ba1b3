"""Web forms: a form on a company's own website that creates leads (source ``web_form``).

The form's public key travels in the page's HTML, so it is stored as it is (the console
shows it in the embed snippet); ``platform.web_form_keys`` maps its SHA-256 to the
company, so a submission finds its tenant without looking into every schema.
"""

from __future__ import annotations

from piccolo.columns import Array, Boolean, ForeignKey, OnDelete, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from crm.tenants.users.tables import User


class WebForm(Table, tablename="web_forms"):
    id = Serial(primary_key=True)
    name = Varchar(length=200)
    public_key = Varchar(length=64, unique=True)
    # Leads of the form are assigned to this user; none (or a deactivated user): unassigned.
    responsible_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    # "https://host[:port]" entries allowed to post from a browser (CORS); empty: any site.
    allowed_origins = Array(base_column=Varchar(length=255), default=[])
    is_active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())
    author_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)


WEB_FORM_DDL: tuple[str, ...] = ('CREATE INDEX web_forms_responsible_id ON "web_forms" ("responsible_id")',)
