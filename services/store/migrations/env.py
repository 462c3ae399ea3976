"""Alembic environment: the URL comes from the Alembic config the CLI builds
from Settings (``services/store/schema.py``); no alembic.ini."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url is not None, "sqlalchemy.url is set by services.store.schema"

if context.is_offline_mode():
    context.configure(url=url, literal_binds=True, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    with engine.connect() as connection:
        # One migrator at a time (a worker and the sink may start together);
        # released when the session ends, even if this process dies.
        connection.execute(
            text("SELECT pg_advisory_lock(hashtextextended('paystream-migrate', 0))")
        )
        connection.commit()
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
