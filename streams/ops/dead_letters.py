"""The last dead letters, for the ops page: read from the tail of
``payments.dlq`` (each partition's last few records), newest first, shown
without their bytes and with every quoted value in the error replaced by
``'…'`` (a validation error quotes what it refused, and that may be a
payer's data)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition

from schemas.payments import DeadLetter
from schemas.topics import PAYMENTS_DLQ
from services.bootstrap import kafka_consumer_config
from services.errors import BrokerUnavailable
from services.settings import Settings

READ_TIMEOUT_S = 5.0
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_INPUT = re.compile(r"input_value=\S+")


@dataclass(frozen=True)
class DeadLetterView:
    occurred_at: str
    stage: str
    source: str  # topic[partition]@offset
    error: str  # redacted, at most 200 characters
    size: int  # bytes of the record that could not be handled


def redact(error: str) -> str:
    first_lines = " ".join(error.splitlines()[:3])
    return _INPUT.sub("input_value=…", _QUOTED.sub("'…'", first_lines))[:200]


def last_dead_letters(settings: Settings, count: int = 10) -> list[DeadLetterView]:
    """The newest ``count`` dead letters (BrokerUnavailable if Kafka does not
    answer within ``READ_TIMEOUT_S``)."""
    consumer = Consumer(kafka_consumer_config(settings, f"ops-dlq-{uuid.uuid4().hex[:8]}"))
    topic = settings.topic(PAYMENTS_DLQ)
    try:
        metadata = consumer.list_topics(topic, timeout=READ_TIMEOUT_S).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []
        letters = _read_tails(consumer, topic, list(metadata.partitions), count)
    except KafkaException as exc:
        raise BrokerUnavailable(f"reading {topic}: {exc}") from exc
    finally:
        consumer.close()
    letters.sort(key=lambda letter: letter.occurred_at, reverse=True)
    return letters[:count]


def _read_tails(
    consumer: Consumer, topic: str, partitions: list[int], count: int
) -> list[DeadLetterView]:
    wanted: dict[int, int] = {}  # partition -> end offset
    starts = []
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), READ_TIMEOUT_S)
        if high > low:
            wanted[p] = high
            starts.append(TopicPartition(topic, p, max(low, high - count)))
    if not starts:
        return []
    consumer.assign(starts)
    letters: list[DeadLetterView] = []
    done: set[int] = set()
    while len(done) < len(wanted):
        message = consumer.poll(READ_TIMEOUT_S)
        if message is None:
            break  # what was read is what there is
        if message.error() is not None:
            continue
        partition, offset = message.partition() or 0, message.offset() or 0
        if offset + 1 >= wanted.get(partition, 0):
            done.add(partition)
        letters.append(_view(message.value() or b""))
    return letters


def _view(raw: bytes) -> DeadLetterView:
    try:
        letter = DeadLetter.model_validate_json(raw)
    except ValueError:
        return DeadLetterView("", "?", "?", "a dead letter that is not a DeadLetter record", 0)
    return DeadLetterView(
        occurred_at=letter.occurred_at.isoformat(),
        stage=letter.stage,
        source=f"{letter.source_topic}[{letter.partition}]@{letter.offset}",
        error=redact(letter.error),
        size=len(letter.value_b64) * 3 // 4,
    )
