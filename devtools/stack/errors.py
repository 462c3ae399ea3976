"""Errors of the developer tooling (the local stack, and the demo and bench that
drive it), kept out of the product's exception tree in ``services/errors.py``.

They extend its root, ``PaystreamError``, so the command line's one handler
prints them as one line naming the fix, as it does for the product's errors.
A Kafka, PostgreSQL or chain failure met while running the tooling is not one
of these: it is the product's ``InfrastructureError`` (``BrokerUnavailable``, ...).
"""

from __future__ import annotations

from services.errors import PaystreamError


class StackError(PaystreamError):
    """A service of the local stack, or a process the tooling started, cannot be
    started, checked or stopped, or did not do its work in time."""


class MissingDependency(StackError):
    """A program or package the local stack needs is not installed.

    The message names what is missing and the command that installs it.
    """
