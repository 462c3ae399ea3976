"""PostgreSQL, the system of record: migrations, the audit chain (and, next, the
ledger sink)."""
