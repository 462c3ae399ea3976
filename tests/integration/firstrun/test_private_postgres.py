"""PostgreSQL starts from a checkout under a directory only its owner may enter
(a clone under /root, or any ``mktemp -d``): as root the server runs as the
``postgres`` user, which cannot traverse such a path, so the cluster lives in
that user's home, tied to the checkout's state directory."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devtools.harness.isolated import free_port
from devtools.stack.base import StatePaths
from devtools.stack.manager import LocalStack
from devtools.stack.postgres import PostgresService
from devtools.stack.process import is_root
from services.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def owner_only_checkout() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as home:  # created with mode 0700
        assert Path(home).stat().st_mode & 0o777 == 0o700
        yield Path(home) / "paystream"


def test_postgres_starts_from_a_checkout_under_a_0700_directory(
    owner_only_checkout: Path,
) -> None:
    settings = Settings().model_copy(
        update={
            "state_dir": owner_only_checkout / ".state",
            "pg_port": free_port(),
            "stack_start_timeout_s": 120.0,
        }
    )
    stack = LocalStack(settings)
    service = PostgresService(settings, StatePaths(settings))
    try:
        stack.up(["postgres"])
        with psycopg.connect(
            host=settings.host,
            port=settings.pg_port,
            dbname=settings.pg_database,
            user=settings.pg_user,
            password=settings.pg_password.get_secret_value(),
            connect_timeout=5,
        ) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        (status,) = stack.status(["postgres"])
        assert status.healthy and status.managed
        assert status.data == str(service.home)
        if is_root():
            # Outside the checkout, and nothing of the checkout's parents was opened up.
            assert not service.home.is_relative_to(owner_only_checkout.parent)
            assert owner_only_checkout.parent.stat().st_mode & 0o777 == 0o700
        assert StatePaths(settings).log("postgres").resolve() == service.log_path()
    finally:
        stack.reset(["postgres"])
    assert service.pid() is None
    assert not service.home.exists()
