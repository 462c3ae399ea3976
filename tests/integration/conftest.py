"""Integration fixtures: a fresh, empty PostgreSQL database per test, on the stack's server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import sql

from services.settings import Settings
from tests.support.kafka import delete_topics_quietly


def connect(settings: Settings, dbname: str | None = None) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=settings.host,
        port=settings.pg_port,
        user=settings.pg_user,
        password=settings.pg_password.get_secret_value(),
        dbname=dbname or settings.pg_database,
        autocommit=True,
        connect_timeout=5,
    )


@contextmanager
def database_of_its_own(stack: Settings) -> Iterator[Settings]:
    """The stack's settings with a new, empty database, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with connect(stack) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield stack.model_copy(update={"pg_database": name})
    finally:
        with connect(stack) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session", autouse=True)
def delete_test_topics(settings: Settings) -> Iterator[None]:
    """At the end of the run, the topics of every ``make_pipeline`` pipeline
    (named ``test-...``) and of every test on a database of its own (named
    after it, ``test_...``): a local Kafka that kept them all ran out of heap,
    and 1,045 topics made each read of the cluster's metadata take 70 ms."""
    yield
    for prefix in ("test-", "test_"):
        delete_topics_quietly(settings, prefix)


@pytest.fixture
def fresh_db(stack_healthy: Settings) -> Iterator[Settings]:
    with database_of_its_own(stack_healthy) as settings:
        yield settings
