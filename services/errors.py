"""The exception tree of paystream.

Adapters wrap the errors of their libraries (psycopg, redis, web3, Kafka
clients, subprocesses) in these classes with ``raise X(...) from exc``; nothing
above an adapter catches a library's exception type.

::

    PaystreamError
    ├── ConfigError                 a setting is missing or contradictory
    │   └── SchemaMissing           the database has no (or an old) paystream schema
    ├── InfrastructureError         transient: retry with a limit, then crash
    │   ├── BrokerUnavailable       Kafka did not answer in time
    │   ├── StoreUnavailable        PostgreSQL did not answer in time
    │   ├── CacheUnavailable        Redis did not answer in time
    │   └── ChainUnavailable        the EVM node did not answer in time
    ├── TransactionCancelled        not mined in time: an empty transaction took its nonce
    └── InvariantViolation          a broken invariant: crash the worker, never ack

Tooling errors (the local stack's) extend the root in ``devtools/stack/errors.py``.

Business rejections (insufficient funds, a blocked payee, ...) are not
exceptions: they are values with stable codes.
"""

from __future__ import annotations


class PaystreamError(Exception):
    """Root of every error paystream raises on purpose."""


class ConfigError(PaystreamError):
    """A setting is missing, malformed or contradicts another."""


class SchemaMissing(ConfigError):
    """The database lacks the tables or functions of the current schema.

    The message names the command that creates them (``paystream db migrate``).
    """


class InfrastructureError(PaystreamError):
    """A dependency did not answer; the operation may succeed when retried."""


class BrokerUnavailable(InfrastructureError):
    """Kafka did not answer in time."""


class StoreUnavailable(InfrastructureError):
    """PostgreSQL did not answer in time."""


class CacheUnavailable(InfrastructureError):
    """Redis did not answer in time."""


class ChainUnavailable(InfrastructureError):
    """The EVM node did not answer in time."""


class TransactionCancelled(PaystreamError):
    """A transaction was not mined within ``chain_cancel_after_s``: an empty
    transaction replaced it at its nonce and was mined, so nothing it carried
    can ever be executed."""


class RecordsRefused(PaystreamError):
    """The ledger store refused a batch for what a record holds (a value out of
    a column's range, a character PostgreSQL cannot store): writing it again
    cannot help. The sink narrows the batch to the record and dead-letters it."""


class InvariantViolation(PaystreamError):
    """An invariant of the engine does not hold; the worker must stop."""


def require(condition: bool, message: str, *args: object) -> None:
    """Check an invariant; unlike ``assert`` it survives ``python -O``.

    ``message`` is %-formatted with ``args`` only when the check fails (as in
    ``logging``), so a check on the hot path costs no string formatting.
    """
    if not condition:
        raise InvariantViolation(message % args if args else message)
