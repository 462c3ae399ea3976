"""A scratch database for the bench and the fault tests: created on the stack's
PostgreSQL, migrated, and dropped afterwards, so that nothing is written into
the system of record. Each step opens its own connection, so the drop works
even when PostgreSQL was restarted in between (a fault scenario does that)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from services.settings import Settings
from services.store.schema import upgrade


def _admin(settings: Settings, statement: sql.Composed) -> None:
    password = settings.pg_password.get_secret_value()
    with psycopg.connect(settings.pg_conninfo, password=password, autocommit=True) as admin:
        admin.execute(statement)


@contextmanager
def scratch_database(base: Settings, prefix: str = "scratch") -> Iterator[Settings]:
    """Settings naming a new, migrated database (``prefix_<random>``)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _admin(base, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    scratch = base.model_copy(update={"pg_database": name})
    try:
        upgrade(scratch)
        yield scratch
    finally:
        _admin(base, sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
