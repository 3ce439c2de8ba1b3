"""Task reminders waiting for their moment, and what has been sent already."""

from __future__ import annotations

from piccolo.columns import Integer, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class ReminderSent(Table, tablename="reminders_sent"):
    """One row per notice given: ``(kind, subject_id, user_id, offset_minutes, version)`` is
    unique. For a task reminder: the task, its assignee, the offset and the task's due time;
    for a snooze: the task, the user and the snoozed-to time; for a digest: the user and the
    start of their local day; for a birthday: the person, the recipient and the day this year."""

    id = Serial(primary_key=True)
    kind = Varchar(length=20)  # task | snooze | digest | birthday_user | birthday_client
    subject_id = Integer(default=0)
    user_id = Integer(default=0)
    offset_minutes = Integer(default=0)
    version = Timestamptz()
    sent_at = Timestamptz(default=TimestamptzNow())


class ReminderQueued(Table, tablename="reminders_queue"):
    """A task reminder waiting for ``remind_at``: the task, its assignee, the offset and the
    task's due time it was made for. The company's ``reminders.due`` timer at that moment
    deletes the row in the transaction that stores the notification — the deletion is what
    makes the reminder exactly-once."""

    id = Serial(primary_key=True)
    task_id = Integer(default=0)
    user_id = Integer(default=0)
    offset_minutes = Integer(default=0)
    version = Timestamptz()
    remind_at = Timestamptz()


REMINDER_DDL: tuple[str, ...] = (
    'CREATE UNIQUE INDEX reminders_sent_key ON "reminders_sent"'
    ' ("kind", "subject_id", "user_id", "offset_minutes", "version")',
    'CREATE UNIQUE INDEX reminders_queue_key ON "reminders_queue" ("task_id", "user_id", "offset_minutes", "version")',
    'CREATE INDEX reminders_queue_remind_at ON "reminders_queue" ("remind_at")',
)
