"""Kafka topics: the pipeline's (created idempotently) and deleting a run's."""

from __future__ import annotations

import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from schemas.topics import TOPICS
from services.bootstrap import kafka_admin
from services.errors import BrokerUnavailable
from services.settings import Settings
from streams.tables import TABLE_NAMES, changelog_topic
from streams.windows import EXPIRES_S, WINDOWS_TABLE

ADMIN_TIMEOUT_S = 30.0  # each creation, deletion or listing


def create_topics(settings: Settings) -> dict[str, str]:
    """Create every topic that is missing; returns name -> "created" | "exists"."""
    config = {"retention.ms": str(settings.topic_retention_ms)}
    wanted = [
        NewTopic(
            settings.topic(spec.name),
            num_partitions=settings.kafka_partitions,
            replication_factor=1,
            config={**config, "cleanup.policy": "compact" if spec.compacted else "delete"},
        )
        for spec in TOPICS
    ]
    # Faust's table changelogs too, so no agent runs before its table's topic exists.
    wanted += [
        NewTopic(
            changelog_topic(settings.app_id, table),
            num_partitions=settings.kafka_partitions,
            replication_factor=1,
            config={"cleanup.policy": "compact"},
        )
        for table in TABLE_NAMES
    ]
    wanted.append(_windows_changelog(settings))
    return create(settings, wanted)


def _windows_changelog(settings: Settings) -> NewTopic:
    """The windowed table's changelog (``streams/windows.py``): compacted, and
    its windows deleted once expired, in segments of a minute (Kafka deletes
    closed segments only)."""
    return NewTopic(
        changelog_topic(settings.app_id, WINDOWS_TABLE),
        num_partitions=settings.kafka_partitions,
        replication_factor=1,
        config={
            "cleanup.policy": "compact,delete",
            "retention.ms": str(EXPIRES_S * 1000),
            "segment.ms": "60000",
        },
    )


def create(settings: Settings, wanted: list[NewTopic]) -> dict[str, str]:
    """Create these topics; returns name -> "created" | "exists"."""
    admin = _admin(settings)
    result: dict[str, str] = {}
    for name, future in admin.create_topics(wanted, request_timeout=ADMIN_TIMEOUT_S).items():
        try:
            future.result(timeout=ADMIN_TIMEOUT_S)
            result[name] = "created"
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" in str(exc) or "already exists" in str(exc):
                result[name] = "exists"
            else:
                raise BrokerUnavailable(f"creating {name}: {exc}") from exc
    return result


def delete_topics(settings: Settings, prefix: str) -> list[str]:
    """Delete every topic whose name starts with ``prefix`` and wait until the
    broker no longer lists them; returns their names."""
    admin = _admin(settings)
    names = _topics_with(admin, prefix)
    if names:
        futures = admin.delete_topics(
            names, operation_timeout=ADMIN_TIMEOUT_S, request_timeout=ADMIN_TIMEOUT_S
        )
        for name, future in futures.items():
            try:
                future.result(timeout=ADMIN_TIMEOUT_S)
            except KafkaException as exc:
                raise BrokerUnavailable(f"deleting {name}: {exc}") from exc
    deadline = time.monotonic() + ADMIN_TIMEOUT_S
    while left := _topics_with(admin, prefix):
        if time.monotonic() > deadline:
            raise BrokerUnavailable(f"topics still listed after deletion: {left}")
        time.sleep(0.2)
    return names


def _admin(settings: Settings) -> AdminClient:
    """An admin client of a broker that answers: one that does not is
    ``BrokerUnavailable`` within ``connect_timeout_s``, with the fix in its message."""
    admin = kafka_admin(settings)
    try:
        admin.list_topics(timeout=settings.connect_timeout_s)
    except KafkaException as exc:
        raise BrokerUnavailable(
            f"Kafka at {settings.kafka_bootstrap} does not answer ({exc.args[0]}): "
            "start the stack with `paystream stack up`, or check PAYSTREAM_KAFKA_PORT"
        ) from exc
    return admin


def _topics_with(admin: AdminClient, prefix: str) -> list[str]:
    try:
        listed = admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics
    except KafkaException as exc:
        raise BrokerUnavailable(f"listing topics: {exc}") from exc
    return sorted(name for name in listed if name.startswith(prefix))
