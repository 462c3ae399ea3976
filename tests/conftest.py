"""Shared fixtures: the Settings that point at the real local stack.

By default the services are the ones ``paystream stack up`` started (``make test``
does that first); their addresses come from Settings. With
``PAYSTREAM_TESTCONTAINERS=1`` on a machine with a Docker engine, the same
services are started with testcontainers instead (tests/support/containers.py).
A service that does not answer fails the tests that need it: it never skips them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from devtools.stack.manager import LocalStack
from services.settings import Settings

HEALTHY_WITHIN_S = 30.0


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    base = Settings()
    if not base.testcontainers:
        yield base
        return
    from tests.support.containers import started_containers

    with started_containers(base) as overridden:
        yield overridden


@pytest.fixture(scope="session")
def stack_healthy(settings: Settings) -> Settings:
    """The settings, once every service of the stack has answered a health check
    (each has ``HEALTHY_WITHIN_S`` to answer: a busy node can miss one check)."""
    if not settings.testcontainers:
        deadline = time.monotonic() + HEALTHY_WITHIN_S
        down = [s.name for s in LocalStack(settings).status() if not s.healthy]
        while down and time.monotonic() < deadline:
            time.sleep(1)
            down = [s.name for s in LocalStack(settings).status(down) if not s.healthy]
        if down:
            pytest.fail(
                f"services not answering: {down}; start them with `paystream stack up`",
                pytrace=False,
            )
    return settings
