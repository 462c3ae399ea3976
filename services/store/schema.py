"""``paystream db``: Alembic migrations from Settings (no alembic.ini)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError

from services.settings import Settings
from services.store.errors import translated, unavailable

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    url = URL.create(
        "postgresql+psycopg",
        username=settings.pg_user,
        password=settings.pg_password.get_secret_value(),
        host=settings.host,
        port=settings.pg_port,
        database=settings.pg_database,
    )
    # ConfigParser interpolation: a "%" in the password must be doubled.
    config.set_main_option(
        "sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return config


def _sql_of(run: object, *args: object) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        run(*args, sql=True)  # type: ignore[operator]
    return out.getvalue()


@contextmanager
def _migrating(settings: Settings) -> Iterator[None]:
    """Alembic talks through SQLAlchemy, which wraps psycopg's errors in its own."""
    with translated(settings):
        try:
            yield
        except OperationalError as exc:
            raise unavailable(settings, exc) from exc


def upgrade(settings: Settings, revision: str = "head", dry_run: bool = False) -> str | None:
    """Upgrade the database; with ``dry_run`` return the SQL instead (nothing runs)."""
    config = alembic_config(settings)
    if dry_run:
        return _sql_of(command.upgrade, config, revision)
    with _migrating(settings):
        command.upgrade(config, revision)
    return None


def downgrade(settings: Settings, revision: str, dry_run: bool = False) -> str | None:
    config = alembic_config(settings)
    if dry_run:
        # Offline downgrades need an explicit range: from head down to the target.
        return _sql_of(command.downgrade, config, f"head:{revision}")
    with _migrating(settings):
        command.downgrade(config, revision)
    return None
