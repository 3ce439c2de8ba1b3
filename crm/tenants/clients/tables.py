"""Clients: companies and people, with every way to reach them."""

from __future__ import annotations

from piccolo.columns import JSONB, Array, Date, ForeignKey, OnDelete, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from crm.tenants.users.tables import User


class Client(Table, tablename="clients"):
    id = Serial(primary_key=True)
    kind = Varchar(length=16)  # company | person
    name = Varchar(length=300, index=True)
    phones = Array(base_column=Varchar(length=32))  # E.164
    emails = Array(base_column=Varchar(length=320))  # lower-cased
    messengers = JSONB(default=[])  # [{"kind": "telegram" | "whatsapp" | …, "handle": str}]
    addresses = JSONB(default=[])  # [{"kind": "office" | "delivery" | …, "text": str}]
    tax_id = Varchar(length=20, null=True, default=None)
    source = Varchar(length=32, default="manual")
    status = Varchar(length=16, default="lead")  # lead | prospect | client | former
    tags = Array(base_column=Varchar(length=50))
    custom = JSONB(default={})  # custom field values by key, validated against the tenant's definitions
    birthday = Date(null=True, default=None)  # people only
    responsible_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True)
    author_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    # Kept up to date by completed activities: the card's figures and dormant-client search.
    first_contact_at = Timestamptz(null=True, default=None)
    last_contact_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class ClientRelation(Table, tablename="client_relations"):
    """A person works at (or belongs to) a company; a person may belong to several."""

    id = Serial(primary_key=True)
    person_id = ForeignKey(Client, on_delete=OnDelete.cascade, null=False)
    company_id = ForeignKey(Client, on_delete=OnDelete.cascade, null=False)
    position = Varchar(length=200, default="")


# Search folds case and ё/е the same way in the index and in queries (see crm/tenants/search).
def folded(column: str) -> str:
    """``column`` with case and ё/е folded: the expression the trigram indexes are built on."""
    return f"translate(lower({column}), 'ё', 'е')"


SEARCH_NAME = folded("name")
# A client's phones as one text, each number followed by a space, so "the number ends in
# 4567" is LIKE '%4567 %' and a trigram index serves it. array_to_string is only STABLE
# (it goes through the element type's output function), so the index needs an IMMUTABLE
# wrapper; for varchar[] the result never changes. It lives in the tenant's schema, like
# the audit trigger's function, so a schema stays self-contained; queries must call it by
# name for the index to apply.
SEARCH_PHONES = "search_phones(phones)"

# GIN indexes are built with fastupdate off: with it on, rows inserted since the last vacuum
# wait in a pending list that every search scans against each of its keys — a duplicate
# check of 1,000 phones took 3 s on 200,000 clients until the list was flushed, 40 ms after.
CLIENT_DDL: tuple[str, ...] = (
    # Serves the list's LIKE and search's LIKE and %>. No GiST twin: at 200,000 clients its
    # trigram signatures were not selective (54-66 ms a lookup against GIN's 1-4 ms) and it
    # slowed every write.
    f'CREATE INDEX clients_name_trgm ON "clients" USING gin (({SEARCH_NAME}) gin_trgm_ops) WITH (fastupdate = off)',
    # Search always reads the clients named exactly what was typed, however many others hold
    # the words; through the trigram index an equality rechecks every name with its trigrams.
    f'CREATE INDEX clients_name_folded ON "clients" (({SEARCH_NAME}))',
    "CREATE FUNCTION search_phones(phones varchar[]) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE"
    " AS $$ SELECT array_to_string(phones, ' ') || ' ' $$",
    f'CREATE INDEX clients_phones_trgm ON "clients" USING gin (({SEARCH_PHONES}) gin_trgm_ops) WITH (fastupdate = off)',
    'CREATE INDEX clients_phones ON "clients" USING gin ("phones") WITH (fastupdate = off)',
    'CREATE INDEX clients_emails ON "clients" USING gin ("emails") WITH (fastupdate = off)',
    'CREATE INDEX clients_tax_id ON "clients" ("tax_id")',
    'CREATE INDEX clients_responsible_id ON "clients" ("responsible_id")',
    # "own" scopes are responsible OR author; also keeps ON DELETE SET NULL of a user cheap.
    'CREATE INDEX clients_author_id ON "clients" ("author_id")',
    'CREATE INDEX clients_last_contact_at ON "clients" ("last_contact_at")',
    # The list's filters and keyset orders (sort=created_at|updated_at pages by (value, id)).
    'CREATE INDEX clients_tags ON "clients" USING gin ("tags") WITH (fastupdate = off)',
    'CREATE INDEX clients_custom ON "clients" USING gin ("custom" jsonb_path_ops) WITH (fastupdate = off)',
    'CREATE INDEX clients_created_at ON "clients" ("created_at", "id")',
    'CREATE INDEX clients_updated_at ON "clients" ("updated_at", "id")',
    'CREATE UNIQUE INDEX client_relations_pair ON "client_relations" ("person_id", "company_id")',
    'CREATE INDEX client_relations_company_id ON "client_relations" ("company_id")',
)
