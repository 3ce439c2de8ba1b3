"""Import jobs: the uploaded file, its column mapping and the progress of working through it."""

from __future__ import annotations

from piccolo.columns import JSONB, Bytea, ForeignKey, Integer, OnDelete, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from crm.tenants.users.tables import User


class ImportJob(Table, tablename="imports"):
    id = Serial(primary_key=True)
    entity = Varchar(length=20, default="clients")
    # queued | running | done | failed | cancelled; draft: a file the console's wizard keeps while
    # its author checks the mapping (never listed, never run until started)
    status = Varchar(length=10, default="queued")
    filename = Varchar(length=255, default="")
    content = Bytea()  # the file as uploaded; read only by the job
    # {"column header": "field"} as detected or given; columns mapped to nothing are ignored.
    mapping = JSONB(default={})
    on_duplicate = Varchar(length=8, default="skip")  # skip | update | create
    total_rows = Integer(default=0)
    processed_rows = Integer(default=0)  # rows done; the job resumes after them
    created_rows = Integer(default=0)
    updated_rows = Integer(default=0)  # on_duplicate=update: existing clients the file changed
    unchanged_rows = Integer(default=0)  # on_duplicate=update: rows matching a client they would not change
    skipped_rows = Integer(default=0)
    error_rows = Integer(default=0)
    errors = JSONB(default=[])  # [{"row", "field", "detail"}], the first 1,000
    author_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
