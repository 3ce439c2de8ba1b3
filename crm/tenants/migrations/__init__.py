"""Tenant schema migrations, ``mNNNN_<name>.py``, applied to every tenant schema in order.

Write them expand/contract style: code of the previous release must keep working on the
new schema while tenants migrate one by one (add columns with defaults, never change a
column's type in place — add, backfill, switch, drop later).
"""
