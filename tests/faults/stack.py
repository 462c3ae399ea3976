"""Stopping and starting the shared stack's Kafka, PostgreSQL and Redis.

These are the stack's own services (``paystream stack``), shared with every
other test and tool on this machine, so a scenario that stops one must start it
again whatever happens: ``outage`` restarts in a ``finally``, and
``restore_stack`` (a session fixture's teardown) starts anything still down.
The base settings must be the shared stack's (its state directory holds the pid
files), never a scenario's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from devtools.stack.manager import LocalStack
from services.settings import Settings

log = logging.getLogger("tests.faults")

STOPPABLE = ("kafka", "postgres", "redis")


@contextmanager
def outage(base: Settings, *names: str) -> Iterator[None]:
    """These services stopped for the duration of the block, then started
    again (and healthy) even if the block raises."""
    unknown = set(names) - set(STOPPABLE)
    if unknown:
        raise ValueError(f"only {STOPPABLE} may be stopped, not {sorted(unknown)}")
    stack = LocalStack(base)
    started = time.monotonic()
    try:
        stack.down(list(names))
        log.warning("stopped %s", ", ".join(names))
        yield
    finally:
        stack.up(list(names))
        log.warning("started %s again after %.1f s", ", ".join(names), time.monotonic() - started)


def restore_stack(base: Settings) -> list[str]:
    """Start whichever of the stoppable services is not healthy; returns their names."""
    stack = LocalStack(base)
    down = [s.name for s in stack.status(list(STOPPABLE)) if not s.healthy]
    if down:
        stack.up(down)
    return down
