"""Create the pipeline's topics (idempotent)."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from services.errors import BrokerUnavailable
from services.settings import Settings
from streams.tables import TABLE_NAMES, changelog_topic
from streams.topics import TOPICS


def create_topics(settings: Settings) -> dict[str, str]:
    """Create every topic that is missing; returns name -> "created" | "exists"."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
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
    result: dict[str, str] = {}
    for name, future in admin.create_topics(wanted, request_timeout=30).items():
        try:
            future.result(timeout=30)
            result[name] = "created"
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" in str(exc) or "already exists" in str(exc):
                result[name] = "exists"
            else:
                raise BrokerUnavailable(f"creating {name}: {exc}") from exc
    return result
