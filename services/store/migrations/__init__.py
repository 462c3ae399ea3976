"""Alembic migrations (raw SQL inside); run with ``paystream db migrate``."""
