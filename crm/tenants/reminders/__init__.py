"""Task reminders, snoozes, the morning digest and birthday notices (DESIGN.md §8).

Every one is a ``platform.timers`` row scheduled in the transaction that made it due, and
its handler (crm/tenants/reminders/handlers.py) records what it sent in ``reminders_sent``
in the same transaction as the notification, so a timer that runs twice notifies once.
"""
