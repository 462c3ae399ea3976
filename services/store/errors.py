"""psycopg's errors in paystream's terms, for what a user can fix.

A command that meets a database it cannot use says so in one line that names
the fix (``paystream stack up``, ``paystream db migrate``) instead of a
traceback: ``translated`` turns psycopg's errors into ``StoreUnavailable`` and
``SchemaMissing`` at the adapter's edge.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors

from services.errors import SchemaMissing, StoreUnavailable
from services.settings import Settings

_MISSING = (pg_errors.UndefinedTable, pg_errors.UndefinedFunction, pg_errors.UndefinedColumn)


def where(settings: Settings) -> str:
    return f"PostgreSQL at {settings.host}:{settings.pg_port}, database {settings.pg_database!r}"


@contextmanager
def translated(settings: Settings) -> Iterator[None]:
    """Raise ``SchemaMissing`` or ``StoreUnavailable`` for what the user can fix."""
    try:
        yield
    except _MISSING as exc:
        raise SchemaMissing(
            f"{where(settings)} has no paystream schema ({exc.diag.message_primary}): "
            "run `paystream db migrate`"
        ) from exc
    except psycopg.OperationalError as exc:
        raise unavailable(settings, exc) from exc


def unavailable(settings: Settings, exc: Exception) -> StoreUnavailable:
    """The one message for a database that does not answer."""
    return StoreUnavailable(
        f"{where(settings)} does not answer ({str(exc).strip().splitlines()[0]}): "
        "start the stack with `paystream stack up`, or check the PAYSTREAM_PG_* settings"
    )
