"""The tenant's audit log: append-only, hash-chained, one row per state change."""
