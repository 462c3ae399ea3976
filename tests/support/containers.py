"""The local stack's services from testcontainers, for machines with a Docker engine.

Used only when ``PAYSTREAM_TESTCONTAINERS=1``; the default path is the stack the
project's own scripts start, because Docker is not available everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from services.settings import Settings

# testcontainers drives Confluent's image; 8.1 carries Apache Kafka 4.1, as the local stack.
KAFKA_IMAGE = "confluentinc/cp-kafka:8.1.0"
POSTGRES_IMAGE = "postgres:15"
REDIS_IMAGE = "redis:7.0"
FOUNDRY_IMAGE = "ghcr.io/foundry-rs/foundry:v1.7.1"


@contextmanager
def started_containers(base: Settings) -> Iterator[Settings]:
    """Start Kafka, PostgreSQL, Redis and anvil; yield Settings pointing at them."""
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.community.redis import RedisContainer
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    with ExitStack() as stack:
        kafka = stack.enter_context(KafkaContainer(KAFKA_IMAGE).with_kraft())
        postgres = stack.enter_context(
            PostgresContainer(
                POSTGRES_IMAGE,
                username=base.pg_user,
                password=base.pg_password.get_secret_value(),
                dbname=base.pg_database,
            )
        )
        redis = stack.enter_context(RedisContainer(REDIS_IMAGE))
        anvil = stack.enter_context(
            DockerContainer(FOUNDRY_IMAGE)
            .with_command(
                f"anvil --host 0.0.0.0 --port 8545 --chain-id {base.chain_id} "
                f"--block-time {base.anvil_block_time_s:g} --accounts 20"
            )
            .with_exposed_ports(8545)
            .waiting_for(LogMessageWaitStrategy("Listening on"))
        )
        host = kafka.get_container_host_ip()
        yield base.model_copy(
            update={
                "host": host,
                "kafka_port": int(kafka.get_bootstrap_server().rsplit(":", 1)[1]),
                "pg_port": int(postgres.get_exposed_port(5432)),
                "redis_port": int(redis.get_exposed_port(6379)),
                "anvil_port": int(anvil.get_exposed_port(8545)),
            }
        )
